/**
 * The web harness's page client: implements `window.owlery` over a WebSocket to the harness
 * server, with the same `createOwleryApi` the preload uses, so the page sees exactly the API it
 * sees in the app. The server injects it (bundled) into the page before the renderer's scripts.
 *
 * The transport is written against a minimal WebSocket shape, so Node tests drive the very same
 * code with the `ws` package's client.
 */
import { createOwleryApi, EVENTS } from '../../src-shared/ipc/index.ts';
import type { EventName, IpcResult, OwleryApi, OwleryTransport } from '../../src-shared/ipc/index.ts';
import { decode, encode } from './codec.ts';
import type { WireMessage } from './codec.ts';

/** The part of a WebSocket the transport uses (browsers' and `ws`'s both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}

/** Path of the harness's WebSocket endpoint. */
export const HARNESS_SOCKET_PATH = '/__owlery';

const OPEN = 1;

/** An {@link OwleryTransport} over one WebSocket. */
export function createWebSocketTransport(socket: WebSocketLike): OwleryTransport & { readonly pending: number } {
  let nextId = 1;
  const pending = new Map<number, (r: IpcResult<unknown>) => void>();
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const opened = new Promise<void>((resolve, reject) => {
    if (socket.readyState === OPEN) resolve();
    socket.addEventListener('open', () => resolve());
    socket.addEventListener('error', () => reject(new Error('harness connection failed')));
  });
  opened.catch(() => {});
  const lost = (): void => {
    for (const settle of pending.values()) settle({ ok: false, error: { name: 'OwleryError', code: 'INTERNAL', message: 'The connection to Owlery was lost.' } });
    pending.clear();
  };
  socket.addEventListener('close', lost);
  socket.addEventListener('message', (event) => {
    const msg = decode(String(event.data)) as WireMessage;
    if ('event' in msg) {
      for (const l of [...(listeners.get(msg.event.type as EventName) ?? [])]) {
        try {
          l(msg.event.payload);
        } catch (err) {
          console.error(`owlery harness: a ${msg.event.type} listener failed`, err);
        }
      }
    } else {
      pending.get(msg.id)?.(msg.result as IpcResult<unknown>);
      pending.delete(msg.id);
    }
  });
  return {
    get pending() {
      return pending.size;
    },
    async invoke(channel, payload) {
      await opened;
      const id = nextId++;
      return new Promise<IpcResult<unknown>>((resolve) => {
        pending.set(id, resolve);
        socket.send(encode({ id, channel, payload }));
      });
    },
    subscribe(event, listener) {
      if (!(EVENTS as readonly string[]).includes(event)) throw new TypeError(`unknown event ${event}`);
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => {
        set.delete(listener);
      };
    },
  };
}

/** Connects `window.owlery` in a browser page to the harness that served it. */
export function installInPage(): OwleryApi {
  const g = globalThis as unknown as {
    location: { host: string; protocol: string };
    WebSocket: new (url: string) => WebSocketLike;
    owlery?: OwleryApi;
  };
  const scheme = g.location.protocol === 'https:' ? 'wss' : 'ws';
  const api = createOwleryApi(createWebSocketTransport(new g.WebSocket(`${scheme}://${g.location.host}${HARNESS_SOCKET_PATH}`)));
  Object.defineProperty(globalThis, 'owlery', { value: api, writable: false, configurable: false, enumerable: true });
  return api;
}
