/**
 * Markdown for answers, rendered to HTML that is safe to insert: the shared configuration
 * (`src-shared/markdown.ts`: no raw HTML, safe links only, no images loaded, code highlighted) with
 * headings shifted down three levels (an answer sits under an h3) and a Copy button on code blocks.
 */
import type { MarkdownIt as MarkdownItInstance } from 'markdown-it';
import { createAnswerMarkdown } from '../../src-shared/markdown.ts';

export { isSafeLinkUrl } from '../../src-shared/markdown.ts';

/** The app's markdown-it instance (see the module comment). */
export function createMarkdown(): MarkdownItInstance {
  return createAnswerMarkdown({ headingShift: 3, copyButton: true });
}

let shared: MarkdownItInstance | undefined;

/** Renders an answer's Markdown to safe HTML (see the module comment). */
export function renderMarkdown(text: string): string {
  shared ??= createMarkdown();
  return shared.render(text);
}
