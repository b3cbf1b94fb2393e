/**
 * The message tree of each conversation: user messages with their photos, streamed answers,
 * regenerations and edits (new siblings; the old ones stay as branches), and the thread on screen.
 * Runs inside the {@link Store} facade's error guard (see `context.ts`).
 *
 * Regenerating an answer adds an assistant sibling under the same user message, editing a message
 * adds a sibling under the same parent. The branch on screen ends at the conversation's active
 * leaf; {@link MessageTree.thread} walks it.
 */
import type Database from 'better-sqlite3';
import type { GenerationStats } from '../../src-shared/engine.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import type {
  Conversation,
  ConversationId,
  GenerationSettings,
  Message,
  MessageId,
  MessageRole,
  MessageStatus,
  ModelRef,
  Thread,
  ThreadMessage,
} from '../../src-shared/domain.ts';
import type { StoreContext } from './context.ts';
import type { Conversations } from './conversations.ts';
import type { ImageRecords } from './image-records.ts';
import { jsonOrNull, toMessage } from './rows.ts';
import type { MessageHead, MessageRow } from './rows.ts';

/** A photo to attach to a message: an image already stored (see `ImageStore.put`). */
export interface ImageAttachment {
  sha256: string;
  /** The file name shown to the user; folders are stripped. */
  name?: string | null;
}

/** Input of `Store.appendUserMessage`. */
export interface NewUserMessage {
  conversationId: ConversationId;
  /**
   * The message this one follows. Omitted: the end of the branch on screen (the active leaf).
   * `null`: a new first message (a new root).
   */
  parentId?: MessageId | null;
  text: string;
  images?: ImageAttachment[];
  /** `user` (default) or `system`. */
  role?: Exclude<MessageRole, 'assistant'>;
}

/** Input of `Store.createAssistantMessage`. */
export interface NewAnswer {
  conversationId: ConversationId;
  /** The message being answered. Omitted: the active leaf. */
  parentId?: MessageId | null;
  settings?: GenerationSettings | null;
  model?: ModelRef | null;
  /** Text to start with (default empty). */
  text?: string;
}

/** How an answer ended: input of `Store.finishMessage`. */
export interface FinishedAnswer {
  status: Exclude<MessageStatus, 'partial'>;
  /** The final text; omitted keeps what was streamed. */
  text?: string;
  /** What went wrong, for `error`. */
  error?: string | null;
  stats?: GenerationStats | null;
  /** Settings actually used; omitted keeps those given at creation. */
  settings?: GenerationSettings | null;
  /** Model actually used; omitted keeps the one given at creation. */
  model?: ModelRef | null;
}

/** The messages table, as a tree per conversation. */
export class MessageTree {
  constructor(
    private readonly ctx: StoreContext,
    private readonly conversations: Conversations,
    private readonly images: ImageRecords,
  ) {}

  /**
   * Adds a user (or system) message, with photos already stored by the image store, and makes it
   * the end of the branch on screen.
   */
  appendUser(input: NewUserMessage): Message {
    const role = input.role ?? 'user';
    if (role !== 'user' && role !== 'system') throw new OwleryError('INVALID_ARGUMENT', `appendUserMessage cannot add a ${String(role)} message.`);
    if (typeof input.text !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'Message text must be a string.');
    return this.ctx.write(() => {
      const id = this.insert(input, { role, text: input.text, status: 'complete', settings: null, model: null });
      (input.images ?? []).forEach((img, position) => {
        if (!this.images.get(img.sha256)) {
          throw new OwleryError('NOT_FOUND', `Image ${img.sha256} is not stored; add it with ImageStore.put before attaching it.`);
        }
        this.images.link(id, position, img.sha256, cleanName(img.name));
      });
      const first = input.images?.[0];
      if (first) this.ctx.stmt('setCoverIfNone').run({ id: input.conversationId, sha256: first.sha256 });
      return this.get(id);
    });
  }

  /**
   * Creates an empty answer with status `partial`, to be filled by {@link appendText} /
   * {@link updateText} and closed by {@link finish}; it becomes the end of the branch on screen.
   */
  createAnswer(input: NewAnswer): Message {
    return this.ctx.write(() =>
      this.get(this.insert(input, { role: 'assistant', text: input.text ?? '', status: 'partial', settings: input.settings, model: input.model })),
    );
  }

  /**
   * Regenerates an answer: a new `partial` assistant message beside `messageId` (same parent)
   * when it is an answer, or under it when it is a user message. The old answer stays as a branch.
   */
  regenerate(messageId: MessageId, opts: { settings?: GenerationSettings | null; model?: ModelRef | null } = {}): Message {
    const head = this.head(messageId);
    const parentId = head.role === 'assistant' ? head.parent_id : head.id;
    return this.createAnswer({ conversationId: head.conversation_id, parentId, settings: opts.settings, model: opts.model });
  }

  /**
   * Edits a user message by adding a new sibling with the new text (same parent); the original
   * stays as a branch. `images` omitted keeps the original's photos. Send the answer to the
   * returned message.
   */
  edit(messageId: MessageId, edit: { text: string; images?: ImageAttachment[] }): Message {
    const original = this.get(messageId);
    if (original.role === 'assistant') {
      throw new OwleryError('INVALID_ARGUMENT', 'Only user and system messages can be edited; regenerate an answer instead.');
    }
    return this.appendUser({
      conversationId: original.conversationId,
      parentId: original.parentId,
      role: original.role,
      text: edit.text,
      images: edit.images ?? original.images.map((img) => ({ sha256: img.sha256, name: img.name })),
    });
  }

  /**
   * Opens a finished answer again (status `partial`, its text kept, its error cleared) so more
   * text can be appended: continuing an answer after Stop. Only the last message of its branch can
   * be continued (nothing follows it); it becomes the branch on screen.
   */
  reopenAnswer(messageId: MessageId): Message {
    return this.ctx.write(() => {
      const head = this.head(messageId);
      if (head.role !== 'assistant') throw new OwleryError('INVALID_ARGUMENT', 'Only answers can be continued.', { messageId });
      if (head.status === 'partial') throw new OwleryError('INVALID_ARGUMENT', 'This answer is still being written.', { messageId });
      const { n } = this.ctx.stmt('childCount').get(messageId) as { n: number };
      if (n > 0) throw new OwleryError('INVALID_ARGUMENT', 'Only the last answer of a conversation can be continued.', { messageId });
      this.ctx.stmt('reopenAnswer').run({ id: messageId, now: this.ctx.now() });
      this.ctx.stmt('setActiveLeaf').run({ id: head.conversation_id, leaf: messageId });
      return this.get(messageId);
    });
  }

  /** Appends streamed text to a `partial` answer. */
  appendText(messageId: MessageId, delta: string): void {
    if (delta === '') return;
    this.requireStreaming(this.ctx.stmt('appendText').run({ id: messageId, delta, now: this.ctx.now() }), messageId);
  }

  /** Replaces the text of a `partial` answer. */
  updateText(messageId: MessageId, text: string): void {
    this.requireStreaming(this.ctx.stmt('updateText').run({ id: messageId, text, now: this.ctx.now() }), messageId);
  }

  /** Closes a `partial` answer with its final status, statistics, settings and model. */
  finish(messageId: MessageId, result: FinishedAnswer): Message {
    if (!['complete', 'cancelled', 'error'].includes(result.status)) {
      throw new OwleryError('INVALID_ARGUMENT', `An answer cannot finish with status ${String(result.status)}.`);
    }
    return this.ctx.write(() => {
      const now = this.ctx.now();
      const info = this.ctx.stmt('finishMessage').run({
        id: messageId,
        status: result.status,
        text: result.text ?? null,
        error: result.error ?? null,
        stats: jsonOrNull(result.stats),
        settings: jsonOrNull(result.settings),
        modelPackageId: result.model?.packageId ?? null,
        modelSha256: result.model?.sha256 ?? null,
        now,
      });
      this.requireStreaming(info, messageId);
      const head = this.head(messageId);
      this.ctx.stmt('touchConversationTime').run({ id: head.conversation_id, now });
      return this.get(messageId);
    });
  }

  /** A message by id. Throws `NOT_FOUND`. */
  get(id: MessageId): Message {
    const row = this.ctx.stmt('getMessage').get(id) as MessageRow | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no message ${id}.`, { messageId: id });
    return toMessage(row, this.images.ofMessages([id]).get(id) ?? []);
  }

  /** A message and its siblings (the same parent; for first messages, the other first messages), oldest first. */
  branches(messageId: MessageId): Message[] {
    const head = this.head(messageId);
    const rows = (head.parent_id === null
      ? this.ctx.stmt('rootSiblings').all(head.conversation_id)
      : this.ctx.stmt('siblings').all(head.parent_id)) as MessageRow[];
    const images = this.images.ofMessages(rows.map((r) => r.id));
    return rows.map((r) => toMessage(r, images.get(r.id) ?? []));
  }

  /**
   * Switches the branch on screen to the one through `messageId` (continuing down its newest
   * replies) and returns that thread.
   */
  selectBranch(messageId: MessageId): Thread {
    return this.ctx.write(() => {
      const head = this.head(messageId);
      const leaf = (this.ctx.stmt('newestLeafUnder').get({ id: head.id }) as { id: number }).id;
      this.ctx.stmt('setActiveLeaf').run({ id: head.conversation_id, leaf });
      return this.threadThrough(this.conversations.get(head.conversation_id), leaf);
    });
  }

  /**
   * The thread from the first message to a leaf: through `leafId` when given (continuing below it
   * along the newest replies), else through the conversation's active leaf, else along the newest
   * first message and newest replies. Each message carries its siblings for a branch switcher.
   */
  thread(conversationId: ConversationId, leafId?: MessageId | null): Thread {
    const conv = this.conversations.get(conversationId);
    let start: number | null = null;
    if (leafId !== undefined && leafId !== null) {
      const head = this.head(leafId);
      if (head.conversation_id !== conversationId) {
        throw new OwleryError('NOT_FOUND', `Message ${leafId} is not in conversation ${conversationId}.`);
      }
      start = leafId;
    } else {
      start = this.activeLeaf(conv);
    }
    return this.threadThrough(conv, start);
  }

  /**
   * Inserts a message under `input.parentId` (checked; omitted: the active leaf) and makes it the
   * conversation's active leaf. Call inside a write transaction.
   */
  private insert(
    input: { conversationId: ConversationId; parentId?: MessageId | null },
    msg: { role: MessageRole; text: string; status: MessageStatus; settings?: GenerationSettings | null; model?: ModelRef | null },
  ): MessageId {
    const conv = this.conversations.get(input.conversationId);
    const parentId = this.resolveParent(conv, input.parentId);
    const now = this.ctx.now();
    const info = this.ctx.stmt('insertMessage').run({
      conversationId: conv.id,
      parentId,
      role: msg.role,
      text: msg.text,
      status: msg.status,
      now,
      settings: jsonOrNull(msg.settings),
      modelPackageId: msg.model?.packageId ?? null,
      modelSha256: msg.model?.sha256 ?? null,
    });
    const id = Number(info.lastInsertRowid);
    this.ctx.stmt('touchConversation').run({ id: conv.id, now, leaf: id });
    return id;
  }

  private head(id: MessageId): MessageHead {
    const row = this.ctx.stmt('messageHead').get(id) as MessageHead | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no message ${id}.`, { messageId: id });
    return row;
  }

  private requireStreaming(info: Database.RunResult, id: MessageId): void {
    if (info.changes > 0) return;
    const head = this.head(id);
    throw new OwleryError('INVALID_ARGUMENT', `Message ${id} is not a streaming answer (status ${head.status}).`, { messageId: id });
  }

  /** The conversation's active leaf if it still is one of its messages, else `null`. */
  private activeLeaf(conv: Conversation): MessageId | null {
    if (conv.activeLeafId === null) return null;
    const head = this.ctx.stmt('messageHead').get(conv.activeLeafId) as MessageHead | undefined;
    return head && head.conversation_id === conv.id ? head.id : null;
  }

  /** The parent for a new message: explicit (checked), or the active leaf when omitted. */
  private resolveParent(conv: Conversation, parentId: MessageId | null | undefined): MessageId | null {
    if (parentId === null) return null;
    if (parentId === undefined) return this.activeLeaf(conv);
    const head = this.head(parentId);
    if (head.conversation_id !== conv.id) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${parentId} belongs to another conversation.`, { messageId: parentId });
    }
    return head.id;
  }

  private threadThrough(conversation: Conversation, start: MessageId | null): Thread {
    let from = start;
    if (from === null) {
      const root = this.ctx.stmt('latestRoot').get(conversation.id) as { id: number } | undefined;
      if (!root) return { conversation, messages: [] };
      from = root.id;
    }
    const rows = this.ctx.stmt('thread').all({ start: from, conversationId: conversation.id }) as (MessageRow & { sibling_ids: string | null })[];
    const images = this.images.ofMessages(rows.map((r) => r.id));
    const messages = rows.map((r): ThreadMessage => {
      const siblingIds = (r.sibling_ids ?? String(r.id)).split(',').map(Number).sort((a, b) => a - b);
      return { ...toMessage(r, images.get(r.id) ?? []), siblingIds, siblingIndex: siblingIds.indexOf(r.id) };
    });
    return { conversation, messages };
  }
}

/** The file name part of a photo's name, without control characters, at most 255 characters. */
function cleanName(name: string | null | undefined): string | null {
  if (!name) return null;
  const base = name.split(/[\\/]/).pop() ?? '';
  return base.replace(/[\p{Cc}]+/gu, '').slice(0, 255) || null;
}
