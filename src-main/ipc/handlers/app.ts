/** Handlers of the `app:` and `engine:` channels. */
import type { Services } from '../../services/services.ts';
import type { HandlerTable } from '../dispatch.ts';

/** `app:info`, `engine:status`. */
export function appHandlers(services: Services): Pick<HandlerTable, 'app:info' | 'engine:status'> {
  return {
    'app:info': () => ({ ...services.appInfo, versions: { ...services.appInfo.versions } }),
    'engine:status': () => services.engineController.status(),
  };
}
