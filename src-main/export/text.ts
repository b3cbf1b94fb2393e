/**
 * Making stored text safe to put in an exported file.
 *
 * Messages and titles are untrusted: a model (or a pasted message) can produce markup, links,
 * control characters or bidirectional overrides (U+202E turns `gpj.exe` into `exe.jpg` on screen).
 * Exports therefore show every such character as a visible `[U+202E]` tag instead of letting it act,
 * and escape everything else for the target format so that no stored text is ever interpreted.
 */

/**
 * Characters shown as `[U+XXXX]` tags: C0 and C1 controls other than tab and line feed, bidirectional
 * formatting (embeddings, overrides, isolates, marks), the byte-order mark / zero-width no-break
 * space, and interlinear annotation controls.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff\ufff9-\ufffb]/u;
const UNSAFE_CHARS_G = new RegExp(UNSAFE_CHARS.source, 'gu');
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** One piece of text: plain text, or an unsafe character to show as a tag. */
export type TextPiece = { kind: 'text'; text: string } | { kind: 'control'; codePoint: number; label: string };

/** `U+202E` for a code point. */
export function codePointLabel(cp: number): string {
  return `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Normalises text for export: line endings (CR LF, CR, U+2028, U+2029) become `\n`, lone surrogates
 * become U+FFFD.
 */
export function normaliseText(text: string): string {
  return text.replace(LONE_SURROGATE, '\ufffd').replace(/\r\n?|[\u2028\u2029]/g, '\n');
}

/** Splits normalised text into plain runs and unsafe characters (see the module comment). */
export function splitUnsafe(text: string): TextPiece[] {
  const out: TextPiece[] = [];
  let last = 0;
  for (const m of text.matchAll(UNSAFE_CHARS_G)) {
    const at = m.index ?? 0;
    if (at > last) out.push({ kind: 'text', text: text.slice(last, at) });
    const cp = m[0].codePointAt(0)!;
    out.push({ kind: 'control', codePoint: cp, label: codePointLabel(cp) });
    last = at + m[0].length;
  }
  if (last < text.length) out.push({ kind: 'text', text: text.slice(last) });
  return out;
}

/** Whether the text holds a character that {@link splitUnsafe} tags. */
export function hasUnsafeChars(text: string): boolean {
  return UNSAFE_CHARS.test(text);
}

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/**
 * Stored text as HTML: normalised, escaped, unsafe characters as `<span class="cc">[U+XXXX]</span>`.
 * Line breaks stay `\n` (the stylesheet uses `white-space: pre-wrap`).
 */
export function textToHtml(text: string): string {
  return splitUnsafe(normaliseText(text))
    .map((p) => (p.kind === 'text' ? escapeHtml(p.text) : `<span class="cc" title="${p.label}">[${p.label}]</span>`))
    .join('');
}

/** Stored text on one line (titles, names): line breaks and tabs become spaces. */
export function oneLine(text: string): string {
  return normaliseText(text).replace(/[\n\t ]+/g, ' ').trim();
}

/**
 * Escapes one line of text for CommonMark (and GitHub-flavoured Markdown) so that nothing in it is
 * markup: a backslash before every character that can start inline markup anywhere (`\\`, `` ` ``,
 * `*`, `_`, `[`, `]`, `<`, `>`, `&`, `|`, `~`) and before what only counts at the start of a line
 * (`#`, `-`, `+`, `=`, the `.` or `)` of `1.`/`1)`); nothing else, so dates, times and paths read
 * as they are (`2026-12-04 10:58`). Leading spaces become no-break spaces so a line is never an
 * indented code block.
 */
function escapeMarkdownLine(line: string): string {
  const escaped = line
    .replace(/[\\`*_[\]<>&|~]/g, (c) => `\\${c}`)
    .replace(/^[#+=-]/, (c) => `\\${c}`)
    .replace(/^(\d{1,9})([.)])/, (_m, digits: string, mark: string) => `${digits}\\${mark}`);
  return escaped.replace(/^[ \t]+/, (ws) => ws.replace(/ /g, '\u00a0').replace(/\t/g, '\u00a0'.repeat(4)));
}

/** Unsafe characters as `[U+XXXX]` tags, everything else unchanged (before Markdown escaping). */
export function tagUnsafe(text: string): string {
  return text.replace(UNSAFE_CHARS_G, (c) => `[${codePointLabel(c.codePointAt(0)!)}]`);
}

/**
 * Stored text as Markdown that renders literally: normalised, unsafe characters tagged, every line
 * escaped; single line breaks kept as hard breaks (`\` at the end of the line), blank lines kept as
 * paragraph breaks.
 */
export function textToMarkdown(text: string): string {
  const lines = tagUnsafe(normaliseText(text)).split('\n').map((l) => escapeMarkdownLine(l.replace(/[ \t]+$/, '')));
  return lines.map((l, i) => (l !== '' && i + 1 < lines.length && lines[i + 1] !== '' ? `${l}\\` : l)).join('\n');
}

/** One line of Markdown (a heading, alt text, a caption): see {@link textToMarkdown}. */
export function lineToMarkdown(text: string): string {
  return escapeMarkdownLine(tagUnsafe(oneLine(text)));
}
