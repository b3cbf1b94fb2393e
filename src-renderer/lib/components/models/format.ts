/**
 * Small formatting helpers for the models, settings, photos and export screens: sizes, progress,
 * time left, and errors in plain words.
 *
 * Pure functions (no DOM, no Svelte), so they are easy to test and to move to a shared `lib/utils`
 * folder later.
 */
import type { ErrorCode, SerializedError } from '../../../../src-shared/errors.ts';

const UNITS = ['bytes', 'KB', 'MB', 'GB', 'TB'] as const;

/** A byte count as people read it: `812 bytes`, `4.2 MB`, `13 GB` (decimal units, like file managers). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1000) return `${Math.round(bytes)} ${bytes === 1 ? 'byte' : 'bytes'}`;
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit++;
  }
  const digits = value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** Time left, in words: `less than a minute left`, `about 3 min left`, `about 1 h 20 min left`. */
export function formatEta(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 60) return 'less than a minute left';
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `about ${minutes} min left`;
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  return m === 0 ? `about ${h} h left` : `about ${h} h ${m} min left`;
}

/** A whole count with thousands separators (`12,345`). */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** `1 photo`, `3 photos`. */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** An error-like value: an `OwleryError`, its serialized form, or anything thrown. */
interface ErrorLike {
  code?: unknown;
  message?: unknown;
  name?: unknown;
}

/** The error code of an `OwleryError` (or its serialized form), if any. */
export function errorCode(err: unknown): ErrorCode | null {
  if (err && typeof err === 'object' && typeof (err as ErrorLike).code === 'string') return (err as ErrorLike).code as ErrorCode;
  return null;
}

/** True for cancellations, which are a normal outcome and never shown as errors (style.md H6). */
export function isCancellation(err: unknown): boolean {
  if (err && typeof err === 'object' && (err as ErrorLike).name === 'AbortError') return true;
  return errorCode(err) === 'CANCELLED';
}

function messageOf(err: unknown): string {
  if (err && typeof err === 'object' && typeof (err as ErrorLike).message === 'string') return (err as { message: string }).message.trim();
  return typeof err === 'string' ? err : '';
}

/** Makes sure a sentence ends with a full stop. */
function sentence(text: string): string {
  const t = text.trim();
  if (t === '') return t;
  return /[.!?…)]$/.test(t) ? t : `${t}.`;
}

/**
 * An error in plain words, for a person to act on. Expected errors (`OwleryError` codes) keep the
 * message main wrote for people, with a hint where one helps; validation messages name no paths;
 * anything unexpected says so and keeps the original text for a bug report.
 */
export function describeError(err: unknown): string {
  const code = errorCode(err);
  const message = messageOf(err);
  switch (code) {
    case 'DISK_FULL':
      return 'The disk is full. Free some space and try again.';
    case 'OFFLINE':
      return sentence(message || 'Offline mode is on: turn it off in Settings to download models');
    case 'CHECKPOINT_INVALID':
    case 'CHECKPOINT_UNSUPPORTED':
      return `This folder is not an mPLUG-Owl2 checkpoint Owlery can read. ${sentence(message)}`.trim();
    case 'CHECKPOINT_UNSAFE':
      return `Owlery refused this checkpoint because it could run code when loaded. ${sentence(message)}`.trim();
    case 'PACKAGE_INVALID':
      return `The model's files are damaged or incomplete: ${sentence(message)} Delete the model and import it again.`;
    case 'PROVIDER_UNAVAILABLE':
      return `The chosen execution provider cannot run here. ${sentence(message)}`.trim();
    case 'INVALID_ARGUMENT':
      // Validator messages start with the field path (`payload.repo: …`); keep the human part.
      return sentence(message.replace(/^[\w.[\]]+:\s*/, '')) || 'That value is not valid.';
    case 'INTERNAL':
    case null:
      return message ? `Something unexpected went wrong: ${sentence(message)}` : 'Something unexpected went wrong.';
    default:
      return sentence(message) || 'Something went wrong.';
  }
}

/** {@link describeError} for a serialized error carried in a task or status. */
export function describeSerialized(err: SerializedError | null): string | null {
  return err ? describeError(err) : null;
}
