/**
 * `pullCheckpoint`: downloads the files of an mPLUG-Owl2 checkpoint from a Hugging Face compatible
 * endpoint into a folder `convertCheckpoint` can read: `config.json`, the tokenizer and
 * preprocessor files, and the weights of ONE format (safetensors when the repository has it, else
 * PyTorch `.bin`), single or sharded (the shard index is fetched first and names the shards).
 * Each file is resumable, retried and verified (see `download.ts`); files already present are
 * verified and kept.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rm, stat, statfs } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CHECKPOINT_FILES, parseShardIndex } from '../checkpoint/index.ts';
import { PullError } from './errors.ts';
import { downloadFile, PART_SUFFIX } from './download.ts';
import type { ExpectedFile, RetryEvent, RetryOptions } from './download.ts';
import { hubHeaders, listRepoFiles, normaliseEndpoint, resolveUrl } from './hub.ts';
import type { FetchFn, RemoteFile } from './hub.ts';
import { COPIED_FILES } from '../convert.ts';

export { PullError } from './errors.ts';
export type { PullFailure } from './errors.ts';
export { DEFAULT_ENDPOINT, listRepoFiles, resolveUrl } from './hub.ts';
export type { FetchFn, RemoteFile } from './hub.ts';
export { downloadFile, PART_SUFFIX } from './download.ts';
export type { DownloadFileOptions, DownloadResult, ExpectedFile, RetryEvent, RetryOptions } from './download.ts';

/** Non-weight files of a checkpoint (the ones the converter copies); `required` ones must be in the repository. */
export const CHECKPOINT_SIDE_FILES = COPIED_FILES;

/** Progress of a pull. */
export interface PullProgress {
  phase: 'listing' | 'downloading' | 'verifying' | 'done';
  /** File being worked on. */
  file?: string;
  /** Its bytes on disk so far and its size (when known). */
  fileBytes?: number;
  fileSize?: number;
  /** All selected files: bytes on disk so far and in all (the total grows once the shard index is read). */
  bytesDone: number;
  bytesTotal: number;
  filesDone: number;
  filesTotal: number;
}

/** Options of `pullCheckpoint`. */
export interface PullOptions extends RetryOptions {
  /** Endpoint base URL (default the public hub, `https://huggingface.co`). */
  endpoint?: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Access token for private or gated repositories. */
  token?: string;
  /** Weight format to fetch when the repository has both (default `safetensors`). */
  prefer?: 'safetensors' | 'pytorch';
  /** Re-check files already in the folder against the listed size and checksum (default true). */
  verifyExisting?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: PullProgress) => void;
  onRetry?: (e: RetryEvent) => void;
  /** Makes every request (default: the global `fetch`); the app passes its network gate's. */
  fetch?: FetchFn;
}

/** One file of a finished pull. */
export interface PulledFile {
  path: string;
  size: number;
  /** sha256 of the file as written. */
  sha256: string;
  /** How it got there: downloaded now (`resumedFrom` > 0: continued a `.part`), or already present and verified. */
  status: 'downloaded' | 'present';
  resumedFrom: number;
}

/** What `pullCheckpoint` did. */
export interface PullResult {
  dir: string;
  repo: string;
  endpoint: string;
  revision: string;
  format: 'safetensors' | 'pytorch';
  files: PulledFile[];
}

/** The weight files to fetch: the chosen format, and whether it is sharded (index first). */
export function chooseWeights(files: readonly RemoteFile[], prefer: 'safetensors' | 'pytorch' = 'safetensors'): { format: 'safetensors' | 'pytorch'; index?: string; single?: string } | undefined {
  const names = new Set(files.map((f) => f.path));
  const order: ('safetensors' | 'pytorch')[] = prefer === 'pytorch' ? ['pytorch', 'safetensors'] : ['safetensors', 'pytorch'];
  for (const format of order) {
    const n = CHECKPOINT_FILES[format];
    if (names.has(n.index)) return { format, index: n.index };
    if (names.has(n.single)) return { format, single: n.single };
  }
  return undefined;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

async function hashExisting(path: string, gitSize?: number): Promise<{ sha256: string; gitOid?: string }> {
  const h = createHash('sha256');
  const g = gitSize === undefined ? undefined : createHash('sha1').update(`blob ${gitSize}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    h.update(chunk);
    g?.update(chunk);
  }
  return { sha256: h.digest('hex'), gitOid: g?.digest('hex') };
}

/** True when a file already in place matches what the endpoint lists. */
async function existingMatches(path: string, expected: ExpectedFile, verify: boolean): Promise<{ ok: boolean; sha256?: string; size?: number }> {
  const size = await sizeOf(path);
  if (size === undefined) return { ok: false };
  if (expected.size !== undefined && size !== expected.size) return { ok: false };
  if (!verify && expected.size !== undefined) return { ok: true, size };
  const h = await hashExisting(path, !expected.sha256 && expected.gitOid ? size : undefined);
  if (expected.sha256 && h.sha256 !== expected.sha256) return { ok: false };
  if (!expected.sha256 && expected.gitOid && h.gitOid !== expected.gitOid) return { ok: false };
  return { ok: true, sha256: h.sha256, size };
}

/**
 * Downloads the checkpoint files of `repo` into `dir` (created if needed). Throws `PullError`:
 * `not-found` (repository, revision or a needed file), `unauthorized`/`forbidden`, `network`/`http`
 * after the retries, `checksum`/`size` naming the file, `disk-full`, `cancelled` (partial files are
 * kept as `<file>.part` and a later pull resumes them), `invalid` (bad arguments).
 */
export async function pullCheckpoint(repo: string, dir: string, opts: PullOptions = {}): Promise<PullResult> {
  const endpoint = normaliseEndpoint(opts.endpoint);
  const revision = opts.revision ?? 'main';
  const out = resolve(dir);
  const { signal } = opts;
  const verify = opts.verifyExisting ?? true;
  let bytesTotal = 0;
  let filesTotal = 0;
  let filesDone = 0;
  const doneBytes = new Map<string, number>();
  const sumDone = (): number => [...doneBytes.values()].reduce((a, b) => a + b, 0);
  const report = (phase: PullProgress['phase'], file?: string, fileBytes?: number, fileSize?: number): void =>
    opts.onProgress?.({ phase, file, fileBytes, fileSize, bytesDone: sumDone(), bytesTotal, filesDone, filesTotal });

  report('listing');
  const listing = await listRepoFiles(repo, { endpoint, revision, token: opts.token, signal, fetch: opts.fetch });
  const byName = new Map(listing.filter((f) => !f.path.includes('/')).map((f) => [f.path, f]));
  for (const f of CHECKPOINT_SIDE_FILES) {
    if (f.required && !byName.has(f.name)) {
      throw new PullError('not-found', `${repo}@${revision} has no ${f.name}: not a Hugging Face mPLUG-Owl2 checkpoint (files: ${[...byName.keys()].sort().join(', ') || 'none'})`, { repo, file: f.name });
    }
  }
  const weights = chooseWeights([...byName.values()], opts.prefer);
  if (!weights) {
    throw new PullError('not-found',
      `${repo}@${revision} has no weights: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json`, { repo });
  }
  const first: RemoteFile[] = [
    ...CHECKPOINT_SIDE_FILES.filter((f) => byName.has(f.name)).map((f) => byName.get(f.name)!),
    ...(weights.index ? [byName.get(weights.index)!] : []),
  ];
  await mkdir(out, { recursive: true });

  const headers = hubHeaders(opts.token);
  const results: PulledFile[] = [];
  const fetchOne = async (f: RemoteFile): Promise<void> => {
    const dest = join(out, f.path);
    const expected: ExpectedFile = { size: f.size, sha256: f.sha256, gitOid: f.gitOid };
    report('verifying', f.path, 0, f.size);
    const have = await existingMatches(dest, expected, verify);
    if (have.ok) {
      doneBytes.set(f.path, have.size!);
      filesDone++;
      results.push({ path: f.path, size: have.size!, sha256: have.sha256 ?? '', status: 'present', resumedFrom: 0 });
      report('downloading', f.path, have.size, f.size);
      return;
    }
    await rm(dest, { force: true });
    const r = await downloadFile({
      url: resolveUrl(endpoint, repo, revision, f.path),
      dest,
      expected,
      headers,
      name: f.path,
      signal,
      retries: opts.retries,
      backoffMs: opts.backoffMs,
      maxBackoffMs: opts.maxBackoffMs,
      idleTimeoutMs: opts.idleTimeoutMs,
      onRetry: opts.onRetry,
      fetch: opts.fetch,
      onBytes: (n) => {
        doneBytes.set(f.path, n);
        report('downloading', f.path, n, f.size);
      },
    });
    filesDone++;
    results.push({ path: f.path, size: r.size, sha256: r.sha256, status: 'downloaded', resumedFrom: r.resumedFrom });
  };

  filesTotal = first.length + (weights.single ? 1 : 0);
  bytesTotal = first.reduce((a, f) => a + (f.size ?? 0), 0);
  for (const f of first) await fetchOne(f);

  let shards: RemoteFile[];
  if (weights.index) {
    const indexPath = join(out, weights.index);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(indexPath, 'utf8'));
    } catch (err) {
      throw new PullError('invalid', `${weights.index} from ${repo} is not valid JSON (${(err as Error).message})`, { file: weights.index });
    }
    const names = [...new Set(parseShardIndex(raw, indexPath).values())].sort();
    shards = names.map((n) => {
      const f = byName.get(n);
      if (!f) throw new PullError('not-found', `${weights.index} lists the shard ${n}, but ${repo}@${revision} has no such file`, { repo, file: n });
      return f;
    });
  } else {
    shards = [byName.get(weights.single!)!];
  }
  filesTotal = first.length + shards.length;
  bytesTotal += shards.reduce((a, f) => a + (f.size ?? 0), 0);

  // Room for what is still missing (sizes the endpoint lists, minus partial files already here).
  let missing = 0;
  for (const f of shards) {
    if (f.size === undefined) continue;
    const have = (await sizeOf(join(out, f.path))) === f.size ? f.size : ((await sizeOf(join(out, f.path + PART_SUFFIX))) ?? 0);
    missing += Math.max(0, f.size - have);
  }
  const fs = await statfs(out);
  const free = fs.bavail * fs.bsize;
  if (missing > free) {
    throw new PullError('disk-full', `not enough disk space in ${out}: the weights need ${missing} more bytes, ${free} are free`, { path: out, needed: missing, free });
  }
  for (const f of shards) await fetchOne(f);
  report('done');
  return { dir: out, repo, endpoint, revision, format: weights.format, files: results };
}
