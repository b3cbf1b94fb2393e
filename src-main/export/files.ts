/**
 * Writing export files so that a failure never leaves a half-written file behind: each file is
 * written to a temporary name in the same folder, flushed, then renamed over the target. A full
 * disk is `DISK_FULL`, any other write failure `EXPORT_FAILED`; the temporary file is removed and
 * an existing file at the target is left as it was. Temporary files of an export whose process
 * was killed (`.<name>.<pid>-<hex>.tmp`) are removed by the next export into that folder.
 */
import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { replaceFile } from '../../models/package/files.ts';
import { removeStale } from '../../models/package/stale.ts';
import { OwleryError } from '../../src-shared/errors.ts';

/** An export's temporary file (see {@link writeFileAtomic}). */
const EXPORT_TEMP = /^\..+\.(\d+)-[0-9a-f]{8}\.tmp$/;

/** Turns a file-system failure while writing `path` into an `OwleryError`. */
export function writeError(err: unknown, path: string): OwleryError {
  if (err instanceof OwleryError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const name = basename(path);
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new OwleryError('DISK_FULL', `The disk is full, so ${name} could not be written. Free some space and export again; nothing was half-written.`, {
      path,
      cause: code,
    });
  }
  if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
    return new OwleryError('EXPORT_FAILED', `Owlery may not write to the folder of ${name}. Choose another folder.`, { path, cause: code });
  }
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new OwleryError('EXPORT_FAILED', `The folder for ${name} does not exist. Choose another folder.`, { path, cause: code });
  }
  const detail = err instanceof Error ? err.message : String(err);
  return new OwleryError('EXPORT_FAILED', `${name} could not be written (${detail}).`, { path, cause: code });
}

/** Writes `data` to `path` atomically (see the module comment). */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await removeStale(dirname(path), EXPORT_TEMP);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  await replaceFile(path, tmp, data).catch((err: unknown) => {
    throw writeError(err, path);
  });
}

/** Whether `path` is an existing regular file of `size` bytes. */
export async function isFileOfSize(path: string, size: number): Promise<boolean> {
  try {
    const st = await stat(path);
    return st.isFile() && st.size === size;
  } catch {
    return false;
  }
}
