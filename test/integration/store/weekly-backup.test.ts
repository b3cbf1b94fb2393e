/**
 * The weekly backup of the history: written after a background check finds the file sound, when
 * the newest backup is a week old, on its own connection in a worker; rotated to the last five;
 * a killed backup's half-written file removed. (A damaged file is never backed up:
 * test/robustness/history-damage.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { defaultBackupDir, listBackups } from '../../../src-main/store/database.ts';
import { BACKUP_EVERY_MS, HistoryHealth } from '../../../src-main/store/health.ts';
import { deadPid, openStoreEnv, removeDir, tempDir } from '../../helpers/chat-env.ts';
import type { StoreEnv } from '../../helpers/chat-env.ts';

const DAY = 24 * 3600 * 1000;
let work: string;
let env: StoreEnv;

beforeAll(async () => {
  work = await tempDir('owlery-weekly-backup-');
  env = openStoreEnv(work);
  for (let i = 0; i < 3; i++) {
    const c = env.store.createConversation({ title: `Trip ${i}` });
    env.store.appendUserMessage({ conversationId: c.id, text: `What is in photo ${i}?` });
  }
});

afterAll(async () => {
  env.close();
  await removeDir(work);
});

const titlesIn = (file: string): string[] => {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare('SELECT title FROM conversations ORDER BY id').all() as { title: string }[]).map((r) => r.title);
  } finally {
    db.close();
  }
};

describe('the weekly backup', () => {
  let now = Date.UTC(2026, 0, 1, 12);
  let health: HistoryHealth;
  const backups = () => listBackups(env.dbFile);

  it('is written after the first sound check when there is none, a copy the app can open', async () => {
    const killed = join(defaultBackupDir(env.dbFile), `.backup-${deadPid()}.sqlite.tmp`);
    health = new HistoryHealth({ file: env.dbFile, delayMs: 0, backup: { now: () => new Date(now) } });
    expect(backups()).toEqual([]);
    health.start();
    await expect.poll(() => backups().length).toBe(1);
    expect(backups()[0].createdAt.getTime()).toBe(now);
    expect(titlesIn(backups()[0].path)).toEqual(['Trip 0', 'Trip 1', 'Trip 2']);
    // A backup whose process was killed half-way is removed by the next one.
    writeFileSync(killed, 'half a database');
    now += BACKUP_EVERY_MS;
    await health.check();
    expect(await health.backupIfDue()).not.toBeNull();
    expect(existsSync(killed)).toBe(false);
  });

  it('is not written again within a week; after a week it is, with what was added since', async () => {
    const before = backups().length;
    now += 6 * DAY;
    expect(await health.backupIfDue()).toBeNull();
    expect(backups()).toHaveLength(before);
    env.store.createConversation({ title: 'Trip 3' });
    now += 2 * DAY;
    const path = await health.backupIfDue();
    expect(path).toBe(backups()[0].path);
    expect(titlesIn(path!)).toEqual(['Trip 0', 'Trip 1', 'Trip 2', 'Trip 3']);
  });

  it('keeps the newest five', async () => {
    for (let i = 0; i < 6; i++) {
      now += 8 * DAY;
      await health.backupIfDue();
    }
    const kept = backups();
    expect(kept).toHaveLength(5);
    expect(kept[0].createdAt.getTime()).toBe(now);
    await health.dispose();
  });
});
