/**
 * Opening the history at start-up, with a way out when the file is damaged, and a daily backup.
 *
 * A damaged database (`DB_CORRUPT`) is not a dead end: the caller (a dialog in the app) chooses to
 * restore the newest readable backup, to start with an empty history (the damaged file is moved
 * aside, never deleted, so it can still be rescued), or to quit. Once open, a backup is written
 * when the newest one is older than a day (`VACUUM INTO`, the newest five kept), so a restore has
 * something recent to go back to. Damage found later, inside a page (`health.ts`), is offered the
 * same choices; {@link replaceDamagedHistory} carries out the first two with the file closed.
 */
import { existsSync, renameSync } from 'node:fs';
import { OwleryError } from '../../src-shared/errors.ts';
import { listBackups, restoreLatestBackup } from './database.ts';
import { Store } from './store.ts';

/** What to do with a damaged history database. */
export type CorruptChoice = 'restore' | 'fresh' | 'quit';

/** What the user is told when the database is damaged. */
export interface CorruptDatabaseInfo {
  file: string;
  message: string;
  /** A backup exists that `restore` can use. */
  backupAvailable: boolean;
  /** Conversations known to be unreadable (damage found by the integrity check, `health.ts`). */
  unreadable?: { id: number; title: string | null }[];
}

/** How the history was opened. */
export interface RecoveryOutcome {
  store: Store;
  /** `restored` / `fresh` when the damaged file was replaced; the moved-aside files are listed. */
  recovered?: { choice: 'restore' | 'fresh'; movedAside: string[] };
  /** The daily backup written at this start, if one was due. */
  backupWritten?: string;
}

/** How old the newest backup may be before another is written at start-up. */
export const DAILY_BACKUP_MS = 24 * 60 * 60 * 1000;

/**
 * Opens the history database; on `DB_CORRUPT` asks `decide` what to do (see the module comment).
 * Every other error (locked, read-only, newer version, disk full) is thrown as is.
 */
export function openHistory(file: string, decide: (info: CorruptDatabaseInfo) => CorruptChoice, now: () => number = Date.now): RecoveryOutcome {
  let recovered: RecoveryOutcome['recovered'];
  let store: Store;
  try {
    ({ store } = Store.open(file));
  } catch (err) {
    if (!(err instanceof OwleryError) || err.code !== 'DB_CORRUPT') throw err;
    const choice = decide({ file, message: err.message, backupAvailable: err.details?.backupAvailable === true });
    if (choice === 'quit') throw err;
    recovered = replaceDamagedHistory(file, choice, now);
    ({ store } = Store.open(file));
  }
  let backupWritten: string | undefined;
  try {
    const newest = listBackups(file)[0];
    const hasHistory = store.listConversations({ limit: 1 }).items.length > 0 || store.listTrash({ limit: 1 }).items.length > 0;
    if (hasHistory && (!newest || now() - newest.createdAt.getTime() > DAILY_BACKUP_MS)) backupWritten = store.backupNow();
  } catch {
    // The daily backup is best effort: a full disk or damage deep in the file (found by the
    // backup's full read) must not stop the app from opening; the damage is reported by the
    // request that meets it, with what to do.
  }
  return { store, recovered, backupWritten };
}

/**
 * Replaces a damaged, closed history database: with its newest readable backup (`restore`;
 * `NOT_FOUND` when there is none), or with nothing (`fresh`). Either way the damaged file and its
 * `-wal`/`-shm` are moved aside as `<file>.damaged-<timestamp>…`, never deleted.
 */
export function replaceDamagedHistory(file: string, choice: 'restore' | 'fresh', now: () => number = Date.now): { choice: 'restore' | 'fresh'; movedAside: string[] } {
  if (choice === 'restore') return { choice, movedAside: restoreLatestBackup(file).movedAside };
  const stamp = new Date(now()).toISOString().replace(/[-:.]/g, '');
  const movedAside: string[] = [];
  for (const suffix of ['', '-wal', '-shm']) {
    if (!existsSync(file + suffix)) continue;
    renameSync(file + suffix, `${file}.damaged-${stamp}${suffix}`);
    movedAside.push(`${file}.damaged-${stamp}${suffix}`);
  }
  return { choice, movedAside };
}
