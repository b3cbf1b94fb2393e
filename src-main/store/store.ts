/**
 * The history store: conversations, the message tree, streamed answers, image records and search,
 * on one better-sqlite3 connection. This class is the facade callers use; the work is done by its
 * parts, one per concern:
 *
 * - `conversations.ts`: the list, renaming, pinning, a chat's options, the trash, earlier imports;
 * - `presets.ts`: named presets of chat options;
 * - `messages.ts`: the message tree, streamed answers, branches and threads;
 * - `answer-writer.ts`: saving a streamed answer as it grows ({@link Store.beginAnswer});
 * - `image-records.ts`: image records and photos attached to messages (files: `images.ts`);
 * - `search.ts`: full-text search (query parsing: `search-query.ts`);
 * - `descriptions.ts`, `describe-jobs.ts`: photo descriptions and describe jobs, reached as
 *   {@link Store.descriptions} and {@link Store.describeJobs} (their SQL: `description-queries.ts`);
 * - `rows.ts`: rows ↔ domain values; `context.ts`: the connection and statements they share;
 *   `queries.ts`: all the SQL; `database.ts`: opening, migrations and backups.
 *
 * The API is synchronous (better-sqlite3 is). It runs in the main process with the other services
 * (docs/adr/0001-processes.md): every call the UI makes is short, measured by `bench/store-bench.ts`,
 * and bulk work must go in batches. One `Store` per database file, one writer. Every method turns
 * SQLite failures into `OwleryError`s (`DB_CORRUPT`, `DB_LOCKED`, `DB_READONLY`, `DISK_FULL`); a
 * missing conversation or message is `NOT_FOUND`, a bad argument `INVALID_ARGUMENT`.
 *
 * Messages form a tree per conversation (edits and regenerations add siblings; see `messages.ts`);
 * the branch on screen ends at the conversation's active leaf, and {@link Store.getThread} walks it.
 * @see docs/design.md, "Storage"
 */
import type Database from 'better-sqlite3';
import type {
  ChatOptions,
  Conversation,
  ConversationId,
  ConversationSummary,
  GenerationSettings,
  Message,
  MessageId,
  ModelRef,
  Page,
  Preset,
  SearchResults,
  Thread,
} from '../../src-shared/domain.ts';
import { AnswerWriter } from './answer-writer.ts';
import type { AnswerWriterOptions } from './answer-writer.ts';
import { StoreContext } from './context.ts';
import { Conversations } from './conversations.ts';
import type { NewConversation, PageRequest } from './conversations.ts';
import { backupDatabase, defaultBackupDir, openDatabase } from './database.ts';
import type { OpenOptions, OpenedDatabase } from './database.ts';
import { DescribeJobStore } from './describe-jobs.ts';
import { DescriptionStore } from './descriptions.ts';
import { classified } from './errors.ts';
import { ImageRecords } from './image-records.ts';
import { MessageTree } from './messages.ts';
import { Presets } from './presets.ts';
import type { PresetInput } from './presets.ts';
import type { FinishedAnswer, ImageAttachment, NewAnswer, NewUserMessage } from './messages.ts';
import type { ImageRecord } from './rows.ts';
import { HistorySearch } from './search.ts';
import type { SearchOptions } from './search.ts';

export { AnswerWriter } from './answer-writer.ts';
export type { AnswerSink, AnswerWriterOptions } from './answer-writer.ts';
export { DEFAULT_PAGE_SIZE } from './conversations.ts';
export type { NewConversation, PageRequest } from './conversations.ts';
export type { FinishedAnswer, ImageAttachment, NewAnswer, NewUserMessage } from './messages.ts';
export type { PresetInput } from './presets.ts';
export type { ImageRecord } from './rows.ts';
export { DEFAULT_SEARCH_LIMIT, RELEVANCE_COST_LIMIT_US } from './search.ts';
export type { SearchOptions } from './search.ts';

/** Options for {@link Store}. */
export interface StoreOptions {
  /** Clock in ms since the epoch (default `Date.now`); tests pass a fake one. */
  now?: () => number;
  /** The database file, for error messages and backups (default: the connection's file name). */
  file?: string;
  /** Backup folder for {@link Store.backupNow} (default `<folder of file>/backups`). */
  backupDir?: string;
}

/** The history store. See the module comment. */
export class Store {
  /** The connection (pragmas set, schema current). For tests and maintenance; prefer the methods. */
  readonly db: Database.Database;
  /** Absolute path of the database file. */
  readonly file: string;
  private readonly now: () => number;
  private readonly backupDir: string;
  private readonly conversations: Conversations;
  private readonly messages: MessageTree;
  private readonly images: ImageRecords;
  private readonly history: HistorySearch;
  /** Photo descriptions: captions, keywords, provenance, where photos were seen, their search. */
  readonly descriptions: DescriptionStore;
  /** Describe jobs and their photos. */
  readonly describeJobs: DescribeJobStore;
  private readonly presets: Presets;

  /** Wraps an open connection (see {@link openDatabase}); prefer {@link Store.open}. */
  constructor(db: Database.Database, opts: StoreOptions = {}) {
    this.db = db;
    this.file = opts.file ?? db.name;
    this.now = opts.now ?? Date.now;
    this.backupDir = opts.backupDir ?? defaultBackupDir(this.file);
    const ctx = new StoreContext(db, this.now);
    this.conversations = new Conversations(ctx);
    this.images = new ImageRecords(ctx);
    this.messages = new MessageTree(ctx, this.conversations, this.images);
    this.history = new HistorySearch(ctx);
    this.descriptions = new DescriptionStore(db, this.file, this.now);
    this.describeJobs = new DescribeJobStore(db, this.file, this.now);
    this.presets = new Presets(ctx);
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

  // Conversations (conversations.ts) -------------------------------------------------------------

  /** Starts an empty conversation. */
  createConversation(input: NewConversation = {}): Conversation {
    return this.guard(() => this.conversations.create(input));
  }

  /** A conversation by id, in the trash or not. Throws `NOT_FOUND`. */
  getConversation(id: ConversationId): Conversation {
    return this.guard(() => this.conversations.get(id));
  }

  /** Conversations not in the trash, pinned first, then by latest activity; pass `nextCursor` for the next page. */
  listConversations(opts: PageRequest = {}): Page<ConversationSummary> {
    return this.guard(() => this.conversations.list(opts));
  }

  /** Conversations in the trash, most recently deleted first. */
  listTrash(opts: PageRequest = {}): Page<ConversationSummary> {
    return this.guard(() => this.conversations.listTrash(opts));
  }

  /**
   * Sets a conversation's title (does not change its place in the list). `byUser` (default true)
   * marks it as the user's: it then no longer follows an edited first message.
   */
  renameConversation(id: ConversationId, title: string, opts: { byUser?: boolean } = {}): Conversation {
    return this.guard(() => this.conversations.rename(id, title, opts.byUser ?? true));
  }

  /** Changes a chat's instructions and generation settings (fields omitted stay). */
  setConversationOptions(id: ConversationId, patch: Partial<ChatOptions>): Conversation {
    return this.guard(() => this.conversations.setOptions(id, patch));
  }

  /** The conversation imported earlier under `importKey`, if it is still here (in the trash or not). */
  findImported(importKey: string): Conversation | undefined {
    return this.guard(() => this.conversations.findImported(importKey));
  }

  /** Pins or unpins a conversation; pinned ones list first. */
  setPinned(id: ConversationId, pinned: boolean): Conversation {
    return this.guard(() => this.conversations.setPinned(id, pinned));
  }

  /** Records which model package a conversation uses. */
  setConversationModel(id: ConversationId, modelId: string | null): Conversation {
    return this.guard(() => this.conversations.setModel(id, modelId));
  }

  /** Moves a conversation to the trash (soft delete; {@link restoreConversation} undoes it). */
  deleteConversation(id: ConversationId): Conversation {
    return this.guard(() => this.conversations.delete(id));
  }

  /** Takes a conversation out of the trash (undo of {@link deleteConversation}). */
  restoreConversation(id: ConversationId): Conversation {
    return this.guard(() => this.conversations.restore(id));
  }

  /** Deletes one trashed conversation for good, with its messages. Throws `NOT_FOUND` if it is not in the trash. */
  purgeConversation(id: ConversationId): void {
    this.guard(() => this.conversations.purge(id));
  }

  /** Empties the trash (conversations trashed at or before `before`, default all); returns how many were deleted. */
  purgeTrash(opts: { before?: number } = {}): number {
    return this.guard(() => this.conversations.purgeTrash(opts));
  }

  // Messages (messages.ts) -----------------------------------------------------------------------

  /** Adds a user (or system) message with photos already stored, as the end of the branch on screen. */
  appendUserMessage(input: NewUserMessage): Message {
    return this.guard(() => this.messages.appendUser(input));
  }

  /**
   * Creates an empty `partial` answer, filled by {@link appendText} / {@link updateText} and closed
   * by {@link finishMessage}. Prefer {@link beginAnswer}, which buffers and saves the stream for you.
   */
  createAssistantMessage(input: NewAnswer): Message {
    return this.guard(() => this.messages.createAnswer(input));
  }

  /**
   * Starts a streamed answer: creates it as {@link createAssistantMessage} does and returns a
   * writer that saves the text as it grows (at most `flushIntervalMs` behind).
   */
  beginAnswer(input: NewAnswer, opts: AnswerWriterOptions = {}): AnswerWriter {
    return new AnswerWriter(this, this.createAssistantMessage(input), opts);
  }

  /** A new `partial` answer beside `messageId` (an answer) or under it (a user message); the old one stays as a branch. */
  regenerate(messageId: MessageId, opts: { settings?: GenerationSettings | null; model?: ModelRef | null } = {}): Message {
    return this.guard(() => this.messages.regenerate(messageId, opts));
  }

  /** Edits a user message by adding a sibling with the new text (and the same photos unless given); returns it. */
  editMessage(messageId: MessageId, edit: { text: string; images?: ImageAttachment[] }): Message {
    return this.guard(() => this.messages.edit(messageId, edit));
  }

  /** Opens a finished answer again to append to it (continue after Stop); see `MessageTree.reopenAnswer`. */
  reopenAnswer(messageId: MessageId): Message {
    return this.guard(() => this.messages.reopenAnswer(messageId));
  }

  /** Continues a finished answer: reopens it and returns a writer that appends to its text. */
  continueAnswer(messageId: MessageId, opts: AnswerWriterOptions = {}): AnswerWriter {
    return new AnswerWriter(this, this.reopenAnswer(messageId), opts);
  }

  /** Appends streamed text to a `partial` answer. */
  appendText(messageId: MessageId, delta: string): void {
    this.guard(() => this.messages.appendText(messageId, delta));
  }

  /** Replaces the text of a `partial` answer. */
  updateText(messageId: MessageId, text: string): void {
    this.guard(() => this.messages.updateText(messageId, text));
  }

  /** Closes a `partial` answer with its final status, statistics, settings and model. */
  finishMessage(messageId: MessageId, result: FinishedAnswer): Message {
    return this.guard(() => this.messages.finish(messageId, result));
  }

  /** A message by id. Throws `NOT_FOUND`. */
  getMessage(id: MessageId): Message {
    return this.guard(() => this.messages.get(id));
  }

  /** A message and its siblings, oldest first. */
  branches(messageId: MessageId): Message[] {
    return this.guard(() => this.messages.branches(messageId));
  }

  /** Switches the branch on screen to the one through `messageId` and returns that thread. */
  selectBranch(messageId: MessageId): Thread {
    return this.guard(() => this.messages.selectBranch(messageId));
  }

  /** The thread through `leafId`, else through the active leaf, else along the newest messages. */
  getThread(conversationId: ConversationId, leafId?: MessageId | null): Thread {
    return this.guard(() => this.messages.thread(conversationId, leafId));
  }

  // Images (image-records.ts) --------------------------------------------------------------------

  /** Records a stored image (idempotent: an existing record keeps its data, gaining a thumbnail if it had none). */
  putImageRecord(record: Omit<ImageRecord, 'createdAt' | 'displayWidth' | 'displayHeight'>): ImageRecord {
    return this.guard(() => this.images.put(record));
  }

  /** The record of a stored image, or `undefined`. */
  getImage(sha256: string): ImageRecord | undefined {
    return this.guard(() => this.images.get(sha256));
  }

  /** Records the thumbnail made for an image. */
  setThumbnail(sha256: string, thumb: { mime: string; width: number; height: number }): void {
    this.guard(() => this.images.setThumbnail(sha256, thumb));
  }

  /** Up to `limit` images that have no thumbnail yet (stored before schema v3). */
  imagesWithoutThumbnail(limit?: number): ImageRecord[] {
    return this.guard(() => this.images.withoutThumbnail(limit));
  }

  /** Images no message uses, stored at or before `before` (ms). */
  orphanImages(before: number): ImageRecord[] {
    return this.guard(() => this.images.orphans(before));
  }

  /** Deletes an image record if no message uses it; returns whether it was deleted. */
  deleteImageRecord(sha256: string): boolean {
    return this.guard(() => this.images.delete(sha256));
  }

  // Presets (presets.ts) ------------------------------------------------------------------------

  /** Every preset, by name. */
  listPresets(): Preset[] {
    return this.guard(() => this.presets.list());
  }

  /** Adds a preset, or changes the one with `input.id` (names are unique regardless of case). */
  savePreset(input: PresetInput): Preset {
    return this.guard(() => this.presets.save(input));
  }

  /** Deletes a preset; chats it was applied to keep their options. */
  deletePreset(id: number): void {
    this.guard(() => this.presets.delete(id));
  }

  // Search (search.ts) ---------------------------------------------------------------------------

  /** Full-text search over titles and messages of conversations not in the trash; titles first. */
  search(query: string, opts: SearchOptions = {}): SearchResults {
    return this.guard(() => this.history.search(query, opts));
  }

  /** Runs `fn`, turning SQLite failures into `OwleryError`s. */
  private guard<T>(fn: () => T): T {
    return classified(this.file, fn);
  }
}
