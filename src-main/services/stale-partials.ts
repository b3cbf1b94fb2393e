/**
 * Start-up clean-up of what killed processes left in the data folder (a conversion, pull or
 * export cut short by SIGKILL, a crash or a power cut cannot clean up after itself):
 *
 * | where | what | removed when |
 * | --- | --- | --- |
 * | `models/` | `.staging-<task>/` (imports and pulls converting), `.deleting-<id>-…/` | always: the services hold the data-folder lock, so no other instance is using them |
 * | `models/` | `.<name>.partial-<pid>-…/` (a converter's staging folder) | its process is gone |
 * | `cache/prepacked/` | `.building-<key>-<pid>/` | its process is gone |
 * | `images/<shard>/`, the data folder | `….<pid>-<hex>.tmp`, `settings.json.<pid>.tmp` | its process is gone |
 * | the temporary folder | `owlery-inflate-<pid>-…/` (unpacked `.bin` storages) | its process is gone |
 *
 * Downloads (`downloads/…/*.part`) are kept on purpose: a pull resumes them. Exports' temporary
 * files sit next to the file exported and are removed by the next export into that folder
 * (`export/files.ts`).
 */
import { readdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_STAGING, removeStale } from '../../models/package/stale.ts';

const TASK_FOLDER = /^\.(staging|deleting)-/;
const PREPACKED_BUILD = /^\.building-.+-(\d+)$/;
const TEMP_FILE = /\.(\d+)(?:-[0-9a-f]{8})?\.tmp$/;
const INFLATE_SPILL = /^owlery-inflate-(\d+)-/;

/**
 * Removes the leftovers listed in the module comment; returns their paths. Call it holding the
 * data-folder lock, before any task starts: the task folders are listed before it returns (a task
 * started afterwards is never touched), the rest is removed in the background.
 */
export function removeStalePartials(dataDir: string, tempDir: string = tmpdir()): Promise<string[]> {
  const models = join(dataDir, 'models');
  let tasks: string[] = [];
  try {
    tasks = readdirSync(models).filter((n) => TASK_FOLDER.test(n));
  } catch {
    // no models folder yet
  }
  return removeRest(dataDir, models, tasks, tempDir);
}

async function removeRest(dataDir: string, models: string, tasks: readonly string[], tempDir: string): Promise<string[]> {
  const removed: string[] = [];
  const under = (dir: string, names: string[]): void => {
    for (const n of names) removed.push(join(dir, n));
  };
  for (const name of tasks) {
    await rm(join(models, name), { recursive: true, force: true }).then(() => removed.push(join(models, name)), () => {});
  }
  under(models, await removeStale(models, PACKAGE_STAGING));
  const prepacked = join(dataDir, 'cache', 'prepacked');
  under(prepacked, await removeStale(prepacked, PREPACKED_BUILD));
  under(dataDir, await removeStale(dataDir, TEMP_FILE));
  const images = join(dataDir, 'images');
  for (const shard of await readdir(images).catch(() => [] as string[])) under(join(images, shard), await removeStale(join(images, shard), TEMP_FILE));
  under(tempDir, await removeStale(tempDir, INFLATE_SPILL));
  return removed;
}
