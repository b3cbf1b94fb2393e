/** Handlers of the `presets:` channels: named chat options, kept in the history database. */
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** `presets:list`, `presets:save`, `presets:delete`. */
export function presetHandlers(services: Services): DomainHandlers<'presets'> {
  const { store } = services;
  return {
    'presets:list': () => store.listPresets(),
    'presets:save': (req) => store.savePreset({ id: req.id, name: req.name, ...req.options }),
    'presets:delete': (req) => {
      store.deletePreset(req.id);
      return null;
    },
  };
}
