/**
 * File checksums and sizes for package and source manifests, streamed in bounded memory, and the
 * one way Owlery replaces a small file atomically (manifests, exports, sidecars, stored photos).
 */
import { createHash } from 'node:crypto';
import { open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import type { FileEntry } from './manifest.ts';

const CHUNK = 4 << 20;

/**
 * Replaces `path` with `data` so that readers see the old file or the new one, never a part:
 * written to `tmp` (created exclusively; in the same folder, so the rename cannot cross file
 * systems), flushed to disk, then renamed over `path`. On failure `tmp` is removed, `path` is left
 * as it was, and the file system's error is thrown as it is (callers word it for their user).
 */
export async function replaceFile(path: string, tmp: string, data: string | Uint8Array): Promise<void> {
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}

/** Whether `path` is a regular file (false when it is missing or anything else). */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** Options of `sha256File`. */
export interface HashOptions {
  /** Called with the number of bytes hashed since the last call. */
  onBytes?: (n: number) => void;
  signal?: AbortSignal;
}

/** SHA-256 of a file, lowercase hex, read in 4 MiB chunks. */
export async function sha256File(path: string, opts: HashOptions = {}): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      if (opts.signal?.aborted) throw new OwleryError('CANCELLED', 'cancelled');
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
      opts.onBytes?.(bytesRead);
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/** Size and SHA-256 of `name` inside `dir`. */
export async function fileEntry(dir: string, name: string, opts: HashOptions = {}): Promise<FileEntry> {
  const path = join(dir, name);
  const { size } = await stat(path);
  return { path: name, size, sha256: await sha256File(path, opts) };
}
