/**
 * How an IPC domain is written down, and what is derived from it.
 *
 * A domain (`./chat.ts`, `./models.ts`, …) is one object: API function name → an invoke channel
 * ({@link invoke}: the request's runtime schema and, as a type, the response) or an event
 * ({@link event}: the event's name and, as a type, its payload). Everything else is derived from
 * those objects (see `./index.ts`): the channel names and their list, the request and response
 * types, the validators main runs, the `window.owlery` object and its type, the dispatcher's
 * handler table type. Adding a channel is adding one line to its domain.
 *
 * A channel's name is `domain:kebab-case-of-the-function` (`conversations.emptyTrash` →
 * `conversations:empty-trash`); an event's name is written out (`chat.onEvent` → `chat:event`).
 *
 * Pure types and functions: no Node, Electron or DOM.
 */
import type { SerializedError } from '../errors.ts';
import type { Schema } from '../validate.ts';

/** The answer of every invoke: a value, or an expected error as plain data. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: SerializedError };

/** An invoke channel: the schema its request is validated against; `Res` is its response (a type only). */
export interface InvokeDef<Req, Res> {
  readonly kind: 'invoke';
  readonly request: Schema<Req>;
  /** Never set: carries the response type. */
  readonly response?: Res;
}

/** An event main sends, named `E`, with payload `P` (a type only). */
export interface EventDef<E extends string, P> {
  readonly kind: 'event';
  readonly event: E;
  /** Never set: carries the payload type. */
  readonly payload?: P;
}

/** Any member of a domain: an invoke channel or an event. */
export type Member = InvokeDef<unknown, unknown> | EventDef<string, unknown>;

/** One domain: API function name → channel or event. */
export type DomainDef = { readonly [name: string]: Member };

/** `invoke(schema).returns<Response>()`: an invoke channel taking what `schema` accepts. */
export function invoke<Req>(request: Schema<Req>): { returns<Res>(): InvokeDef<Req, Res> } {
  return { returns: () => ({ kind: 'invoke', request }) };
}

/** `event('chat:event').carries<ChatEvent>()`: an event main sends. */
export function event<const E extends string>(name: E): { carries<P>(): EventDef<E, P> } {
  return { carries: () => ({ kind: 'event', event: name }) };
}

/** Checks a domain's shape and keeps its literal type. */
export function defineDomain<const D extends DomainDef>(domain: D): D {
  return domain;
}

/** `takeOpenedPhotos` → `take-opened-photos`. */
export type Kebab<S extends string> = S extends `${infer H}${infer R}` ? `${H extends Lowercase<H> ? H : `-${Lowercase<H>}`}${Kebab<R>}` : '';

/** The channel name of API function `name` of `domain`: `domain:kebab-name`. */
export function channelName(domain: string, name: string): string {
  return `${domain}:${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** The invoke channel of an API function (no argument when it takes none, optional when every field is). */
export type InvokeFn<Req, Res> = [Req] extends [void]
  ? () => Promise<IpcResult<Res>>
  : object extends Req
    ? (request?: Req) => Promise<IpcResult<Res>>
    : (request: Req) => Promise<IpcResult<Res>>;

/** The subscription of an API event: subscribe, get an unsubscribe function. */
export type SubscribeFn<P> = (listener: (payload: P) => void) => () => void;

/** The function `window.owlery` exposes for one member of a domain. */
export type MemberFn<M> = M extends InvokeDef<infer Req, infer Res> ? InvokeFn<Req, Res> : M extends EventDef<string, infer P> ? SubscribeFn<P> : never;
