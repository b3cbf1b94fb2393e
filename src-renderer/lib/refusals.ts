/**
 * Why photos were not added to a message, in one set of words whether they came from the file
 * dialog, a drop or a paste, and collapsed into one sentence when several fail at once
 * ("3 files were not added: “a.txt” and “b.pdf” are not photos Owlery can read; “c.png” is too
 * large (60 MB; the limit is 50 MB).").
 */
import type { ErrorCode } from '../../src-shared/errors.ts';
import { formatBytes } from './format.ts';

/** Why a file was refused. */
export type RefusalReason = 'not-a-photo' | 'too-large' | 'empty' | 'damaged' | 'missing' | 'too-many' | 'failed';

/** One refused file. */
export interface Refusal {
  /** The name shown (“The pasted photo” for pastes without a name). */
  name: string;
  reason: RefusalReason;
  /** Words added after the reason, e.g. sizes for `too-large` or the error for `failed`. */
  detail?: string;
}

const PHRASES: Readonly<Record<RefusalReason, { one: string; many: string }>> = {
  'not-a-photo': { one: 'is not a photo Owlery can read', many: 'are not photos Owlery can read' },
  'too-large': { one: 'is too large', many: 'are too large' },
  empty: { one: 'is empty', many: 'are empty' },
  damaged: { one: 'is damaged and cannot be read', many: 'are damaged and cannot be read' },
  missing: { one: 'is no longer there', many: 'are no longer there' },
  'too-many': { one: 'was not added: a message can carry at most {max} photos', many: 'were not added: a message can carry at most {max} photos' },
  failed: { one: 'could not be added', many: 'could not be added' },
};

/** The refusal for an error main gave while storing a photo (the same words as the renderer's own checks). */
export function refusalOf(name: string, code: ErrorCode | null, message: string, details?: Record<string, unknown>): Refusal {
  switch (code) {
    case 'IMAGE_UNSUPPORTED':
      return { name, reason: 'not-a-photo' };
    case 'IMAGE_TOO_LARGE': {
      const bytes = Number(details?.bytes);
      const max = Number(details?.maxBytes);
      return { name, reason: 'too-large', ...(bytes > 0 && max > 0 ? { detail: sizes(bytes, max) } : {}) };
    }
    case 'IMAGE_UNREADABLE':
      return { name, reason: /\bempty\b/i.test(message) ? 'empty' : 'damaged' };
    case 'FILE_NOT_FOUND':
      return { name, reason: 'missing' };
    default:
      return { name, reason: 'failed', detail: message };
  }
}

/** `(60 MB; the limit is 50 MB)`. */
export function sizes(bytes: number, max: number): string {
  return `(${formatBytes(bytes)}; the limit is ${formatBytes(max)})`;
}

function quoted(names: string[]): string {
  const q = names.map((n) => `“${n}”`);
  return q.length <= 1 ? (q[0] ?? '') : `${q.slice(0, -1).join(', ')} and ${q[q.length - 1]}`;
}

/** One sentence for the refusals of one action; `maxPhotos` fills the `too-many` phrase. */
export function describeRefusals(refusals: readonly Refusal[], maxPhotos: number): string {
  if (refusals.length === 0) return '';
  // Same reason and detail together, in the order they first happened.
  const groups = new Map<string, { reason: RefusalReason; detail?: string; names: string[] }>();
  for (const r of refusals) {
    const key = `${r.reason}\u0000${r.detail ?? ''}`;
    const g = groups.get(key) ?? { reason: r.reason, detail: r.detail, names: [] };
    g.names.push(r.name);
    groups.set(key, g);
  }
  const parts = [...groups.values()].map((g) => {
    const phrase = PHRASES[g.reason][g.names.length === 1 ? 'one' : 'many'].replace('{max}', String(maxPhotos));
    const detail = g.detail ? (g.reason === 'failed' ? `: ${g.detail.replace(/\.$/, '')}` : ` ${g.detail}`) : '';
    return `${quoted(g.names)} ${phrase}${detail}`;
  });
  const head = refusals.length > 1 ? `${refusals.length} files were not added: ` : '';
  const body = parts.join('; ');
  return `${head}${body}.`;
}
