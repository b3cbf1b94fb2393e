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
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { listBackups } from './database.ts';
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

/** The part of better-sqlite3's `Database` the check uses. */
interface InspectDb {
  pragma(sql: string): unknown;
  prepare(sql: string): { iterate(...args: unknown[]): Iterable<unknown>; get(...args: unknown[]): unknown; all(...args: unknown[]): unknown[] };
  close(): void;
}

// \`__name\`: the helper esbuild's keepNames would call (tsx, vitest), absent in a worker.
const WORKER_SOURCE = `
const __name = (f) => f;
const { parentPort, workerData } = require('node:worker_threads');
const inspectHistory = ${inspectHistory.toString()};
parentPort.postMessage(inspectHistory(require(workerData.sqlite), workerData.file));
`;

const requireHere = createRequire(import.meta.url);

function inThread(file: string): Inspection {
  return inspectHistory(requireHere('better-sqlite3') as new (file: string, opts: object) => InspectDb, file);
}

/**
 * Checks the database file (see the module comment): in a worker thread, or here if none can
 * start. `signal` stops the worker (its connection closes with it) and rejects.
 */
export async function checkHistoryFile(file: string, signal?: AbortSignal): Promise<HealthReport> {
  const start = Date.now();
  signal?.throwIfAborted();
  let result: Inspection;
  let worker: Worker | undefined;
  try {
    worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { file, sqlite: requireHere.resolve('better-sqlite3') } });
  } catch {
    worker = undefined;
  }
  if (worker) {
    const w = worker;
    const stop = (): void => void w.terminate();
    signal?.addEventListener('abort', stop, { once: true });
    try {
      result = await new Promise<Inspection>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
        w.once('exit', (code) => reject(signal?.aborted ? signal.reason : new Error(`the check stopped (exit ${code})`)));
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      result = inThread(file);
    } finally {
      signal?.removeEventListener('abort', stop);
      await w.terminate();
    }
  } else {
    result = inThread(file);
  }
  const end = Date.now();
  return { ok: result.problems.length === 0, problems: result.problems, unreadable: result.unreadable, checkedAt: end, ms: end - start };
}

/** Options of {@link HistoryHealth}. */
export interface HistoryHealthOptions {
  /** The database file. */
  file: string;
  /** Told once when a check finds damage. */
  onDamaged?: (info: DamagedHistoryInfo) => void;
  /** How long after {@link HistoryHealth.start} the first check runs (default 2 s: after the window is up). */
  delayMs?: number;
}

/** Background checks of one database file (see the module comment). */
export class HistoryHealth {
  /** The latest finished check, or `null` before the first. */
  last: HealthReport | null = null;
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
  }
}
