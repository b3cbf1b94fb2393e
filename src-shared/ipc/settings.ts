/** The `settings:` domain: main is the only writer; every change goes out as `settings:changed`. */
import { settingsPatchSchema } from '../settings.ts';
import type { SettingKey, Settings } from '../settings.ts';
import { v } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';

/** Settings changed (by this window, another window, or main itself). */
export interface SettingsChanged {
  settings: Settings;
  changed: SettingKey[];
}

/** `window.owlery.settings`. */
export const settingsApi = defineDomain({
  get: invoke(v.none()).returns<Settings>(),
  /** Applies a partial change; returns every setting. */
  set: invoke(v.object({ patch: settingsPatchSchema })).returns<Settings>(),
  reset: invoke(v.none()).returns<Settings>(),
  onChange: event('settings:changed').carries<SettingsChanged>(),
});
