/** The full handler table: one module per domain, merged; the type makes a missing channel a compile error. */
import type { Services } from '../../services/composition.ts';
import type { HandlerTable } from '../dispatch.ts';
import { appHandlers } from './app.ts';
import { chatHandlers } from './chat.ts';
import { conversationHandlers } from './conversations.ts';
import { exportHandlers } from './export.ts';
import { imageHandlers } from './images.ts';
import { modelHandlers } from './models.ts';
import { networkHandlers } from './network.ts';
import { presetHandlers } from './presets.ts';
import { settingsHandlers } from './settings.ts';

/** Every channel's handler over one set of services. */
export function createHandlers(services: Services): HandlerTable {
  return {
    ...appHandlers(services),
    ...conversationHandlers(services),
    ...chatHandlers(services),
    ...presetHandlers(services),
    ...imageHandlers(services),
    ...modelHandlers(services),
    ...settingsHandlers(services),
    ...networkHandlers(services),
    ...exportHandlers(services),
  };
}
