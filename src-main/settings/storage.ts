/**
 * Where the settings file lives: a small interface with two implementations, so the app uses
 * electron-store (`electron-store-storage.ts`, needs Electron at run time) while the CLI, the tests
 * and the web harness use a plain JSON file (`json-file-storage.ts`). Both go through the same
 * schema, validation, migration and recovery code (`settings-service.ts`).
 */
import type { SettingsFile } from '../../src-shared/settings.ts';

/** Raw access to the settings file and its companions (`.bak`, quarantined copies). */
export interface SettingsStorage {
  /** The settings file's path (for messages and logs). */
  readonly path: string;
  /** The file's text, or `null` when there is none. */
  readRaw(): string | null;
  /** Replaces the file (atomically: a crash leaves the old or the new file, never half of one). */
  write(file: SettingsFile): void;
  /** The last known-good copy's text, or `null`. */
  readBackup(): string | null;
  /** Keeps `text` (which just parsed and validated) as the known-good copy. */
  writeBackup(text: string): void;
  /** Moves the current (unreadable) file aside, keeping it for the user; returns where it went. */
  quarantine(): string | null;
}
