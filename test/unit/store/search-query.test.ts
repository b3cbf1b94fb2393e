import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, parseHighlighted, parseSearch, toFtsQuery } from '../../../src-main/store/search-query.ts';

const O = HIGHLIGHT_OPEN;
const C = HIGHLIGHT_CLOSE;

describe('toFtsQuery', () => {
  it('quotes every word and ANDs them, matching the last long word as a prefix', () => {
    expect(toFtsQuery('tawny owl')).toBe('"tawny" "owl"');
    expect(toFtsQuery('tawny owls')).toBe('"tawny" "owls"*');
    expect(toFtsQuery('owls ')).toBe('"owls"');
    expect(toFtsQuery('owls', { prefixLast: false })).toBe('"owls"');
  });

  it('keeps balanced quotes as phrases and treats a stray quote as a space', () => {
    expect(toFtsQuery('"red car" parked')).toBe('"red car" "parked"*');
    expect(toFtsQuery('say "hello')).toBe('"say" "hello"*');
    expect(toFtsQuery('"')).toBeNull();
    expect(toFtsQuery('"""')).toBeNull();
  });

  it('turns operators, column filters and syntax characters into plain text', () => {
    expect(toFtsQuery('cats AND dogs')).toBe('"cats" "AND" "dogs"*');
    expect(toFtsQuery('NOT OR NEAR')).toBe('"NOT" "OR" "NEAR"*');
    expect(toFtsQuery('title:owl')).toBe('"title:owl"*');
    expect(toFtsQuery('a*b (c) ^d')).toBe('"a*b" "(c)" "^d"');
    expect(toFtsQuery('* - + ( ) : ^')).toBeNull();
    expect(toFtsQuery('   ')).toBeNull();
  });

  it('keeps emoji and non-Latin words, with shorter prefixes for CJK', () => {
    expect(toFtsQuery('🦉')).toBe('"🦉"');
    expect(toFtsQuery('नमस्ते')).toBe('"नमस्ते"*');
    expect(toFtsQuery('東京')).toBe('"東京"*');
    expect(toFtsQuery('ow')).toBe('"ow"');
  });

  it('drops control characters and caps the number of words', () => {
    expect(toFtsQuery('owl\u0000\u0002 tree')).toBe('"owl" "tree"*');
    const many = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    const parsed = parseSearch(many)!;
    expect(parsed.phrases).toHaveLength(16);
    expect(parsed.query.endsWith('*')).toBe(false); // the typed last word was cut off, so no prefix
  });

  it('lists the single words of phrases for query planning, without duplicates', () => {
    expect(parseSearch('"the owl" the owls')).toEqual({
      query: '"the owl" "the" "owls"*',
      phrases: ['"the owl"', '"the"', '"owls"*'],
      words: ['"the"', '"owl"', '"owls"*'],
    });
  });
});

describe('toFtsQuery against a real FTS5 index', () => {
  let dir: string;
  let db: Database.Database;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'owlery-fts-'));
    db = new Database(join(dir, 'fts.sqlite'));
    db.exec(`CREATE VIRTUAL TABLE t USING fts5(text, tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co So M*'")`);
    const ins = db.prepare('INSERT INTO t (rowid, text) VALUES (?, ?)');
    ins.run(1, 'The tawny owl sits AND waits in the café 🦉');
    ins.run(2, 'नमस्ते दुनिया, a red car near 東京タワー');
    ins.run(3, 'Say "hello" to the owls: title:owl');
  });
  afterAll(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const hits = (input: string): number[] => {
    const q = toFtsQuery(input);
    if (q === null) return [];
    return (db.prepare('SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid').all(q) as { rowid: number }[]).map((r) => r.rowid);
  };

  it('never produces an invalid query, whatever the input', () => {
    const odd = ['"', '""', '"""', '*', '**owl', 'owl*', 'AND', 'OR', 'NOT', 'NEAR(a b)', 'a OR', '(', ')', '{col}:x', '^', '-x', '+', ':',
      'title:', "'", '`', '\\', '\u0000', '🦉🦉', '👍🏽', '👨‍👩‍👧', 'x'.repeat(2000), '"a" "b', 'é', 'e\u0301', '\uD800', '%', '_', '[a]'];
    for (const input of odd) expect(() => hits(input), input).not.toThrow();
  });

  it('finds words, prefixes, phrases, diacritic-folded and non-Latin text', () => {
    expect(hits('tawny')).toEqual([1]);
    expect(hits('tawn')).toEqual([1]);
    expect(hits('AND')).toEqual([1]);
    expect(hits('cafe')).toEqual([1]);
    expect(hits('🦉')).toEqual([1]);
    expect(hits('नमस्ते')).toEqual([2]);
    expect(hits('東京')).toEqual([2]);
    expect(hits('"red car"')).toEqual([2]);
    expect(hits('"car red"')).toEqual([]);
    expect(hits('"hello')).toEqual([3]);
    expect(hits('title:owl')).toEqual([3]);
    expect(hits('owl')).toEqual([1, 3]); // 3 has "title:owl"
    expect(hits('owls')).toEqual([3]);
  });
});

describe('parseHighlighted', () => {
  it('turns markers into ranges', () => {
    expect(parseHighlighted(`a ${O}tawny${C} ${O}owl${C}!`)).toEqual({
      text: 'a tawny owl!',
      highlights: [{ start: 2, end: 7 }, { start: 8, end: 11 }],
    });
  });

  it('indexes in UTF-16 code units, like JS strings', () => {
    const r = parseHighlighted(`🦉 ${O}café${C}`);
    expect(r.text.slice(r.highlights[0].start, r.highlights[0].end)).toBe('café');
  });

  it('merges adjacent ranges and drops stray or nested markers', () => {
    expect(parseHighlighted(`${O}ab${C}${O}cd${C}`).highlights).toEqual([{ start: 0, end: 4 }]);
    expect(parseHighlighted(`x${C}y`)).toEqual({ text: 'xy', highlights: [] });
    expect(parseHighlighted(`${O}a${O}b${C}c${C}`)).toEqual({ text: 'abc', highlights: [{ start: 0, end: 2 }] });
    expect(parseHighlighted(`${O}${C}x`)).toEqual({ text: 'x', highlights: [] });
    expect(parseHighlighted(`ab${O}cd`)).toEqual({ text: 'abcd', highlights: [{ start: 2, end: 4 }] });
  });

  it('keeps markup in the text as text', () => {
    const r = parseHighlighted(`<b>${O}x${C}</b>`);
    expect(r.text).toBe('<b>x</b>');
    expect(r.highlights).toEqual([{ start: 3, end: 4 }]);
  });
});
