/** Handlers of the `network:` channels. */
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** `network:log`: the requests this session made or blocked, and whether offline mode is on. */
export function networkHandlers(services: Services): DomainHandlers<'network'> {
  return {
    'network:log': (req) => services.network.page(req.limit),
  };
}
