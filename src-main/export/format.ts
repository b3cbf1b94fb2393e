/**
 * Wording shared by the Markdown and HTML exports: who wrote a message, dates, status and stats
 * lines. Plain text; each exporter escapes it for its format.
 */
import type { Conversation, Message, MessageRole } from '../../src-shared/domain.ts';

/** What a role is called in an export. */
export function roleLabel(role: MessageRole): string {
  return role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : 'System';
}

/** The last date JavaScript's `Date` represents, in ms after 1970 (imports refuse later ones). */
export const MAX_DATE_MS = 8_640_000_000_000_000;

/** Whether `ms` is a date every exporter can show (0 … {@link MAX_DATE_MS}). */
export function isShowableTime(ms: number): boolean {
  return Number.isFinite(ms) && ms >= 0 && ms <= MAX_DATE_MS;
}

/** What a date that cannot be shown is written as (the export lists it among what it left out). */
export const UNKNOWN_DATE = 'date unknown';

/** `2025-01-02 10:00 UTC`: unambiguous and the same wherever it is read ({@link UNKNOWN_DATE} for a date that cannot be shown). */
export function formatTime(ms: number): string {
  if (!isShowableTime(ms)) return UNKNOWN_DATE;
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

/** The title to show (untitled conversations get a placeholder). */
export function displayTitle(title: string): string {
  return title.trim() === '' ? 'Untitled conversation' : title;
}

/** Status words for an answer that did not complete normally, else `null`. */
export function statusNote(m: Pick<Message, 'status' | 'error'>): string | null {
  switch (m.status) {
    case 'cancelled':
      return 'Stopped by you before the end';
    case 'partial':
      return 'Unfinished (the app stopped while writing it)';
    case 'error':
      return m.error ? `Failed: ${m.error}` : 'Failed';
    default:
      return null;
  }
}

/** One line about how an answer was made (model, tokens, speed), or `null` when nothing is known. */
export function statsLine(m: Pick<Message, 'stats' | 'model'>): string | null {
  const parts: string[] = [];
  if (m.model) parts.push(`model ${m.model.packageId}`);
  if (m.stats) {
    parts.push(`${m.stats.outputTokens} tokens`);
    if (m.stats.decodeTokensPerSecond > 0) parts.push(`${m.stats.decodeTokensPerSecond.toFixed(1)} tokens/s`);
    if (m.stats.provider) parts.push(m.stats.provider);
  }
  return parts.length ? parts.join(' · ') : null;
}

/** The chat's own instructions, which the Markdown and HTML exports show under its title, or `null` when it has none. */
export function instructionsNote(c: Conversation): string | null {
  return c.options.instructions.trim() === '' ? null : c.options.instructions;
}

/** The sentence explaining that only the branch on screen is exported. */
export const OTHER_BRANCHES_NOTE =
  'This conversation has other branches (regenerated answers or edited messages); only the branch on screen is included. A JSON export keeps them all.';
