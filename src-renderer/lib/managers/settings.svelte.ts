/**
 * State of the Settings screen: the saved settings (main is the only writer), what the user is
 * typing in each number field, a message per field when a value is not valid, and which setting
 * was saved last (the visible confirmation).
 *
 * Every value is checked with the shared schema (`SETTING_SCHEMAS` in `src-shared/settings.ts`)
 * before it is sent; an invalid value shows its message next to the field and is never sent.
 * Changes made elsewhere (another window, main) arrive as `settings:changed` events.
 * @see docs/style.md H9 (one writer, shared schema), H13
 */
import type { EngineStatus, OwleryClient } from '../../../src-shared/ipc/index.ts';
import { SETTING_BOUNDS, SETTING_SCHEMAS } from '../../../src-shared/settings.ts';
import type { SettingKey, Settings } from '../../../src-shared/settings.ts';
import { describeError, isCancellation } from '../components/models/format.ts';
import { NUMERIC_KEYS, SETTING_TEXT } from '../components/settings/fields.ts';
import type { NumericSettingKey } from '../components/settings/fields.ts';

/** The part of the client the Settings screen uses. */
export type SettingsClient = Pick<OwleryClient, 'settings' | 'engine'>;

/** The outcome of checking a typed value: the value to send, or why it cannot be. */
export type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

function isInteger(key: SettingKey): boolean {
  return SETTING_SCHEMAS[key].description === 'an integer';
}

function range(key: NumericSettingKey): string {
  const { min, max } = SETTING_BOUNDS[key];
  return `from ${min} to ${max}`;
}

/**
 * Checks what the user typed into a number field with the shared schema. Accepts a comma as the
 * decimal separator. Returns the number, or a message in plain words.
 */
export function checkNumber(key: NumericSettingKey, raw: string): Checked<number> {
  const text = raw.trim().replace(',', '.');
  const whole = isInteger(key);
  const ask = `Enter ${whole ? 'a whole number' : 'a number'} ${range(key)}.`;
  if (text === '') return { ok: false, error: ask };
  const value = Number(text);
  if (!Number.isFinite(value) || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(text)) {
    return { ok: false, error: `“${raw.trim()}” is not a number. ${ask}` };
  }
  try {
    return { ok: true, value: SETTING_SCHEMAS[key].parse(value, SETTING_TEXT[key].label) };
  } catch {
    if (whole && !Number.isInteger(value)) return { ok: false, error: `Use a whole number ${range(key)}.` };
    return { ok: false, error: `${value} is out of range. ${ask}` };
  }
}

/** Checks any setting's value with the shared schema. */
export function checkValue<K extends SettingKey>(key: K, value: unknown): Checked<Settings[K]> {
  try {
    return { ok: true, value: SETTING_SCHEMAS[key].parse(value, SETTING_TEXT[key].label) };
  } catch (err) {
    return { ok: false, error: describeError(err) };
  }
}

function emptyDrafts(): Record<NumericSettingKey, string> {
  return Object.fromEntries(NUMERIC_KEYS.map((k) => [k, ''])) as Record<NumericSettingKey, string>;
}

/** Manages the Settings screen; see the module comment. */
export class SettingsManager {
  /** The settings as main saved them; `null` until loaded. */
  settings = $state<Settings | null>(null);
  /** What each number field shows (the user's text while editing). */
  drafts = $state<Record<NumericSettingKey, string>>(emptyDrafts());
  /** A message per setting whose typed value is not valid or was refused. */
  errors = $state<Partial<Record<SettingKey, string>>>({});
  /** The setting being saved now, if any. */
  saving = $state<SettingKey | null>(null);
  /** The last setting saved, with a counter so repeated saves of one key are announced again. */
  saved = $state<{ key: SettingKey; count: number } | null>(null);
  /** The engine's status: which execution provider runs the model and why others do not. */
  engine = $state<EngineStatus | null>(null);
  /** A failure to load or reset, in plain words. */
  error = $state<string | null>(null);

  private readonly unsubscribers: (() => void)[] = [];
  private saves = 0;
  private readonly inFlight = new Map<SettingKey, unknown>();

  constructor(private readonly client: SettingsClient) {}

  /** Loads the settings and the engine status and follows their changes. */
  async start(): Promise<void> {
    if (this.unsubscribers.length === 0) {
      this.unsubscribers.push(
        this.client.settings.onChange(({ settings, changed }) => this.receive(settings, changed)),
        this.client.engine.onStatus((status) => {
          this.engine = status;
        }),
      );
    }
    try {
      const [settings, engine] = await Promise.all([this.client.settings.get(), this.client.engine.status()]);
      this.engine = engine;
      this.receive(settings, NUMERIC_KEYS);
    } catch (err) {
      if (!isCancellation(err)) this.error = describeError(err);
    }
  }

  /** Stops following changes. */
  dispose(): void {
    for (const u of this.unsubscribers.splice(0)) u();
  }

  /** The user typed into a number field: keep the text and say at once whether it is valid. */
  input(key: NumericSettingKey, raw: string): void {
    this.drafts[key] = raw;
    const checked = checkNumber(key, raw);
    this.setError(key, checked.ok ? null : checked.error);
  }

  /**
   * The user finished editing a number field (change, blur or Enter): save it when it is valid
   * and different; an invalid value keeps its message and is not sent. Resolves to whether the
   * value is now saved.
   */
  async commit(key: NumericSettingKey, raw: string = this.drafts[key]): Promise<boolean> {
    this.drafts[key] = raw;
    const checked = checkNumber(key, raw);
    if (!checked.ok) {
      this.setError(key, checked.error);
      return false;
    }
    return this.save(key, checked.value);
  }

  /** The user chose a value (select, radio, checkbox): check it and save it. */
  async choose<K extends SettingKey>(key: K, value: Settings[K]): Promise<boolean> {
    const checked = checkValue(key, value);
    if (!checked.ok) {
      this.setError(key, checked.error);
      return false;
    }
    return this.save(key, checked.value);
  }

  /** Puts every setting back to its default (keeps the active model). */
  async resetAll(): Promise<void> {
    this.error = null;
    try {
      const active = this.settings?.activeModelId ?? null;
      let next = await this.client.settings.reset();
      if (active !== null && next.activeModelId !== active) next = await this.client.settings.set({ patch: { activeModelId: active } });
      this.errors = {};
      this.receive(next, NUMERIC_KEYS);
      this.saved = null;
    } catch (err) {
      if (!isCancellation(err)) this.error = describeError(err);
    }
  }

  private async save<K extends SettingKey>(key: K, value: Settings[K]): Promise<boolean> {
    if (this.settings && Object.is(this.settings[key], value)) {
      this.setError(key, null);
      if (NUMERIC_KEYS.includes(key as NumericSettingKey)) this.drafts[key as NumericSettingKey] = String(value);
      return true;
    }
    if (this.inFlight.has(key) && Object.is(this.inFlight.get(key), value)) return true;
    this.inFlight.set(key, value);
    this.saving = key;
    try {
      const next = await this.client.settings.set({ patch: { [key]: value } });
      this.setError(key, null);
      this.receive(next, [key]);
      this.saved = { key, count: ++this.saves };
      return true;
    } catch (err) {
      this.setError(key, describeError(err));
      return false;
    } finally {
      this.inFlight.delete(key);
      if (this.saving === key) this.saving = null;
    }
  }

  /** New saved settings: number fields follow them unless the user is in the middle of an invalid edit. */
  private receive(settings: Settings, changed: readonly SettingKey[]): void {
    this.settings = settings;
    for (const key of changed) {
      if (!NUMERIC_KEYS.includes(key as NumericSettingKey)) continue;
      const k = key as NumericSettingKey;
      if (this.errors[k] === undefined || this.drafts[k] === '') this.drafts[k] = String(settings[k]);
    }
  }

  private setError(key: SettingKey, message: string | null): void {
    if (message === null) {
      if (this.errors[key] === undefined) return;
      const { [key]: _gone, ...rest } = this.errors;
      this.errors = rest;
    } else {
      this.errors = { ...this.errors, [key]: message };
    }
  }
}

let shared: SettingsManager | null = null;

/** The app's settings manager, created (and started) on first use over `client`. */
export function getSettingsManager(client: SettingsClient): SettingsManager {
  if (!shared) {
    shared = new SettingsManager(client);
    void shared.start();
  }
  return shared;
}
