/**
 * An answer in a Markdown export: the model's Markdown as it wrote it (lists, code, tables, links
 * and emphasis stay Markdown), changed only where it would break the export file's own structure.
 *
 * - Headings move down two levels (`#` becomes `###`, at most `######`; a setext heading becomes an
 *   ATX one), so an answer's headings sit below the export's `#` title and `##` speaker headings.
 * - Raw HTML outside code is escaped (`<b>` becomes `&lt;b>`): the app shows it as text, and an
 *   HTML tag in an answer must not become markup, or hide the rest of the file, in a Markdown viewer.
 *   Autolinks (`<https://…>`) are not HTML and stay.
 * - A code fence left open (an answer stopped in the middle of a code block) is closed, so the rest
 *   of the file does not turn into code.
 * - Control and bidirectional-override characters are shown as `[U+XXXX]` tags, as everywhere in
 *   exports (./text.ts).
 *
 * Nothing can become front matter: an answer never starts the file (the conversation's `#` title
 * does).
 */
import MarkdownIt from 'markdown-it';
import type { Token } from 'markdown-it';
import { normaliseText, tagUnsafe } from './text.ts';

/** Levels an answer's headings move down in a Markdown export. */
export const ANSWER_HEADING_SHIFT = 2;

/** Parses the way CommonMark viewers do (raw HTML recognised as HTML), to find code and headings. */
const parser = new MarkdownIt({ html: true, linkify: false });

/** `<` that starts an HTML tag, comment, processing instruction or declaration (CommonMark §6.6). */
const HTML_START = /^<(?:[A-Za-z][A-Za-z0-9-]*(?=[\s/>]|$)|\/[A-Za-z]|!--|\?|![A-Za-z]|!\[CDATA\[)/;
/** ASCII punctuation a backslash escapes. */
const ESCAPABLE = /[!-/:-@[-`{-~]/;

/** The answer's Markdown for an export (see the module comment). */
export function answerToMarkdown(text: string): string {
  const source = tagUnsafe(normaliseText(text)).replace(/\n+$/, '');
  const lines = source.split('\n');
  const tokens = parser.parse(source, {});
  const code = new Set<number>();
  let openFence: string | null = null;
  for (const t of tokens) {
    if (!t.map) continue;
    if (t.type === 'fence' || t.type === 'code_block') {
      for (let l = t.map[0]; l < t.map[1]; l++) code.add(l);
      if (t.type === 'fence' && t.level === 0) openFence = fenceLeftOpen(t, lines) ? t.markup : null;
    } else if (t.type === 'heading_open') {
      shiftHeading(t, lines);
    }
  }
  const out = escapeHtmlOutsideCode(lines, code);
  if (openFence) out.push(openFence);
  return out.join('\n');
}

/** True when a top-level fence runs to the end of the text without its closing line. */
function fenceLeftOpen(fence: Token, lines: readonly string[]): boolean {
  const [start, end] = fence.map!;
  if (end < lines.length) return false;
  if (end - start < 2) return true;
  const last = lines[end - 1]!.trim();
  const char = fence.markup[0]!;
  return !(last.length >= fence.markup.length && [...last].every((c) => c === char));
}

/** Moves a heading down {@link ANSWER_HEADING_SHIFT} levels, rewriting its lines in place. */
function shiftHeading(open: Token, lines: string[]): void {
  const [start, end] = open.map!;
  const level = Math.min(6, Number(open.tag.slice(1)) + ANSWER_HEADING_SHIFT);
  if (open.markup.startsWith('#')) {
    lines[start] = lines[start]!.replace(/#{1,6}(?=[ \t]|$)/, '#'.repeat(level));
  } else if (open.level === 0) {
    // Setext: the text lines, then an underline of = or -. One ATX line instead.
    const content = lines.slice(start, end - 1).map((l) => l.trim()).join(' ');
    lines[start] = `${'#'.repeat(level)} ${content}`;
    for (let l = start + 1; l < end; l++) lines[l] = '';
  }
}

/**
 * Escapes the `<` of raw HTML in every line that is not code, leaving code spans (`` `<b>` ``) and
 * backslash escapes alone. Blocks of consecutive lines are scanned together, as a code span may run
 * over a line break.
 */
function escapeHtmlOutsideCode(lines: readonly string[], code: ReadonlySet<number>): string[] {
  const out: string[] = [];
  let run: string[] = [];
  const flush = (): void => {
    if (run.length) out.push(...escapeHtmlInline(run.join('\n')).split('\n'));
    run = [];
  };
  lines.forEach((line, i) => {
    if (code.has(i)) {
      flush();
      out.push(line);
    } else run.push(line);
  });
  flush();
  return out;
}

function escapeHtmlInline(text: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '\\' && i + 1 < text.length && ESCAPABLE.test(text[i + 1]!)) {
      out += text.slice(i, i + 2);
      i += 2;
    } else if (c === '`') {
      const run = /^`+/.exec(text.slice(i))![0];
      const close = findClosingRun(text, i + run.length, run.length);
      const end = close < 0 ? i + run.length : close + run.length;
      out += text.slice(i, end);
      i = end;
    } else if (c === '<' && HTML_START.test(text.slice(i, i + 12))) {
      out += '&lt;';
      i++;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index of the next run of exactly `n` backticks at or after `from`, or -1. */
function findClosingRun(text: string, from: number, n: number): number {
  const re = /`+/g;
  re.lastIndex = from;
  for (let m = re.exec(text); m; m = re.exec(text)) if (m[0].length === n) return m.index;
  return -1;
}
