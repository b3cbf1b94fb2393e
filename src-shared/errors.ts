/**
 * Typed errors with stable codes, shared by the engine, the CLI, the app and the renderer.
 *
 * Expected failures (bad input, missing files, unsupported checkpoints) are `OwleryError`s with a
 * code and a message written for the person reading it; anything else is a bug. Errors cross
 * process boundaries as plain data (`SerializedError`).
 */
export type ErrorCode =
  | 'FILE_NOT_FOUND'
  | 'IMAGE_UNREADABLE'
  | 'IMAGE_TOO_LARGE'
  | 'IMAGE_UNSUPPORTED'
  | 'CHECKPOINT_INVALID'
  | 'CHECKPOINT_UNSUPPORTED'
  | 'CHECKPOINT_UNSAFE'
  | 'PACKAGE_INVALID'
  | 'TOKENIZER_INVALID'
  | 'CONTEXT_OVERFLOW'
  | 'PROVIDER_UNAVAILABLE'
  | 'ENGINE_CRASHED'
  | 'ENGINE_BUSY'
  | 'CANCELLED'
  | 'INVALID_ARGUMENT'
  | 'DISK_FULL'
  | 'DB_CORRUPT'
  | 'DB_LOCKED'
  | 'DB_READONLY'
  | 'DB_TOO_NEW'
  | 'NOT_FOUND'
  | 'INTERNAL'
  | 'OFFLINE' | 'FORBIDDEN'
  | 'EXPORT_FAILED' | 'IMPORT_INVALID'
  | 'NO_MODEL'
  /** The model's answer held nothing usable (e.g. no caption for a photo). */
  | 'EMPTY_ANSWER';

/** An expected failure, with a stable code and a message a user can act on. */
export class OwleryError extends Error {
  override readonly name = 'OwleryError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** An error as plain data, for IPC and worker messages. */
export interface SerializedError {
  name: string;
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
  stack?: string;
}

/** Turns any thrown value into plain data; unknown errors become `INTERNAL`. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof OwleryError) {
    return { name: err.name, code: err.code, message: err.message, details: err.details, stack: err.stack };
  }
  if (err instanceof Error) return { name: err.name, code: 'INTERNAL', message: err.message, stack: err.stack };
  return { name: 'Error', code: 'INTERNAL', message: String(err) };
}

/** Rebuilds an `OwleryError` from its serialized form. */
export function deserializeError(e: SerializedError): OwleryError {
  const err = new OwleryError(e.code, e.message, e.details);
  if (e.stack) err.stack = e.stack;
  return err;
}
