/**
 * Conversations: creating, listing (keyset-paged, pinned first), renaming, pinning, the chat's
 * options, the trash, and finding an earlier import of a conversation.
 * Runs inside the {@link Store} facade's error guard (see `context.ts`).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { DEFAULT_CHAT_OPTIONS } from '../../src-shared/domain.ts';
import type { ChatOptions, Conversation, ConversationId, ConversationSummary, Page } from '../../src-shared/domain.ts';
import { SETTING_BOUNDS } from '../../src-shared/settings.ts';
import { requireChange } from './context.ts';
import type { StoreContext } from './context.ts';
import { toConversation, toSummary } from './rows.ts';
import type { ConversationRow } from './rows.ts';
import { MAX_INSTRUCTIONS_CHARS, MAX_PAGE_SIZE, MAX_TITLE_CHARS } from '../../src-shared/limits.ts';

/** Default page size for listings (the largest is `MAX_PAGE_SIZE`, src-shared/limits.ts). */
export const DEFAULT_PAGE_SIZE = 50;

/** Input of `Store.createConversation`. */
export interface NewConversation {
  title?: string;
  modelId?: string | null;
  /** The title is the user's (it will not follow an edited first message). Default false. */
  titleSetByUser?: boolean;
  options?: Partial<ChatOptions>;
  /** What an imported conversation was (see `Store.findImported`). */
  importKey?: string | null;
}

/** One page request: `limit` rows after the previous page's `nextCursor`. */
export interface PageRequest {
  limit?: number;
  cursor?: string | null;
}

/** The conversations table. */
export class Conversations {
  constructor(private readonly ctx: StoreContext) {}

  /** Starts an empty conversation. */
  create(input: NewConversation = {}): Conversation {
    const title = checkTitle(input.title ?? '');
    const options = checkChatOptions({ ...DEFAULT_CHAT_OPTIONS, ...input.options });
    const info = this.ctx.stmt('insertConversation').run({
      title,
      now: this.ctx.now(),
      modelId: input.modelId ?? null,
      titleSetByUser: input.titleSetByUser ? 1 : 0,
      ...optionParams(options),
      importKey: input.importKey ?? null,
    });
    return this.get(Number(info.lastInsertRowid));
  }

  /** A conversation by id, in the trash or not. Throws `NOT_FOUND`. */
  get(id: ConversationId): Conversation {
    const row = this.ctx.stmt('getConversation').get(id) as ConversationRow | undefined;
    if (!row) throw new OwleryError('NOT_FOUND', `There is no conversation ${id}.`, { conversationId: id });
    return toConversation(row);
  }

  /**
   * Conversations not in the trash, pinned first, then by latest activity, `limit` at a time.
   * Pass the previous page's `nextCursor` for the next page.
   */
  list(opts: PageRequest = {}): Page<ConversationSummary> {
    const limit = pageSize(opts.limit);
    let rows: ConversationRow[];
    if (opts.cursor) {
      const [pinned, updatedAt, id] = decodeCursor(opts.cursor, 3);
      rows = this.ctx.stmt('listConversationsAfter').all({ pinned, updatedAt, id, limit }) as ConversationRow[];
    } else {
      rows = this.ctx.stmt('listConversationsFirst').all({ limit }) as ConversationRow[];
    }
    return toPage(rows, limit, (last) => [last.pinned, last.updated_at, last.id]);
  }

  /** Conversations in the trash, most recently deleted first, `limit` at a time. */
  listTrash(opts: PageRequest = {}): Page<ConversationSummary> {
    const limit = pageSize(opts.limit);
    let rows: ConversationRow[];
    if (opts.cursor) {
      const [deletedAt, id] = decodeCursor(opts.cursor, 2);
      rows = this.ctx.stmt('listTrashAfter').all({ deletedAt, id, limit }) as ConversationRow[];
    } else {
      rows = this.ctx.stmt('listTrashFirst').all({ limit }) as ConversationRow[];
    }
    return toPage(rows, limit, (last) => [last.deleted_at ?? 0, last.id]);
  }

  /**
   * Sets a conversation's title (does not change its place in the list). `byUser` (default true)
   * marks the title as the user's, so it no longer follows an edited first message.
   */
  rename(id: ConversationId, title: string, byUser = true): Conversation {
    const clean = checkTitle(title);
    requireChange(this.ctx.stmt('renameConversation').run({ id, title: clean, byUser: byUser ? 1 : 0 }), 'conversation', id);
    return this.get(id);
  }

  /** Changes a chat's instructions and generation settings (fields omitted stay). */
  setOptions(id: ConversationId, patch: Partial<ChatOptions>): Conversation {
    const options = checkChatOptions({ ...this.get(id).options, ...patch });
    this.ctx.stmt('setConversationOptions').run({ id, ...optionParams(options) });
    return this.get(id);
  }

  /** The conversation imported earlier with this key, if it is still here (in the trash or not). */
  findImported(importKey: string): Conversation | undefined {
    const row = this.ctx.stmt('conversationByImportKey').get(importKey) as ConversationRow | undefined;
    return row ? toConversation(row) : undefined;
  }

  /** Pins or unpins a conversation; pinned ones list first. */
  setPinned(id: ConversationId, pinned: boolean): Conversation {
    requireChange(this.ctx.stmt('pinConversation').run({ id, pinned: pinned ? 1 : 0 }), 'conversation', id);
    return this.get(id);
  }

  /** Records which model package a conversation uses. */
  setModel(id: ConversationId, modelId: string | null): Conversation {
    requireChange(this.ctx.stmt('setConversationModel').run({ id, modelId }), 'conversation', id);
    return this.get(id);
  }

  /**
   * Moves a conversation to the trash (soft delete): it leaves the list and search, and
   * {@link restore} brings it back unchanged. Deleting a trashed one changes nothing.
   */
  delete(id: ConversationId): Conversation {
    this.get(id);
    this.ctx.stmt('softDeleteConversation').run({ id, now: this.ctx.now() });
    return this.get(id);
  }

  /** Takes a conversation out of the trash (undo of {@link delete}). */
  restore(id: ConversationId): Conversation {
    requireChange(this.ctx.stmt('restoreConversation').run({ id }), 'conversation', id);
    return this.get(id);
  }

  /** Deletes one trashed conversation for good, with its messages. Throws `NOT_FOUND` if it is not in the trash. */
  purge(id: ConversationId): void {
    const info = this.ctx.stmt('purgeConversation').run(id);
    if (info.changes === 0) {
      this.get(id);
      throw new OwleryError('INVALID_ARGUMENT', `Conversation ${id} is not in the trash; move it there before deleting it for good.`);
    }
  }

  /**
   * Empties the trash: deletes for good every conversation trashed at or before `before`
   * (default: all of them), with their messages. Returns how many were deleted. Image files no
   * longer used are removed by `ImageStore.collectGarbage`.
   */
  purgeTrash(opts: { before?: number } = {}): number {
    return this.ctx.write(() => this.ctx.stmt('purgeTrashBefore').run(opts.before ?? Number.MAX_SAFE_INTEGER).changes);
  }
}

/** A page of summaries; a full page gets a cursor made from its last row's sort key. */
function toPage(rows: ConversationRow[], limit: number, sortKey: (last: ConversationRow) => number[]): Page<ConversationSummary> {
  const last = rows[rows.length - 1];
  return {
    items: rows.map(toSummary),
    nextCursor: rows.length === limit && last ? sortKey(last).join('.') : null,
  };
}

/** Checks chat options (instructions length, settings within the app settings' bounds). */
export function checkChatOptions(o: ChatOptions): ChatOptions {
  if (typeof o.instructions !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'Instructions must be text.');
  const instructions = o.instructions.replace(/\r\n?/g, '\n');
  if (instructions.length > MAX_INSTRUCTIONS_CHARS) {
    throw new OwleryError('INVALID_ARGUMENT', `Instructions can be at most ${MAX_INSTRUCTIONS_CHARS.toLocaleString('en')} characters long.`);
  }
  const within = (value: number | null, bounds: { min: number; max: number }, what: string, integer: boolean): number | null => {
    if (value === null) return null;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < bounds.min || value > bounds.max || (integer && !Number.isInteger(value))) {
      throw new OwleryError('INVALID_ARGUMENT', `${what} must be ${integer ? 'a whole number ' : ''}from ${bounds.min} to ${bounds.max}.`);
    }
    return value;
  };
  return {
    instructions,
    temperature: within(o.temperature, SETTING_BOUNDS.temperature, 'Temperature', false),
    maxNewTokens: within(o.maxNewTokens, SETTING_BOUNDS.maxNewTokens, 'The answer length', true),
  };
}

/** Chat options as statement parameters. */
export function optionParams(o: ChatOptions): { instructions: string; temperature: number | null; maxNewTokens: number | null } {
  return { instructions: o.instructions, temperature: o.temperature, maxNewTokens: o.maxNewTokens };
}

function checkTitle(title: string): string {
  if (typeof title !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'A title must be a string.');
  const clean = title.replace(/[\p{Cc}]+/gu, ' ').trim();
  if (clean.length > MAX_TITLE_CHARS) throw new OwleryError('INVALID_ARGUMENT', `A title can be at most ${MAX_TITLE_CHARS} characters long.`);
  return clean;
}

function pageSize(limit: number | undefined): number {
  const n = Math.floor(limit ?? DEFAULT_PAGE_SIZE);
  if (!Number.isFinite(n) || n < 1) throw new OwleryError('INVALID_ARGUMENT', 'A page size must be a positive number.');
  return Math.min(n, MAX_PAGE_SIZE);
}

function decodeCursor(cursor: string, n: number): number[] {
  const parts = cursor.split('.');
  const values = parts.map(Number);
  if (parts.length !== n || values.some((v) => !Number.isSafeInteger(v))) {
    throw new OwleryError('INVALID_ARGUMENT', 'The page cursor is not valid; start again from the first page.');
  }
  return values;
}
