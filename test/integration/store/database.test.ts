import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, openSync, readFileSync, readdirSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { listBackups, openDatabase, restoreLatestBackup, SCHEMA_VERSION } from '../../../src-main/store/database.ts';
import { OWLERY_APPLICATION_ID } from '../../../src-main/store/migrations/index.ts';
import { Store } from '../../../src-main/store/store.ts';
import { REPO_ROOT, copyFixture, owleryErrorOf, schemaText, tempDir } from './helpers.ts';

let tmp: ReturnType<typeof tempDir>;
let file: string;
beforeEach(() => {
  tmp = tempDir();
  file = join(tmp.dir, 'history.sqlite');
});
afterEach(() => tmp.cleanup());

describe('openDatabase', () => {
  it('creates a database with WAL, foreign keys, NORMAL sync, a busy timeout and the latest schema', () => {
    const opened = openDatabase(file, { busyTimeoutMs: 1234 });
    const { db } = opened;
    expect(opened).toMatchObject({ previousVersion: 0, version: SCHEMA_VERSION, backupPath: null, file });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('synchronous', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(1234);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.pragma('application_id', { simple: true })).toBe(OWLERY_APPLICATION_ID);
    db.close();
    expect(existsSync(join(tmp.dir, 'backups'))).toBe(false); // nothing to back up in a new file
    // Opening again changes nothing.
    const again = openDatabase(file);
    expect(again).toMatchObject({ previousVersion: SCHEMA_VERSION, version: SCHEMA_VERSION, backupPath: null });
    again.db.close();
  });

  it('has the frozen schema of the current version', async () => {
    const { db } = openDatabase(file);
    const schema = schemaText(db);
    db.close();
    await expect(schema).toMatchFileSnapshot(`../../fixtures/db/schema-v${SCHEMA_VERSION}.sql`);
  });

  it('refuses a database from a newer Owlery with DB_TOO_NEW and leaves it untouched', () => {
    const raw = new Database(file);
    raw.exec('CREATE TABLE future (x)');
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.close();
    const before = readFileSync(file);
    const err = owleryErrorOf(() => openDatabase(file));
    expect(err.code).toBe('DB_TOO_NEW');
    expect(err.message).toMatch(/newer version of Owlery/);
    expect(err.message).toMatch(/has not been changed/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(false);
  });

  it('refuses a file that is not an Owlery database', () => {
    const raw = new Database(file);
    raw.exec('CREATE TABLE photos (path TEXT)');
    raw.close();
    const err = owleryErrorOf(() => openDatabase(file));
    expect(err.code).toBe('DB_CORRUPT');
    expect(err.message).toMatch(/not an Owlery history database/);

    const other = join(tmp.dir, 'other.sqlite');
    const raw2 = new Database(other);
    raw2.pragma('application_id = 1234');
    raw2.close();
    expect(owleryErrorOf(() => openDatabase(other)).message).toMatch(/application id/);
  });

  it('reports a file that is not a database at all as DB_CORRUPT', () => {
    writeFileSync(file, Buffer.alloc(16384, 0x5a));
    const err = owleryErrorOf(() => openDatabase(file));
    expect(err.code).toBe('DB_CORRUPT');
    expect(err.message).toMatch(/damaged/);
    expect(err.message).toMatch(/Restore the latest backup/);
    expect(err.details).toMatchObject({ file, cause: 'SQLITE_NOTADB', backupAvailable: false });
    expect(owleryErrorOf(() => restoreLatestBackup(file)).code).toBe('NOT_FOUND');
  });

  it('reports damaged pages as DB_CORRUPT and restores the latest backup', () => {
    // An upgraded v2 database: the upgrade left a backup of the v2 file.
    copyFixture(2, tmp.dir);
    const { store, opened } = Store.open(file);
    expect(opened.backupPath).not.toBeNull();
    store.createConversation({ title: 'written after the backup' });
    store.close();

    // Overwrite the schema page after the header: the file can no longer be read.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(3000, 0xa5), 0, 3000, 100);
    closeSync(fd);
    const err = owleryErrorOf(() => openDatabase(file));
    expect(err.code).toBe('DB_CORRUPT');
    expect(err.details).toMatchObject({ backupAvailable: true });

    const restored = restoreLatestBackup(file);
    expect(restored.restoredFrom.path).toBe(opened.backupPath);
    expect(restored.restoredFrom.version).toBe(2);
    expect(restored.movedAside.map((p) => basename(p))).toEqual([expect.stringMatching(/^history\.sqlite\.damaged-\d{8}T\d{9}Z$/)]);
    expect(existsSync(restored.movedAside[0])).toBe(true); // kept, never deleted

    const reopened = Store.open(file);
    expect(reopened.opened.previousVersion).toBe(2);
    expect(reopened.store.getConversation(1).title).toBe('Owl in the garden');
    expect(reopened.store.listConversations().items.map((c) => c.title)).not.toContain('written after the backup');
    reopened.store.close();
  });

  it('finds damage deeper in the file with integrityCheck', () => {
    const { store } = Store.open(file);
    const conv = store.createConversation({ title: 'big' });
    for (let i = 0; i < 200; i++) store.appendUserMessage({ conversationId: conv.id, text: `message ${i} `.repeat(50) });
    store.close();
    const pageSize = 4096;
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(pageSize * 20, 0xa5), 0, pageSize * 20, pageSize * 10);
    closeSync(fd);
    expect(owleryErrorOf(() => openDatabase(file, { integrityCheck: true })).code).toBe('DB_CORRUPT');
  });

  it('reports a database held by another program as DB_LOCKED', () => {
    openDatabase(file).db.close();
    const other = new Database(file);
    other.pragma('locking_mode = EXCLUSIVE');
    other.exec('BEGIN EXCLUSIVE');
    other.exec('CREATE TABLE lock_holder (x)');
    try {
      const err = owleryErrorOf(() => openDatabase(file, { busyTimeoutMs: 50 }));
      expect(err.code).toBe('DB_LOCKED');
      expect(err.message).toMatch(/in use by another program/);
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });

  it('reports a write blocked by another connection as DB_LOCKED, and works once it is released', () => {
    const { store } = Store.open(file, { busyTimeoutMs: 50 });
    const other = new Database(file);
    other.exec('BEGIN EXCLUSIVE');
    expect(owleryErrorOf(() => store.createConversation({ title: 'x' })).code).toBe('DB_LOCKED');
    expect(store.listConversations().items).toEqual([]); // WAL: reads still work
    other.exec('COMMIT');
    other.close();
    expect(store.createConversation({ title: 'x' }).title).toBe('x');
    store.close();
  });

  it('opened read-only, reads work and writes fail with DB_READONLY', () => {
    const { store } = Store.open(file);
    store.createConversation({ title: 'kept' });
    store.close();
    const ro = Store.open(file, { readonly: true }).store;
    expect(ro.listConversations().items.map((c) => c.title)).toEqual(['kept']);
    const err = owleryErrorOf(() => ro.createConversation({ title: 'no' }));
    expect(err.code).toBe('DB_READONLY');
    expect(err.message).toMatch(/cannot write/);
    ro.close();
    expect(owleryErrorOf(() => openDatabase(join(tmp.dir, 'missing.sqlite'), { readonly: true })).code).toBe('NOT_FOUND');
  });

  it('reports a read-only file or folder as DB_READONLY', ({ skip }) => {
    // Root may write anything, so as root the check runs in a child process as "nobody".
    const asRoot = process.getuid?.() === 0;
    const ro = join(tmp.dir, 'ro');
    const roDir = join(tmp.dir, 'ro-dir');
    for (const dir of [ro, roDir]) {
      const { db } = openDatabase(join(dir, 'history.sqlite'));
      db.close();
    }
    chmodSync(tmp.dir, 0o755);
    chmodSync(ro, 0o777);
    chmodSync(join(ro, 'history.sqlite'), 0o444); // the file is read-only
    chmodSync(join(roDir, 'history.sqlite'), 0o666);
    chmodSync(roDir, 0o555); // the folder is read-only: no -wal file can be made
    const run = (db: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'open-child.ts'), db, 'write'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
        env: { ...process.env, HOME: tmp.dir },
      });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      try {
        return JSON.parse(line) as { ok: boolean; code?: string; message?: string };
      } catch {
        return null;
      }
    };
    const fileResult = run(join(ro, 'history.sqlite'));
    if (fileResult === null) {
      skip('cannot run a child process as another user here');
      return;
    }
    expect(fileResult).toMatchObject({ ok: false, code: 'DB_READONLY' });
    expect(fileResult.message).toMatch(/read-only/);
    expect(run(join(roDir, 'history.sqlite'))).toMatchObject({ ok: false, code: 'DB_READONLY' });
    chmodSync(roDir, 0o755);
  });
});

describe('backups', () => {
  it('backs up a consistent copy with a versioned, timestamped name and keeps the newest ones', () => {
    let t = Date.UTC(2025, 0, 1, 12);
    const { store } = Store.open(file, {}, { now: () => (t += 1000) });
    store.createConversation({ title: 'in the backup' });
    const paths = Array.from({ length: 7 }, () => store.backupNow(5));
    store.close();
    const names = readdirSync(join(tmp.dir, 'backups')).sort();
    expect(names).toHaveLength(5);
    expect(names.every((n) => /^owlery-v\d+-\d{8}T\d{9}Z\.sqlite$/.test(n))).toBe(true);
    expect(listBackups(file).map((b) => b.path)).toEqual(paths.slice(2).reverse());
    const copy = new Database(paths[6], { readonly: true });
    expect(copy.prepare('SELECT title FROM conversations').all()).toEqual([{ title: 'in the backup' }]);
    expect(copy.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    copy.close();
  });

  it('skips unreadable backups when restoring', () => {
    copyFixture(1, tmp.dir);
    const { store, opened } = Store.open(file); // writes owlery-v1-….sqlite
    store.close();
    // A newer but broken backup.
    writeFileSync(join(tmp.dir, 'backups', 'owlery-v3-29991231T235959999Z.sqlite'), 'not a database');
    writeFileSync(file, 'damaged');
    expect(restoreLatestBackup(file).restoredFrom.path).toBe(opened.backupPath);
  });
});
