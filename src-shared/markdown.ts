/**
 * How an answer's Markdown becomes HTML, in the app and in the HTML/PDF exports alike: one
 * markdown-it configuration, so an exported answer looks like the answer on screen.
 *
 * - Raw HTML is never interpreted (`html: false`): `<script>` or `<img onerror>` in a message show
 *   as text.
 * - Links survive only with `http:`, `https:` or `mailto:` URLs; anything else (`javascript:`,
 *   `data:`, `file:`, relative paths) stays plain text. Links open in a new window (the app turns
 *   that into the system browser after checking the URL again: `src-main/app/security.ts`).
 * - Images are never loaded (an answer must not make anything fetch): an http(s) image becomes a
 *   link labelled with its alt text, anything else just its alt text.
 * - Headings are shifted down (`headingShift` levels) so an answer's `#` does not compete with
 *   the headings around it.
 * - Table cells say their alignment with a class (`md-align-right`), not a `style` attribute, so
 *   a page whose CSP allows no inline style (an exported page) keeps it.
 * - Fenced code with a language highlight.js knows is highlighted (`hljs-*` classes; colours come
 *   from the page's stylesheet), with a header naming the language and, in the app, a Copy button
 *   (`data-copy-code`: the message component handles clicks by delegation, no inline handlers).
 *
 * Pure (no Node, no DOM): the renderer and the main process's exporters both run it.
 */
import MarkdownIt from 'markdown-it';
import type { MarkdownIt as MarkdownItInstance, RendererRule, Token } from 'markdown-it';
import { highlightCode } from './highlight.ts';

const SAFE_URL = /^(?:https?:|mailto:)/i;
const WEB_URL = /^https?:/i;

/** True for URLs an answer may link to: `http:`, `https:` and `mailto:` only. */
export function isSafeLinkUrl(url: string): boolean {
  // Browsers ignore ASCII whitespace and control characters in a scheme; so do we.
  // eslint-disable-next-line no-control-regex
  const clean = url.replace(/[\u0000-\u0020\u007f]/g, '');
  return SAFE_URL.test(clean);
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

function insideLink(tokens: Token[], idx: number): boolean {
  let depth = 0;
  for (let i = 0; i < idx; i++) {
    if (tokens[i]!.type === 'link_open') depth++;
    else if (tokens[i]!.type === 'link_close') depth--;
  }
  return depth > 0;
}

/** Options of {@link createAnswerMarkdown}. */
export interface AnswerMarkdownOptions {
  /** Levels an answer's headings move down (`#` becomes `h(1 + shift)`, at most `h6`). */
  headingShift: number;
  /** Give code blocks a Copy button (the app; an exported page has no script to run it). */
  copyButton: boolean;
}

/** The language name of a fence's info string, cleaned for use in a class name. */
function fenceLanguage(info: string): string {
  return (info.trim().split(/\s+/)[0] ?? '').replace(/[^\w+#.-]/g, '').slice(0, 40);
}

function codeBlock(content: string, info: string, copyButton: boolean): string {
  const lang = fenceLanguage(info);
  const highlighted = lang ? highlightCode(content, lang) : null;
  const copy = copyButton
    ? `<button type="button" class="copy-code" data-copy-code aria-label="${escapeHtml(lang ? `Copy ${lang} code` : 'Copy code')}">Copy</button>`
    : '';
  const classes = [lang ? `language-${escapeHtml(lang)}` : '', highlighted !== null ? 'hljs' : ''].filter(Boolean).join(' ');
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(lang || 'code')}</span>${copy}</div>` +
    `<pre><code${classes ? ` class="${classes}"` : ''}>${highlighted ?? escapeHtml(content)}</code></pre></div>\n`
  );
}

/** A markdown-it instance configured as described in the module comment. */
export function createAnswerMarkdown(opts: AnswerMarkdownOptions): MarkdownItInstance {
  const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });
  md.validateLink = isSafeLinkUrl;
  const rules = md.renderer.rules;

  const linkOpen: RendererRule = (tokens, idx, options, _env, self) => {
    tokens[idx]!.attrSet('target', '_blank');
    tokens[idx]!.attrSet('rel', 'noopener noreferrer');
    return self.renderToken(tokens, idx, options);
  };
  rules.link_open = linkOpen;

  const image: RendererRule = (tokens, idx, options, env, self) => {
    const token = tokens[idx]!;
    const src = String(token.attrGet('src') ?? '');
    const alt = self.renderInlineAsText(token.children ?? [], options, env).trim();
    const label = `Image: ${alt || src}`;
    if (WEB_URL.test(src) && !insideLink(tokens, idx)) {
      return `<a href="${escapeHtml(src)}" target="_blank" rel="noopener noreferrer" class="md-image-link">${escapeHtml(label)}</a>`;
    }
    return `<span class="md-image-dropped">${escapeHtml(label)}</span>`;
  };
  rules.image = image;

  // markdown-it aligns table cells with `style="text-align:…"`; a class works under any CSP.
  const cell: RendererRule = (tokens, idx, options, _env, self) => {
    const token = tokens[idx]!;
    const align = /^text-align:(left|center|right)$/.exec(String(token.attrGet('style') ?? ''))?.[1];
    if (token.attrGet('style') !== null) {
      token.attrs = (token.attrs ?? []).filter(([name]) => name !== 'style');
      if (align) token.attrJoin('class', `md-align-${align}`);
    }
    return self.renderToken(tokens, idx, options);
  };
  rules.th_open = cell;
  rules.td_open = cell;

  const level = (token: Token): number => Math.min(6, Number(token.tag.slice(1)) + opts.headingShift);
  rules.heading_open = (tokens, idx) => `<h${level(tokens[idx]!)} class="md-heading">`;
  rules.heading_close = (tokens, idx) => `</h${level(tokens[idx]!)}>\n`;

  rules.fence = (tokens, idx) => codeBlock(tokens[idx]!.content, md.utils.unescapeAll(tokens[idx]!.info), opts.copyButton);
  rules.code_block = (tokens, idx) => codeBlock(tokens[idx]!.content, '', opts.copyButton);
  return md;
}
