/**
 * Search input → FTS5 query, and FTS5 highlight output → safe highlighted text.
 *
 * A user types words, not FTS5 syntax: every word becomes a quoted FTS5 string, so operators
 * (`AND`, `OR`, `NOT`, `NEAR`), column filters (`title:`), `*`, `^`, parentheses and stray quotes
 * are searched for as text or ignored, and no input can make the query invalid. Words in balanced
 * double quotes stay together as a phrase. The last word matches as a prefix while the user is
 * still typing it (`owle` finds `owlery`) once it is long enough to be selective: 4 characters, or
 * 2 for Chinese, Japanese and Korean (whose words the tokenizer does not split). Shorter prefixes
 * match so many words that FTS5 would merge huge posting lists (`the*` costs ~60 ms on 1M
 * messages), so they match whole words only.
 *
 * FTS5's `highlight()` and `snippet()` mark matches with the control characters U+0002 / U+0003;
 * {@link parseHighlighted} turns them into ranges, so the renderer never parses markup.
 */
import type { HighlightedText, TextRange } from '../../src-shared/domain.ts';
import { MAX_QUERY_CHARS, MAX_QUERY_TERMS } from '../../src-shared/limits.ts';

/** Marks the start of a match in `highlight()`/`snippet()` output. */
export const HIGHLIGHT_OPEN = '\u0002';
/** Marks the end of a match in `highlight()`/`snippet()` output. */
export const HIGHLIGHT_CLOSE = '\u0003';


/** Characters the index's tokenizer keeps in words (unicode61 categories `L* N* Co So M*`). */
const WORD_CHAR = /[\p{L}\p{N}\p{Co}\p{So}\p{M}]/u;
/** Runs of characters that separate words. */
const NON_WORD = /[^\p{L}\p{N}\p{Co}\p{So}\p{M}]+/u;
/** Scripts written without spaces, where a 2-character prefix is already selective. */
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
/** Shortest last word matched as a prefix (see the module comment). */
export const MIN_PREFIX_CHARS = 4;
/** Shortest last word matched as a prefix when it contains CJK characters. */
export const MIN_PREFIX_CHARS_CJK = 2;
/** Characters that can never be part of a word; treated as spaces. */
const CONTROL = /[\p{Cc}\p{Cs}]/gu;

/** Options for {@link toFtsQuery}. */
export interface FtsQueryOptions {
  /**
   * Match the last word as a prefix unless the input ends with a space or a closing quote, or the
   * word is shorter than {@link MIN_PREFIX_CHARS} (default true: search as you type).
   */
  prefixLast?: boolean;
}

/** Search input parsed into FTS5 pieces (see {@link parseSearch}). */
export interface ParsedSearch {
  /** The whole FTS5 query: every phrase, implicit AND. */
  query: string;
  /** One FTS5 phrase per word or quoted phrase (`"owl"`, `"red car"`, `"owle"*`), duplicates removed. */
  phrases: string[];
  /**
   * Every single word of the query as its own FTS5 phrase (quoted phrases split at non-word
   * characters), duplicates removed: what the words cost to look up, for query planning.
   */
  words: string[];
}

/**
 * Turns free text into a valid FTS5 query that matches rows containing every word (implicit AND).
 * Returns `null` when the input has nothing searchable (only spaces, punctuation or operators
 * made of symbols such as `*`).
 */
export function toFtsQuery(input: string, opts: FtsQueryOptions = {}): string | null {
  return parseSearch(input, opts)?.query ?? null;
}

/** Parses search input into FTS5 pieces; `null` when there is nothing searchable. */
export function parseSearch(input: string, opts: FtsQueryOptions = {}): ParsedSearch | null {
  const text = input.slice(0, MAX_QUERY_CHARS).normalize('NFC').replace(CONTROL, ' ');
  const terms: { text: string; phrase: boolean }[] = [];
  const quoteCount = (text.match(/"/g) ?? []).length;
  // An unbalanced last quote is a stray character, not the start of a phrase.
  const lastQuote = quoteCount % 2 === 1 ? text.lastIndexOf('"') : -1;
  let inPhrase = false;
  let current = '';
  const push = (phrase: boolean): void => {
    const t = current.trim();
    current = '';
    if (!WORD_CHAR.test(t)) return;
    if (phrase) terms.push({ text: t.replace(/\s+/gu, ' '), phrase: true });
    else for (const w of t.split(/\s+/u)) if (WORD_CHAR.test(w)) terms.push({ text: w, phrase: false });
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"' && i !== lastQuote) {
      push(inPhrase);
      inPhrase = !inPhrase;
    } else if (ch === '"') {
      current += ' ';
    } else {
      current += ch;
    }
  }
  push(inPhrase);
  if (terms.length === 0) return null;
  const used = terms.slice(0, MAX_QUERY_TERMS);
  const endsOpen = !/[\s"]$/u.test(text);
  const last = used[used.length - 1];
  const lastChars = [...last.text].filter((ch) => WORD_CHAR.test(ch)).length;
  const prefix = (opts.prefixLast ?? true) && endsOpen && used.length === terms.length && !last.phrase &&
    lastChars >= (CJK.test(last.text) ? MIN_PREFIX_CHARS_CJK : MIN_PREFIX_CHARS);
  const quote = (t: string): string => `"${t.replace(/"/g, '""')}"`;
  const phrases = used.map((t, i) => quote(t.text) + (prefix && i === used.length - 1 ? '*' : ''));
  const words: string[] = [];
  used.forEach((t, i) => {
    const parts = t.phrase ? t.text.split(NON_WORD).filter((w) => w !== '') : [t.text];
    for (const w of parts) words.push(quote(w) + (prefix && i === used.length - 1 ? '*' : ''));
  });
  return { query: [...new Set(phrases)].join(' '), phrases: [...new Set(phrases)], words: [...new Set(words)] };
}

/**
 * Splits FTS5 `highlight()`/`snippet()` output (matches between U+0002 and U+0003) into the plain
 * text and the highlighted ranges. Stray or nested markers (a stored text that itself contains
 * these control characters) are dropped, so the ranges are always sorted, non-overlapping and
 * inside the text.
 */
export function parseHighlighted(raw: string): HighlightedText {
  let text = '';
  const highlights: TextRange[] = [];
  let openAt = -1;
  for (const ch of raw) {
    if (ch === HIGHLIGHT_OPEN) {
      if (openAt < 0) openAt = text.length;
    } else if (ch === HIGHLIGHT_CLOSE) {
      if (openAt >= 0) {
        if (text.length > openAt) {
          const prev = highlights[highlights.length - 1];
          if (prev && prev.end === openAt) prev.end = text.length;
          else highlights.push({ start: openAt, end: text.length });
        }
        openAt = -1;
      }
    } else {
      text += ch;
    }
  }
  if (openAt >= 0 && text.length > openAt) highlights.push({ start: openAt, end: text.length });
  return { text, highlights };
}
