/**
 * `owlery describe --model PKG [--recursive] [--sidecars] [--json] [--state FILE] DIR…`: captions
 * and keywords for the photos of folders, one line per photo on stdout (`--json`: one JSON object
 * per line: path, sha256, caption, keywords, ms; or path and error), a summary on stderr.
 *
 * Resumable: every finished photo is appended to a state file (JSON lines; default
 * `owlery-describe.state.jsonl` in the current folder) as soon as it is done, so running the same
 * command again skips the photos already described with the same model package, prompt version
 * and content (and prints their lines again, marked `"skipped": true`). Ctrl-C stops the photo
 * being described (it is not recorded: the next run describes it) and exits 130; a kill leaves at
 * most a partial last line, which the next run drops. Exit status: 0 when every photo was
 * described, 1 when some failed (their errors are listed), 130 when interrupted.
 */
import { appendFileSync, existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { SidecarNaming } from '../../src-shared/describe.ts';
import type { ExecutionProviderName } from '../../src-shared/engine.ts';
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import { EngineHost } from '../engine/index.ts';
import { describePhoto, modelIdentity } from './describer.ts';
import { identifyPhoto, listPhotos } from './photos.ts';
import type { PhotoIdentity } from './photos.ts';
import { PROMPT_VERSION } from './prompts.ts';
import { checkSidecarFolders, writeSidecar } from './xmp.ts';

/** Default state file, in the current folder. */
export const DEFAULT_STATE_FILE = 'owlery-describe.state.jsonl';
const STATE_HEADER = { owlery: 'describe-state', version: 1 };

/** Options of {@link describeCommand} (parsed by the CLI's `main`). */
export interface DescribeCommandOptions {
  model: string;
  dirs: string[];
  recursive: boolean;
  sidecars: SidecarNaming | null;
  json: boolean;
  /** The state file (absolute). */
  state: string;
  provider: ExecutionProviderName;
  threads?: number;
  /** Where the engine process writes engine.log (`--verbose`). */
  logDir?: string;
  /** The engine process's entry (the compiled CLI's; default: the engine host's). */
  engineWorker?: URL;
  /** Aborted by Ctrl-C. */
  signal: AbortSignal;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** One finished photo in the state file. */
interface StateEntry {
  path: string;
  sha256: string;
  size: number;
  mtimeMs: number;
  packageId: string;
  modelSha256: string;
  promptVersion: string;
  caption: string;
  keywords: string[];
  ms: number;
}

/** The state file: finished photos by path (the last line for a path wins). */
class StateFile {
  readonly entries = new Map<string, StateEntry>();

  constructor(readonly file: string) {}

  /** Reads it (creating it with its header when missing), dropping a partial last line. */
  open(): void {
    const text = existsSync(this.file) ? readFileSync(this.file, 'utf8') : '';
    if (!text.includes('\n')) {
      // New (or cut short while its header was written).
      writeFileSync(this.file, `${JSON.stringify(STATE_HEADER)}\n`);
      return;
    }
    const lines = text.split('\n');
    let header: unknown;
    try {
      header = JSON.parse(lines[0]);
    } catch {
      header = null;
    }
    if ((header as typeof STATE_HEADER | null)?.owlery !== STATE_HEADER.owlery) {
      throw new OwleryError('INVALID_ARGUMENT', `${this.file} is not an owlery describe state file; choose another with --state FILE.`);
    }
    if (!text.endsWith('\n')) {
      // A kill during the last append: cut the partial line so the next append starts cleanly.
      truncateSync(this.file, Buffer.byteLength(text.slice(0, text.lastIndexOf('\n') + 1)));
    }
    // The last element is empty, or the partial line.
    for (const line of lines.slice(1, -1)) {
      try {
        const e = JSON.parse(line) as StateEntry;
        if (typeof e.path === 'string' && typeof e.sha256 === 'string' && typeof e.caption === 'string' && Array.isArray(e.keywords)) this.entries.set(e.path, e);
      } catch {
        // Not a finished photo: ignored.
      }
    }
  }

  /** Appends a finished photo (one write of one line). */
  add(entry: StateEntry): void {
    appendFileSync(this.file, `${JSON.stringify(entry)}\n`);
    this.entries.set(entry.path, entry);
  }
}

/** Runs `owlery describe`; returns the exit status. */
export async function describeCommand(o: DescribeCommandOptions): Promise<number> {
  const photos = await listPhotos(o.dirs, [], o.recursive);
  if (photos.length === 0) throw new OwleryError('INVALID_ARGUMENT', `there are no photos in ${o.dirs.join(', ')}${o.recursive ? ' or its subfolders' : ''}`);
  if (o.sidecars) await checkSidecarFolders([...new Set(photos.map((p) => dirname(p)))]);
  const state = new StateFile(o.state);
  state.open();
  const host = new EngineHost(o.engineWorker, { logDir: o.logDir });
  let described = 0;
  let skipped = 0;
  let failed = 0;
  let describeMs = 0;
  const t0 = performance.now();
  try {
    const info = await host.load(o.model, { provider: o.provider, threads: o.threads });
    const model = await modelIdentity(info);
    o.stderr(`owlery: describing ${photos.length} photos with ${model.packageId} (${model.provider ?? 'cpu'}); state in ${o.state}\n`);
    for (const [i, path] of photos.entries()) {
      if (o.signal.aborted) break;
      const previous = state.entries.get(path);
      let id: PhotoIdentity | null = null;
      try {
        id = await identifyPhoto(path, previous);
        const same = previous && previous.sha256 === id.sha256 && previous.packageId === model.packageId &&
          previous.modelSha256 === model.modelSha256 && previous.promptVersion === PROMPT_VERSION;
        let entry: StateEntry;
        if (same) {
          entry = previous;
          skipped++;
        } else {
          const d = await describePhoto(host, path, id.sha256, o.signal);
          entry = {
            path, sha256: id.sha256, size: id.size, mtimeMs: id.mtimeMs, packageId: model.packageId, modelSha256: model.modelSha256,
            promptVersion: PROMPT_VERSION, caption: d.caption, keywords: d.keywords, ms: Math.round(d.ms),
          };
          state.add(entry);
          described++;
          describeMs += d.ms;
        }
        let sidecarError: string | null = null;
        if (o.sidecars) {
          try {
            await writeSidecar(path, o.sidecars, { caption: entry.caption, keywords: entry.keywords, packageId: entry.packageId, promptVersion: entry.promptVersion, describedAt: Date.now() });
          } catch (err) {
            sidecarError = (err as Error).message;
          }
        }
        const line = { path, sha256: entry.sha256, caption: entry.caption, keywords: entry.keywords, ms: entry.ms, ...(same ? { skipped: true } : {}), ...(sidecarError ? { sidecarError } : {}) };
        o.stdout(o.json ? `${JSON.stringify(line)}\n` : `${path}\t${entry.caption}\t${entry.keywords.join(', ')}\n`);
        if (sidecarError) o.stderr(`owlery: ${sidecarError}\n`);
      } catch (err) {
        if (o.signal.aborted) break;
        failed++;
        const { code, message } = serializeError(err);
        if (o.json) o.stdout(`${JSON.stringify({ path, ...(id ? { sha256: id.sha256 } : {}), error: { code, message } })}\n`);
        o.stderr(`owlery: ${message.includes(basename(path)) ? '' : `${path}: `}${message}\n`);
      }
      if (process.stderr.isTTY && !o.json) o.stderr(`\r${i + 1}/${photos.length}\x1b[K`);
    }
  } finally {
    await host.dispose();
  }
  const minutes = describeMs / 60_000;
  const rate = described > 0 ? ` (${(described / minutes).toFixed(1)} photos/min)` : '';
  const interrupted = o.signal.aborted;
  o.stderr(`owlery: ${interrupted ? 'interrupted: ' : ''}${described} described${rate}, ${skipped} already described, ${failed} failed` +
    `${interrupted ? `, ${photos.length - described - skipped - failed} left (run the same command again to continue)` : ''} in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  if (interrupted) return 130;
  return failed > 0 ? 1 : 0;
}
