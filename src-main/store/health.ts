/**
 * The history database's health. Opening reads only the header, so damage inside a page (a bad
 * disk sector, a file changed behind the app's back) would otherwise show only as conversations
 * that fail to open or vanish from lists. {@link HistoryHealth} runs a full `PRAGMA
 * integrity_check` in the background after start, and again whenever a request answers
 * `DB_CORRUPT`; when the check fails it finds which conversations cannot be read and reports the
 * damage once (`onDamaged`), so the app can offer the same recovery as for a damaged header:
 * restore the last backup, start empty keeping the damaged file, or quit (`recovery.ts`).
 *
 * The check runs in a worker thread on its own read-only connection (WAL lets it read while the
 * app writes), so neither the window nor requests wait for it; where a worker cannot start it runs
 * on the calling thread instead.
 *
 * After a check that finds the file sound, a backup is written when the newest one is a week old
 * (or there is none): `VACUUM INTO` on a read-only connection in a worker, then renamed into
 * `backups/` with the others and the oldest beyond five removed (`database.ts`). A damaged file is
 * never backed up, so the rotation cannot push the last good copy out.
 */
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { removeStale } from '../../models/package/stale.ts';
import { BACKUP_TEMP, backupTempPath, defaultBackupDir, listBackups, placeBackup } from './database.ts';
import type { BackupOptions } from './database.ts';
import { messageFor } from './errors.ts';
import type { CorruptDatabaseInfo } from './recovery.ts';

/** A conversation the damage makes unreadable (its title, when that can still be read). */
export interface UnreadableConversation {
  id: number;
  title: string | null;
}

/** The outcome of one check. */
export interface HealthReport {
  ok: boolean;
  /** What the integrity check found (at most 100 lines). */
  problems: string[];
  /** Conversations that cannot be read, by id. */
  unreadable: UnreadableConversation[];
  /** When the check finished (ms since 1970) and how long it took. */
  checkedAt: number;
  ms: number;
}

/** What the app is told when the check finds damage: the recovery screen's text and the conversations lost. */
export interface DamagedHistoryInfo extends CorruptDatabaseInfo {
  unreadable: UnreadableConversation[];
}

interface Inspection {
  problems: string[];
  unreadable: UnreadableConversation[];
}

/**
 * The check itself, self-contained (it is also the worker's source: `Database` is better-sqlite3's
 * class, passed in). Runs `integrity_check`; if it fails, reads every conversation the way the app
 * does (its row, its messages by conversation and by id, their photos) and lists those that fail.
 */
function inspectHistory(Database: new (file: string, opts: object) => InspectDb, file: string): Inspection {
  const problems: string[] = [];
  const unreadable: UnreadableConversation[] = [];
  let db: InspectDb | undefined;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      for (const row of db.pragma('integrity_check(100)') as { integrity_check: string }[]) {
        if (row.integrity_check !== 'ok') problems.push(String(row.integrity_check));
      }
    } catch (e) {
      problems.push(String((e as Error)?.message ?? e));
    }
    if (problems.length === 0) return { problems, unreadable };
    const found = new Map<number, string | null>();
    for (const sql of ['SELECT id, title FROM conversations', 'SELECT DISTINCT conversation_id AS id FROM messages', 'SELECT DISTINCT conversation_id AS id FROM messages NOT INDEXED']) {
      try {
        for (const r of db.prepare(sql).iterate() as Iterable<{ id: number; title?: string }>) {
          if (typeof r.title === 'string' || !found.has(r.id)) found.set(r.id, typeof r.title === 'string' ? r.title : (found.get(r.id) ?? null));
        }
      } catch {
        // A damaged list: keep what was read before the damage.
      }
    }
    const conversation = db.prepare('SELECT * FROM conversations WHERE id = ?');
    const messages = db.prepare('SELECT * FROM messages WHERE conversation_id = ?');
    const byId = db.prepare('SELECT * FROM messages WHERE id = ?');
    const children = db.prepare('SELECT id FROM messages WHERE parent_id = ?');
    const photos = db.prepare('SELECT * FROM message_images WHERE message_id = ?');
    for (const [id, title] of [...found].sort((a, b) => a[0] - b[0])) {
      try {
        if (!conversation.get(id)) throw new Error('its row is missing');
        for (const m of messages.all(id) as { id: number }[]) {
          byId.get(m.id);
          children.all(m.id);
          photos.all(m.id);
        }
      } catch {
        unreadable.push({ id, title });
      }
    }
  } catch (e) {
    problems.push(String((e as Error)?.message ?? e));
  } finally {
    db?.close();
  }
  return { problems, unreadable };
}

/**
 * Copies the database file to `dest` with `VACUUM INTO` on its own read-only connection (also the
 * worker's source, like {@link inspectHistory}). Returns its schema version.
 */
function vacuumInto(Database: new (file: string, opts: object) => InspectDb, file: string, dest: string): number {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const version = db.pragma('user_version', { simple: true }) as number;
    db.prepare('VACUUM INTO ?').run(dest);
    return version;
  } finally {
    db.close();
  }
}

/** The part of better-sqlite3's `Database` the check and the backup use. */
interface InspectDb {
  pragma(sql: string, opts?: { simple: boolean }): unknown;
  prepare(sql: string): { iterate(...args: unknown[]): Iterable<unknown>; get(...args: unknown[]): unknown; all(...args: unknown[]): unknown[]; run(...args: unknown[]): unknown };
  close(): void;
}

type DbTask<A extends unknown[], R> = (Database: new (file: string, opts: object) => InspectDb, ...args: A) => R;

const requireHere = createRequire(import.meta.url);

/**
 * Runs `task` (a self-contained function: it is sent to the worker as source) in a worker thread,
 * or here if no worker can start or run it (the task's own errors are thrown, not retried here).
 * `signal` stops the worker (its connection closes with it) and rejects.
 */
async function inWorker<A extends unknown[], R>(task: DbTask<A, R>, args: A, signal?: AbortSignal): Promise<R> {
  signal?.throwIfAborted();
  const inThread = (): R => task(requireHere('better-sqlite3') as new (file: string, opts: object) => InspectDb, ...args);
  // `__name`: the helper esbuild's keepNames would call (tsx, vitest), absent in a worker.
  const source = `
const __name = (f) => f;
const { parentPort, workerData } = require('node:worker_threads');
const task = ${task.toString()};
let out;
try {
  out = { value: task(require(workerData.sqlite), ...workerData.args) };
} catch (e) {
  out = { error: String(e && e.message || e), code: e && e.code };
}
parentPort.postMessage(out);
`;
  let worker: Worker;
  try {
    worker = new Worker(source, { eval: true, workerData: { args, sqlite: requireHere.resolve('better-sqlite3') } });
  } catch {
    return inThread();
  }
  const stop = (): void => void worker.terminate();
  signal?.addEventListener('abort', stop, { once: true });
  let out: { value: R } | { error: string; code?: string };
  try {
    out = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(signal?.aborted ? signal.reason : new Error(`the worker stopped (exit ${code})`)));
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    return inThread();
  } finally {
    signal?.removeEventListener('abort', stop);
    await worker.terminate();
  }
  if ('error' in out) throw Object.assign(new Error(out.error), { code: out.code });
  return out.value;
}

/**
 * Checks the database file (see the module comment): in a worker thread, or here if none can
 * start. `signal` stops the worker (its connection closes with it) and rejects.
 */
export async function checkHistoryFile(file: string, signal?: AbortSignal): Promise<HealthReport> {
  const start = Date.now();
  const result = await inWorker(inspectHistory, [file], signal);
  const end = Date.now();
  return { ok: result.problems.length === 0, problems: result.problems, unreadable: result.unreadable, checkedAt: end, ms: end - start };
}

/**
 * Writes a backup of the database file without blocking this thread (see the module comment), and
 * removes backups of killed processes left half-written. Returns the backup's path.
 */
export async function backupHistoryFile(file: string, opts: BackupOptions, signal?: AbortSignal): Promise<string> {
  await removeStale(opts.backupDir, BACKUP_TEMP);
  const tmp = backupTempPath(opts.backupDir);
  try {
    const version = await inWorker(vacuumInto, [file, tmp], signal);
    signal?.throwIfAborted();
    return placeBackup(tmp, version, opts);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** How old the newest backup may be before the next healthy check writes one (a week). */
export const BACKUP_EVERY_MS = 7 * 24 * 3600 * 1000;

/** Options of {@link HistoryHealth}. */
export interface HistoryHealthOptions {
  /** The database file. */
  file: string;
  /** Told once when a check finds damage. */
  onDamaged?: (info: DamagedHistoryInfo) => void;
  /** How long after {@link HistoryHealth.start} the first check runs (default 2 s: after the window is up). */
  delayMs?: number;
  /**
   * The backup after a healthy check when the newest is older than `everyMs` (default
   * {@link BACKUP_EVERY_MS}; backups in `backupDir`, default `backups/` beside the file); `false`: none.
   */
  backup?: false | (Partial<BackupOptions> & { everyMs?: number });
}

/** Background checks of one database file (see the module comment). */
export class HistoryHealth {
  /** The latest finished check, or `null` before the first. */
  last: HealthReport | null = null;
  /** The backup the checks are writing, if one is. */
  backingUp: Promise<string | null> | null = null;
  private running: Promise<HealthReport> | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private reported = false;
  private disposed = false;
  private readonly stop = new AbortController();

  constructor(private readonly opts: HistoryHealthOptions) {}

  /** Schedules the check after start. */
  start(): void {
    if (this.timer || this.disposed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.check().catch(() => {});
    }, this.opts.delayMs ?? 2000);
    this.timer.unref?.();
  }

  /** Runs a check now (or joins the one running). */
  check(): Promise<HealthReport> {
    this.running ??= checkHistoryFile(this.opts.file, this.stop.signal).then((report) => {
      this.running = null;
      if (this.disposed) return report;
      this.last = report;
      if (report.ok) void this.backupIfDue();
      if (!report.ok && !this.reported) {
        this.reported = true;
        this.opts.onDamaged?.({
          file: this.opts.file,
          message: messageFor('DB_CORRUPT', this.opts.file, report.problems[0]),
          backupAvailable: listBackups(this.opts.file).length > 0,
          unreadable: report.unreadable,
        });
      }
      return report;
    }, (err: unknown) => {
      this.running = null;
      throw err;
    });
    return this.running;
  }

  /**
   * Writes a backup if the last check found the file sound and the newest backup is older than
   * the `backup` option says (run after each healthy check), or joins the one being written: its
   * path, or `null` when none was due or it failed.
   */
  backupIfDue(): Promise<string | null> {
    // Only a file the last check found sound: a damaged one must not push good backups out.
    if (this.disposed || this.last?.ok !== true) return Promise.resolve(null);
    this.backingUp ??= this.writeBackupIfDue().finally(() => {
      this.backingUp = null;
    });
    return this.backingUp;
  }

  private async writeBackupIfDue(): Promise<string | null> {
    const b = this.opts.backup;
    if (b === false) return null;
    const backupDir = b?.backupDir ?? defaultBackupDir(this.opts.file);
    const now = b?.now ?? (() => new Date());
    const newest = listBackups(this.opts.file, backupDir)[0];
    if (newest && now().getTime() - newest.createdAt.getTime() < (b?.everyMs ?? BACKUP_EVERY_MS)) return null;
    // A failed backup (a full disk) is tried again after the next check; the history is unaffected.
    return backupHistoryFile(this.opts.file, { backupDir, keep: b?.keep, now }, this.stop.signal).catch(() => null);
  }

  /** The check running, else the last one, else a check started now. */
  whenChecked(): Promise<HealthReport> {
    if (this.running) return this.running;
    if (this.last) return Promise.resolve(this.last);
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    return this.check();
  }

  /** A request answered `DB_CORRUPT`: check, unless a check is running or damage was already reported. */
  noticeCorrupt(): void {
    if (this.disposed || this.running || this.last?.ok === false) return;
    void this.check().catch(() => {});
  }

  /** Stops scheduling checks and stops a running one (its connection closes); resolves when it has. */
  async dispose(): Promise<void> {
    this.disposed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.stop.abort(new Error('the history check was stopped'));
    await this.running?.catch(() => {});
    await this.backingUp;
  }
}
