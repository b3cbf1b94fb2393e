/** Handlers of the `app:` and `engine:` channels. */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Services } from '../../services/composition.ts';
import { collectDiagnostics } from '../../services/diagnostics.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** The `app:` and `engine:` channels. */
export function appHandlers(services: Services): DomainHandlers<'app' | 'engine'> {
  return {
    'app:info': () => ({ ...services.appInfo, versions: { ...services.appInfo.versions } }),
    'app:take-opened-photos': () => services.openedPhotos.take(),
    'app:diagnostics': async () => ({ text: await collectDiagnostics(services) }),
    'app:open-logs-folder': async () => {
      const dir = join(services.dataDir, 'logs');
      await mkdir(dir, { recursive: true });
      return { opened: await services.dialogs.showFolder(dir) };
    },
    'engine:status': () => services.engine.status(),
    'engine:load': async () => {
      await services.engine.ensureModel();
      return services.engine.status();
    },
    'engine:unload': async () => {
      await services.engine.unload();
      return services.engine.status();
    },
  };
}
