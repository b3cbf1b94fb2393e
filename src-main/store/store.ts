/**
 * The history store: conversations, the message tree, streamed answers, image records and search,
 * on one better-sqlite3 connection.
 *
 * The API is synchronous (better-sqlite3 is); host it off the UI thread (a worker or the DB
 * process), one `Store` per database file, one writer. Every method turns SQLite failures into
 * `OwleryError`s (`DB_CORRUPT`, `DB_LOCKED`, `DB_READONLY`, `DISK_FULL`); a missing conversation or
 * message is `NOT_FOUND`, a bad argument `INVALID_ARGUMENT`.
 *
 * Messages form a tree per conversation: regenerating an answer adds an assistant sibling under
 * the same user message, editing a message adds a sibling under the same parent. The branch on
 * screen ends at the conversation's active leaf; {@link Store.getThread} walks it.
 * @see docs/design.md, "Storage"
 */
import type Database from 'better-sqlite3';
import type { GenerationStats } from '../../src-shared/engine.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { MAX_PAGE_SIZE, MAX_TITLE_CHARS } from '../../src-shared/limits.ts';
import type {
  Conversation,
  ConversationId,
  ConversationSummary,
  GenerationSettings,
  ImageRef,
  Message,
  MessageId,
  MessageImage,
  MessageRole,
  MessageStatus,
  ModelRef,
  Page,
  SearchHit,
  SearchResults,
  Thread,
  ThreadMessage,
} from '../../src-shared/domain.ts';
import { backupDatabase, defaultBackupDir, openDatabase } from './database.ts';
import type { OpenOptions, OpenedDatabase } from './database.ts';
import { toStoreError } from './errors.ts';
import { SQL } from './queries.ts';
import type { SqlName } from './queries.ts';
import { parseHighlighted, parseSearch } from './search-query.ts';
import type { ParsedSearch } from './search-query.ts';

/** Default page size for listings (the largest is `MAX_PAGE_SIZE`, src-shared/limits.ts). */
export const DEFAULT_PAGE_SIZE = 50;
/** Default number of hits per kind in {@link Store.search}. */
export const DEFAULT_SEARCH_LIMIT = 20;
/**
 * Most work, in microseconds, spent ranking message hits by bm25 (measured on 1M messages: about
 * 1 µs per match per word or phrase of the query, plus 0.05 µs per message holding each word,
 * which bm25 reads to weigh the word). Queries that would cost more list the newest matches first
 * instead, which FTS5 does without reading them all.
 */
export const RELEVANCE_COST_LIMIT_US = 12_000;

/** Options for {@link Store}. */
export interface StoreOptions {
  /** Clock in ms since the epoch (default `Date.now`); tests pass a fake one. */
  now?: () => number;
  /** The database file, for error messages and backups (default: the connection's file name). */
  file?: string;
  /** Backup folder for {@link Store.backupNow} (default `<folder of file>/backups`). */
  backupDir?: string;
}

/** Input of {@link Store.createConversation}. */
export interface NewConversation {
  title?: string;
  modelId?: string | null;
}

/** A photo to attach to a message: an image already stored (see `ImageStore.put`). */
export interface ImageAttachment {
  sha256: string;
  /** The file name shown to the user; folders are stripped. */
  name?: string | null;
}

/** Input of {@link Store.appendUserMessage}. */
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

/** Input of {@link Store.createAssistantMessage}. */
export interface NewAnswer {
  conversationId: ConversationId;
  /** The message being answered. Omitted: the active leaf. */
  parentId?: MessageId | null;
  settings?: GenerationSettings | null;
  model?: ModelRef | null;
  /** Text to start with (default empty). */
  text?: string;
}

/** How an answer ended: input of {@link Store.finishMessage}. */
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

/** Options for {@link Store.beginAnswer}. */
export interface AnswerWriterOptions {
  /** Longest time streamed text stays in memory before it is written (default 250 ms). */
  flushIntervalMs?: number;
  /** Called when a timed write fails (the text stays buffered and is retried on the next write). */
  onError?: (err: unknown) => void;
}

/** Options for {@link Store.search}. */
export interface SearchOptions {
  /** Most hits of each kind (titles, messages); default 20, at most 500. */
  limit?: number;
  /** Match the last word as a prefix while typing (default true). */
  prefixLast?: boolean;
}

/** One stored image, as the image store records it. */
export interface ImageRecord extends ImageRef {
  /** File extension of the original, without the dot (`jpg`, `png`, …). */
  ext: string;
  createdAt: number;
}

interface ConversationRow {
  id: number;
  title: string;
  created_at: number;
  updated_at: number;
  model_id: string | null;
  pinned: number;
  deleted_at: number | null;
  active_leaf_id: number | null;
}

interface MessageRow {
  id: number;
  conversation_id: number;
  parent_id: number | null;
  role: MessageRole;
  text: string;
  status: MessageStatus;
  error: string | null;
  created_at: number;
  updated_at: number;
  settings_json: string | null;
  stats_json: string | null;
  model_package_id: string | null;
  model_sha256: string | null;
}

interface MessageHead {
  id: number;
  conversation_id: number;
  parent_id: number | null;
  role: MessageRole;
  status: MessageStatus;
}

interface ImageRow {
  sha256: string;
  ext: string;
  mime: string;
  byte_size: number;
  width: number;
  height: number;
  orientation: number;
  created_at: number;
  thumb_mime: string | null;
  thumb_width: number | null;
  thumb_height: number | null;
}

/** The history store. See the module comment. */
export class Store {
  /** The connection (pragmas set, schema current). For tests and maintenance; prefer the methods. */
  readonly db: Database.Database;
  /** Absolute path of the database file. */
  readonly file: string;
  private readonly now: () => number;
  private readonly backupDir: string;
  private readonly statements = new Map<SqlName, Database.Statement>();

  /** Wraps an open connection (see {@link openDatabase}); prefer {@link Store.open}. */
  constructor(db: Database.Database, opts: StoreOptions = {}) {
    this.db = db;
    this.file = opts.file ?? db.name;
    this.now = opts.now ?? Date.now;
    this.backupDir = opts.backupDir ?? defaultBackupDir(this.file);
  }

  /**
   * Opens the database file (creating and migrating it as needed) and returns a store on it, plus
   * what opening did (`previousVersion`, `backupPath`). Fails like {@link openDatabase}.
   */
  static open(file: string, opts: OpenOptions = {}, storeOpts: Pick<StoreOptions, 'now'> = {}): { store: Store; opened: OpenedDatabase } {
    const opened = openDatabase(file, opts);
    const store = new Store(opened.db, { now: storeOpts.now, file: opened.file, backupDir: opts.backupDir });
    return { store, opened };
  }

  /** Closes the connection (checkpointing the WAL). Further calls fail. */
  close(): void {
    if (!this.db.open) return;
    this.guard(() => {
      try {
        if (!this.db.readonly) {
          this.db.pragma('optimize'); // refreshes planner statistics where they went stale (cheap)
          this.db.pragma('wal_checkpoint(TRUNCATE)');
        }
      } catch {
        // Another connection may hold the WAL; closing still checkpoints what it can.
      }
      this.db.close();
    });
  }

  /** Writes a backup now (`backups/owlery-v<N>-<timestamp>.sqlite`) and returns its path. */
  backupNow(keep?: number): string {
    return this.guard(() => backupDatabase(this.db, { backupDir: this.backupDir, keep, now: () => new Date(this.now()) }));
  }

  // Conversations -------------------------------------------------------------------------------

  /** Starts an empty conversation. */
  createConversation(input: NewConversation = {}): Conversation {
    const title = checkTitle(input.title ?? '');
    return this.guard(() => {
      const info = this.stmt('insertConversation').run({ title, now: this.now(), modelId: input.modelId ?? null });
      return this.requireConversation(Number(info.lastInsertRowid));
    });
  }

  /** A conversation by id, in the trash or not. Throws `NOT_FOUND`. */
  getConversation(id: ConversationId): Conversation {
    return this.guard(() => this.requireConversation(id));
  }

  /**
   * Conversations not in the trash, pinned first, then by latest activity, `limit` at a time.
   * Pass the previous page's `nextCursor` for the next page.
   */
  listConversations(opts: { limit?: number; cursor?: string | null } = {}): Page<ConversationSummary> {
    const limit = pageSize(opts.limit);
    return this.guard(() => {
      let rows: ConversationRow[];
      if (opts.cursor) {
        const [pinned, updatedAt, id] = decodeCursor(opts.cursor, 3);
        rows = this.stmt('listConversationsAfter').all({ pinned, updatedAt, id, limit }) as ConversationRow[];
      } else {
        rows = this.stmt('listConversationsFirst').all({ limit }) as ConversationRow[];
      }
      const last = rows[rows.length - 1];
      return {
        items: rows.map(toSummary),
        nextCursor: rows.length === limit && last ? encodeCursor([last.pinned, last.updated_at, last.id]) : null,
      };
    });
  }

  /** Conversations in the trash, most recently deleted first, `limit` at a time. */
  listTrash(opts: { limit?: number; cursor?: string | null } = {}): Page<ConversationSummary> {
    const limit = pageSize(opts.limit);
    return this.guard(() => {
      let rows: ConversationRow[];
      if (opts.cursor) {
        const [deletedAt, id] = decodeCursor(opts.cursor, 2);
        rows = this.stmt('listTrashAfter').all({ deletedAt, id, limit }) as ConversationRow[];
      } else {
        rows = this.stmt('listTrashFirst').all({ limit }) as ConversationRow[];
      }
      const last = rows[rows.length - 1];
      return {
        items: rows.map(toSummary),
        nextCursor: rows.length === limit && last ? encodeCursor([last.deleted_at ?? 0, last.id]) : null,
      };
    });
  }

  /** Sets a conversation's title (does not change its place in the list). */
  renameConversation(id: ConversationId, title: string): Conversation {
    const clean = checkTitle(title);
    return this.guard(() => {
      this.requireChange(this.stmt('renameConversation').run({ id, title: clean }), 'conversation', id);
      return this.requireConversation(id);
    });
  }

  /** Pins or unpins a conversation; pinned ones list first. */
  setPinned(id: ConversationId, pinned: boolean): Conversation {
    return this.guard(() => {
      this.requireChange(this.stmt('pinConversation').run({ id, pinned: pinned ? 1 : 0 }), 'conversation', id);
      return this.requireConversation(id);
    });
  }

  /** Records which model package a conversation uses. */
  setConversationModel(id: ConversationId, modelId: string | null): Conversation {
    return this.guard(() => {
      this.requireChange(this.stmt('setConversationModel').run({ id, modelId }), 'conversation', id);
      return this.requireConversation(id);
    });
  }

  /**
   * Moves a conversation to the trash (soft delete): it leaves the list and search, and
   * {@link restoreConversation} brings it back unchanged. Deleting a trashed one changes nothing.
   */
  deleteConversation(id: ConversationId): Conversation {
    return this.guard(() => {
      this.requireConversation(id);
      this.stmt('softDeleteConversation').run({ id, now: this.now() });
      return this.requireConversation(id);
    });
  }

  /** Takes a conversation out of the trash (undo of {@link deleteConversation}). */
  restoreConversation(id: ConversationId): Conversation {
    return this.guard(() => {
      this.requireChange(this.stmt('restoreConversation').run({ id }), 'conversation', id);
      return this.requireConversation(id);
    });
  }

  /** Deletes one trashed conversation for good, with its messages. Throws `NOT_FOUND` if it is not in the trash. */
  purgeConversation(id: ConversationId): void {
    this.guard(() => {
      const info = this.stmt('purgeConversation').run(id);
      if (info.changes === 0) {
        this.requireConversation(id);
        throw new OwleryError('INVALID_ARGUMENT', `Conversation ${id} is not in the trash; move it there before deleting it for good.`);
      }
    });
  }

  /**
   * Empties the trash: deletes for good every conversation trashed at or before `before`
   * (default: all of them), with their messages. Returns how many were deleted. Image files no
   * longer used are removed by `ImageStore.collectGarbage`.
   */
  purgeTrash(opts: { before?: number } = {}): number {
    return this.guard(() => this.db.transaction(() => this.stmt('purgeTrashBefore').run(opts.before ?? Number.MAX_SAFE_INTEGER).changes).immediate());
  }

  // Messages ------------------------------------------------------------------------------------

  /**
   * Adds a user (or system) message, with photos already stored by the image store, and makes it
   * the end of the branch on screen.
   */
  appendUserMessage(input: NewUserMessage): Message {
    const role = input.role ?? 'user';
    if (role !== 'user' && role !== 'system') throw new OwleryError('INVALID_ARGUMENT', `appendUserMessage cannot add a ${String(role)} message.`);
    if (typeof input.text !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'Message text must be a string.');
    return this.guard(() =>
      this.db.transaction(() => {
        const conv = this.requireConversation(input.conversationId);
        const parentId = this.resolveParent(conv, input.parentId);
        const now = this.now();
        const info = this.stmt('insertMessage').run({
          conversationId: conv.id,
          parentId,
          role,
          text: input.text,
          status: 'complete',
          now,
          settings: null,
          modelPackageId: null,
          modelSha256: null,
        });
        const id = Number(info.lastInsertRowid);
        (input.images ?? []).forEach((img, position) => {
          if (!this.stmt('getImage').get(img.sha256)) {
            throw new OwleryError('NOT_FOUND', `Image ${img.sha256} is not stored; add it with ImageStore.put before attaching it.`);
          }
          this.stmt('linkImage').run({ messageId: id, position, sha256: img.sha256, name: cleanName(img.name) });
        });
        this.stmt('touchConversation').run({ id: conv.id, now, leaf: id });
        return this.requireMessage(id);
      }).immediate(),
    );
  }

  /**
   * Creates an empty answer with status `partial`, to be filled by {@link appendText} /
   * {@link updateText} and closed by {@link finishMessage}; it becomes the end of the branch on
   * screen. Prefer {@link beginAnswer}, which buffers and saves the stream for you.
   */
  createAssistantMessage(input: NewAnswer): Message {
    return this.guard(() =>
      this.db.transaction(() => {
        const conv = this.requireConversation(input.conversationId);
        const parentId = this.resolveParent(conv, input.parentId);
        const now = this.now();
        const info = this.stmt('insertMessage').run({
          conversationId: conv.id,
          parentId,
          role: 'assistant',
          text: input.text ?? '',
          status: 'partial',
          now,
          settings: jsonOrNull(input.settings),
          modelPackageId: input.model?.packageId ?? null,
          modelSha256: input.model?.sha256 ?? null,
        });
        const id = Number(info.lastInsertRowid);
        this.stmt('touchConversation').run({ id: conv.id, now, leaf: id });
        return this.requireMessage(id);
      }).immediate(),
    );
  }

  /**
   * Starts a streamed answer: creates it as {@link createAssistantMessage} does and returns a
   * writer that saves the text as it grows (at most `flushIntervalMs` behind).
   */
  beginAnswer(input: NewAnswer, opts: AnswerWriterOptions = {}): AnswerWriter {
    const message = this.createAssistantMessage(input);
    return new AnswerWriter(this, message, opts);
  }

  /**
   * Regenerates an answer: a new `partial` assistant message beside `messageId` (same parent)
   * when it is an answer, or under it when it is a user message. The old answer stays as a branch.
   */
  regenerate(messageId: MessageId, opts: { settings?: GenerationSettings | null; model?: ModelRef | null } = {}): Message {
    return this.guard(() => {
      const head = this.requireHead(messageId);
      const parentId = head.role === 'assistant' ? head.parent_id : head.id;
      return this.createAssistantMessage({ conversationId: head.conversation_id, parentId, settings: opts.settings, model: opts.model });
    });
  }

  /**
   * Edits a user message by adding a new sibling with the new text (same parent); the original
   * stays as a branch. `images` omitted keeps the original's photos. Send the answer to the
   * returned message.
   */
  editMessage(messageId: MessageId, edit: { text: string; images?: ImageAttachment[] }): Message {
    return this.guard(() => {
      const original = this.requireMessage(messageId);
      if (original.role === 'assistant') {
        throw new OwleryError('INVALID_ARGUMENT', 'Only user and system messages can be edited; regenerate an answer instead.');
      }
      return this.appendUserMessage({
        conversationId: original.conversationId,
        parentId: original.parentId,
        role: original.role,
        text: edit.text,
        images: edit.images ?? original.images.map((img) => ({ sha256: img.sha256, name: img.name })),
      });
    });
  }

  /** Appends streamed text to a `partial` answer. */
  appendText(messageId: MessageId, delta: string): void {
    if (delta === '') return;
    this.guard(() => this.requireStreaming(this.stmt('appendText').run({ id: messageId, delta, now: this.now() }), messageId));
  }

  /** Replaces the text of a `partial` answer. */
  updateText(messageId: MessageId, text: string): void {
    this.guard(() => this.requireStreaming(this.stmt('updateText').run({ id: messageId, text, now: this.now() }), messageId));
  }

  /** Closes a `partial` answer with its final status, statistics, settings and model. */
  finishMessage(messageId: MessageId, result: FinishedAnswer): Message {
    if (!['complete', 'cancelled', 'error'].includes(result.status)) {
      throw new OwleryError('INVALID_ARGUMENT', `An answer cannot finish with status ${String(result.status)}.`);
    }
    return this.guard(() =>
      this.db.transaction(() => {
        const now = this.now();
        const info = this.stmt('finishMessage').run({
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
        const head = this.requireHead(messageId);
        this.stmt('touchConversationTime').run({ id: head.conversation_id, now });
        return this.requireMessage(messageId);
      }).immediate(),
    );
  }

  /** A message by id. Throws `NOT_FOUND`. */
  getMessage(id: MessageId): Message {
    return this.guard(() => this.requireMessage(id));
  }

  /** A message and its siblings (the same parent; for first messages, the other first messages), oldest first. */
  branches(messageId: MessageId): Message[] {
    return this.guard(() => {
      const head = this.requireHead(messageId);
      const rows = (head.parent_id === null
        ? this.stmt('rootSiblings').all(head.conversation_id)
        : this.stmt('siblings').all(head.parent_id)) as MessageRow[];
      const images = this.imagesFor(rows.map((r) => r.id));
      return rows.map((r) => toMessage(r, images.get(r.id) ?? []));
    });
  }

  /**
   * Switches the branch on screen to the one through `messageId` (continuing down its newest
   * replies) and returns that thread.
   */
  selectBranch(messageId: MessageId): Thread {
    return this.guard(() =>
      this.db.transaction(() => {
        const head = this.requireHead(messageId);
        const leaf = (this.stmt('newestLeafUnder').get({ id: head.id }) as { id: number }).id;
        this.stmt('setActiveLeaf').run({ id: head.conversation_id, leaf });
        return this.threadThrough(head.conversation_id, leaf);
      }).immediate(),
    );
  }

  /**
   * The thread from the first message to a leaf: through `leafId` when given (continuing below it
   * along the newest replies), else through the conversation's active leaf, else along the newest
   * first message and newest replies. Each message carries its siblings for a branch switcher.
   */
  getThread(conversationId: ConversationId, leafId?: MessageId | null): Thread {
    return this.guard(() => {
      const conv = this.requireConversation(conversationId);
      let start: number | null = null;
      if (leafId !== undefined && leafId !== null) {
        const head = this.requireHead(leafId);
        if (head.conversation_id !== conversationId) {
          throw new OwleryError('NOT_FOUND', `Message ${leafId} is not in conversation ${conversationId}.`);
        }
        start = leafId;
      } else if (conv.activeLeafId !== null) {
        const head = this.stmt('messageHead').get(conv.activeLeafId) as MessageHead | undefined;
        if (head && head.conversation_id === conversationId) start = head.id;
      }
      return this.threadThrough(conversationId, start, conv);
    });
  }

  // Images ------------------------------------------------------------------------------------

  /** Records a stored image (idempotent: an existing record keeps its data, gaining a thumbnail if it had none). */
  putImageRecord(record: Omit<ImageRecord, 'createdAt' | 'displayWidth' | 'displayHeight'>): ImageRecord {
    return this.guard(() => {
      this.stmt('insertImage').run({
        sha256: record.sha256,
        ext: record.ext,
        mime: record.mime,
        byteSize: record.byteSize,
        width: record.width,
        height: record.height,
        orientation: record.orientation,
        now: this.now(),
        thumbMime: record.thumbnail?.mime ?? null,
        thumbWidth: record.thumbnail?.width ?? null,
        thumbHeight: record.thumbnail?.height ?? null,
      });
      return this.getImage(record.sha256)!;
    });
  }

  /** The record of a stored image, or `undefined`. */
  getImage(sha256: string): ImageRecord | undefined {
    return this.guard(() => {
      const row = this.stmt('getImage').get(sha256) as ImageRow | undefined;
      return row ? toImageRecord(row) : undefined;
    });
  }

  /** Records the thumbnail made for an image. */
  setThumbnail(sha256: string, thumb: { mime: string; width: number; height: number }): void {
    this.guard(() => this.requireChange(this.stmt('setThumbnail').run({ sha256, ...thumb }), 'image', sha256));
  }

  /** Up to `limit` images that have no thumbnail yet (stored before schema v3). */
  imagesWithoutThumbnail(limit = 100): ImageRecord[] {
    return this.guard(() => (this.stmt('imagesWithoutThumbnail').all(limit) as ImageRow[]).map(toImageRecord));
  }

  /** Images no message uses, stored at or before `before` (ms). */
  orphanImages(before: number): ImageRecord[] {
    return this.guard(() => (this.stmt('orphanImages').all(before) as ImageRow[]).map(toImageRecord));
  }

  /** Deletes an image record if no message uses it; returns whether it was deleted. */
  deleteImageRecord(sha256: string): boolean {
    return this.guard(() => this.stmt('deleteImage').run(sha256).changes > 0);
  }

  // Search ------------------------------------------------------------------------------------

  /**
   * Full-text search over conversation titles and message text (questions and answers), in
   * conversations not in the trash. Title hits come first, then message hits, with highlighted
   * snippets. Message hits are ranked by relevance (bm25) unless ranking would be slow (too many
   * matches or words too common: {@link RELEVANCE_COST_LIMIT_US}); then the newest come first
   * (`messageOrder`). Any input is accepted (see `toFtsQuery`); input
   * with nothing searchable finds nothing.
   */
  search(query: string, opts: SearchOptions = {}): SearchResults {
    const parsed = parseSearch(query, { prefixLast: opts.prefixLast });
    if (parsed === null) return { hits: [], messageOrder: 'relevance' };
    const fts = parsed.query;
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? DEFAULT_SEARCH_LIMIT)), MAX_PAGE_SIZE);
    return this.guard(() => {
      const titles = this.stmt('searchTitles').all({ query: fts, limit }) as {
        id: number;
        title: string;
        updated_at: number;
        marked: string;
        rank: number;
      }[];
      const messageOrder = this.messageOrderFor(parsed);
      const messages = this.stmt(messageOrder === 'recent' ? 'searchMessagesRecent' : 'searchMessages').all({ query: fts, limit }) as {
        id: number;
        conversation_id: number;
        role: MessageRole;
        title: string;
        updated_at: number;
        marked: string;
        rank: number | null;
      }[];
      const hits: SearchHit[] = [
        ...titles.map((r): SearchHit => ({
          kind: 'title',
          conversationId: r.id,
          conversationTitle: r.title,
          messageId: null,
          role: null,
          snippet: parseHighlighted(r.marked),
          rank: r.rank,
          updatedAt: r.updated_at,
        })),
        ...messages.map((r): SearchHit => ({
          kind: 'message',
          conversationId: r.conversation_id,
          conversationTitle: r.title,
          messageId: r.id,
          role: r.role,
          snippet: parseHighlighted(r.marked),
          rank: r.rank,
          updatedAt: r.updated_at,
        })),
      ];
      return { hits, messageOrder };
    });
  }

  // Internals -----------------------------------------------------------------------------------

  /**
   * Whether ranking the message matches by bm25 fits {@link RELEVANCE_COST_LIMIT_US}.
   *
   * A few plain words are counted together first: FTS5 stops at the cap, so a common query is
   * sent to "newest first" cheaply. Phrases and long queries are costly to count (every message
   * holding all the words is read), so for them the single words are counted first, each no
   * further than the budget left; that bounds what deciding costs by about what ranking would.
   */
  private messageOrderFor(parsed: ParsedSearch): 'relevance' | 'recent' {
    const count = (query: string, cap: number): number => (this.stmt('countMessageMatches').get({ query, cap }) as { n: number }).n;
    const perMatchUs = parsed.phrases.length;
    const maxMatches = Math.floor(RELEVANCE_COST_LIMIT_US / perMatchUs);
    const totalFirst = parsed.words.length === parsed.phrases.length && parsed.words.length <= 3;
    let total = -1;
    if (totalFirst) {
      total = count(parsed.query, maxMatches + 1);
      if (total > maxMatches) return 'recent';
      if (total === 0 || parsed.words.length === 1) return 'relevance';
    }
    // Messages bm25 reads to weigh the words, 20 per µs.
    const wordBudget = RELEVANCE_COST_LIMIT_US * 20;
    let occurrences = 0;
    for (const word of parsed.words) {
      occurrences += count(word, wordBudget - occurrences + 1);
      if (occurrences > wordBudget) return 'recent';
    }
    if (total < 0) total = count(parsed.query, maxMatches + 1);
    return total * perMatchUs + occurrences / 20 <= RELEVANCE_COST_LIMIT_US ? 'relevance' : 'recent';
  }

  /** Runs `fn`, turning SQLite failures into `OwleryError`s. */
  private guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw toStoreError(err, this.file);
    }
  }

  private stmt(name: SqlName): Database.Statement {
    let s = this.statements.get(name);
    if (!s) {
      s = this.db.prepare(SQL[name]);
      this.statements.set(name, s);
    }
    return s;
  }

  private requireConversation(id: ConversationId): Conversation {
    const row = this.stmt('getConversation').get(id) as ConversationRow | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no conversation ${id}.`, { conversationId: id });
    return toConversation(row);
  }

  private requireHead(id: MessageId): MessageHead {
    const row = this.stmt('messageHead').get(id) as MessageHead | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no message ${id}.`, { messageId: id });
    return row;
  }

  private requireMessage(id: MessageId): Message {
    const row = this.stmt('getMessage').get(id) as MessageRow | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no message ${id}.`, { messageId: id });
    return toMessage(row, this.imagesFor([id]).get(id) ?? []);
  }

  private requireChange(info: Database.RunResult, what: string, id: number | string): void {
    if (info.changes === 0) throw new OwleryError('NOT_FOUND', `There is no ${what} ${id}.`);
  }

  private requireStreaming(info: Database.RunResult, id: MessageId): void {
    if (info.changes > 0) return;
    const head = this.requireHead(id);
    throw new OwleryError('INVALID_ARGUMENT', `Message ${id} is not a streaming answer (status ${head.status}).`, { messageId: id });
  }

  /** The parent for a new message: explicit (checked), or the active leaf when omitted. */
  private resolveParent(conv: Conversation, parentId: MessageId | null | undefined): MessageId | null {
    if (parentId === null) return null;
    if (parentId === undefined) {
      if (conv.activeLeafId === null) return null;
      const head = this.stmt('messageHead').get(conv.activeLeafId) as MessageHead | undefined;
      return head && head.conversation_id === conv.id ? head.id : null;
    }
    const head = this.requireHead(parentId);
    if (head.conversation_id !== conv.id) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${parentId} belongs to another conversation.`, { messageId: parentId });
    }
    return head.id;
  }

  private threadThrough(conversationId: ConversationId, start: MessageId | null, conv?: Conversation): Thread {
    const conversation = conv ?? this.requireConversation(conversationId);
    let from = start;
    if (from === null) {
      const root = this.stmt('latestRoot').get(conversationId) as { id: number } | undefined;
      if (!root) return { conversation, messages: [] };
      from = root.id;
    }
    const rows = this.stmt('thread').all({ start: from, conversationId }) as (MessageRow & { sibling_ids: string | null })[];
    const images = this.imagesFor(rows.map((r) => r.id));
    const messages = rows.map((r): ThreadMessage => {
      const siblingIds = (r.sibling_ids ?? String(r.id)).split(',').map(Number).sort((a, b) => a - b);
      return { ...toMessage(r, images.get(r.id) ?? []), siblingIds, siblingIndex: siblingIds.indexOf(r.id) };
    });
    return { conversation, messages };
  }

  private imagesFor(ids: MessageId[]): Map<MessageId, MessageImage[]> {
    const out = new Map<MessageId, MessageImage[]>();
    if (ids.length === 0) return out;
    const rows = this.stmt('imagesOfMessages').all(JSON.stringify(ids)) as (ImageRow & { message_id: number; name: string | null })[];
    for (const row of rows) {
      const { createdAt: _c, ext: _e, ...ref } = toImageRecord(row);
      const list = out.get(row.message_id) ?? [];
      list.push({ ...ref, name: row.name });
      out.set(row.message_id, list);
    }
    return out;
  }
}

/**
 * Saves a streamed answer as it grows: text pushed is written at most `flushIntervalMs` later
 * (a timer covers pauses between tokens), so a crash or kill loses at most that much. A failed
 * write (full disk, lock) keeps the text in memory and retries on the next write; {@link finish}
 * writes everything or throws with nothing lost.
 */
export class AnswerWriter {
  /** The answer being written. */
  readonly messageId: MessageId;
  /** The conversation it belongs to. */
  readonly conversationId: ConversationId;
  private readonly store: Store;
  private readonly intervalMs: number;
  private readonly onError: (err: unknown) => void;
  private pending = '';
  private saved: string;
  private lastFlush = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private done = false;
  private readonly flushListeners = new Set<(savedChars: number) => void>();

  /** Use {@link Store.beginAnswer}. */
  constructor(store: Store, message: Message, opts: AnswerWriterOptions = {}) {
    this.store = store;
    this.messageId = message.id;
    this.conversationId = message.conversationId;
    this.saved = message.text;
    this.intervalMs = Math.max(0, opts.flushIntervalMs ?? 250);
    this.onError = opts.onError ?? (() => {});
    this.lastFlush = Date.now();
  }

  /** All text so far, saved or not. */
  get text(): string {
    return this.saved + this.pending;
  }

  /** Text pushed but not yet written. */
  get unsaved(): string {
    return this.pending;
  }

  /** Adds streamed text; writes it now if the last write is `flushIntervalMs` old, else soon. */
  push(delta: string): void {
    if (this.done) throw new OwleryError('INVALID_ARGUMENT', `Answer ${this.messageId} is finished.`);
    if (delta === '') return;
    this.pending += delta;
    if (Date.now() - this.lastFlush >= this.intervalMs) this.flush();
    else this.schedule();
  }

  /** Writes buffered text now. On failure the text stays buffered and the error is thrown. */
  flush(): void {
    this.clearTimer();
    if (this.pending === '') return;
    const chunk = this.pending;
    this.store.appendText(this.messageId, chunk);
    this.saved += chunk;
    this.pending = '';
    this.lastFlush = Date.now();
    for (const fn of this.flushListeners) fn(this.saved.length);
  }

  /**
   * Calls `fn` after every write of streamed text (from a push or from the timer), with the
   * length of the text saved so far. Returns an unsubscribe function.
   */
  onDidFlush(fn: (savedChars: number) => void): () => void {
    this.flushListeners.add(fn);
    return () => this.flushListeners.delete(fn);
  }

  /**
   * Ends the answer: writes the remaining text and the final status in one transaction. On
   * failure nothing is lost: the text stays buffered and `finish` can be called again.
   */
  finish(result: Omit<FinishedAnswer, 'text'>): Message {
    this.clearTimer();
    const text = this.pending === '' ? undefined : this.saved + this.pending;
    const message = this.store.finishMessage(this.messageId, { ...result, text });
    this.saved = message.text;
    this.pending = '';
    this.done = true;
    return message;
  }

  /** Stops the timer without writing (the answer stays `partial`). */
  dispose(): void {
    this.clearTimer();
    this.done = true;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.intervalMs - (Date.now() - this.lastFlush));
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.flush();
      } catch (err) {
        this.onError(err);
        if (!this.done) this.schedule();
      }
    }, wait);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

// Row mapping -------------------------------------------------------------------------------------

function toSummary(r: ConversationRow): ConversationSummary {
  return {
    id: r.id,
    title: r.title,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    modelId: r.model_id,
    pinned: r.pinned === 1,
    deletedAt: r.deleted_at,
  };
}

function toConversation(r: ConversationRow): Conversation {
  return { ...toSummary(r), activeLeafId: r.active_leaf_id };
}

function toMessage(r: MessageRow, images: MessageImage[]): Message {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    parentId: r.parent_id,
    role: r.role,
    text: r.text,
    status: r.status,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    stats: parseJson<GenerationStats>(r.stats_json),
    settings: parseJson<GenerationSettings>(r.settings_json),
    model: r.model_package_id !== null && r.model_sha256 !== null ? { packageId: r.model_package_id, sha256: r.model_sha256 } : null,
    images,
  };
}

function toImageRecord(r: ImageRow): ImageRecord {
  const swap = r.orientation >= 5;
  return {
    sha256: r.sha256,
    ext: r.ext,
    mime: r.mime,
    byteSize: r.byte_size,
    width: r.width,
    height: r.height,
    orientation: r.orientation,
    displayWidth: swap ? r.height : r.width,
    displayHeight: swap ? r.width : r.height,
    thumbnail: r.thumb_mime !== null && r.thumb_width !== null && r.thumb_height !== null
      ? { mime: r.thumb_mime, width: r.thumb_width, height: r.thumb_height }
      : null,
    createdAt: r.created_at,
  };
}

function parseJson<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}

function checkTitle(title: string): string {
  if (typeof title !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'A title must be a string.');
  const clean = title.replace(/[\p{Cc}]+/gu, ' ').trim();
  if (clean.length > MAX_TITLE_CHARS) throw new OwleryError('INVALID_ARGUMENT', `A title can be at most ${MAX_TITLE_CHARS} characters long.`);
  return clean;
}

function cleanName(name: string | null | undefined): string | null {
  if (!name) return null;
  const base = name.split(/[\\/]/).pop() ?? '';
  return base.replace(/[\p{Cc}]+/gu, '').slice(0, 255) || null;
}

function pageSize(limit: number | undefined): number {
  const n = Math.floor(limit ?? DEFAULT_PAGE_SIZE);
  if (!Number.isFinite(n) || n < 1) throw new OwleryError('INVALID_ARGUMENT', 'A page size must be a positive number.');
  return Math.min(n, MAX_PAGE_SIZE);
}

function encodeCursor(values: number[]): string {
  return values.join('.');
}

function decodeCursor(cursor: string, n: number): number[] {
  const parts = cursor.split('.');
  const values = parts.map(Number);
  if (parts.length !== n || values.some((v) => !Number.isSafeInteger(v))) {
    throw new OwleryError('INVALID_ARGUMENT', 'The page cursor is not valid; start again from the first page.');
  }
  return values;
}
