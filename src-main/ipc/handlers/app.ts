/** Handlers of the `app:` and `engine:` channels. */
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** `app:info`, `app:take-opened-photos`, `engine:status`. */
export function appHandlers(services: Services): DomainHandlers<'app' | 'engine'> {
  return {
    'app:info': () => ({ ...services.appInfo, versions: { ...services.appInfo.versions } }),
    'app:take-opened-photos': () => services.openedPhotos.take(),
    'engine:status': () => services.engine.status(),
  };
}
