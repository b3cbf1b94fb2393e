/**
 * The shape of one schema migration.
 *
 * Migrations are numbered from 1 without gaps; migration N brings a database from
 * `PRAGMA user_version` N-1 to N. They run inside one write transaction each, with foreign keys
 * switched off (so tables can be rebuilt) and checked afterwards. A released migration never
 * changes: fix mistakes with a new one, and test each against a committed old database
 * (`test/fixtures/db/`).
 */
import type Database from 'better-sqlite3';

/** One numbered schema step. */
export interface Migration {
  /** The `user_version` this migration produces. */
  readonly version: number;
  /** Short kebab-case name, as in the file name (`0002-search`). */
  readonly name: string;
  /** Applies the step; runs inside a transaction, so it must not commit, vacuum or change pragmas that need none. */
  up(db: Database.Database): void;
}
