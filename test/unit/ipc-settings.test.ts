/**
 * Settings served over IPC: the shared schema (defaults, validation, migrations) and the settings
 * service on a real JSON file (load, change, persist, `.bak`, recovery from a damaged file).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import {
  DEFAULT_SETTINGS,
  SETTINGS_SCHEMA_VERSION,
  coerceSettings,
  migrateSettingsFile,
  settingsPatchSchema,
} from '../../src-shared/settings.ts';
import { JsonFileSettingsStorage } from '../../src-main/settings/json-file-storage.ts';
import { SettingsService } from '../../src-main/settings/settings-service.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'owlery-settings-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const file = () => join(dir, 'settings.json');
const open = () => new SettingsService(new JsonFileSettingsStorage(dir));

describe('settings schema', () => {
  it('the defaults validate', () => {
    expect(coerceSettings({ ...DEFAULT_SETTINGS })).toEqual({ settings: DEFAULT_SETTINGS, rejected: [] });
    expect(DEFAULT_SETTINGS.offlineMode).toBe(true);
  });

  it('a bad value resets that key only; unknown keys are dropped', () => {
    const { settings, rejected } = coerceSettings({ temperature: 'hot', theme: 'dark', bogus: 1 });
    expect(settings).toEqual({ ...DEFAULT_SETTINGS, theme: 'dark' });
    expect(rejected.sort()).toEqual(['bogus', 'temperature']);
  });

  it('patches are strict', () => {
    expect(() => settingsPatchSchema.parse({ topK: -1 })).toThrow(OwleryError);
    expect(() => settingsPatchSchema.parse({ executionProvider: 'tpu' })).toThrow(OwleryError);
    expect(() => settingsPatchSchema.parse({ activeModelId: '../x' })).toThrow(OwleryError);
    expect(settingsPatchSchema.parse({ activeModelId: null, fontSize: 20 })).toEqual({ activeModelId: null, fontSize: 20 });
  });

  it('migrations run step by step from the file version', () => {
    const migrations = {
      1: (o: Record<string, unknown>) => ({ ...o, theme: o.colour, colour: undefined }),
      2: (o: Record<string, unknown>) => ({ ...o, fontSize: Number(o.fontSize) + 1 }),
    };
    const out = migrateSettingsFile({ schemaVersion: 1, settings: { colour: 'dark', fontSize: 14 } }, migrations, 3);
    expect(out.fromVersion).toBe(1);
    expect(out.settings.theme).toBe('dark');
    expect(out.settings.fontSize).toBe(15);
    // A file without a version is version 1; a newer file is read as far as it is understood.
    expect(migrateSettingsFile({ settings: { colour: 'light' } }, migrations, 2).settings.theme).toBe('light');
    expect(migrateSettingsFile({ schemaVersion: 99, settings: { theme: 'dark', future: true } }).settings.theme).toBe('dark');
  });
});

describe('SettingsService on a JSON file', () => {
  it('starts from defaults without writing, then persists changes', () => {
    const s = open();
    expect(s.get()).toEqual(DEFAULT_SETTINGS);
    expect(s.loadReport.source).toBe('defaults');
    expect(existsSync(file())).toBe(false);
    const seen: string[][] = [];
    s.onChange((_, changed) => seen.push(changed));
    s.set({ theme: 'dark', temperature: 0.2 });
    s.set({ theme: 'dark' });
    expect(seen).toEqual([['temperature', 'theme']]);
    const onDisk = JSON.parse(readFileSync(file(), 'utf8'));
    expect(onDisk.schemaVersion).toBe(SETTINGS_SCHEMA_VERSION);
    expect(onDisk.settings.theme).toBe('dark');
    expect(open().get()).toMatchObject({ theme: 'dark', temperature: 0.2 });
  });

  it('refuses a bad patch without applying any of it', () => {
    const s = open();
    expect(() => s.set({ theme: 'dark', temperature: 5 })).toThrow(OwleryError);
    expect(s.get().theme).toBe('system');
  });

  it('keeps a .bak after a successful parse, never after a reset', () => {
    open().set({ fontSize: 18 });
    const good = readFileSync(file(), 'utf8');
    open();
    expect(readFileSync(`${file()}.bak`, 'utf8')).toBe(good);

    writeFileSync(file(), '{"schemaVersion":1,"settings":{"fontSize":');
    const s = open();
    expect(s.loadReport.source).toBe('backup');
    expect(s.get().fontSize).toBe(18);
    expect(readFileSync(`${file()}.bak`, 'utf8')).toBe(good);
  });

  it('moves a damaged file aside and falls back to defaults when there is no backup', () => {
    writeFileSync(file(), '\u0000\u0000 not json');
    const s = open();
    expect(s.get()).toEqual(DEFAULT_SETTINGS);
    expect(s.loadReport.source).toBe('defaults');
    const aside = s.loadReport.quarantined!;
    expect(readFileSync(aside, 'utf8')).toBe('\u0000\u0000 not json');
    expect(readdirSync(dir).filter((f) => f.includes('.corrupt-'))).toHaveLength(1);
    expect(JSON.parse(readFileSync(file(), 'utf8')).settings).toEqual(DEFAULT_SETTINGS);
    expect(existsSync(`${file()}.bak`)).toBe(false);
  });

  it('treats JSON that is not an object as damaged', () => {
    writeFileSync(file(), '[1,2,3]');
    const s = open();
    expect(s.loadReport.quarantined).not.toBeNull();
    expect(s.get()).toEqual(DEFAULT_SETTINGS);
  });

  it('reset goes back to the defaults and reports the keys that changed', () => {
    const s = open();
    s.set({ theme: 'light', offlineMode: false });
    let changed: string[] = [];
    s.onChange((_, c) => (changed = c));
    expect(s.reset()).toEqual(DEFAULT_SETTINGS);
    expect(changed.sort()).toEqual(['offlineMode', 'theme']);
  });
});
