/**
 * File access shared by the checkpoint readers: opening with clear errors and positioned reads.
 */
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { OwleryError } from '../../src-shared/errors.ts';
import type { TensorInfo } from './types.ts';

/** Largest single `read` call (Node refuses more than 2 GiB − 1 per call). */
const MAX_READ = 1 << 30;

/** An open file with its size, read by position only. */
export interface OpenFile {
  readonly path: string;
  readonly size: number;
  readonly handle: FileHandle;
}

/** Opens a file for reading; a missing file is `FILE_NOT_FOUND` naming it. */
export async function openFile(path: string, what = 'checkpoint file'): Promise<OpenFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `${what} not found: ${path}`, { path });
    if (code === 'EISDIR') throw new OwleryError('CHECKPOINT_INVALID', `${what} is a directory: ${path}`, { path });
    throw err;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw new OwleryError('CHECKPOINT_INVALID', `${what} is not a regular file: ${path}`, { path });
    return { path, size: st.size, handle };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/**
 * Reads exactly `length` bytes at `position` into a fresh buffer. A short read means the file was
 * truncated (or changed underneath us) and is reported as `CHECKPOINT_INVALID` naming `what`.
 */
export async function readAt(file: OpenFile, position: number, length: number, what: string): Promise<Uint8Array> {
  if (position < 0 || length < 0 || position + length > file.size) {
    throw new OwleryError('CHECKPOINT_INVALID',
      `${file.path}: ${what} lies beyond the end of the file (bytes ${position}..${position + length}, file size ${file.size}); the file is truncated or corrupt`,
      { path: file.path });
  }
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const chunk = Math.min(MAX_READ, length - done);
    const { bytesRead } = await file.handle.read(out, done, chunk, position + done);
    if (bytesRead === 0) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `${file.path}: unexpected end of file while reading ${what} (got ${done} of ${length} bytes); the file is truncated`,
        { path: file.path });
    }
    done += bytesRead;
  }
  return out;
}

/** One checkpoint file (a safetensors file or a torch zip): its tensors and raw reads. */
export interface TensorFile {
  /** Absolute or caller-relative path, used in error messages. */
  readonly path: string;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readRaw(name: string): Promise<Uint8Array>;
  close(): Promise<void>;
}
