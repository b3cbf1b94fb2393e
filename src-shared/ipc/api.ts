/**
 * The `window.owlery` API built from the contract, and the runtime schemas every request payload
 * is validated against.
 *
 * - {@link API}: which named function calls which channel (and which `onX` subscribes to which
 *   event), grouped by domain. {@link OwleryApi} is derived from it, so the preload, the web
 *   harness client and the renderer's types cannot drift from {@link IpcContract}.
 * - {@link createOwleryApi}: builds the API object over any {@link OwleryTransport} (Electron's
 *   `ipcRenderer` in the preload, a WebSocket in the harness). Each function takes at most one
 *   argument and forwards nothing else.
 * - Results come back as {@link IpcResult} data, never as thrown errors: Electron's contextBridge
 *   drops custom error properties, and the `ErrorCode` is what the UI keys its messages on.
 *   {@link createOwleryClient} wraps an API so calls resolve to the value and reject with an
 *   `OwleryError` (the renderer's usual entry point: `createOwleryClient(window.owlery)`).
 * - {@link REQUEST_SCHEMAS}: one schema per channel (sizes bounded by {@link IPC_LIMITS}); main
 *   validates before any handler runs.
 */
import { CHANNELS, EVENTS, IPC_LIMITS } from './contract.ts';
import type {
  ChannelName,
  EventContract,
  EventName,
  IpcContract,
  IpcResult,
  RequestOf,
  ResponseOf,
} from './contract.ts';
import { EXPORT_FORMATS } from '../chat.ts';
import { ASPECT_MODES } from '../engine.ts';
import { OwleryError, deserializeError } from '../errors.ts';
import { MODEL_ID_PATTERN, settingsPatchSchema } from '../settings.ts';
import { v } from '../validate.ts';
import type { Infer, Schema } from '../validate.ts';

// ───────────────────────────── request schemas ─────────────────────────────

const rowId = v.int({ min: 1, max: Number.MAX_SAFE_INTEGER });
const sha256 = v.string({ pattern: /^[0-9a-f]{64}$/, patternName: 'a sha256 (64 lowercase hex digits)' });
const opaqueId = v.string({ pattern: /^[A-Za-z0-9_-]{1,64}$/, patternName: 'an id (1-64 letters, digits, _ or -)' });
const modelId = v.string({ pattern: MODEL_ID_PATTERN, patternName: 'a model package id' });
const cursor = v.nullable(v.string({ max: 512 }));
const limit = v.int({ min: 1, max: IPC_LIMITS.maxPageSize });
const title = v.string({ max: IPC_LIMITS.maxTitleChars });
const messageText = v.string({ maxBytes: IPC_LIMITS.maxTextBytes });
const fileName = v.string({
  min: 1,
  max: IPC_LIMITS.maxFileNameChars,
  // No folders, no NUL: a name is shown, never used as a path.
  pattern: /^[^/\\\0]+$/,
  patternName: 'a file name without folders',
});
const attachment = v.object({ sha256, name: v.optional(v.nullable(fileName)) });
const attachments = v.array(attachment, { max: IPC_LIMITS.maxImagesPerMessage });
const overrides = v.object({
  temperature: v.optional(v.number({ min: 0, max: 2 })),
  topP: v.optional(v.number({ min: 0, max: 1 })),
  topK: v.optional(v.int({ min: 0, max: 1000 })),
  repetitionPenalty: v.optional(v.number({ min: 1, max: 2 })),
  maxNewTokens: v.optional(v.int({ min: 1, max: 8192 })),
  seed: v.optional(v.int({ min: 0, max: 2 ** 32 - 1 })),
  aspectMode: v.optional(v.enum(ASPECT_MODES)),
});
const exportFormat = v.enum(EXPORT_FORMATS);
const repo = v.string({
  max: IPC_LIMITS.maxRepoChars,
  pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/,
  patternName: 'a hub repository id (owner/name)',
});
const revision = v.string({ max: 200, pattern: /^[A-Za-z0-9][A-Za-z0-9._/-]*$/, patternName: 'a branch, tag or commit' });
const packageName = v.string({ min: 1, max: 200, pattern: /^[^/\\\0]+$/, patternName: 'a name without slashes' });

const schemas = {
  'app:info': v.none(),
  'app:take-opened-photos': v.none(),
  'engine:status': v.none(),

  'conversations:list': v.object({ trash: v.optional(v.boolean()), limit: v.optional(limit), cursor: v.optional(cursor) }),
  'conversations:get': v.object({ id: rowId, leafId: v.optional(v.nullable(rowId)) }),
  'conversations:create': v.object({ title: v.optional(title), modelId: v.optional(v.nullable(modelId)) }),
  'conversations:rename': v.object({ id: rowId, title }),
  'conversations:pin': v.object({ id: rowId, pinned: v.boolean() }),
  'conversations:delete': v.object({ id: rowId }),
  'conversations:restore': v.object({ id: rowId }),
  'conversations:purge': v.object({ id: rowId }),
  'conversations:empty-trash': v.none(),
  'conversations:select-branch': v.object({ messageId: rowId }),
  'conversations:search': v.object({ query: v.string({ max: IPC_LIMITS.maxQueryChars }), limit: v.optional(limit) }),

  'chat:send': v.object({
    conversationId: v.optional(v.nullable(rowId)),
    text: messageText,
    images: v.optional(attachments),
    parentId: v.optional(v.nullable(rowId)),
    overrides: v.optional(overrides),
  }),
  'chat:regenerate': v.object({ messageId: rowId, overrides: v.optional(overrides) }),
  'chat:edit': v.object({ messageId: rowId, text: messageText, images: v.optional(attachments), overrides: v.optional(overrides) }),
  'chat:cancel': v.object({ requestId: opaqueId }),

  'images:pick': v.none(),
  'images:import': v.object({ name: v.nullable(fileName), bytes: v.bytes({ min: 1, max: IPC_LIMITS.maxImageBytes }) }),
  'images:get': v.object({ sha256 }),
  'images:pick-folder': v.none(),
  'images:list-folder': v.object({ folderId: opaqueId, cursor: v.optional(cursor), limit: v.optional(limit) }),
  'images:import-from-folder': v.object({ folderId: opaqueId, entryIds: v.array(opaqueId, { min: 1, max: IPC_LIMITS.maxFolderImport }) }),

  'models:list': v.none(),
  'models:import': v.object({ name: v.optional(packageName), prefer: v.optional(v.enum(['safetensors', 'pytorch'] as const)) }),
  'models:pull': v.object({ repo, revision: v.optional(revision), name: v.optional(packageName) }),
  'models:verify': v.object({ id: modelId }),
  'models:delete': v.object({ id: modelId }),
  'models:select': v.object({ id: modelId }),
  'models:tasks': v.none(),
  'models:cancel-task': v.object({ taskId: opaqueId }),

  'settings:get': v.none(),
  'settings:set': v.object({ patch: settingsPatchSchema }),
  'settings:reset': v.none(),

  'network:log': v.object({ limit: v.optional(v.int({ min: 1, max: 10_000 })) }),

  'export:conversation': v.object({ id: rowId, format: exportFormat }),
  'export:all': v.object({ format: exportFormat }),
  'export:import': v.none(),
};

type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
/** Compile-time proof that each schema produces exactly its channel's request type. */
type SchemaMismatches = {
  [C in ChannelName]: Equals<Infer<(typeof schemas)[C]>, RequestOf<C>> extends true ? never : C;
}[ChannelName];
const _schemasMatchContract: [SchemaMismatches] extends [never] ? true : { mismatched: SchemaMismatches } = true;
void _schemasMatchContract;

/** The runtime schema of every channel's request payload. */
export const REQUEST_SCHEMAS: { readonly [C in ChannelName]: Schema<RequestOf<C>> } = schemas;

/** Validates a channel's payload: returns the clean payload or throws `INVALID_ARGUMENT`. */
export function parseRequest<C extends ChannelName>(channel: C, payload: unknown): RequestOf<C> {
  const schema = REQUEST_SCHEMAS[channel] as Schema<RequestOf<C>> | undefined;
  if (!schema) throw new OwleryError('INVALID_ARGUMENT', `unknown channel ${JSON.stringify(channel)}`);
  return schema.parse(payload, 'payload');
}

/** True when `name` is a contract channel (for transports receiving untyped names). */
export function isChannelName(name: unknown): name is ChannelName {
  return typeof name === 'string' && (CHANNELS as readonly string[]).includes(name);
}

/** True when `name` is a contract event. */
export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && (EVENTS as readonly string[]).includes(name);
}

// ───────────────────────────── the API table ─────────────────────────────

/** Marks an API member as a subscription to `event`. */
export interface EventRef<E extends EventName> {
  readonly event: E;
}
function on<E extends EventName>(event: E): EventRef<E> {
  return { event };
}

/**
 * `window.owlery`, as data: domain → function name → channel (an invoke) or event (an `onX`
 * subscription). The preload and the harness client both build their object from this table.
 */
export const API = {
  app: { info: 'app:info', onCommand: on('app:command'), takeOpenedPhotos: 'app:take-opened-photos', onPhotosOpened: on('app:photos-opened') },
  engine: { status: 'engine:status', onStatus: on('engine:status') },
  conversations: {
    list: 'conversations:list',
    get: 'conversations:get',
    create: 'conversations:create',
    rename: 'conversations:rename',
    pin: 'conversations:pin',
    delete: 'conversations:delete',
    restore: 'conversations:restore',
    purge: 'conversations:purge',
    emptyTrash: 'conversations:empty-trash',
    selectBranch: 'conversations:select-branch',
    search: 'conversations:search',
    onChange: on('conversations:changed'),
  },
  chat: {
    send: 'chat:send',
    regenerate: 'chat:regenerate',
    edit: 'chat:edit',
    cancel: 'chat:cancel',
    onEvent: on('chat:event'),
  },
  images: {
    pick: 'images:pick',
    import: 'images:import',
    get: 'images:get',
    pickFolder: 'images:pick-folder',
    listFolder: 'images:list-folder',
    importFromFolder: 'images:import-from-folder',
  },
  models: {
    list: 'models:list',
    import: 'models:import',
    pull: 'models:pull',
    verify: 'models:verify',
    delete: 'models:delete',
    select: 'models:select',
    tasks: 'models:tasks',
    cancelTask: 'models:cancel-task',
    onTask: on('models:task'),
    onChange: on('models:changed'),
  },
  settings: {
    get: 'settings:get',
    set: 'settings:set',
    reset: 'settings:reset',
    onChange: on('settings:changed'),
  },
  network: { log: 'network:log' },
  export: {
    conversation: 'export:conversation',
    all: 'export:all',
    import: 'export:import',
  },
} as const;

type ApiTable = typeof API;
type Members = { [D in keyof ApiTable]: ApiTable[D][keyof ApiTable[D]] }[keyof ApiTable];
/** Compile-time proof that every channel and every event has a function in {@link API}. */
type MissingChannels = Exclude<ChannelName, Extract<Members, string>>;
type MissingEvents = Exclude<EventName, Extract<Members, EventRef<EventName>>['event']>;
const _apiCoversContract: [MissingChannels | MissingEvents] extends [never] ? true : { missing: MissingChannels | MissingEvents } = true;
void _apiCoversContract;

/** The function `window.owlery` exposes for an invoke channel (no argument when it takes none). */
export type InvokeFn<C extends ChannelName> = [RequestOf<C>] extends [void]
  ? () => Promise<IpcResult<ResponseOf<C>>>
  : object extends RequestOf<C>
    ? (request?: RequestOf<C>) => Promise<IpcResult<ResponseOf<C>>>
    : (request: RequestOf<C>) => Promise<IpcResult<ResponseOf<C>>>;

/** The function `window.owlery` exposes for an event: subscribe, get an unsubscribe function. */
export type SubscribeFn<E extends EventName> = (listener: (payload: EventContract[E]) => void) => () => void;

type MemberFn<M> = M extends ChannelName ? InvokeFn<M> : M extends EventRef<infer E> ? SubscribeFn<E> : never;

/** `window.owlery`: named functions grouped by domain; events as `onX(cb) => unsubscribe`. */
export type OwleryApi = { readonly [D in keyof ApiTable]: { readonly [M in keyof ApiTable[D]]: MemberFn<ApiTable[D][M]> } };

/** How an API object reaches main: Electron IPC in the preload, a WebSocket in the harness. */
export interface OwleryTransport {
  /** Sends one request; resolves with the result envelope (never rejects for expected errors). */
  invoke(channel: ChannelName, payload: unknown): Promise<IpcResult<unknown>>;
  /** Subscribes to one event; returns an unsubscribe function. */
  subscribe(event: EventName, listener: (payload: unknown) => void): () => void;
}

/** Builds `window.owlery` over a transport. Each function forwards one argument only. */
export function createOwleryApi(transport: OwleryTransport): OwleryApi {
  const api: Record<string, Record<string, unknown>> = {};
  for (const [domain, members] of Object.entries(API)) {
    const group: Record<string, unknown> = {};
    for (const [name, member] of Object.entries(members as Record<string, ChannelName | EventRef<EventName>>)) {
      if (typeof member === 'string') {
        group[name] = (request?: unknown) => transport.invoke(member, request);
      } else {
        group[name] = (listener: (payload: unknown) => void) => {
          if (typeof listener !== 'function') throw new TypeError(`${domain}.${name} needs a listener function`);
          return transport.subscribe(member.event, (payload) => listener(payload));
        };
      }
    }
    api[domain] = Object.freeze(group);
  }
  return Object.freeze(api) as unknown as OwleryApi;
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
  const client: Record<string, Record<string, unknown>> = {};
  for (const [domain, members] of Object.entries(API)) {
    const group: Record<string, unknown> = {};
    const source = (api as unknown as Record<string, Record<string, (arg?: unknown) => unknown>>)[domain]!;
    for (const [name, member] of Object.entries(members as Record<string, ChannelName | EventRef<EventName>>)) {
      const fn = source[name]!;
      group[name] =
        typeof member === 'string'
          ? async (request?: unknown) => unwrap((await fn(request)) as IpcResult<unknown>)
          : (listener: unknown) => fn(listener);
    }
    client[domain] = Object.freeze(group);
  }
  return Object.freeze(client) as unknown as OwleryClient;
}

/** The invoke-channel entries of {@link API}: `[domain, name, channel]`, in table order. */
export function apiChannels(): [domain: string, name: string, channel: ChannelName][] {
  const out: [string, string, ChannelName][] = [];
  for (const [domain, members] of Object.entries(API)) {
    for (const [name, member] of Object.entries(members as Record<string, ChannelName | EventRef<EventName>>)) {
      if (typeof member === 'string') out.push([domain, name, member]);
    }
  }
  return out;
}

/** Type of {@link IpcContract}, re-exported for convenience. */
export type { IpcContract };
