/**
 * Shared helpers for the store tests: temporary folders with real SQLite files, fixture copies,
 * a fake clock and query-plan reading.
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { OwleryError } from '../../../src-shared/errors.ts';

/** The repository root. */
export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
/** Committed old-version databases and the photo they reference. */
export const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'db');

/** A fresh temporary folder and a function that removes it. */
export function tempDir(prefix = 'owlery-store-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Copies the committed fixture `owlery-v<version>.sqlite` into `dir`; never open fixtures in place. */
export function copyFixture(version: number, dir: string, name = 'history.sqlite'): string {
  const to = join(dir, name);
  copyFileSync(join(FIXTURES, `owlery-v${version}.sqlite`), to);
  return to;
}

/** A clock that advances by `step` ms on every read, so times are distinct and ordered. */
export function fakeClock(start = Date.UTC(2025, 5, 1), step = 1000): () => number {
  let t = start - step;
  return () => (t += step);
}

/** The `EXPLAIN QUERY PLAN` details of a statement, one line per step. */
export function queryPlan(db: Database.Database, sql: string, params: unknown): string[] {
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const rows = (params === undefined ? stmt.all() : Array.isArray(params) ? stmt.all(...params) : stmt.all(params as object)) as { detail: string }[];
  return rows.map((r) => r.detail);
}

/** The schema as text: every `sqlite_master` entry's SQL, in a stable order. */
export function schemaText(db: Database.Database): string {
  const rows = db
    .prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type, name")
    .all() as { type: string; name: string; sql: string }[];
  return rows.map((r) => `-- ${r.type} ${r.name}\n${r.sql};\n`).join('\n');
}

/** Runs `fn` and returns the `OwleryError` it throws (failing when it throws something else or nothing). */
export function owleryErrorOf(fn: () => unknown): OwleryError {
  try {
    fn();
  } catch (err) {
    if (err instanceof OwleryError) return err;
    throw new Error(`expected an OwleryError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an OwleryError, but nothing was thrown');
}

/** Async counterpart of {@link owleryErrorOf}. */
export async function owleryErrorOfAsync(fn: () => Promise<unknown>): Promise<OwleryError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof OwleryError) return err;
    throw new Error(`expected an OwleryError, got ${String(err)}`, { cause: err });
  }
  throw new Error('expected an OwleryError, but nothing was thrown');
}

