/**
 * Which photos a describe run covers, and each photo's identity (the sha256 of its bytes).
 *
 * A folder lists the files with a photo extension (the Photos panel's, `PHOTO_EXTENSIONS`),
 * optionally in every subfolder; hidden files and folders (a leading dot) and symbolic links are
 * left out (a link could lead outside the folder, or round in a loop). Paths come back sorted, so
 * a job's order is stable.
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { sha256File } from '../../models/package/index.ts';
import { isPhotoName } from '../services/folders.ts';

/** Most photos one run may cover. */
export const MAX_PHOTOS_PER_JOB = 200_000;

/** The photos of `folders` (and their subfolders when `recursive`) and of `files`, sorted, without repeats. */
export async function listPhotos(folders: readonly string[], files: readonly string[], recursive: boolean): Promise<string[]> {
  const out = new Set<string>();
  for (const folder of folders) {
    const st = await stat(folder).catch(() => null);
    if (!st) throw new OwleryError('FILE_NOT_FOUND', `The folder ${folder} does not exist.`, { path: folder });
    if (!st.isDirectory()) throw new OwleryError('INVALID_ARGUMENT', `${folder} is not a folder.`, { path: folder });
    await walk(resolve(folder), recursive, out);
  }
  for (const file of files) out.add(resolve(file));
  if (out.size > MAX_PHOTOS_PER_JOB) {
    throw new OwleryError('INVALID_ARGUMENT', `That is ${out.size.toLocaleString('en')} photos; describe at most ${MAX_PHOTOS_PER_JOB.toLocaleString('en')} at a time.`);
  }
  return [...out].sort();
}

async function walk(dir: string, recursive: boolean, out: Set<string>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    throw new OwleryError('FILE_NOT_FOUND', `The folder ${dir} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`, { path: dir });
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const path = join(dir, e.name);
    if (e.isFile() && isPhotoName(e.name)) out.add(path);
    else if (recursive && e.isDirectory()) await walk(path, recursive, out);
    if (out.size > MAX_PHOTOS_PER_JOB) return;
  }
}

/** A photo file's identity: content hash, size and modification time. */
export interface PhotoIdentity {
  sha256: string;
  size: number;
  mtimeMs: number;
}

/**
 * Hashes a photo, unless `known` (what was recorded when it was last seen) has the same size and
 * modification time. Throws `FILE_NOT_FOUND` (gone), `INVALID_ARGUMENT` (not a file) or
 * `IMAGE_UNREADABLE` (cannot be read).
 */
export async function identifyPhoto(path: string, known?: PhotoIdentity): Promise<PhotoIdentity> {
  if (!isAbsolute(path)) throw new OwleryError('INVALID_ARGUMENT', `Photo paths must be absolute, got ${path}.`);
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new OwleryError('FILE_NOT_FOUND', `${basename(path)} is no longer there.`, { path });
    throw new OwleryError('IMAGE_UNREADABLE', `${basename(path)} cannot be read (${err.code ?? err.message}).`, { path });
  });
  if (!st.isFile()) throw new OwleryError('INVALID_ARGUMENT', `${basename(path)} is not a file.`, { path });
  if (known && known.size === st.size && Math.round(known.mtimeMs) === Math.round(st.mtimeMs)) return known;
  try {
    return { sha256: await sha256File(path), size: st.size, mtimeMs: st.mtimeMs };
  } catch (err) {
    throw new OwleryError('IMAGE_UNREADABLE', `${basename(path)} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).`, { path });
  }
}
