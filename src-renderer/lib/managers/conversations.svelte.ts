/**
 * The sidebar's state: conversations by recency (pinned first, as main lists them), full-text
 * search with highlighted hits, rename, pin, and delete with undo (delete moves to the trash,
 * undo restores). The list reloads whenever main says conversations changed.
 */
import type { ConversationId, ConversationSummary, SearchHit } from '../../../src-shared/domain.ts';
import type { OwleryClient } from '../../../src-shared/ipc/index.ts';
import { MAX_PAGE_SIZE, MAX_TITLE_CHARS } from '../../../src-shared/limits.ts';
import { describeError } from '../errors.ts';

/** Conversations fetched per page. */
export const PAGE_SIZE = 100;

/** Sidebar list and search. */
export class ConversationsManager {
  items = $state<ConversationSummary[]>([]);
  nextCursor = $state<string | null>(null);
  loaded = $state(false);
  error = $state<string | null>(null);
  /** The search box's text. */
  query = $state('');
  /** Hits of the last finished search for {@link query}; `null` when not searching. */
  hits = $state<SearchHit[] | null>(null);
  searching = $state(false);

  readonly #client: OwleryClient;
  readonly #debounceMs: number;
  #listToken = 0;
  #searchToken = 0;
  #searchTimer: ReturnType<typeof setTimeout> | undefined;

  /** `debounceMs`: wait after typing before searching. */
  constructor(client: OwleryClient, debounceMs = 150) {
    this.#client = client;
    this.#debounceMs = debounceMs;
  }

  /** Loads the list and follows `conversations:changed`; returns a stop function. */
  start(): () => void {
    const off = this.#client.conversations.onChange(() => {
      void this.refresh();
      if (this.query.trim()) this.#runSearch(this.query);
    });
    void this.refresh();
    return () => {
      off();
      clearTimeout(this.#searchTimer);
    };
  }

  /** Reloads the first page (as many items as are shown, at least a page). */
  async refresh(): Promise<void> {
    const token = ++this.#listToken;
    try {
      const page = await this.#client.conversations.list({ limit: Math.min(MAX_PAGE_SIZE, Math.max(PAGE_SIZE, this.items.length)) });
      if (token !== this.#listToken) return;
      this.items = page.items;
      this.nextCursor = page.nextCursor;
      this.error = null;
    } catch (err) {
      if (token === this.#listToken) this.error = describeError(err);
    } finally {
      if (token === this.#listToken) this.loaded = true;
    }
  }

  /** Appends the next page. */
  async loadMore(): Promise<void> {
    if (!this.nextCursor) return;
    const token = ++this.#listToken;
    try {
      const page = await this.#client.conversations.list({ limit: PAGE_SIZE, cursor: this.nextCursor });
      if (token !== this.#listToken) return;
      const seen = new Set(this.items.map((c) => c.id));
      this.items = [...this.items, ...page.items.filter((c) => !seen.has(c.id))];
      this.nextCursor = page.nextCursor;
    } catch (err) {
      if (token === this.#listToken) this.error = describeError(err);
    }
  }

  /** A listed conversation, if loaded. */
  find(id: ConversationId | null): ConversationSummary | undefined {
    return id === null ? undefined : this.items.find((c) => c.id === id);
  }

  /** Renames a conversation (a blank title is refused). */
  async rename(id: ConversationId, title: string): Promise<void> {
    const clean = title.replace(/\s+/g, ' ').trim().slice(0, MAX_TITLE_CHARS);
    if (!clean) return;
    const updated = await this.#client.conversations.rename({ id, title: clean });
    this.#patch(updated);
  }

  /** Pins or unpins a conversation. */
  async setPinned(id: ConversationId, pinned: boolean): Promise<void> {
    const updated = await this.#client.conversations.pin({ id, pinned });
    this.#patch(updated);
    await this.refresh();
  }

  /** Moves a conversation to the trash; returns it (for the undo toast). */
  async remove(id: ConversationId): Promise<ConversationSummary> {
    const removed = await this.#client.conversations.delete({ id });
    this.items = this.items.filter((c) => c.id !== id);
    if (this.hits) this.hits = this.hits.filter((h) => h.conversationId !== id);
    return removed;
  }

  /** Brings a conversation back from the trash. */
  async restore(id: ConversationId): Promise<void> {
    await this.#client.conversations.restore({ id });
    await this.refresh();
  }

  /** Sets the search text; searches after a short pause (clears the hits when empty). */
  setQuery(query: string): void {
    this.query = query;
    clearTimeout(this.#searchTimer);
    if (!query.trim()) {
      ++this.#searchToken;
      this.hits = null;
      this.searching = false;
      return;
    }
    this.searching = true;
    this.#searchTimer = setTimeout(() => this.#runSearch(query), this.#debounceMs);
  }

  /** Searches now for the current text (Enter in the search box). */
  searchNow(): Promise<void> {
    clearTimeout(this.#searchTimer);
    return this.#runSearch(this.query);
  }

  async #runSearch(query: string): Promise<void> {
    const token = ++this.#searchToken;
    if (!query.trim()) return;
    this.searching = true;
    try {
      const results = await this.#client.conversations.search({ query: query.slice(0, 1000), limit: 50 });
      if (token !== this.#searchToken) return;
      this.hits = results.hits;
      this.error = null;
    } catch (err) {
      if (token !== this.#searchToken) return;
      this.hits = [];
      this.error = describeError(err);
    } finally {
      if (token === this.#searchToken) this.searching = false;
    }
  }

  #patch(updated: ConversationSummary): void {
    this.items = this.items.map((c) => (c.id === updated.id ? { ...c, ...updated } : c));
  }
}
