/**
 * What the store's parts share: the connection, the clock and the prepared statements.
 *
 * The parts (`conversations.ts`, `messages.ts`, `image-records.ts`, `search.ts`) run inside the
 * {@link Store} facade's error guard, so they let SQLite failures through as they are; the facade
 * turns them into `OwleryError`s.
 */
import type Database from 'better-sqlite3';
import { OwleryError } from '../../src-shared/errors.ts';
import { SQL } from './queries.ts';
import type { SqlName } from './queries.ts';

/** The connection, the clock and the statement cache, one per {@link Store}. */
export class StoreContext {
  readonly db: Database.Database;
  /** Clock in ms since the epoch. */
  readonly now: () => number;
  private readonly statements = new Map<SqlName, Database.Statement>();

  constructor(db: Database.Database, now: () => number) {
    this.db = db;
    this.now = now;
  }

  /** The statement named `name` in {@link SQL}, prepared once. */
  stmt(name: SqlName): Database.Statement {
    let s = this.statements.get(name);
    if (!s) {
      s = this.db.prepare(SQL[name]);
      this.statements.set(name, s);
    }
    return s;
  }

  /** Runs `fn` in one write transaction, taking the write lock at the start (`BEGIN IMMEDIATE`). */
  write<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }
}

/** Throws `NOT_FOUND` when a write changed no row. */
export function requireChange(info: Database.RunResult, what: string, id: number | string): void {
  if (info.changes === 0) throw new OwleryError('NOT_FOUND', `There is no ${what} ${id}.`);
}
