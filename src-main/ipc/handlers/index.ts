/** The full handler table: one module per domain, merged; the type makes a missing channel a compile error. */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { Services } from '../../services/composition.ts';
import type { CallContext, HandlerTable } from '../dispatch.ts';
import { appHandlers } from './app.ts';
import { chatHandlers } from './chat.ts';
import { conversationHandlers } from './conversations.ts';
import { describeHandlers } from './describe.ts';
import { exportHandlers } from './export.ts';
import { imageHandlers } from './images.ts';
import { modelHandlers } from './models.ts';
import { networkHandlers } from './network.ts';
import { presetHandlers } from './presets.ts';
import { settingsHandlers } from './settings.ts';

/** Every channel's handler over one set of services; a `DB_CORRUPT` answer has the history checked (`store/health.ts`). */
export function createHandlers(services: Services): HandlerTable {
  return noticeCorruption(services, {
    ...appHandlers(services),
    ...conversationHandlers(services),
    ...chatHandlers(services),
    ...presetHandlers(services),
    ...imageHandlers(services),
    ...describeHandlers(services),
    ...modelHandlers(services),
    ...settingsHandlers(services),
    ...networkHandlers(services),
    ...exportHandlers(services),
  });
}

function noticeCorruption(services: Pick<Services, 'health'>, table: HandlerTable): HandlerTable {
  type AnyHandler = (request: unknown, context: CallContext) => unknown;
  const watched = Object.entries(table as Record<string, AnyHandler>).map(([channel, handler]) => [channel, async (request: unknown, context: CallContext) => {
    try {
      return await handler(request, context);
    } catch (err) {
      if (err instanceof OwleryError && err.code === 'DB_CORRUPT') services.health?.noticeCorrupt();
      throw err;
    }
  }]);
  return Object.fromEntries(watched) as HandlerTable;
}
