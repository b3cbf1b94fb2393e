/**
 * Turns SQLite and file-system failures into `OwleryError`s a user can act on.
 *
 * better-sqlite3 throws `SqliteError` with the extended result code as a string
 * (`SQLITE_BUSY_SNAPSHOT`, `SQLITE_READONLY_DBMOVED`, …); file-system calls throw Node errors with
 * an errno code (`ENOSPC`, `EROFS`, …). Both are classified by prefix, so every variant lands in
 * the right bucket (like Signal's `ts/sql/errors.ts`).
 */
import { basename } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';

/** The SQLite or errno code of a thrown value, if it has one. */
export function errorCodeOf(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}

/** Which `ErrorCode` a SQLite or errno code belongs to, or `undefined` for anything else. */
export function classifyCode(code: string | undefined): ErrorCode | undefined {
  if (!code) return undefined;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') return 'DB_CORRUPT';
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'DB_LOCKED';
  if (code.startsWith('SQLITE_READONLY') || code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return 'DB_READONLY';
  if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'EDQUOT') return 'DISK_FULL';
  if (code.startsWith('SQLITE_CANTOPEN')) return 'DB_READONLY';
  return undefined;
}

/**
 * A user-facing message for a failure of the given kind.
 *
 * `subject` names what failed, e.g. "the history database" or "the image folder".
 */
export function messageFor(code: ErrorCode, file: string, raw?: string, subject = 'the history database'): string {
  const name = basename(file);
  switch (code) {
    case 'DB_CORRUPT':
      return `The history database ${name} is damaged and cannot be read${raw ? ` (${raw})` : ''}. ` +
        'Restore the latest backup, or move the file aside to start with an empty history.';
    case 'DB_LOCKED':
      return `The history database ${name} is in use by another program (is Owlery already running?). ` +
        'Close the other program and try again.';
    case 'DB_READONLY':
      return `Owlery cannot write to ${subject} (${name}): the file or its folder is read-only or not accessible. ` +
        'Check the permissions of the folder and the file, and that the disk is not mounted read-only.';
    case 'DISK_FULL':
      return `The disk holding ${subject} (${name}) is full, so the last change could not be saved. ` +
        'Free some space and try again; everything saved before is intact.';
    default:
      return raw ? `Error in ${subject}: ${raw}` : `Error in ${subject}.`;
  }
}

/**
 * Classifies a thrown value: known SQLite/file-system failures become `OwleryError`s with a
 * user-facing message; `OwleryError`s pass through; anything else is returned unchanged (a bug,
 * for the crash reporter).
 */
export function toStoreError(err: unknown, file: string, subject?: string): unknown {
  if (err instanceof OwleryError) return err;
  const sqliteCode = errorCodeOf(err);
  const code = classifyCode(sqliteCode);
  if (!code) return err;
  const raw = err instanceof Error ? err.message : String(err);
  return new OwleryError(code, messageFor(code, file, code === 'DB_CORRUPT' ? raw : undefined, subject), {
    file,
    cause: sqliteCode,
    detail: raw,
  });
}

/** Runs `fn`, rethrowing classified errors (see {@link toStoreError}). */
export function classified<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw toStoreError(err, file);
  }
}
