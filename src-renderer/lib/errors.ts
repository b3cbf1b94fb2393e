/**
 * User-facing messages for errors that reach the renderer. Expected failures are `OwleryError`s
 * whose message is already written for the person reading it; a few codes get a hint on what to do
 * (`NO_MODEL` gets none: its message says where to go, and the chat offers an "Open Models" button).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';

const HINTS: Partial<Record<ErrorCode, string>> = {
  ENGINE_BUSY: 'Owlery is still answering other messages; try again when they are done.',
  ENGINE_CRASHED: 'The model stopped unexpectedly; Owlery restarts it with your next message.',
  CONTEXT_OVERFLOW: 'The conversation is too long for the model; start a new one.',
};

/** The code of an `OwleryError`, or `null` for anything else. */
export function errorCode(err: unknown): ErrorCode | null {
  return err instanceof OwleryError ? err.code : null;
}

/** A sentence (or two) to show for `err`. */
export function describeError(err: unknown): string {
  if (err instanceof OwleryError) {
    const hint = HINTS[err.code];
    return hint && !err.message.includes(hint) ? `${err.message} ${hint}` : err.message;
  }
  if (err instanceof Error && err.message) return `Something went wrong: ${err.message}`;
  return 'Something went wrong.';
}
