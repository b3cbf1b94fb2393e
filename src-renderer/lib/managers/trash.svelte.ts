/**
 * The Trash screen's state: conversations moved to the trash, most recently deleted first (paged),
 * and what can be done with them: restore one, delete one for good, or empty the trash. The list
 * reloads when main says conversations changed (a delete elsewhere, an undo).
 */
import type { ConversationId, ConversationSummary } from '../../../src-shared/domain.ts';
import type { OwleryClient } from '../../../src-shared/ipc/index.ts';
import { describeError } from '../errors.ts';

/** Conversations listed per page. */
export const TRASH_PAGE_SIZE = 100;

/** The part of the client the Trash screen uses. */
export type TrashClient = Pick<OwleryClient, 'conversations'>;

/** Manages the Trash screen; see the module comment. */
export class TrashManager {
  items = $state<ConversationSummary[]>([]);
  nextCursor = $state<string | null>(null);
  loaded = $state(false);
  /** What is running: a listing, or an action on one conversation or on all. */
  busy = $state<ConversationId | 'all' | null>(null);
  error = $state<string | null>(null);

  #token = 0;

  constructor(private readonly client: TrashClient) {}

  /** Loads the first page and follows changes; returns a stop function. */
  start(): () => void {
    void this.refresh();
    return this.client.conversations.onChange(() => void this.refresh());
  }

  /** Reloads as many items as are shown (at least a page). */
  async refresh(): Promise<void> {
    const token = ++this.#token;
    try {
      const page = await this.client.conversations.list({ trash: true, limit: Math.max(TRASH_PAGE_SIZE, this.items.length) });
      if (token !== this.#token) return;
      this.items = page.items;
      this.nextCursor = page.nextCursor;
    } catch (err) {
      if (token === this.#token) this.error = describeError(err);
    } finally {
      if (token === this.#token) this.loaded = true;
    }
  }

  /** Appends the next page. */
  async loadMore(): Promise<void> {
    if (!this.nextCursor) return;
    try {
      const page = await this.client.conversations.list({ trash: true, limit: TRASH_PAGE_SIZE, cursor: this.nextCursor });
      const seen = new Set(this.items.map((c) => c.id));
      this.items = [...this.items, ...page.items.filter((c) => !seen.has(c.id))];
      this.nextCursor = page.nextCursor;
    } catch (err) {
      this.error = describeError(err);
    }
  }

  /** Takes a conversation out of the trash; resolves whether it worked. */
  restore(id: ConversationId): Promise<boolean> {
    return this.#act(id, () => this.client.conversations.restore({ id }));
  }

  /** Deletes one conversation for good. */
  purge(id: ConversationId): Promise<boolean> {
    return this.#act(id, () => this.client.conversations.purge({ id }));
  }

  /** Deletes everything in the trash for good; resolves how many were deleted (null on failure). */
  async empty(): Promise<number | null> {
    if (this.busy !== null) return null;
    this.busy = 'all';
    this.error = null;
    try {
      const { purged } = await this.client.conversations.emptyTrash();
      this.items = [];
      this.nextCursor = null;
      return purged;
    } catch (err) {
      this.error = describeError(err);
      return null;
    } finally {
      this.busy = null;
    }
  }

  async #act(id: ConversationId, call: () => Promise<unknown>): Promise<boolean> {
    if (this.busy !== null) return false;
    this.busy = id;
    this.error = null;
    try {
      await call();
      this.items = this.items.filter((c) => c.id !== id);
      return true;
    } catch (err) {
      this.error = describeError(err);
      return false;
    } finally {
      this.busy = null;
    }
  }
}
