/**
 * Escaping of stored text for exports, checked by rendering the output with a real Markdown
 * renderer (markdown-it, raw HTML allowed) and a real HTML parser (happy-dom): whatever the text,
 * it must come out literally, with unsafe characters as visible tags and no markup.
 */
import { describe, expect, it } from 'vitest';
import MarkdownIt from 'markdown-it';
import { Window } from 'happy-dom';
import { escapeHtml, lineToMarkdown, normaliseText, oneLine, splitUnsafe, textToHtml, textToMarkdown } from '../../src-main/export/text.ts';
import { renderHtml } from '../../src-main/export/html.ts';

const md = new MarkdownIt({ html: true, linkify: false });
const window = new Window();
const doc = window.document;

/** Renders Markdown and returns the element names used and the text shown. */
function renderMd(markdown: string): { tags: string[]; text: string } {
  doc.body.innerHTML = md.render(markdown);
  const tags = [...new Set([...doc.body.querySelectorAll('*')].map((e) => e.tagName.toLowerCase()))].sort();
  // <br> is a line break in the text shown.
  for (const br of [...doc.body.querySelectorAll('br')]) br.replaceWith(doc.createTextNode('\n'));
  return { tags, text: doc.body.textContent ?? '' };
}

/** What a reader sees, up to whitespace (Markdown folds runs of blank lines and trims lines). */
function shown(text: string): string {
  return text.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();
}

/** The text as the exports show it: normalised, unsafe characters as [U+XXXX] tags. */
function tagged(text: string): string {
  return splitUnsafe(normaliseText(text)).map((p) => (p.kind === 'text' ? p.text : `[${p.label}]`)).join('');
}

/** Seeded strings full of Markdown and HTML syntax, control and bidi characters. */
function* trickyStrings(count: number): Generator<string> {
  const atoms = [
    '<', '>', '&', '&amp;', '&#x3C;', '"', "'", '`', '```', '~~~', '*', '**', '_', '__', '#', '## ', '- ', '+ ', '1. ', '2) ', '>', '|', '---', '===',
    '[', ']', '(', ')', '![', '](', 'javascript:alert(1)', '<script>', '</script>', '<img src=x onerror=alert(1)>', '<!--', '-->', '\\', '\\\n',
    '\n', '\n\n', '\r\n', '\r', '    ', '\t', ' ', 'word', 'Wörter', 'שלום', 'مرحبا', '👩‍👩‍👧', '\u202e', '\u202c', '\u2066', '\u200f', '\u0000', '\u0007',
    '\u001b[31m', '\u0085', '\ufeff', '\u2028', '\ud800', '[ref]: http://x', '<https://example.com>', '$$', '^', '{', '}', '%', '@', ':',
  ];
  let x = 20250101;
  const next = (n: number) => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x % n;
  };
  for (let i = 0; i < count; i++) {
    let s = '';
    for (let k = 1 + next(24); k > 0; k--) s += atoms[next(atoms.length)];
    yield s;
  }
}

describe('Markdown escaping', () => {
  it('renders any text literally: no markup, the same characters shown', () => {
    for (const s of trickyStrings(400)) {
      const { tags, text } = renderMd(textToMarkdown(s));
      expect(tags.filter((t) => t !== 'p' && t !== 'br'), JSON.stringify(s)).toEqual([]);
      expect(shown(text), JSON.stringify(s)).toBe(shown(tagged(s)));
    }
  });

  it('keeps line breaks and paragraphs', () => {
    const html = md.render(textToMarkdown('first line\nsecond line\n\nnew paragraph\r\nlast\\'));
    expect(html).toBe('<p>first line<br>\nsecond line</p>\n<p>new paragraph<br>\nlast\\</p>\n');
  });

  it('keeps leading spaces without making code blocks', () => {
    expect(textToMarkdown('    indented code?')).toBe('\u00a0\u00a0\u00a0\u00a0indented code?');
    expect(renderMd(textToMarkdown('\tx')).tags).toEqual(['p']);
  });

  it('makes one-line text safe for headings, alt text and captions', () => {
    const title = 'a\nb [c](javascript:x) \u202Egnp.exe';
    expect(lineToMarkdown(title)).toBe('a b \\[c\\](javascript:x) \\[U+202E\\]gnp.exe');
    const { tags, text } = renderMd(`# ${lineToMarkdown(title)}`);
    expect(tags).toEqual(['h1']);
    expect(text.trim()).toBe('a b [c](javascript:x) [U+202E]gnp.exe');
  });
});

describe('HTML escaping', () => {
  it('escapes markup and tags unsafe characters', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    expect(textToHtml('a\u202Eb')).toBe('a<span class="cc" title="U+202E">[U+202E]</span>b');
    expect(textToHtml('x\r\ny\u2029z')).toBe('x\ny\nz');
  });

  it('shows any text literally inside an element', () => {
    for (const s of trickyStrings(400)) {
      doc.body.innerHTML = `<div class="text">${textToHtml(s)}</div>`;
      const elements = [...doc.body.querySelectorAll('*')].map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
      expect(new Set(elements), JSON.stringify(s)).toEqual(new Set(['div.text', ...(/\[U\+/.test(tagged(s)) ? ['span.cc'] : [])]));
      expect(doc.body.textContent, JSON.stringify(s)).toBe(tagged(s));
    }
  });

  it('keeps right-to-left text, emoji sequences and accents as they are', () => {
    const s = 'שלום عالم 👩‍👩‍👧 café e\u0301';
    expect(splitUnsafe(s)).toEqual([{ kind: 'text', text: s }]);
    expect(textToHtml(s)).toBe(s);
  });

  it('replaces lone surrogates and flattens lines for titles', () => {
    expect(normaliseText('a\ud800b\udc00c')).toBe('a\ufffdb\ufffdc');
    expect(oneLine(' a\n\tb \r\n c ')).toBe('a b c');
  });

  it('renders a page with no script and a CSP', () => {
    const html = renderHtml([], new Map(), 0);
    expect(html).toMatch(/<meta http-equiv="Content-Security-Policy" content="default-src &#39;none&#39;; img-src data:;/);
    expect(html).not.toMatch(/<script/i);
  });
});
