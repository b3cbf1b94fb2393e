/** Handlers of the `settings:` channels (main is the only writer; changes go out as events). */
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** `settings:get`, `settings:set`, `settings:reset`. */
export function settingsHandlers(services: Services): DomainHandlers<'settings'> {
  return {
    'settings:get': () => services.settings.get(),
    'settings:set': (req) => services.settings.set(req.patch),
    'settings:reset': () => services.settings.reset(),
  };
}
