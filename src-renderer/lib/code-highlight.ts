/**
 * Syntax colours for code blocks in answers: highlight.js (core, with the languages answers use
 * most), bundled with the app, so nothing is fetched. The output is HTML whose text is escaped by
 * highlight.js and whose only markup is `<span class="hljs-…">`; the colours are the theme's
 * (`--code-*` in src-renderer/app.css). A block whose language is not named, or unknown, is shown
 * escaped and uncoloured: guessing a language is slow and often wrong.
 *
 * Pure functions, no DOM (highlight.js core runs anywhere), though its type declarations pull in
 * the DOM library: keep it out of code the main-process tsconfig checks, or shim its types.
 */
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import kotlin from 'highlight.js/lib/languages/kotlin';
import markdown from 'highlight.js/lib/languages/markdown';
import php from 'highlight.js/lib/languages/php';
import python from 'highlight.js/lib/languages/python';
import ruby from 'highlight.js/lib/languages/ruby';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import swift from 'highlight.js/lib/languages/swift';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

const LANGUAGES = { bash, c, cpp, csharp, css, diff, go, java, javascript, json, kotlin, markdown, php, python, ruby, rust, shell, sql, swift, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

/** Longest code block coloured, in characters (longer ones are shown plain: highlighting is linear but not free). */
export const MAX_HIGHLIGHT_CHARS = 100_000;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}

/**
 * The code as HTML, coloured when `language` (a fence's info word: `ts`, `python`, `html`…) is one
 * highlight.js knows here. `language` in the result is the language used, or `null`.
 */
export function highlightCode(code: string, language: string): { html: string; language: string | null } {
  const lang = language.trim().toLowerCase();
  const known = lang !== '' && code.length <= MAX_HIGHLIGHT_CHARS ? hljs.getLanguage(lang) : undefined;
  if (!known) return { html: escapeHtml(code), language: null };
  return { html: hljs.highlight(code, { language: lang, ignoreIllegals: true }).value, language: lang };
}
