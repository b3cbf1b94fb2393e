/**
 * THE IPC contract between the renderer and the main process, gathered from one file per domain
 * (`./app.ts`, `./chat.ts`, …; how a domain is written: `./define.ts`). Everything here is
 * derived from those domain objects:
 *
 * - {@link API}: `window.owlery`, as data; {@link OwleryApi} its type, {@link createOwleryApi}
 *   builds it over any {@link OwleryTransport} (Electron's `ipcRenderer` in the preload, a
 *   WebSocket in the web harness), {@link createOwleryClient} wraps it so calls return values
 *   and throw `OwleryError`s (the renderer's usual entry point).
 * - {@link CHANNELS}, {@link ChannelName}, {@link IpcContract} (`RequestOf`, `ResponseOf`): the
 *   invoke channels `domain:verb`, which `src-main/ipc` registers and dispatches.
 * - {@link REQUEST_SCHEMAS} and {@link parseRequest}: main validates every payload before any
 *   handler runs (`INVALID_ARGUMENT` naming the field).
 * - {@link EVENTS}, {@link EventContract}, {@link OwleryEvent}: what main pushes on {@link EVENT_CHANNEL}.
 *
 * Rules of the road: every request is a single payload (an object, or nothing); every response
 * crosses as plain data inside an {@link IpcResult} envelope (Electron's contextBridge drops
 * custom error properties, and the `ErrorCode` is what the UI keys its messages on); the renderer
 * never sees file paths (photos travel as hashes and `owlery-image:` URLs).
 *
 * Pure types and functions: no Node, Electron or DOM.
 * @see docs/design.md, "Processes and data flow"; style.md H2, H5, H7
 */
import { OwleryError, deserializeError } from '../errors.ts';
import type { Schema } from '../validate.ts';
import { appApi } from './app.ts';
import { chatApi } from './chat.ts';
import { conversationsApi } from './conversations.ts';
import { channelName } from './define.ts';
import { describeApi } from './describe.ts';
import type { DomainDef, EventDef, InvokeDef, IpcResult, Kebab, Member, MemberFn } from './define.ts';
import { engineApi } from './engine.ts';
import { exportApi } from './export.ts';
import { imagesApi } from './images.ts';
import { modelsApi } from './models.ts';
import { networkApi } from './network.ts';
import { presetsApi } from './presets.ts';
import { settingsApi } from './settings.ts';

export * from './app.ts';
export * from './chat.ts';
export * from './conversations.ts';
export * from './describe.ts';
export * from './engine.ts';
export * from './export.ts';
export * from './images.ts';
export * from './models.ts';
export * from './network.ts';
export * from './presets.ts';
export * from './settings.ts';
export type { ChatOptionsPatch, ImageAttachmentRef } from './fields.ts';
export type { InvokeFn, IpcResult, SubscribeFn } from './define.ts';
export type { ChatEvent, ChatRequestId, ChatStarted, ExportFormat, ImportResult } from '../chat.ts';

/** `window.owlery`, as data: domain → function name → invoke channel or event. */
export const API = {
  app: appApi,
  engine: engineApi,
  conversations: conversationsApi,
  chat: chatApi,
  presets: presetsApi,
  images: imagesApi,
  describe: describeApi,
  models: modelsApi,
  settings: settingsApi,
  network: networkApi,
  export: exportApi,
} as const satisfies { readonly [domain: string]: DomainDef };

type Api = typeof API;
/** A domain of {@link API}. */
export type DomainName = keyof Api & string;

type InvokeKeys<D> = { [M in keyof D & string]: D[M] extends InvokeDef<unknown, unknown> ? M : never }[keyof D & string];
type EventKeys<D> = { [M in keyof D & string]: D[M] extends EventDef<string, unknown> ? M : never }[keyof D & string];

/** Every invoke channel with its definition. */
type ChannelEntry = {
  [D in DomainName]: { [M in InvokeKeys<Api[D]>]: { name: `${D}:${Kebab<M>}`; def: Api[D][M] } }[InvokeKeys<Api[D]>];
}[DomainName];
/** Every event with its definition. */
type EventEntry = { [D in DomainName]: { [M in EventKeys<Api[D]>]: Api[D][M] }[EventKeys<Api[D]>] }[DomainName];

/** Every invoke channel name (`domain:verb`). */
export type ChannelName = ChannelEntry['name'];
/** The invoke channels of one domain. */
export type DomainChannel<D extends DomainName> = Extract<ChannelName, `${D}:${string}`>;

/** Every invoke channel: name → request payload and response value (`void` requests take no payload). */
export type IpcContract = {
  [C in ChannelName]: Extract<ChannelEntry, { name: C }>['def'] extends InvokeDef<infer Req, infer Res> ? { request: Req; response: Res } : never;
};
/** The request payload of a channel. */
export type RequestOf<C extends ChannelName> = IpcContract[C]['request'];
/** The response value of a channel. */
export type ResponseOf<C extends ChannelName> = IpcContract[C]['response'];

/** Every event main sends: event name → payload. */
export type EventContract = { [E in EventEntry as E['event']]: E extends EventDef<string, infer P> ? P : never };
/** Every event name. */
export type EventName = keyof EventContract;
/** The typed event union main → renderer. */
export type OwleryEvent = { [K in EventName]: { type: K; payload: EventContract[K] } }[EventName];

/** The single Electron IPC channel events travel on (`{ type, payload }` messages). */
export const EVENT_CHANNEL = 'owlery:event';

/** Every member of {@link API}: `[domain, function name, member]`, in table order. */
function members(): [domain: string, name: string, member: Member][] {
  return Object.entries(API).flatMap(([domain, ms]) => Object.entries(ms as DomainDef).map(([name, m]): [string, string, Member] => [domain, name, m]));
}

/** The invoke functions of {@link API}: `[domain, name, channel]`, in table order. */
export function apiChannels(): [domain: DomainName, name: string, channel: ChannelName][] {
  return members()
    .filter(([, , m]) => m.kind === 'invoke')
    .map(([domain, name]) => [domain as DomainName, name, channelName(domain, name) as ChannelName]);
}

/** Every invoke channel, at run time. */
export const CHANNELS: readonly ChannelName[] = Object.freeze(apiChannels().map(([, , c]) => c));

/** Every event name, at run time. */
export const EVENTS: readonly EventName[] = Object.freeze(members().flatMap(([, , m]) => (m.kind === 'event' ? [m.event as EventName] : [])));

/** The runtime schema of every channel's request payload. */
export const REQUEST_SCHEMAS: { readonly [C in ChannelName]: Schema<RequestOf<C>> } = Object.freeze(
  Object.fromEntries(members().flatMap(([domain, name, m]) => (m.kind === 'invoke' ? [[channelName(domain, name), m.request]] : []))),
) as { readonly [C in ChannelName]: Schema<RequestOf<C>> };

/** True when `name` is a contract channel (for transports receiving untyped names). */
export function isChannelName(name: unknown): name is ChannelName {
  return typeof name === 'string' && Object.hasOwn(REQUEST_SCHEMAS, name);
}

/** True when `name` is a contract event. */
export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && (EVENTS as readonly string[]).includes(name);
}

/** Validates a channel's payload: returns the clean payload or throws `INVALID_ARGUMENT`. */
export function parseRequest<C extends ChannelName>(channel: C, payload: unknown): RequestOf<C> {
  if (!isChannelName(channel)) throw new OwleryError('INVALID_ARGUMENT', `unknown channel ${JSON.stringify(channel)}`);
  return (REQUEST_SCHEMAS[channel] as Schema<RequestOf<C>>).parse(payload, 'payload');
}

/** `window.owlery`: named functions grouped by domain; events as `onX(cb) => unsubscribe`. */
export type OwleryApi = { readonly [D in DomainName]: { readonly [M in keyof Api[D]]: MemberFn<Api[D][M]> } };

/** How an API object reaches main: Electron IPC in the preload, a WebSocket in the harness. */
export interface OwleryTransport {
  /** Sends one request; resolves with the result envelope (never rejects for expected errors). */
  invoke(channel: ChannelName, payload: unknown): Promise<IpcResult<unknown>>;
  /** Subscribes to one event; returns an unsubscribe function. */
  subscribe(event: EventName, listener: (payload: unknown) => void): () => void;
}

/** Builds a frozen object shaped like {@link API}, one function per member. */
function buildApi(make: (domain: string, name: string, member: Member) => unknown): unknown {
  const api: Record<string, Record<string, unknown>> = {};
  for (const [domain, name, member] of members()) (api[domain] ??= {})[name] = make(domain, name, member);
  for (const group of Object.values(api)) Object.freeze(group);
  return Object.freeze(api);
}

/** Builds `window.owlery` over a transport. Each function forwards one argument only. */
export function createOwleryApi(transport: OwleryTransport): OwleryApi {
  return buildApi((domain, name, member) => {
    if (member.kind === 'invoke') {
      const channel = channelName(domain, name) as ChannelName;
      return (request?: unknown) => transport.invoke(channel, request);
    }
    return (listener: (payload: unknown) => void) => {
      if (typeof listener !== 'function') throw new TypeError(`${domain}.${name} needs a listener function`);
      return transport.subscribe(member.event as EventName, (payload) => listener(payload));
    };
  }) as OwleryApi;
}

/** Returns the value of a result, or throws its error as an `OwleryError`. */
export function unwrap<T>(result: IpcResult<T>): T {
  if (result.ok) return result.value;
  throw deserializeError(result.error);
}

type ClientFn<F> = F extends (...args: infer A) => Promise<IpcResult<infer R>> ? (...args: A) => Promise<R> : F;

/** {@link OwleryApi} with plain results: calls resolve to the value and reject with `OwleryError`. */
export type OwleryClient = { readonly [D in keyof OwleryApi]: { readonly [M in keyof OwleryApi[D]]: ClientFn<OwleryApi[D][M]> } };

/** Wraps `window.owlery` so calls return values and throw `OwleryError`s (codes intact). */
export function createOwleryClient(api: OwleryApi): OwleryClient {
  const source = api as unknown as Record<string, Record<string, (arg?: unknown) => unknown>>;
  return buildApi((domain, name, member) => {
    const fn = source[domain]![name]!;
    return member.kind === 'invoke' ? async (request?: unknown) => unwrap((await fn(request)) as IpcResult<unknown>) : (listener: unknown) => fn(listener);
  }) as OwleryClient;
}
