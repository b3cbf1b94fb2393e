/**
 * The model's free text → a caption and keywords.
 *
 * A language model writes what it likes: a keyword answer may be a comma list, a numbered or
 * bulleted list, hashtags, one keyword per line, a sentence ("Keywords: a, b and c."), with
 * quotes, trailing dots, capitals and repeats — or, from a small or broken model, noise. The
 * parsers keep what looks like a keyword or a caption and drop the rest; they never throw.
 */

/** Most keywords kept per photo. */
export const MAX_KEYWORDS = 15;
/** Longest keyword kept, in characters and in words. */
export const MAX_KEYWORD_CHARS = 40;
export const MAX_KEYWORD_WORDS = 4;
/** Longest caption kept, in characters (cut at a word, with an ellipsis). */
export const MAX_CAPTION_CHARS = 300;

/** Words that say nothing about a photo of a photo library (or are the list's own label). */
const USELESS = new Set([
  'keyword', 'keywords', 'tag', 'tags', 'hashtags', 'photo', 'image', 'picture', 'photograph', 'none', 'n/a', 'na', 'etc', 'and', 'or',
  'the', 'a', 'an', 'of', 'in', 'on', 'with', 'this', 'that', 'it', 'is', 'are', 'lower case', 'lowercase', 'comma', 'commas', 'other',
]);

/** A label in front of a list: "Keywords:", "Here are 10 keywords for this photo:", "Tags -". */
const LIST_LABEL = /^[^\n:]{0,80}\b(?:keywords?|tags?|hashtags?)\b[^\n:]{0,40}(?::|\s-\s)/i;
/** Bullets and numbering at the start of an item: "-", "*", "•", "1.", "2)", "(3)", "#". */
const ITEM_PREFIX = /^(?:[-*•·‣◦▪–—>]+|\(?\d{1,3}[.):]|#)\s*/u;
/** Characters a keyword may hold besides letters, marks, digits and spaces. */
const KEYWORD_CHARS = /^[\p{L}\p{M}\p{N}' &.-]+$/u;
/** Scripts written without spaces. */
const CJK = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}]/u;
/** Separators between list items: commas (also CJK ones), semicolons, new lines, pipes, hashtags, bullets. */
const SEPARATORS = /[,，、;；\n\r|]+|\s#(?=\p{L})|\s[•·]\s/u;

/**
 * Keywords from a model's answer: split at list separators, each item trimmed of bullets,
 * numbering, quotes, hashtags, leading articles and "and", and trailing punctuation, then lower-
 * cased; items that are not keyword-like (no letter, too long, odd characters, a label or a filler
 * word) are dropped, repeats removed, and at most {@link MAX_KEYWORDS} kept, in the order written.
 */
export function parseKeywords(text: string): string[] {
  const body = clean(text).replace(LIST_LABEL, ' ');
  const out: string[] = [];
  const seen = new Set<string>();
  for (const raw of body.split(new RegExp(SEPARATORS.source, 'gu'))) {
    const keyword = normalizeKeyword(raw);
    if (!keyword || seen.has(keyword)) continue;
    seen.add(keyword);
    out.push(keyword);
    if (out.length === MAX_KEYWORDS) break;
  }
  return out;
}

/** One list item → a keyword, or null when it does not look like one. */
export function normalizeKeyword(item: string): string | null {
  let k = item.normalize('NFC').replace(/\s+/gu, ' ').trim();
  for (let i = 0; i < 3; i++) {
    const before = k;
    k = k.replace(ITEM_PREFIX, '').replace(/^["'“”‘’«»`([{]+|["'“”‘’«»`)\]}]+$/gu, '').replace(/[.!?:;…]+$/u, '').trim();
    if (k === before) break;
  }
  k = k.toLowerCase().replace(/^(?:and|or|also|plus)\s+/u, '').replace(/^(?:a|an|the)\s+/u, '').trim();
  // One character is a word only in scripts written without spaces (猫).
  if (k.length > MAX_KEYWORD_CHARS || (k.length < 2 && !CJK.test(k))) return null;
  if (!/\p{L}/u.test(k) || !KEYWORD_CHARS.test(k)) return null;
  if (k.split(' ').length > MAX_KEYWORD_WORDS) return null;
  if (USELESS.has(k)) return null;
  // A run of one character ("aaaa", "----") or a lone dotted abbreviation of filler.
  if (/^(.)\1+$/u.test(k.replace(/ /g, ''))) return null;
  return k;
}

/**
 * A caption from a model's answer: one paragraph, a leading "Caption:" label and wrapping quotes
 * removed, the first two sentences, at most {@link MAX_CAPTION_CHARS} characters (cut at a word).
 * Empty when the answer holds no words.
 */
export function parseCaption(text: string): string {
  let c = clean(text).replace(/\s+/gu, ' ').trim();
  c = c.replace(/^(?:caption|description)\s*[:-]\s*/iu, '');
  c = c.replace(/^["“”'‘]+/u, '').replace(/["“”'’]+$/u, '').trim();
  if (!/[\p{L}\p{N}]/u.test(c)) return '';
  // Sentence ends: `.`, `!`, `?` before a space or the end ("3.5 m" and "e.g.," go on), CJK stops anywhere.
  const ends = [...c.matchAll(/[.!?]+(?=\s|$)|[。！？]+/gu)];
  if (ends.length > 2) c = c.slice(0, ends[1].index + ends[1][0].length);
  if (c.length > MAX_CAPTION_CHARS) {
    const cut = c.slice(0, MAX_CAPTION_CHARS - 1);
    const space = cut.lastIndexOf(' ');
    c = `${(space > MAX_CAPTION_CHARS / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:]+$/u, '')}…`;
  }
  return c;
}

/** Control characters and special tokens the decoder may let through, as spaces. */
function clean(text: string): string {
  return text
    .replace(/<\/?s>|<unk>|<\|[^|>]*\|>/g, ' ')
    .replace(/[\p{Cc}\p{Cs}\p{Co}\u200b-\u200f\u2028\u2029\ufeff]/gu, (ch) => (ch === '\n' ? '\n' : ' '));
}
