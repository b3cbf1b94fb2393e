/**
 * Settings in a plain JSON file (`<dir>/settings.json`, `.bak` beside it): the implementation the
 * CLI, the tests and the web harness use. Writes go to a temporary file that is flushed and renamed.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, writeSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SettingsFile } from '../../src-shared/settings.ts';
import type { SettingsStorage } from './storage.ts';

/** Reads a file's text, or `null` when it does not exist. */
export function readTextOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Writes `text` to `path` through a flushed temporary file and a rename. */
export function writeFileAtomic(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/** Moves `path` to `<path>.corrupt-<time>`; returns the new path, or `null` when there was no file. */
export function quarantineFile(path: string, now: () => number = Date.now): string | null {
  const aside = `${path}.corrupt-${new Date(now()).toISOString().replace(/[:.]/g, '-')}`;
  try {
    renameSync(path, aside);
    return aside;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Settings as `<dir>/settings.json`. */
export class JsonFileSettingsStorage implements SettingsStorage {
  readonly path: string;
  private readonly backupPath: string;

  /** Settings in `dir` (created on first write). */
  constructor(dir: string, private readonly now: () => number = Date.now) {
    this.path = join(dir, 'settings.json');
    this.backupPath = `${this.path}.bak`;
  }

  readRaw(): string | null {
    return readTextOrNull(this.path);
  }

  write(file: SettingsFile): void {
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`);
  }

  readBackup(): string | null {
    return readTextOrNull(this.backupPath);
  }

  writeBackup(text: string): void {
    writeFileAtomic(this.backupPath, text);
  }

  quarantine(): string | null {
    return quarantineFile(this.path, this.now);
  }
}
