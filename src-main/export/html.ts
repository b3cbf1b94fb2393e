/**
 * HTML export: one self-contained file (photos embedded as `data:` URIs) that can be opened in any
 * browser, archived, or printed to PDF.
 *
 * Answers are rendered from their Markdown with the app's own markdown-it configuration
 * (`src-shared/markdown.ts`: raw HTML shown as text, only http(s) and mailto links, images never
 * loaded, code highlighted), so lists, tables, code and links look as they do in the app; your
 * messages, titles and names are escaped and shown as written.
 *
 * Safe to open whatever the conversation says: a Content-Security-Policy meta tag allows nothing
 * but the page's own stylesheet (by hash) and `data:` images, there is no script, the only links
 * are an answer's http(s)/mailto links, and control characters and bidirectional overrides are
 * shown as visible `[U+XXXX]` tags instead of acting. The stylesheet has print rules (page
 * margins, no message split across pages), which the PDF export relies on.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { createAnswerMarkdown } from '../../src-shared/markdown.ts';
import { ANSWER_HEADING_SHIFT } from './answer-markdown.ts';
import { displayTitle, formatTime, instructionsNote, isShowableTime, OTHER_BRANCHES_NOTE, roleLabel, statsLine, statusNote } from './format.ts';
import { writeFileAtomic } from './files.ts';
import type { ExportSummary } from './markdown.ts';
import { noteBadDates, photoUses, readablePhotos, readableThreads, SkipLog } from './skipped.ts';
import { selectedIds } from './source.ts';
import type { ConversationSelection, ExportContext, ImageData, ThreadExport } from './source.ts';
import { escapeHtml, normaliseText, oneLine, splitUnsafe, tagUnsafe, textToHtml } from './text.ts';

/** Image types browsers show; others (TIFF, HEIC) are converted to JPEG for embedding. */
const WEB_MIMES = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/avif']);

/** A photo ready to embed: its `data:` URI and size, or `null` when it could not be converted. */
export interface EmbeddedImage {
  dataUri: string | null;
  width: number;
  height: number;
}

const STYLE = `
:root { color-scheme: light; --fg: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --user: #eef3fb; --bot: #ffffff; --warn: #8a4b00; }
* { box-sizing: border-box; }
html { font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif; color: var(--fg); background: #f6f7f9; }
body { margin: 0; padding: 2rem 1rem; }
main { max-width: 46rem; margin: 0 auto; }
.conversation + .conversation { margin-top: 3rem; border-top: 2px solid var(--line); padding-top: 2rem; }
h1 { font-size: 1.6rem; line-height: 1.25; margin: 0 0 .25rem; overflow-wrap: anywhere; unicode-bidi: plaintext; }
.meta, .note, .who small, .stats { color: var(--muted); font-size: .85rem; }
.note, .instructions { border-left: 3px solid var(--line); padding: .25rem .75rem; }
.instructions { margin: .5rem 0; }
.message { background: var(--bot); border: 1px solid var(--line); border-radius: .6rem; padding: .75rem 1rem; margin: 1rem 0; }
.message.user { background: var(--user); }
.message.system { background: #f3f3f3; }
.who { margin: 0 0 .4rem; font-size: .95rem; font-weight: 600; }
.who small { font-weight: 400; margin-left: .5rem; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; unicode-bidi: plaintext; margin: 0; }
.status { color: var(--warn); font-size: .85rem; margin: .4rem 0 0; overflow-wrap: anywhere; }
.cc { font: .75em ui-monospace, Menlo, Consolas, monospace; color: #b00020; background: #fde8ec; border-radius: .2em; padding: 0 .15em; }
.photos { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0 0; }
figure { margin: 0; max-width: 100%; }
figure img { display: block; max-width: 100%; max-height: 28rem; height: auto; border-radius: .4rem; }
figcaption { color: var(--muted); font-size: .8rem; overflow-wrap: anywhere; }
.missing { color: var(--muted); font-style: italic; border: 1px dashed var(--line); padding: 1rem; }
.answer { overflow-wrap: anywhere; unicode-bidi: plaintext; }
.answer > :first-child { margin-top: 0; }
.answer > :last-child { margin-bottom: 0; }
.answer p, .answer ul, .answer ol, .answer blockquote, .answer table, .answer .code-block { margin: .5rem 0; }
.answer ul, .answer ol { padding-left: 1.5rem; }
.answer blockquote { border-left: 3px solid var(--line); color: var(--muted); padding: 0 .75rem; margin-left: 0; }
.answer table { border-collapse: collapse; display: block; max-width: 100%; overflow-x: auto; }
.answer th, .answer td { border: 1px solid var(--line); padding: .25rem .6rem; text-align: left; }
.answer th { background: #f3f4f6; }
.answer .md-align-left { text-align: left; }
.answer .md-align-center { text-align: center; }
.answer .md-align-right { text-align: right; }
.answer code { font: .9em ui-monospace, Menlo, Consolas, monospace; background: #f1f3f5; border-radius: .25em; padding: .05em .3em; }
.answer a { color: #1a5fb4; }
.code-block { border: 1px solid var(--line); border-radius: .4rem; overflow: hidden; }
.code-head { font: .75rem ui-monospace, Menlo, Consolas, monospace; color: var(--muted); background: #f3f4f6; padding: .2rem .6rem; border-bottom: 1px solid var(--line); }
.code-block pre { margin: 0; padding: .6rem .75rem; overflow-x: auto; background: #fafbfc; }
.code-block pre code { background: none; padding: 0; white-space: pre; }
.hljs-comment, .hljs-quote { color: #6a737d; font-style: italic; }
.hljs-keyword, .hljs-selector-tag, .hljs-literal, .hljs-doctag, .hljs-meta .hljs-keyword { color: #a626a4; }
.hljs-string, .hljs-regexp, .hljs-addition, .hljs-attribute, .hljs-meta .hljs-string { color: #50a14f; }
.hljs-number, .hljs-symbol, .hljs-bullet, .hljs-variable, .hljs-template-variable { color: #986801; }
.hljs-title, .hljs-section, .hljs-name, .hljs-selector-id, .hljs-selector-class { color: #4078f2; }
.hljs-type, .hljs-built_in, .hljs-class .hljs-title, .hljs-attr, .hljs-params { color: #c18401; }
.hljs-tag, .hljs-deletion, .hljs-meta { color: #e45649; }
.hljs-emphasis { font-style: italic; }
.hljs-strong { font-weight: 600; }
@page { margin: 16mm 14mm; }
@media print {
  html { background: #fff; font-size: 11pt; }
  body { padding: 0; }
  main { max-width: none; }
  .message { break-inside: avoid; page-break-inside: avoid; border-color: #bbb; }
  .message.user { background: #f1f4f9; -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  .conversation + .conversation { break-before: page; page-break-before: always; border-top: 0; }
  figure img { max-height: 9cm; }
  .code-block pre code { white-space: pre-wrap; }
  .code-block, .answer table { break-inside: avoid; }
}
`.trim();

/** The Content-Security-Policy of exported pages: only the page's own stylesheet and `data:` images. */
export function contentSecurityPolicy(style: string = STYLE): string {
  const hash = createHash('sha256').update(style, 'utf8').digest('base64');
  return `default-src 'none'; img-src data:; style-src 'sha256-${hash}'; base-uri 'none'; form-action 'none'`;
}

/** Turns photos into `data:` URIs (converting types browsers cannot show to JPEG). */
export async function embedImages(images: ReadonlyMap<string, ImageData>): Promise<Map<string, EmbeddedImage>> {
  const out = new Map<string, EmbeddedImage>();
  for (const [sha256, { record, bytes }] of images) {
    const size = { width: record.displayWidth, height: record.displayHeight };
    if (WEB_MIMES.has(record.mime)) {
      out.set(sha256, { ...size, dataUri: `data:${record.mime};base64,${Buffer.from(bytes).toString('base64')}` });
      continue;
    }
    try {
      const jpeg = await sharp(bytes, { autoOrient: true, pages: 1 }).jpeg({ quality: 90 }).toBuffer();
      out.set(sha256, { ...size, dataUri: `data:image/jpeg;base64,${jpeg.toString('base64')}` });
    } catch {
      out.set(sha256, { ...size, dataUri: null });
    }
  }
  return out;
}

/**
 * Renders conversations (their branch on screen) as one self-contained HTML page (see the module
 * comment). `images` holds every photo the messages use.
 */
export function renderHtml(threads: readonly ThreadExport[], images: ReadonlyMap<string, EmbeddedImage>, exportedAt: number): string {
  const pageTitle = threads.length === 1 ? displayTitle(threads[0].conversation.title) : `${threads.length} conversations`;
  const body = threads.map((t) => renderThread(t, images, exportedAt)).join('\n');
  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${escapeHtml(contentSecurityPolicy())}">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="Owlery">',
    // <title> is plain text (RCDATA): tags there would show literally in the tab, so no <span> for controls.
    `<title>${splitUnsafe(oneLine(pageTitle)).map((p) => escapeHtml(p.kind === 'text' ? p.text : `[${p.label}]`)).join('')}</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<main>',
    body,
    '</main>',
    '</body>',
    '</html>',
    '',
  ].join('\n');
}

function renderThread(t: ThreadExport, images: ReadonlyMap<string, EmbeddedImage>, exportedAt: number): string {
  const count = `${t.messages.length} message${t.messages.length === 1 ? '' : 's'}`;
  const instructions = instructionsNote(t.conversation);
  const parts = [
    '<article class="conversation">',
    '<header>',
    `<h1 dir="auto">${textToHtml(oneLine(displayTitle(t.conversation.title)))}</h1>`,
    `<p class="meta">Started ${escapeHtml(formatTime(t.conversation.createdAt))} · ${count} · exported from Owlery ${escapeHtml(formatTime(exportedAt))}</p>`,
    instructions === null ? '' : `<div class="instructions"><p class="who">Instructions for this chat</p><div class="text" dir="auto">${textToHtml(instructions)}</div></div>`,
    t.hasOtherBranches ? `<p class="note">${escapeHtml(OTHER_BRANCHES_NOTE)}</p>` : '',
    '</header>',
  ];
  for (const m of t.messages) {
    const note = statusNote(m);
    const stats = m.role === 'assistant' ? statsLine(m) : null;
    parts.push(
      `<section class="message ${m.role}">`,
      `<p class="who">${escapeHtml(roleLabel(m.role))}<small>${timeElement(m.createdAt)}</small></p>`,
      m.text.length > 0 ? messageText(m) : '',
      m.images.length > 0 ? `<div class="photos">${m.images.map((img, k) => figure(img.sha256, img.name ?? `Photo ${k + 1}`, images)).join('')}</div>` : '',
      note ? `<p class="status">${textToHtml(oneLine(note))}</p>` : '',
      stats ? `<p class="stats">${textToHtml(oneLine(stats))}</p>` : '',
      '</section>',
    );
  }
  parts.push('</article>');
  return parts.filter((p) => p !== '').join('\n');
}

/** A `<time>` element, or the plain words for a date that cannot be shown. */
function timeElement(ms: number): string {
  const text = escapeHtml(formatTime(ms));
  return isShowableTime(ms) ? `<time datetime="${new Date(ms).toISOString()}">${text}</time>` : text;
}

const answers = createAnswerMarkdown({ headingShift: ANSWER_HEADING_SHIFT, copyButton: false });

/** A message's text: an answer rendered from its Markdown, anything else as written. */
function messageText(m: ThreadExport['messages'][number]): string {
  if (m.role === 'assistant') return `<div class="answer" dir="auto">${answers.render(tagUnsafe(normaliseText(m.text)))}</div>`;
  return `<div class="text" dir="auto">${textToHtml(m.text)}</div>`;
}

function figure(sha256: string, name: string, images: ReadonlyMap<string, EmbeddedImage>): string {
  const img = images.get(sha256);
  const caption = `<figcaption dir="auto">${textToHtml(oneLine(name))}</figcaption>`;
  if (!img?.dataUri) return `<figure><div class="missing">This photo could not be embedded.</div>${caption}</figure>`;
  // The data URI is built here from a known image type and base64 only; the alt text is escaped.
  return `<figure><img src="${img.dataUri}" alt="${escapeHtml(oneLine(name))}" width="${img.width}" height="${img.height}">${caption}</figure>`;
}

/** Options of {@link renderConversationHtml}. */
export interface RenderOptions {
  conversations: ConversationSelection;
}

/**
 * The HTML page for some conversations, photos embedded: what the HTML export writes and what the
 * PDF export prints. What cannot be read or shown is left out and listed in `skipped` (`skipped.ts`).
 */
export async function renderConversationHtml(ctx: ExportContext, opts: RenderOptions): Promise<{ html: string; conversations: number; skipped: string[] }> {
  const log = new SkipLog();
  const threads = readableThreads(ctx.store, selectedIds(ctx.store, opts.conversations), log);
  for (const t of threads) noteBadDates(t.conversation, t.messages, log);
  const images = await embedImages(await readablePhotos(ctx, photoUses(threads), log));
  return { html: renderHtml(threads, images, (ctx.now ?? Date.now)()), conversations: threads.length, skipped: log.list };
}

/** Options of {@link exportHtml}. */
export interface HtmlExportOptions extends RenderOptions {
  /** The `.html` file to write. */
  dest: string;
}

/** Exports conversations to one self-contained HTML file, written atomically (`DISK_FULL`, `EXPORT_FAILED`). */
export async function exportHtml(ctx: ExportContext, opts: HtmlExportOptions): Promise<ExportSummary> {
  const { html, conversations, skipped } = await renderConversationHtml(ctx, opts);
  await writeFileAtomic(opts.dest, html);
  return { path: opts.dest, conversations, assetsWritten: 0, skipped };
}

/** Prints an HTML page to PDF bytes (in the app: `webContents.printToPDF` on a hidden window). */
export type PrintToPdf = (html: string) => Promise<Uint8Array>;

/** Options of {@link exportPdf}. */
export interface PdfExportOptions extends HtmlExportOptions {
  printToPdf: PrintToPdf;
}

/**
 * Exports conversations to PDF: renders the HTML page and has `printToPdf` print it (the print
 * stylesheet lays it out), then writes the bytes atomically.
 */
export async function exportPdf(ctx: ExportContext, opts: PdfExportOptions): Promise<ExportSummary> {
  const { html, conversations, skipped } = await renderConversationHtml(ctx, opts);
  const pdf = await opts.printToPdf(html);
  await writeFileAtomic(opts.dest, pdf);
  return { path: opts.dest, conversations, assetsWritten: 0, skipped };
}
