/**
 * Errors of the downloader: `OwleryError`s with the nearest shared code plus a precise `reason`.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';

/** Why a pull failed. */
export type PullFailure =
  | 'not-found'
  | 'unauthorized'
  | 'forbidden'
  | 'network'
  | 'http'
  | 'checksum'
  | 'size'
  | 'disk-full'
  | 'cancelled'
  | 'invalid';

const CODES: Record<PullFailure, ErrorCode> = {
  'not-found': 'NOT_FOUND',
  unauthorized: 'NOT_FOUND',
  forbidden: 'NOT_FOUND',
  network: 'NOT_FOUND',
  http: 'NOT_FOUND',
  checksum: 'CHECKPOINT_INVALID',
  size: 'CHECKPOINT_INVALID',
  'disk-full': 'DISK_FULL',
  cancelled: 'CANCELLED',
  invalid: 'INVALID_ARGUMENT',
};

/** A failed pull: `code` is the shared error code, `reason` says exactly what went wrong. */
export class PullError extends OwleryError {
  constructor(
    readonly reason: PullFailure,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(CODES[reason], message, { reason, ...details });
  }
}

/** True for failures worth retrying (network trouble, 5xx, 429, short bodies). */
export function isRetryable(err: unknown): boolean {
  if (err instanceof PullError) return err.reason === 'network' || (err.reason === 'http' && err.details?.retryable === true);
  return !(err instanceof OwleryError);
}
