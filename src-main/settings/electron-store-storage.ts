/**
 * Settings through electron-store, for the Electron app only (electron-store loads `electron` at
 * run time; the CLI, tests and web harness use `JsonFileSettingsStorage`).
 *
 * electron-store parses the file as soon as it is constructed and, with `clearInvalidConfig`,
 * would silently empty a damaged file. So the store is created lazily, after `SettingsService` has
 * read the file itself (through the same code as the JSON storage) and moved a damaged one aside;
 * validation, defaults and migrations stay in `src-shared/settings.ts`, not in electron-store's
 * JSON-schema and semver-migration options. electron-store contributes its atomic writes.
 */
import ElectronStore from 'electron-store';
import { join } from 'node:path';
import type { SettingsFile } from '../../src-shared/settings.ts';
import { quarantineFile, readTextOrNull, writeFileAtomic } from './json-file-storage.ts';
import type { SettingsStorage } from './storage.ts';

/** Settings as `<dir>/settings.json` written by electron-store. */
export class ElectronStoreSettingsStorage implements SettingsStorage {
  readonly path: string;
  private readonly backupPath: string;
  private store: ElectronStore<SettingsFile & Record<string, unknown>> | undefined;

  /** Settings in `dir` (the app passes `app.getPath('userData')`). */
  constructor(private readonly dir: string) {
    this.path = join(dir, 'settings.json');
    this.backupPath = `${this.path}.bak`;
  }

  readRaw(): string | null {
    return readTextOrNull(this.path);
  }

  write(file: SettingsFile): void {
    this.store ??= new ElectronStore<SettingsFile & Record<string, unknown>>({
      cwd: this.dir,
      name: 'settings',
      clearInvalidConfig: false,
      accessPropertiesByDotNotation: false,
      watch: false,
    });
    this.store.store = { ...file };
  }

  readBackup(): string | null {
    return readTextOrNull(this.backupPath);
  }

  writeBackup(text: string): void {
    writeFileAtomic(this.backupPath, text);
  }

  quarantine(): string | null {
    this.store = undefined;
    return quarantineFile(this.path);
  }
}
