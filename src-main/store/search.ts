/**
 * Full-text search over conversation titles and message text (FTS5), choosing per query between
 * ranking by relevance and listing the newest matches, whichever stays fast. The query language is
 * `search-query.ts`'s. Runs inside the {@link Store} facade's error guard (see `context.ts`).
 */
import type { MessageRole, SearchHit, SearchResults } from '../../src-shared/domain.ts';
import type { StoreContext } from './context.ts';
import { MAX_PAGE_SIZE } from '../../src-shared/limits.ts';
import { parseHighlighted, parseSearch } from './search-query.ts';
import type { ParsedSearch } from './search-query.ts';

/** Default number of hits per kind in `Store.search`. */
export const DEFAULT_SEARCH_LIMIT = 20;
/**
 * Most work, in microseconds, spent ranking message hits by bm25 (measured on 1M messages: about
 * 1 µs per match per word or phrase of the query, plus 0.05 µs per message holding each word,
 * which bm25 reads to weigh the word). Queries that would cost more list the newest matches first
 * instead, which FTS5 does without reading them all.
 */
export const RELEVANCE_COST_LIMIT_US = 12_000;

/** Options for `Store.search`. */
export interface SearchOptions {
  /** Most hits of each kind (titles, messages); default 20, at most 500. */
  limit?: number;
  /** Match the last word as a prefix while typing (default true). */
  prefixLast?: boolean;
}

interface TitleHitRow {
  id: number;
  title: string;
  updated_at: number;
  marked: string;
  rank: number;
}

interface MessageHitRow {
  id: number;
  conversation_id: number;
  role: MessageRole;
  title: string;
  updated_at: number;
  marked: string;
  rank: number | null;
}

/** Search over the history. */
export class HistorySearch {
  constructor(private readonly ctx: StoreContext) {}

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
    const titles = this.ctx.stmt('searchTitles').all({ query: fts, limit }) as TitleHitRow[];
    const messageOrder = this.messageOrderFor(parsed);
    const messages = this.ctx.stmt(messageOrder === 'recent' ? 'searchMessagesRecent' : 'searchMessages').all({ query: fts, limit }) as MessageHitRow[];
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
  }

  /**
   * Whether ranking the message matches by bm25 fits {@link RELEVANCE_COST_LIMIT_US}.
   *
   * A few plain words are counted together first: FTS5 stops at the cap, so a common query is
   * sent to "newest first" cheaply. Phrases and long queries are costly to count (every message
   * holding all the words is read), so for them the single words are counted first, each no
   * further than the budget left; that bounds what deciding costs by about what ranking would.
   */
  private messageOrderFor(parsed: ParsedSearch): 'relevance' | 'recent' {
    const count = (query: string, cap: number): number => (this.ctx.stmt('countMessageMatches').get({ query, cap }) as { n: number }).n;
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
}
