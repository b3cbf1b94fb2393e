/**
 * Wires the dispatch table to Electron's `ipcMain` (or anything shaped like it): one
 * `handle(channel)` per contract channel, the sender frame's URL checked on every call, and
 * events forwarded to the window. Takes structural types, not Electron's, so it also runs (and is
 * tested) in plain Node.
 */
import { CHANNELS, EVENT_CHANNEL } from '../../src-shared/ipc/index.ts';
import type { OwleryEvent } from '../../src-shared/ipc/index.ts';
import type { Services } from '../services/composition.ts';
import { createDispatcher } from './dispatch.ts';
import type { Dispatch, DispatchOptions, HandlerTable } from './dispatch.ts';
import { createHandlers } from './handlers/index.ts';

/** The part of an invoke event the wiring reads (Electron's `IpcMainInvokeEvent` fits). */
export interface InvokeEventLike {
  readonly senderFrame?: { readonly url: string } | null;
}

/** The part of `ipcMain` the wiring uses. */
export interface IpcMainLike {
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void;
  removeHandler(channel: string): void;
}

/** Options of {@link registerHandlers}. */
export interface RegisterOptions extends DispatchOptions {
  /** A handler table to use instead of the services' (for tests of the wiring itself). */
  handlers?: HandlerTable;
}

/** What {@link registerHandlers} set up. */
export interface Registration {
  /** The dispatch function the handlers call (the harness uses the same one). */
  readonly dispatch: Dispatch;
  /** Removes every handler. */
  dispose(): void;
}

function frameUrl(event: InvokeEventLike): string | null {
  try {
    return event.senderFrame?.url ?? null;
  } catch {
    // A frame destroyed mid-call throws on access.
    return null;
  }
}

/** Registers one `ipcMain.handle` per contract channel. */
export function registerHandlers(ipcMain: IpcMainLike, services: Services, opts: RegisterOptions): Registration {
  const dispatch = createDispatcher(opts.handlers ?? createHandlers(services), opts);
  for (const channel of CHANNELS) {
    ipcMain.handle(channel, (event, payload, ...rest) => dispatch(channel, payload, { url: frameUrl(event) }, rest.length));
  }
  return {
    dispatch,
    dispose() {
      for (const channel of CHANNELS) ipcMain.removeHandler(channel);
    },
  };
}

/** The part of `webContents` events are sent through. */
export interface EventTargetLike {
  send(channel: string, ...args: unknown[]): void;
  isDestroyed(): boolean;
}

/** Forwards every service event to a window on {@link EVENT_CHANNEL}. Returns an unsubscribe function. */
export function forwardEvents(services: Pick<Services, 'events'>, target: EventTargetLike): () => void {
  return services.events.subscribe((event: OwleryEvent) => {
    if (!target.isDestroyed()) target.send(EVENT_CHANNEL, event);
  });
}
