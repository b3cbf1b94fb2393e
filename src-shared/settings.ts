/**
 * User settings: the schema, defaults, validation and migrations, shared by the main process
 * (the only writer; `src-main/settings/`), the web harness and the renderer (which reads and
 * patches them through IPC only).
 *
 * The file on disk is `{ schemaVersion, settings }`. Reading never trusts it: an unknown or
 * out-of-range value falls back to its default (one bad key does not reset the rest), a file
 * written by an older version is migrated step by step, and a file from a newer version is read
 * as far as it is understood (unknown keys dropped) without being downgraded on disk until the
 * user changes something.
 * @see docs/design.md, "Storage"; style.md H9
 */
import { ASPECT_MODES, EXECUTION_PROVIDERS } from './engine.ts';
import type { AspectMode, ExecutionProviderName, SamplingOptions } from './engine.ts';
import { OwleryError } from './errors.ts';
import { v } from './validate.ts';
import type { Schema } from './validate.ts';

/** Colour theme; `system` follows the OS. */
export type Theme = 'light' | 'dark' | 'system';
/** Every {@link Theme}. */
export const THEMES: readonly Theme[] = ['light', 'dark', 'system'];

/** Every user setting. Flat, so a patch is a plain partial object and change events list keys. */
export interface Settings {
  /** Id of the model package to load at start and for new conversations; `null`: none chosen. */
  activeModelId: string | null;
  /** Execution provider asked for; `auto` tries the platform's GPU providers, then the CPU. */
  executionProvider: ExecutionProviderName;
  /** Intra-op CPU threads for the engine; 0 lets onnxruntime choose. */
  threads: number;
  /**
   * Keep the active model's decoder in the form the processor runs it (packed for this CPU), so it
   * loads and answers faster on the CPU; costs about twice the decoder's size on disk. Off by default.
   */
  fasterStart: boolean;
  /** Softmax temperature; 0 means greedy decoding. */
  temperature: number;
  /** Nucleus sampling threshold; 1 disables. */
  topP: number;
  /** Keep the k most likely tokens; 0 disables. */
  topK: number;
  /** HF-style repetition penalty; 1 disables. */
  repetitionPenalty: number;
  /** Upper bound on tokens per answer. */
  maxNewTokens: number;
  /** How non-square photos become the model's square input. */
  aspectMode: AspectMode;
  theme: Theme;
  /** Size of the chat's text (messages and the message box), in CSS pixels; the rest of the window keeps its size. */
  fontSize: number;
  /** The conversations sidebar is collapsed to a narrow rail (wide windows; remembered). */
  sidebarCollapsed: boolean;
  /** Never touch the network (model pulls are refused). On by default: Owlery is an offline app. */
  offlineMode: boolean;
}

/** Name of one setting. */
export type SettingKey = keyof Settings;

/** A change to some settings. */
export type SettingsPatch = Partial<Settings>;

/** The version of the settings file this code writes. */
export const SETTINGS_SCHEMA_VERSION = 1;

/** Model package ids: what the converter derives (letters, digits, `.`, `_`, `-`), at most 128 chars. */
export const MODEL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Bounds of the numeric settings (inclusive). */
export const SETTING_BOUNDS = {
  threads: { min: 0, max: 256 },
  temperature: { min: 0, max: 2 },
  topP: { min: 0, max: 1 },
  topK: { min: 0, max: 1000 },
  repetitionPenalty: { min: 1, max: 2 },
  maxNewTokens: { min: 1, max: 8192 },
  fontSize: { min: 10, max: 32 },
} as const;

/** Default settings (the official demo's sampling: temperature 0.7, 512 new tokens). */
export const DEFAULT_SETTINGS: Readonly<Settings> = Object.freeze({
  activeModelId: null,
  executionProvider: 'auto',
  threads: 0,
  fasterStart: false,
  temperature: 0.7,
  topP: 1,
  topK: 0,
  repetitionPenalty: 1,
  maxNewTokens: 512,
  aspectMode: 'resize',
  theme: 'system',
  fontSize: 15,
  sidebarCollapsed: false,
  offlineMode: true,
});

/** One schema per setting. */
export const SETTING_SCHEMAS: { readonly [K in SettingKey]: Schema<Settings[K]> } = {
  activeModelId: v.nullable(v.string({ pattern: MODEL_ID_PATTERN, patternName: 'a model package id' })),
  executionProvider: v.enum(EXECUTION_PROVIDERS),
  threads: v.int(SETTING_BOUNDS.threads),
  fasterStart: v.boolean(),
  temperature: v.number(SETTING_BOUNDS.temperature),
  topP: v.number(SETTING_BOUNDS.topP),
  topK: v.int(SETTING_BOUNDS.topK),
  repetitionPenalty: v.number(SETTING_BOUNDS.repetitionPenalty),
  maxNewTokens: v.int(SETTING_BOUNDS.maxNewTokens),
  aspectMode: v.enum(ASPECT_MODES),
  theme: v.enum(THEMES),
  fontSize: v.int(SETTING_BOUNDS.fontSize),
  sidebarCollapsed: v.boolean(),
  offlineMode: v.boolean(),
};

/** Every setting key, in a stable order. */
export const SETTING_KEYS = Object.keys(DEFAULT_SETTINGS) as SettingKey[];

/** Validates a patch strictly: unknown keys and bad values are `INVALID_ARGUMENT`. */
export const settingsPatchSchema: Schema<SettingsPatch> = {
  description: 'a settings patch',
  parse(value, path = 'value') {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new OwleryError('INVALID_ARGUMENT', `${path}: expected an object of settings`, { path });
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(value)) {
      if (!Object.hasOwn(SETTING_SCHEMAS, k)) {
        throw new OwleryError('INVALID_ARGUMENT', `${path}.${k}: is not a setting`, { path: `${path}.${k}` });
      }
      if (x === undefined) continue;
      out[k] = SETTING_SCHEMAS[k as SettingKey].parse(x, `${path}.${k}`);
    }
    return out as SettingsPatch;
  },
};

/**
 * Reads settings leniently: each known key that validates is kept, anything else takes its
 * default. Returns the settings and the keys that were replaced by defaults (for a log line).
 */
export function coerceSettings(raw: unknown): { settings: Settings; rejected: string[] } {
  const settings: Settings = { ...DEFAULT_SETTINGS };
  const rejected: string[] = [];
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return { settings, rejected: ['(not an object)'] };
  const src = raw as Record<string, unknown>;
  for (const key of SETTING_KEYS) {
    if (!Object.hasOwn(src, key)) continue;
    try {
      (settings as unknown as Record<string, unknown>)[key] = SETTING_SCHEMAS[key].parse(src[key], key);
    } catch {
      rejected.push(key);
    }
  }
  for (const key of Object.keys(src)) if (!Object.hasOwn(SETTING_SCHEMAS, key)) rejected.push(key);
  return { settings, rejected };
}

/** Applies a validated patch; returns the new settings and the keys whose value changed. */
export function applySettingsPatch(current: Settings, patch: SettingsPatch): { settings: Settings; changed: SettingKey[] } {
  const settings = { ...current };
  const changed: SettingKey[] = [];
  for (const key of SETTING_KEYS) {
    if (!Object.hasOwn(patch, key) || patch[key] === undefined) continue;
    if (!Object.is(settings[key], patch[key])) {
      (settings as unknown as Record<string, unknown>)[key] = patch[key];
      changed.push(key);
    }
  }
  return { settings, changed };
}

/** A step that turns the raw settings object of version N into version N + 1. */
export type SettingsMigration = (old: Record<string, unknown>) => Record<string, unknown>;

/**
 * Migrations of the raw settings object, keyed by the version they upgrade *from*. Keep them pure
 * and forgiving: they run on files users may have edited by hand. None yet: version 1 is the
 * first released schema. Add `1: (old) => ({ ...old, renamed: old.before })` and bump
 * {@link SETTINGS_SCHEMA_VERSION} when a setting changes shape.
 */
export const SETTINGS_MIGRATIONS: Readonly<Record<number, SettingsMigration>> = {};

/** The on-disk form of the settings file. */
export interface SettingsFile {
  schemaVersion: number;
  settings: Record<string, unknown>;
}

/**
 * Brings a parsed settings file to the current schema. A file without a version is read as
 * version 1; a file from a newer version is read as far as it is understood. Returns the settings
 * (coerced), the version the file had, and the keys that were dropped or reset to defaults.
 */
export function migrateSettingsFile(
  raw: unknown,
  migrations: Readonly<Record<number, SettingsMigration>> = SETTINGS_MIGRATIONS,
  targetVersion = SETTINGS_SCHEMA_VERSION,
): { settings: Settings; fromVersion: number; rejected: string[] } {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new OwleryError('INVALID_ARGUMENT', 'the settings file does not hold an object');
  }
  const file = raw as Partial<SettingsFile>;
  const fromVersion = typeof file.schemaVersion === 'number' && Number.isSafeInteger(file.schemaVersion) && file.schemaVersion >= 1 ? file.schemaVersion : 1;
  let body: Record<string, unknown> =
    file.settings && typeof file.settings === 'object' && !Array.isArray(file.settings) ? { ...file.settings } : {};
  for (let ver = fromVersion; ver < targetVersion; ver++) {
    const step = migrations[ver];
    if (step) body = step(body);
  }
  const { settings, rejected } = coerceSettings(body);
  return { settings, fromVersion, rejected };
}

/** Sampling options for the engine from the settings. */
export function samplingFromSettings(s: Settings): SamplingOptions {
  return {
    greedy: s.temperature === 0,
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    repetitionPenalty: s.repetitionPenalty,
    maxNewTokens: s.maxNewTokens,
  };
}
