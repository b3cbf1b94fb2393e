/**
 * Plain domain types for chat history: conversations, messages (a tree of branches), images and
 * search hits. The store (`src-main/store/`) produces them, IPC carries them, the renderer shows
 * them. Data only: no Node, no Electron, no DOM.
 *
 * Ids are SQLite integer row ids; times are milliseconds since the Unix epoch (UTC).
 */
import type { AspectMode, GenerationStats, SamplingOptions } from './engine.ts';

/** Row id of a conversation. */
export type ConversationId = number;
/** Row id of a message. */
export type MessageId = number;

/** Who wrote a message. */
export type MessageRole = 'system' | 'user' | 'assistant';
/** Every {@link MessageRole}, in a stable order. */
export const MESSAGE_ROLES: readonly MessageRole[] = ['system', 'user', 'assistant'];

/**
 * Where a message stands.
 *
 * `partial` is an answer still streaming, or one whose writer died (crash, kill) before it
 * finished; `cancelled` and `error` answers keep the text produced so far.
 */
export type MessageStatus = 'complete' | 'partial' | 'cancelled' | 'error';
/** Every {@link MessageStatus}, in a stable order. */
export const MESSAGE_STATUSES: readonly MessageStatus[] = ['complete', 'partial', 'cancelled', 'error'];

/** A conversation as the sidebar lists it. */
export interface ConversationSummary {
  id: ConversationId;
  /** The title; empty until one is set. */
  title: string;
  createdAt: number;
  /** Time of the last message written; the list is ordered by it (renaming or pinning does not change it). */
  updatedAt: number;
  /** Id of the model package the conversation was started with, if any. */
  modelId: string | null;
  /** Pinned conversations list first. */
  pinned: boolean;
  /** When it was moved to the trash; `null` while it is not in the trash. */
  deletedAt: number | null;
  /** sha256 of the first photo attached in it (the list shows its thumbnail); `null`: none. */
  coverImage: string | null;
}

/**
 * A chat's own instructions and generation settings; a `null` setting follows the app's settings.
 * mPLUG-Owl2 has no system prompt: the instructions open the first question of the prompt
 * (src-main/engine/mplug-owl2/prompt.ts).
 */
export interface ChatOptions {
  /** Empty: none. */
  instructions: string;
  temperature: number | null;
  maxNewTokens: number | null;
}

/** Options of a chat that follows the app's settings and has no instructions. */
export const DEFAULT_CHAT_OPTIONS: Readonly<ChatOptions> = Object.freeze({ instructions: '', temperature: null, maxNewTokens: null });

/** A named set of chat options the user saved, to apply to any chat. */
export interface Preset extends ChatOptions {
  id: number;
  name: string;
  createdAt: number;
  updatedAt: number;
}

/** A conversation with everything the store keeps about it. */
export interface Conversation extends ConversationSummary {
  /**
   * The message the user last looked at or wrote (the end of the selected branch); `null` in an
   * empty conversation.
   */
  activeLeafId: MessageId | null;
  /** True once the user named it; until then the title follows an edited first message. */
  titleSetByUser: boolean;
  /** Its instructions and generation settings. */
  options: ChatOptions;
}

/** One page of a listing, with an opaque cursor for the next page (`null` on the last page). */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

/** The model package that wrote an answer. */
export interface ModelRef {
  /** Package id, as in its manifest. */
  packageId: string;
  /** sha256 (hex) identifying the package contents (its manifest's hash). */
  sha256: string;
}

/** The settings an answer was generated with. */
export interface GenerationSettings extends SamplingOptions {
  /** How the photos were made square. */
  aspectMode?: AspectMode;
  /** Execution provider asked for (`auto`, `cuda`, …); the one used is in the stats. */
  provider?: string;
}

/** How a stored photo may be shown: its thumbnail, when there is one. */
export interface ThumbnailRef {
  mime: string;
  width: number;
  height: number;
}

/**
 * A photo stored in the app's data directory, addressed by the sha256 of its bytes.
 *
 * `width` and `height` are the stored pixel dimensions; a viewer that applies the EXIF
 * `orientation` (5-8 rotate by 90°) shows `displayWidth` × `displayHeight`.
 */
export interface ImageRef {
  /** sha256 of the file's bytes, lower-case hex. */
  sha256: string;
  /** `image/jpeg`, `image/png`, `image/webp`, `image/gif`, `image/tiff`, `image/avif` or `image/heic`. */
  mime: string;
  byteSize: number;
  width: number;
  height: number;
  /** EXIF orientation 1-8 (1 when the file has none). */
  orientation: number;
  displayWidth: number;
  displayHeight: number;
  /** The thumbnail (EXIF-rotated), or `null` until one has been made. */
  thumbnail: ThumbnailRef | null;
}

/** A photo as attached to one message: the stored image plus the name it was attached under. */
export interface MessageImage extends ImageRef {
  /** The file name the user attached, without folders; `null` for pasted images. */
  name: string | null;
}

/** One message of the tree. */
export interface Message {
  id: MessageId;
  conversationId: ConversationId;
  /** The message this one answers or follows; `null` for a first message. */
  parentId: MessageId | null;
  role: MessageRole;
  text: string;
  status: MessageStatus;
  /** What went wrong, for `status: 'error'`. */
  error: string | null;
  createdAt: number;
  /** Last write, including each save of a streaming answer. */
  updatedAt: number;
  /** Timing and token counts of the answer, once finished. */
  stats: GenerationStats | null;
  /** The settings the answer was generated with. */
  settings: GenerationSettings | null;
  /** The model package that wrote the answer. */
  model: ModelRef | null;
  /** Attached photos, in the order they were attached. */
  images: MessageImage[];
}

/** A message on a thread, with its place among its siblings (the "‹ 2 / 3 ›" switcher). */
export interface ThreadMessage extends Message {
  /** Ids of this message and its siblings (same parent), oldest first. */
  siblingIds: MessageId[];
  /** Index of this message in `siblingIds`. */
  siblingIndex: number;
}

/** The branch of a conversation shown on screen: messages from the first one to a leaf. */
export interface Thread {
  conversation: Conversation;
  messages: ThreadMessage[];
}

/** A character range `[start, end)` of a text (UTF-16 code units, as JS strings index). */
export interface TextRange {
  start: number;
  end: number;
}

/**
 * Text with highlighted ranges, safe to render: the renderer wraps the ranges in `<mark>` and
 * escapes everything else, so no markup from stored text is ever interpreted.
 */
export interface HighlightedText {
  text: string;
  /** Sorted, non-overlapping ranges that matched the query. */
  highlights: TextRange[];
}

/**
 * How message hits are ordered: by relevance (bm25), or newest first when the query matches so
 * many messages that ranking them all would be slow.
 */
export type SearchOrder = 'relevance' | 'recent';

/** The answer to one search: title hits first, then message hits. */
export interface SearchResults {
  hits: SearchHit[];
  /** How the message hits are ordered (title hits are always by relevance). */
  messageOrder: SearchOrder;
}

/** One search result: a conversation title or a message that matched. */
export interface SearchHit {
  /** `title` hits point at a conversation, `message` hits at a message in it. */
  kind: 'title' | 'message';
  conversationId: ConversationId;
  conversationTitle: string;
  /** Present for `message` hits. */
  messageId: MessageId | null;
  /** Present for `message` hits. */
  role: MessageRole | null;
  /** The matching excerpt (the whole title for `title` hits); cut ends are marked with `…`. */
  snippet: HighlightedText;
  /** FTS5 bm25 score when hits of its kind are ordered by relevance (lower is better), else `null`. */
  rank: number | null;
  /** When the conversation last changed. */
  updatedAt: number;
}
