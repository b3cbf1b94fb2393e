/**
 * Writing a model package atomically: everything goes into a staging folder next to the
 * destination, which is renamed into place only when complete. A failure or cancellation removes
 * the staging folder and leaves the destination untouched.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { fileEntry } from './files.ts';
import type { HashOptions } from './files.ts';
import { MANIFEST_FILE, validateManifest } from './manifest.ts';
import { PACKAGE_STAGING, removeStale } from './stale.ts';
import type { FileEntry, PackageManifest } from './manifest.ts';

/** True when `path` does not exist or is an empty folder. */
async function isAbsentOrEmptyDir(path: string): Promise<boolean> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
  return st.isDirectory() && (await readdir(path)).length === 0;
}

/** A staging folder for a package being written. */
export interface PackageStaging {
  /** Final destination. */
  dest: string;
  /** Where files are written until `commit`. */
  dir: string;
  /** Moves the finished package into place. */
  commit(): Promise<void>;
  /** Removes the staging folder (safe to call after commit or twice). */
  discard(): Promise<void>;
}

/**
 * Creates `.<name>.partial-<pid>-<random>` next to `dest`, first removing such folders there whose
 * process is gone (a conversion killed with SIGKILL cannot clean up after itself). Refuses a
 * destination that exists and is not an empty folder (`INVALID_ARGUMENT`).
 */
export async function createPackageStaging(dest: string): Promise<PackageStaging> {
  const target = resolve(dest);
  if (!(await isAbsentOrEmptyDir(target))) {
    throw new OwleryError('INVALID_ARGUMENT', `${target} already exists and is not an empty folder; choose another destination or remove it first`, { path: target });
  }
  const parent = dirname(target);
  await mkdir(parent, { recursive: true });
  await removeStale(parent, PACKAGE_STAGING);
  const dir = join(parent, `.${basename(target)}.partial-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(dir);
  let committed = false;
  return {
    dest: target,
    dir,
    async commit() {
      if (!(await isAbsentOrEmptyDir(target))) {
        throw new OwleryError('INVALID_ARGUMENT', `${target} appeared while converting and is not empty; the package was not moved there`, { path: target });
      }
      try {
        await rmdir(target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      await rename(dir, target);
      committed = true;
    },
    async discard() {
      if (!committed) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Size and checksum of each named file in `dir`, in order. */
export async function hashFiles(dir: string, names: readonly string[], opts: HashOptions = {}): Promise<FileEntry[]> {
  const out: FileEntry[] = [];
  for (const n of names) out.push(await fileEntry(dir, n, opts));
  return out;
}

/** Validates and writes `manifest.json` into `dir`. */
export async function writeManifest(dir: string, manifest: PackageManifest): Promise<void> {
  validateManifest(JSON.parse(JSON.stringify(manifest)), MANIFEST_FILE);
  await writeFile(join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
}
