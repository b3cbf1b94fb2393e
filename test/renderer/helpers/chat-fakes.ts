/**
 * An in-memory stand-in for `window.owlery` in the chat's component tests (the browser tests use
 * the real services): the real `createOwleryApi`/`createOwleryClient` over a transport whose
 * channels answer with test handlers, every call recorded, events pushed by the test. Handlers
 * that throw an `OwleryError` answer `{ ok: false, error }` as main does.
 *
 * Plus factories for the domain objects the chat shows.
 */
import type { StoredImage } from '../../../src-shared/ipc/index.ts';
import type { ConversationSummary, SearchHit, ThreadMessage } from '../../../src-shared/domain.ts';
import type { GenerationStats } from '../../../src-shared/engine.ts';

// One fake main process serves every component test (models-fakes.ts); the chat's tests call it fakeMain.
export { fakeOwlery as fakeMain } from './models-fakes.ts';
export type { FakeOwlery as FakeMain, Handler, Handlers } from './models-fakes.ts';

/** A conversation summary. */
export function conversation(id: number, title: string, over: Partial<ConversationSummary> = {}): ConversationSummary {
  return { id, title, createdAt: 1_700_000_000_000, updatedAt: 1_700_000_000_000 + id, modelId: 'tiny', pinned: false, deletedAt: null, coverImage: null, ...over };
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
