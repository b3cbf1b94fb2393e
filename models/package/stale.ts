/**
 * Clean-up of what killed processes leave behind: staging folders and temporary files whose names
 * carry the id of the process that made them (`.<name>.partial-<pid>-<hex>` next to a package,
 * `owlery-inflate-<pid>-…` in the temporary folder, `.<name>.<pid>-<hex>.tmp` next to an export).
 * An entry is removed only when no process with its id is running; one of a live process (another
 * conversion under way) is left alone. Best effort: what cannot be removed stays for next time.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** A package's staging folder (`models/package/write.ts`). */
export const PACKAGE_STAGING = /^\..+\.partial-(\d+)-[0-9a-f]{8}$/;

/** Whether a process with this id runs on this machine (a process of another user counts). */
export function processAlive(pid: number): boolean {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the entries of `dir` whose names match `pattern` (its first group is the process id)
 * when that process is gone. Returns the names removed; a missing `dir` is nothing to do.
 */
export async function removeStale(dir: string, pattern: RegExp): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      await rm(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // In use or not ours to remove: left for next time.
    }
  }
  return removed;
}
