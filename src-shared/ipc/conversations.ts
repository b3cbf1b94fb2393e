/** The `conversations:` domain: the sidebar, the thread on screen, a chat's options, the trash, search. */
import type { Conversation, ConversationId, ConversationSummary, Page, SearchResults, Thread } from '../domain.ts';
import { MAX_QUERY_REQUEST_CHARS, MAX_TITLE_CHARS } from '../limits.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';
import { chatOptionsPatch, cursor, modelId, pageLimit, rowId } from './fields.ts';

const title = v.string({ max: MAX_TITLE_CHARS });
const byId = v.object({ id: rowId });

const listRequest = v.object({
  /** `true` lists the trash instead (most recently deleted first). */
  trash: v.optional(v.boolean()),
  limit: v.optional(pageLimit),
  /** The previous page's `nextCursor`. */
  cursor: v.optional(cursor),
});
/** A listing request: a page of conversations, pinned first then by latest activity. */
export type ListConversationsRequest = Infer<typeof listRequest>;

/** Why the conversation list may be stale (the renderer reloads what it shows). */
export interface ConversationsChanged {
  reason: 'created' | 'updated' | 'deleted' | 'restored' | 'purged' | 'imported';
  /** The conversations concerned; empty when many changed (an import). */
  ids: ConversationId[];
}

/** `window.owlery.conversations`. */
export const conversationsApi = defineDomain({
  /** A page of conversations (pinned first, then latest activity), or of the trash. */
  list: invoke(listRequest).returns<Page<ConversationSummary>>(),
  /** The thread on screen (or ending at `leafId`) with each message's siblings for branch switching. */
  get: invoke(v.object({ id: rowId, leafId: v.optional(v.nullable(rowId)) })).returns<Thread>(),
  /** Starts an empty conversation. */
  create: invoke(v.object({ title: v.optional(title), modelId: v.optional(v.nullable(modelId)) })).returns<Conversation>(),
  rename: invoke(v.object({ id: rowId, title })).returns<Conversation>(),
  pin: invoke(v.object({ id: rowId, pinned: v.boolean() })).returns<Conversation>(),
  /** Changes a chat's instructions, temperature and answer length (`null`: the app's setting). */
  setOptions: invoke(v.object({ id: rowId, options: chatOptionsPatch })).returns<Conversation>(),
  /** Moves a conversation to the trash (undo with `restore`). */
  delete: invoke(byId).returns<Conversation>(),
  restore: invoke(byId).returns<Conversation>(),
  /** Deletes a conversation for good (it must be in the trash). */
  purge: invoke(byId).returns<null>(),
  /** Deletes everything in the trash for good. */
  emptyTrash: invoke(v.none()).returns<{ purged: number }>(),
  /** Shows the branch through `messageId` (the "‹ 2 / 3 ›" switcher); returns the new thread. */
  selectBranch: invoke(v.object({ messageId: rowId })).returns<Thread>(),
  /** Full-text search over titles and messages, with highlighted snippets. */
  search: invoke(v.object({ query: v.string({ max: MAX_QUERY_REQUEST_CHARS }), limit: v.optional(pageLimit) })).returns<SearchResults>(),
  onChange: event('conversations:changed').carries<ConversationsChanged>(),
});
