/**
 * An in-memory stand-in for `window.owlery` in the chat's component tests (the browser tests use
 * the real services): the real `createOwleryApi`/`createOwleryClient` over a transport whose
 * channels answer with test handlers, every call recorded, events pushed by the test. Handlers
 * that throw an `OwleryError` answer `{ ok: false, error }` as main does.
 *
 * Plus factories for the domain objects the chat shows.
 */
import { createOwleryApi, createOwleryClient } from '../../../src-shared/ipc/api.ts';
import type { OwleryClient } from '../../../src-shared/ipc/api.ts';
import type { ChannelName, EventContract, EventName, RequestOf, ResponseOf, StoredImage } from '../../../src-shared/ipc/contract.ts';
import type { ConversationSummary, SearchHit, ThreadMessage } from '../../../src-shared/domain.ts';
import type { GenerationStats } from '../../../src-shared/engine.ts';
import { serializeError } from '../../../src-shared/errors.ts';

/** A channel's test answer. */
export type Handler<C extends ChannelName> = (request: RequestOf<C>) => ResponseOf<C> | Promise<ResponseOf<C>>;
/** Test answers by channel. */
export type Handlers = { [C in ChannelName]?: Handler<C> };

/** The fake main process. */
export interface FakeMain {
  client: OwleryClient;
  calls: { channel: ChannelName; payload: unknown }[];
  /** Payloads sent on one channel, in order. */
  callsTo<C extends ChannelName>(channel: C): RequestOf<C>[];
  /** Adds or replaces handlers. */
  handle(handlers: Handlers): void;
  /** Sends an event to the page's subscribers. */
  emit<E extends EventName>(event: E, payload: EventContract[E]): void;
}

/** A fake main answering with `handlers`; channels without one fail with `INTERNAL`. */
export function fakeMain(handlers: Handlers = {}): FakeMain {
  const table: Handlers = { ...handlers };
  const calls: { channel: ChannelName; payload: unknown }[] = [];
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const api = createOwleryApi({
    async invoke(channel, payload) {
      calls.push({ channel, payload });
      const handler = table[channel] as ((req: unknown) => unknown) | undefined;
      try {
        if (!handler) throw new Error(`${channel} is not faked in this test`);
        return { ok: true, value: await handler(payload) };
      } catch (err) {
        return { ok: false, error: serializeError(err) };
      }
    },
    subscribe(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
  });
  return {
    client: createOwleryClient(api),
    calls,
    callsTo: <C extends ChannelName>(channel: C) => calls.filter((c) => c.channel === channel).map((c) => c.payload as RequestOf<C>),
    handle: (more) => void Object.assign(table, more),
    emit: (event, payload) => {
      for (const l of [...(listeners.get(event) ?? [])]) l(payload);
    },
  };
}

/** A conversation summary. */
export function conversation(id: number, title: string, over: Partial<ConversationSummary> = {}): ConversationSummary {
  return { id, title, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 + id, modelId: 'tiny', pinned: false, deletedAt: null, ...over };
}

/** A message on a thread. */
export function threadMessage(id: number, role: 'user' | 'assistant', text: string, over: Partial<ThreadMessage> = {}): ThreadMessage {
  return {
    id,
    conversationId: 1,
    parentId: id > 1 ? id - 1 : null,
    role,
    text,
    status: 'complete',
    error: null,
    createdAt: 1_700_000_000_000,
    updatedAt: 1_700_000_000_000,
    stats: null,
    settings: null,
    model: null,
    images: [],
    siblingIds: [id],
    siblingIndex: 0,
    ...over,
  };
}

/** Answer statistics. */
export function stats(over: Partial<GenerationStats> = {}): GenerationStats {
  return {
    provider: 'cpu',
    promptTokens: 100,
    outputTokens: 20,
    contextLimit: 4096,
    imageCount: 1,
    imagesFromCache: 0,
    imageDecodeMs: 12,
    imageEncodeMs: 340,
    prefillMs: 50,
    prefillTokensPerSecond: 2000,
    timeToFirstTokenMs: 420,
    decodeTokensPerSecond: 31.4,
    totalMs: 1100,
    reusedPromptTokens: 0,
    ...over,
  };
}

/** A stored image as `images:pick`/`images:import` return it. */
export function storedImage(n: number, name: string | null = `photo-${n}.png`): StoredImage {
  const sha256 = n.toString(16).padStart(64, '0');
  return {
    sha256,
    mime: 'image/png',
    byteSize: 1000,
    width: 40,
    height: 30,
    orientation: 1,
    displayWidth: 40,
    displayHeight: 30,
    thumbnail: null,
    name,
    url: `http://127.0.0.1/owlery-image/image/${sha256}`,
    thumbnailUrl: `http://127.0.0.1/owlery-image/thumb/${sha256}`,
  };
}

/** A search hit. */
export function searchHit(conversationId: number, title: string, over: Partial<SearchHit> = {}): SearchHit {
  return {
    kind: 'title',
    conversationId,
    conversationTitle: title,
    messageId: null,
    role: null,
    snippet: { text: title, highlights: [] },
    rank: -1,
    updatedAt: 1_700_000_000_000,
    ...over,
  };
}

/** A file as a drop or paste delivers it. */
export function file(name: string, type: string, size = 100): File {
  const f = new File([new Uint8Array(Math.min(size, 64))], name, { type });
  if (size !== f.size) Object.defineProperty(f, 'size', { value: size });
  return f;
}
