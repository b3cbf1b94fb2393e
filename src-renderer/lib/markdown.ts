/**
 * Markdown for answers, rendered to HTML that is safe to insert.
 *
 * - Raw HTML is never interpreted (`html: false`): `<script>` or `<img onerror>` in a message show
 *   as text.
 * - Links survive only with `http:`, `https:` or `mailto:` URLs; anything else (`javascript:`,
 *   `data:`, `file:`, relative paths that would navigate the app) stays plain text. Links open
 *   in a new window, which the app turns into the system browser after checking the URL again
 *   (`src-main/app/security.ts`).
 * - Images are never loaded (an answer must not make the app fetch anything): an http(s) image
 *   becomes a link labelled with its alt text, anything else just its alt text.
 * - Headings are shifted down three levels (an answer sits under an h3), so an answer's `#` does not compete with the app's.
 * - Fenced and indented code gets a header with its language and a Copy button
 *   (`data-copy-code`; the message component handles clicks by delegation, no inline handlers),
 *   and syntax colours when its language is named and known (`code-highlight.ts`).
 */
import MarkdownIt from 'markdown-it';
import { highlightCode } from './code-highlight.ts';
import type { MarkdownIt as MarkdownItInstance, RendererRule, Token } from 'markdown-it';

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

function codeBlock(content: string, info: string): string {
  const lang = (info.trim().split(/\s+/)[0] ?? '').replace(/[^\w+#.-]/g, '').slice(0, 40);
  const label = lang ? `Copy ${lang} code` : 'Copy code';
  return (
    `<div class="code-block"><div class="code-head"><span class="code-lang">${escapeHtml(lang || 'code')}</span>` +
    `<button type="button" class="copy-code" data-copy-code aria-label="${escapeHtml(label)}">Copy</button></div>` +
    `<pre><code${lang ? ` class="hljs language-${escapeHtml(lang)}"` : ''}>${highlightCode(content, lang).html}</code></pre></div>\n`
  );
}

/** A markdown-it instance configured as described in the module comment. */
export function createMarkdown(): MarkdownItInstance {
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

  rules.heading_open = (tokens, idx) => `<h${Math.min(6, Number(tokens[idx]!.tag.slice(1)) + 3)} class="md-heading">`;
  rules.heading_close = (tokens, idx) => `</h${Math.min(6, Number(tokens[idx]!.tag.slice(1)) + 3)}>\n`;

  rules.fence = (tokens, idx) => codeBlock(tokens[idx]!.content, md.utils.unescapeAll(tokens[idx]!.info));
  rules.code_block = (tokens, idx) => codeBlock(tokens[idx]!.content, '');
  return md;
}

let shared: MarkdownItInstance | undefined;

/** Renders an answer's Markdown to safe HTML (see the module comment). */
export function renderMarkdown(text: string): string {
  shared ??= createMarkdown();
  return shared.render(text);
}
