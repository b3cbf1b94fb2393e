/**
 * Search snippets arrive as text plus highlight ranges ({@link HighlightedText}); the renderer
 * splits them into plain and marked segments and renders each as text, so stored text is never
 * interpreted as markup.
 */
import type { HighlightedText } from '../../src-shared/domain.ts';

/** A piece of a snippet, highlighted or not. */
export interface Segment {
  text: string;
  mark: boolean;
}

/**
 * Splits a snippet into segments in order. Ranges are clamped to the text; overlapping,
 * unsorted or empty ranges are tolerated (merged or dropped), so bad data never throws.
 */
export function highlightSegments(h: HighlightedText): Segment[] {
  const text = h.text ?? '';
  const ranges = (h.highlights ?? [])
    .map((r) => ({ start: Math.max(0, Math.min(text.length, Math.floor(r.start))), end: Math.max(0, Math.min(text.length, Math.floor(r.end))) }))
    .filter((r) => r.end > r.start)
    .sort((a, b) => a.start - b.start);
  const out: Segment[] = [];
  let at = 0;
  for (const r of ranges) {
    const start = Math.max(r.start, at);
    if (r.end <= start) continue;
    if (start > at) out.push({ text: text.slice(at, start), mark: false });
    const last = out[out.length - 1];
    if (last?.mark && start === at) last.text += text.slice(start, r.end);
    else out.push({ text: text.slice(start, r.end), mark: true });
    at = r.end;
  }
  if (at < text.length) out.push({ text: text.slice(at), mark: false });
  return out;
}
