/**
 * The settings service: the only writer of the settings file. Loads it through the shared schema
 * (defaults, validation, migrations in `src-shared/settings.ts`), keeps a `.bak` of the last file
 * that parsed, and recovers from a damaged file instead of failing to start.
 *
 * Loading:
 * 1. no file: defaults (written on the first change);
 * 2. the file parses: it is migrated and coerced (a bad value resets that key only), its text is
 *    kept as `.bak` (only after a successful parse, never after a reset), and a migrated file is
 *    written back in the current version;
 * 3. the file does not parse (truncated, edited badly, not an object): it is moved aside as
 *    `settings.json.corrupt-<time>` (never deleted), then the `.bak` is tried the same way, and
 *    failing that the defaults are written.
 * @see style.md H9 (electron-store data-loss reports)
 */
import {
  DEFAULT_SETTINGS,
  SETTINGS_SCHEMA_VERSION,
  applySettingsPatch,
  migrateSettingsFile,
  settingsPatchSchema,
} from '../../src-shared/settings.ts';
import type { SettingKey, Settings, SettingsFile, SettingsPatch } from '../../src-shared/settings.ts';
import type { SettingsStorage } from './storage.ts';
import { SILENT } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';

/** How the settings were loaded (for a log line and tests). */
export interface SettingsLoadReport {
  /** `file`: read as is; `migrated`; `backup`: the file was unreadable and `.bak` was used; `defaults`. */
  source: 'file' | 'migrated' | 'backup' | 'defaults';
  /** Where an unreadable file was moved, if one was. */
  quarantined: string | null;
  /** Keys dropped or reset to their defaults because they did not validate. */
  rejected: string[];
  /** Version of the file read (when one was read). */
  fromVersion: number | null;
}

/** A change listener: the new settings and the keys that changed. */
export type SettingsListener = (settings: Settings, changed: SettingKey[]) => void;

function parseFile(text: string): ReturnType<typeof migrateSettingsFile> | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return null;
  return migrateSettingsFile(raw);
}

/** Settings for one data folder; see the module comment. */
export class SettingsService {
  private current: Settings;
  private readonly listeners = new Set<SettingsListener>();
  /** How the settings were loaded. */
  readonly loadReport: SettingsLoadReport;

  /** Loads (and, where needed, repairs) the settings in `storage`. */
  constructor(
    private readonly storage: SettingsStorage,
    /** Records listeners that throw. */
    private readonly log: Logger = SILENT,
  ) {
    const { settings, report } = this.load();
    this.current = settings;
    this.loadReport = report;
  }

  /** A copy of every setting. */
  get(): Settings {
    return { ...this.current };
  }

  /** Receives every change. Returns an unsubscribe function. */
  onChange(listener: SettingsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Validates and applies a patch (unknown keys and bad values: `INVALID_ARGUMENT`, nothing
   * applied), writes the file when something changed, and tells listeners. Returns the settings.
   */
  set(patch: SettingsPatch): Settings {
    const clean = settingsPatchSchema.parse(patch, 'settings');
    const { settings, changed } = applySettingsPatch(this.current, clean);
    if (changed.length === 0) return this.get();
    this.storage.write(this.fileOf(settings));
    this.current = settings;
    this.emit(changed);
    return this.get();
  }

  /** Puts every setting back to its default. */
  reset(): Settings {
    return this.set({ ...DEFAULT_SETTINGS });
  }

  private emit(changed: SettingKey[]): void {
    const snapshot = this.get();
    for (const l of this.listeners) {
      try {
        l({ ...snapshot }, [...changed]);
      } catch (err) {
        this.log.error('a settings listener failed', err, { changed });
      }
    }
  }

  private fileOf(settings: Settings): SettingsFile {
    return { schemaVersion: SETTINGS_SCHEMA_VERSION, settings: { ...settings } };
  }

  private load(): { settings: Settings; report: SettingsLoadReport } {
    const text = this.storage.readRaw();
    if (text === null) {
      return { settings: { ...DEFAULT_SETTINGS }, report: { source: 'defaults', quarantined: null, rejected: [], fromVersion: null } };
    }
    const parsed = parseFile(text);
    if (parsed) {
      this.storage.writeBackup(text);
      const migrated = parsed.fromVersion < SETTINGS_SCHEMA_VERSION;
      if (migrated) this.storage.write(this.fileOf(parsed.settings));
      return {
        settings: parsed.settings,
        report: { source: migrated ? 'migrated' : 'file', quarantined: null, rejected: parsed.rejected, fromVersion: parsed.fromVersion },
      };
    }
    const quarantined = this.storage.quarantine();
    const backupText = this.storage.readBackup();
    const fromBackup = backupText === null ? null : parseFile(backupText);
    const settings = fromBackup?.settings ?? { ...DEFAULT_SETTINGS };
    this.storage.write(this.fileOf(settings));
    return {
      settings,
      report: {
        source: fromBackup ? 'backup' : 'defaults',
        quarantined,
        rejected: fromBackup?.rejected ?? [],
        fromVersion: fromBackup?.fromVersion ?? null,
      },
    };
  }
}
