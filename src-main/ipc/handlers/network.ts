/** Handlers of the `network:` channels. */
import type { Services } from '../../services/composition.ts';
import type { HandlerTable } from '../dispatch.ts';

/** `network:log`: the requests this session made or blocked, and whether offline mode is on. */
export function networkHandlers(services: Services): Pick<HandlerTable, 'network:log'> {
  return {
    'network:log': (req) => services.network.page(req.limit),
  };
}
