/**
 * Opening the history database: pragmas, schema migrations, backups and restore.
 *
 * - WAL journal, `synchronous = NORMAL` (a committed write survives a crash or kill of the app; a
 *   power cut may lose the last commits, never the file), foreign keys on, a busy timeout.
 * - `PRAGMA user_version` is the schema version; {@link MIGRATIONS} bring older files up to date,
 *   one transaction per step, after a copy of the file is saved under `backups/`.
 * - A file from a newer Owlery is refused (`DB_TOO_NEW`) and left untouched; a damaged file is
 *   reported as `DB_CORRUPT`, and {@link restoreLatestBackup} puts the newest good backup back.
 *
 * better-sqlite3 is synchronous, and the store runs in the main process with the other services
 * (docs/adr/0001-processes.md): opening, migrating and the backup before a migration happen before
 * the window is shown ({@link backupDatabase} blocks while it copies the file). The weekly backup
 * runs in a worker thread on its own connection after the background integrity check
 * (`health.ts`).
 * @see docs/design.md, "Storage"; docs/style.md, H8.
 */
import { accessSync, constants, copyFileSync, existsSync, fsyncSync, mkdirSync, openSync, closeSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { OwleryError } from '../../src-shared/errors.ts';
import { classifyCode, errorCodeOf, messageFor, toStoreError } from './errors.ts';
import { MIGRATIONS, OWLERY_APPLICATION_ID, SCHEMA_VERSION } from './migrations/index.ts';
import type { Migration } from './migrations/index.ts';

export { SCHEMA_VERSION } from './migrations/index.ts';

/** Options for {@link openDatabase}. */
export interface OpenOptions {
  /** Open without writing anything (no migrations, no WAL switch). Default false. */
  readonly?: boolean;
  /** How long a write waits for another connection's lock before failing with `DB_LOCKED` (default 5000 ms). */
  busyTimeoutMs?: number;
  /** Where backups go (default `<folder of file>/backups`). */
  backupDir?: string;
  /** How many backups to keep; older ones are deleted after each new one (default 5). */
  keepBackups?: number;
  /** Run `PRAGMA quick_check` after opening and report damage as `DB_CORRUPT` (default false; O(file size)). */
  integrityCheck?: boolean;
  /** Stop migrating at this version (default: the latest). For tests and fixture tools only. */
  targetVersion?: number;
  /** Clock, for backup names (default `() => new Date()`). */
  now?: () => Date;
}

/** An open database and what happened while opening it. */
export interface OpenedDatabase {
  /** The connection, with pragmas set and the schema up to date. */
  db: Database.Database;
  /** Absolute path of the file. */
  file: string;
  /** Schema version found on disk (0 for a new file). */
  previousVersion: number;
  /** Schema version now. */
  version: number;
  /** The backup written before migrating, or `null` when none was needed. */
  backupPath: string | null;
}

/** One backup file. */
export interface BackupInfo {
  path: string;
  /** Schema version of the backed-up file, from its name. */
  version: number;
  /** When it was written, from its name. */
  createdAt: Date;
}

/** What {@link restoreLatestBackup} did. */
export interface RestoreResult {
  /** The backup that is now the database. */
  restoredFrom: BackupInfo;
  /** Where the damaged file (and its `-wal`/`-shm` companions) were moved, so nothing is deleted. */
  movedAside: string[];
}

const DEFAULT_BUSY_TIMEOUT_MS = 5000;
const DEFAULT_KEEP_BACKUPS = 5;
const BACKUP_NAME = /^owlery-v(\d+)-(\d{8}T\d{9}Z)\.sqlite$/;
const SIDE_FILES = ['-wal', '-shm'];

/** The default backup folder for a database file. */
export function defaultBackupDir(file: string): string {
  return join(dirname(resolve(file)), 'backups');
}

/**
 * Opens (creating if needed) the history database at `file` and brings its schema up to date.
 *
 * Throws `OwleryError` with `DB_TOO_NEW` (written by a newer Owlery; the file is not touched),
 * `DB_CORRUPT` (not a database, not an Owlery database, or damaged; `details.backupAvailable`
 * says whether {@link restoreLatestBackup} can help), `DB_LOCKED` (another program holds it),
 * `DB_READONLY` (the file or its folder cannot be written), `DISK_FULL`.
 */
export function openDatabase(file: string, opts: OpenOptions = {}): OpenedDatabase {
  const path = resolve(file);
  const readonly = opts.readonly ?? false;
  const target = opts.targetVersion ?? SCHEMA_VERSION;
  if (!Number.isInteger(target) || target < 0 || target > SCHEMA_VERSION) {
    throw new OwleryError('INVALID_ARGUMENT', `targetVersion must be an integer from 0 to ${SCHEMA_VERSION}.`);
  }
  checkMigrationList(MIGRATIONS);
  if (!readonly) ensureWritable(path);
  else if (!existsSync(path)) throw new OwleryError('NOT_FOUND', `There is no history database at ${path}.`, { file: path });

  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: readonly });
  } catch (err) {
    throw toStoreError(err, path);
  }
  try {
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS))}`);
    // Reading the header first: a file that is not a database fails here, before anything is written.
    const version = db.pragma('user_version', { simple: true }) as number;
    const appId = db.pragma('application_id', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new OwleryError(
        'DB_TOO_NEW',
        `The history database was written by a newer version of Owlery (schema version ${version}; this version ` +
          `understands up to ${SCHEMA_VERSION}). Update Owlery to open it; the file has not been changed.`,
        { file: path, version, supported: SCHEMA_VERSION },
      );
    }
    if (appId !== 0 && appId !== OWLERY_APPLICATION_ID) throw notOwlery(path, 'its application id is not Owlery’s');
    if (version === 0 && hasTables(db)) throw notOwlery(path, 'it holds tables but no Owlery schema version');

    if (!readonly) {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
    }
    db.pragma('foreign_keys = ON');
    db.pragma('temp_store = MEMORY');
    db.pragma('cache_size = -16384'); // 16 MiB page cache

    if (opts.integrityCheck) {
      const rows = db.pragma('quick_check') as { quick_check: string }[];
      if (rows.length !== 1 || rows[0].quick_check !== 'ok') {
        throw new OwleryError('DB_CORRUPT', messageFor('DB_CORRUPT', path, rows.map((r) => r.quick_check).slice(0, 3).join('; ')), {
          file: path,
        });
      }
    }

    let backupPath: string | null = null;
    if (version < target) {
      if (readonly) {
        throw new OwleryError('DB_READONLY', `The history database needs an upgrade (schema ${version} → ${target}) but was opened read-only.`, {
          file: path,
        });
      }
      if (version > 0) {
        backupPath = backupDatabase(db, {
          backupDir: opts.backupDir ?? defaultBackupDir(path),
          keep: opts.keepBackups ?? DEFAULT_KEEP_BACKUPS,
          now: opts.now,
        });
      }
      runMigrations(db, MIGRATIONS, target);
    }
    return { db, file: path, previousVersion: version, version: Math.max(version, target), backupPath };
  } catch (err) {
    db.close();
    const out = toStoreError(err, path);
    if (out instanceof OwleryError && out.code === 'DB_CORRUPT') {
      // Tell the UI whether "Restore the latest backup" can be offered.
      const backups = listBackups(path, opts.backupDir ?? defaultBackupDir(path));
      throw new OwleryError(out.code, out.message, { ...out.details, file: path, backupAvailable: backups.length > 0 });
    }
    throw out;
  }
}

/**
 * Applies the migrations after the database's version, up to `target`, one write transaction
 * each (foreign keys off during the step and checked after it).
 */
export function runMigrations(db: Database.Database, migrations: readonly Migration[], target: number): void {
  db.pragma('foreign_keys = OFF');
  try {
    for (const m of migrations) {
      if (m.version > target) break;
      db.transaction(() => {
        // Re-read inside the write lock: another process may have migrated meanwhile.
        const current = db.pragma('user_version', { simple: true }) as number;
        if (current >= m.version) return;
        if (current !== m.version - 1) {
          throw new OwleryError('INTERNAL', `Cannot apply migration ${m.name} to schema version ${current}.`);
        }
        m.up(db);
        const violations = db.pragma('foreign_key_check') as unknown[];
        if (violations.length > 0) {
          throw new OwleryError('DB_CORRUPT', `Migration ${m.name} left ${violations.length} broken references; nothing was changed.`);
        }
        db.pragma(`user_version = ${m.version}`);
      }).immediate();
    }
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/** Options for {@link backupDatabase}. */
export interface BackupOptions {
  backupDir: string;
  /** How many backups to keep (default 5). */
  keep?: number;
  now?: () => Date;
}

/**
 * Writes a consistent, compacted copy of the open database to
 * `<backupDir>/owlery-v<version>-<UTC timestamp>.sqlite` (VACUUM INTO a temporary name, then
 * rename) and deletes the oldest backups beyond `keep`. Returns the new file's path.
 */
export function backupDatabase(db: Database.Database, opts: BackupOptions): string {
  const version = db.pragma('user_version', { simple: true }) as number;
  const tmp = backupTempPath(opts.backupDir);
  try {
    db.prepare('VACUUM INTO ?').run(tmp);
    return placeBackup(tmp, version, opts);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** A backup being written by this process (`.backup-<pid>.sqlite.tmp`: a killed writer's is removed by the next weekly backup). */
export const BACKUP_TEMP = /^\.backup-(\d+)\.sqlite\.tmp$/;

/** The temporary file a backup is written to before {@link placeBackup} (the folder is created; an old one of this process is removed). */
export function backupTempPath(backupDir: string): string {
  mkdirSync(backupDir, { recursive: true });
  const tmp = join(backupDir, `.backup-${process.pid}.sqlite.tmp`);
  rmSync(tmp, { force: true });
  return tmp;
}

/**
 * Makes a finished copy at `tmp` (a database of schema `version`) a backup: flushed to disk,
 * renamed to `owlery-v<version>-<UTC timestamp>.sqlite`, and the oldest backups beyond `keep`
 * deleted. Returns the backup's path.
 */
export function placeBackup(tmp: string, version: number, opts: BackupOptions): string {
  const start = (opts.now ?? (() => new Date()))().getTime();
  let path = '';
  // Two backups in the same millisecond get the next free millisecond (names stay sortable).
  for (let i = 0; i === 0 || existsSync(path); i++) {
    path = join(opts.backupDir, `owlery-v${version}-${timestamp(new Date(start + i))}.sqlite`);
  }
  fsyncFile(tmp);
  renameSync(tmp, path);
  const keep = Math.max(1, opts.keep ?? DEFAULT_KEEP_BACKUPS);
  for (const old of listBackupsIn(opts.backupDir).slice(keep)) rmSync(old.path, { force: true });
  return path;
}

/** Backups of `file`, newest first. */
export function listBackups(file: string, backupDir: string = defaultBackupDir(file)): BackupInfo[] {
  return listBackupsIn(backupDir);
}

/**
 * Replaces a damaged database with its newest readable backup.
 *
 * Call it with the database closed (after `openDatabase` failed with `DB_CORRUPT`). The damaged
 * file and its `-wal`/`-shm` files are renamed to `<file>.damaged-<timestamp>…`, never deleted;
 * backups that fail `PRAGMA quick_check` are skipped. Opening the file afterwards migrates the
 * restored copy as usual. Throws `NOT_FOUND` when there is no usable backup.
 */
export function restoreLatestBackup(file: string, opts: { backupDir?: string; now?: () => Date } = {}): RestoreResult {
  const path = resolve(file);
  const backups = listBackups(path, opts.backupDir ?? defaultBackupDir(path));
  const good = backups.find((b) => isUsableBackup(b.path));
  if (!good) {
    throw new OwleryError(
      'NOT_FOUND',
      backups.length === 0 ? 'There is no backup of the history database to restore.' : 'None of the history database backups can be read.',
      { file: path, backups: backups.map((b) => b.path) },
    );
  }
  const stamp = timestamp((opts.now ?? (() => new Date()))());
  const movedAside: string[] = [];
  try {
    for (const suffix of ['', ...SIDE_FILES]) {
      if (!existsSync(path + suffix)) continue;
      const to = `${path}.damaged-${stamp}${suffix}`;
      renameSync(path + suffix, to);
      movedAside.push(to);
    }
    const tmp = `${path}.restore-tmp`;
    copyFileSync(good.path, tmp);
    fsyncFile(tmp);
    renameSync(tmp, path);
  } catch (err) {
    throw toStoreError(err, path);
  }
  return { restoredFrom: good, movedAside };
}

function listBackupsIn(dir: string): BackupInfo[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: BackupInfo[] = [];
  for (const name of names) {
    const m = BACKUP_NAME.exec(name);
    if (!m) continue;
    out.push({ path: join(dir, name), version: Number(m[1]), createdAt: new Date(isoFrom(m[2])) });
  }
  return out.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.path.localeCompare(a.path));
}

function isUsableBackup(path: string): boolean {
  try {
    const db = new Database(path, { readonly: true, fileMustExist: true });
    try {
      const version = db.pragma('user_version', { simple: true }) as number;
      const check = db.pragma('quick_check', { simple: true });
      return check === 'ok' && version >= 1 && version <= SCHEMA_VERSION;
    } finally {
      db.close();
    }
  } catch {
    return false;
  }
}

/** `20250102T030405678Z`: sortable and safe in file names on every OS. */
function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:.]/g, '');
}

function isoFrom(stamp: string): string {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(\d{3})Z$/.exec(stamp);
  if (!m) return stamp;
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`;
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function hasTables(db: Database.Database): boolean {
  return db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' LIMIT 1").get() !== undefined;
}

function notOwlery(path: string, why: string): OwleryError {
  return new OwleryError(
    'DB_CORRUPT',
    `${path} is not an Owlery history database (${why}). Choose another file, or move it aside to start with an empty history.`,
    { file: path },
  );
}

/** Fails early, with a clear message, when the file or its folder cannot be written. */
function ensureWritable(path: string): void {
  const dir = dirname(path);
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    if (existsSync(path)) accessSync(path, constants.R_OK | constants.W_OK);
    for (const suffix of SIDE_FILES) if (existsSync(path + suffix)) accessSync(path + suffix, constants.R_OK | constants.W_OK);
  } catch (err) {
    const code = classifyCode(errorCodeOf(err));
    if (code === 'DB_READONLY' || code === 'DISK_FULL') {
      throw new OwleryError(code, messageFor(code, path), { file: path, cause: errorCodeOf(err) });
    }
    throw err;
  }
}

function checkMigrationList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new OwleryError('INTERNAL', `Migration ${m.name} has version ${m.version}, expected ${i + 1}.`);
  });
}
