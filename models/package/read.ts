/**
 * Opening a model package folder: validates `manifest.json`, checks that every listed file exists
 * with its size, and (with `verify`) its SHA-256. Verified checksums are remembered in a stamp
 * file keyed by each file's size and mtime, so gigabytes are not re-hashed at every load.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { parseOwl2Config } from '../owl2/config.ts';
import { sha256File } from './files.ts';
import type { HashOptions } from './files.ts';
import { MANIFEST_FILE, validateManifest } from './manifest.ts';
import type { FileEntry, GraphName, PackageManifest } from './manifest.ts';

/** Name of the verified-checksum stamp inside a package folder (not part of the package). */
export const VERIFIED_STAMP_FILE = '.owlery-verified.json';

/** Options of `readPackage`. */
export interface ReadPackageOptions {
  /**
   * Check every file's SHA-256 (default true). Files whose size and mtime match a previous
   * successful verification (the stamp) are not re-hashed. Sizes are always checked.
   */
  verify?: boolean;
  /** Ignore the stamp and hash everything. */
  force?: boolean;
  onBytes?: HashOptions['onBytes'];
  /** Called once before hashing starts, with the bytes that will be hashed (not called when none). */
  onHashStart?: (totalBytes: number) => void;
  signal?: AbortSignal;
}

/** An opened package. */
export interface LoadedPackage {
  dir: string;
  manifest: PackageManifest;
  /** Absolute paths of the graphs' `.onnx` files. */
  graphPaths: Record<GraphName, string>;
  /** Whether every checksum was verified during this call or by a still-valid stamp. */
  verified: boolean;
}

interface StampEntry {
  size: number;
  mtimeMs: number;
  sha256: string;
}
interface Stamp {
  version: 1;
  files: Record<string, StampEntry>;
}

async function readStamp(dir: string): Promise<Stamp> {
  try {
    const s = JSON.parse(await readFile(join(dir, VERIFIED_STAMP_FILE), 'utf8')) as Stamp;
    if (s && s.version === 1 && s.files && typeof s.files === 'object') return s;
  } catch {
    // No stamp, or an unreadable one: verify from scratch.
  }
  return { version: 1, files: {} };
}

async function writeStamp(dir: string, stamp: Stamp): Promise<void> {
  const tmp = join(dir, `${VERIFIED_STAMP_FILE}.${process.pid}.tmp`);
  try {
    await writeFile(tmp, JSON.stringify(stamp));
    await rename(tmp, join(dir, VERIFIED_STAMP_FILE));
  } catch {
    // A read-only package folder is fine: it is verified again next time.
  }
}

/** JSON with object keys sorted, so key order does not matter. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

/** Opens and validates the package in `dir`. Throws `PACKAGE_INVALID` naming the offending file. */
export async function readPackage(dir: string, opts: ReadPackageOptions = {}): Promise<LoadedPackage> {
  const verify = opts.verify ?? true;
  const manifestPath = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(manifestPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new OwleryError('PACKAGE_INVALID', `${manifestPath}: not found; ${dir} is not an Owlery model package`, { file: MANIFEST_FILE });
    }
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new OwleryError('PACKAGE_INVALID', `${manifestPath}: not valid JSON (${(err as Error).message})`, { file: MANIFEST_FILE });
  }
  const manifest = validateManifest(raw, manifestPath);

  // Sizes always; checksums when asked, skipping files the stamp vouches for.
  const stamp = verify && !opts.force ? await readStamp(dir) : { version: 1 as const, files: {} as Record<string, StampEntry> };
  const fresh: Stamp = { version: 1, files: {} };
  const toHash: { entry: FileEntry; mtimeMs: number }[] = [];
  for (const entry of manifest.files) {
    const path = join(dir, entry.path);
    let st;
    try {
      st = await stat(path);
    } catch {
      throw new OwleryError('PACKAGE_INVALID', `${entry.path}: listed in ${MANIFEST_FILE} but missing from ${dir}`, { file: entry.path });
    }
    if (!st.isFile()) throw new OwleryError('PACKAGE_INVALID', `${entry.path}: not a regular file`, { file: entry.path });
    if (st.size !== entry.size) {
      throw new OwleryError('PACKAGE_INVALID',
        `${entry.path}: size is ${st.size} bytes, ${MANIFEST_FILE} says ${entry.size}; the file is damaged or incomplete`, { file: entry.path });
    }
    if (!verify) continue;
    const s = stamp.files[entry.path];
    if (s && s.size === st.size && s.mtimeMs === st.mtimeMs && s.sha256 === entry.sha256) fresh.files[entry.path] = s;
    else toHash.push({ entry, mtimeMs: st.mtimeMs });
  }
  if (toHash.length > 0) opts.onHashStart?.(toHash.reduce((n, f) => n + f.entry.size, 0));
  for (const { entry, mtimeMs } of toHash) {
    const sha = await sha256File(join(dir, entry.path), { onBytes: opts.onBytes, signal: opts.signal });
    if (sha !== entry.sha256) {
      throw new OwleryError('PACKAGE_INVALID',
        `${entry.path}: checksum mismatch (sha256 ${sha}, ${MANIFEST_FILE} says ${entry.sha256}); the file is damaged or was modified`,
        { file: entry.path });
    }
    fresh.files[entry.path] = { size: entry.size, mtimeMs, sha256: sha };
  }
  if (verify && toHash.length > 0) await writeStamp(dir, fresh);

  // The manifest's config must be what the packaged config.json says.
  if (manifest.files.some((f) => f.path === 'config.json')) {
    let cfgRaw: unknown;
    try {
      cfgRaw = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
    } catch (err) {
      throw new OwleryError('PACKAGE_INVALID', `config.json: not valid JSON (${(err as Error).message})`, { file: 'config.json' });
    }
    if (!sameJson(parseOwl2Config(cfgRaw), manifest.config)) {
      throw new OwleryError('PACKAGE_INVALID', `${manifestPath}: config does not match the packaged config.json (was the manifest edited?)`, { file: MANIFEST_FILE });
    }
  } else {
    throw new OwleryError('PACKAGE_INVALID', `${manifestPath}: config.json is not listed in files`, { file: MANIFEST_FILE });
  }

  const graphPaths = {
    vision: join(dir, manifest.graphs.vision.file),
    embed: join(dir, manifest.graphs.embed.file),
    decoder: join(dir, manifest.graphs.decoder.file),
  };
  return { dir, manifest, graphPaths, verified: verify };
}
