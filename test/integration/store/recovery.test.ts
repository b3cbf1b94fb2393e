/**
 * A damaged history at start-up: the services ask what to do, and restoring the last backup or
 * starting empty both open cleanly without deleting the damaged file; quitting throws DB_CORRUPT.
 * A backup is written at start when the newest is older than a day.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listBackups } from '../../../src-main/store/database.ts';
import { DAILY_BACKUP_MS, openHistory, type CorruptDatabaseInfo } from '../../../src-main/store/recovery.ts';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-recovery-'));
  file = join(dir, 'owlery.sqlite');
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

/** A history with one conversation and a backup of it, then the file overwritten with garbage. */
function damagedWithBackup(): void {
  const { store } = openHistory(file, () => 'quit');
  const c = store.createConversation({ title: 'Holiday photos' });
  store.appendUserMessage({ conversationId: c.id, text: 'What is in the picture?' });
  store.backupNow();
  store.close();
  writeFileSync(file, Buffer.alloc(8192, 0x5a));
  for (const side of ['-wal', '-shm']) if (existsSync(file + side)) writeFileSync(file + side, Buffer.alloc(0));
}

describe('opening a damaged history', () => {
  it('restores the last backup when asked, keeping the damaged file aside', () => {
    damagedWithBackup();
    const asked: CorruptDatabaseInfo[] = [];
    const { store, recovered } = openHistory(file, (info) => (asked.push(info), 'restore'));
    expect(asked).toHaveLength(1);
    expect(asked[0].backupAvailable).toBe(true);
    expect(asked[0].message).toMatch(/damaged|not a database|corrupt/i);
    expect(recovered?.choice).toBe('restore');
    expect(store.listConversations({ limit: 10 }).items.map((c) => c.title)).toEqual(['Holiday photos']);
    expect(readdirSync(dir).some((n) => n.startsWith('owlery.sqlite.damaged-'))).toBe(true);
    store.close();
  });

  it('starts an empty history when asked, keeping the damaged file aside', () => {
    damagedWithBackup();
    const { store, recovered } = openHistory(file, () => 'fresh');
    expect(recovered?.choice).toBe('fresh');
    expect(store.listConversations({ limit: 10 }).items).toEqual([]);
    expect(recovered!.movedAside.every((p) => existsSync(p))).toBe(true);
    store.close();
  });

  it('throws DB_CORRUPT when the user quits, and changes nothing', () => {
    damagedWithBackup();
    expect(() => openHistory(file, () => 'quit')).toThrow(expect.objectContaining({ code: 'DB_CORRUPT' }));
    expect(readdirSync(dir).some((n) => n.includes('damaged'))).toBe(false);
  });

  it('writes a backup at start when the newest is more than a day old', () => {
    let now = Date.now();
    const first = openHistory(file, () => 'quit', () => now);
    first.store.createConversation({ title: 'Keep me' });
    first.store.close();
    const second = openHistory(file, () => 'quit', () => now);
    expect(second.backupWritten).toBeDefined();
    second.store.close();
    const third = openHistory(file, () => 'quit', () => now);
    expect(third.backupWritten).toBeUndefined();
    third.store.close();
    now += DAILY_BACKUP_MS + 60_000;
    const later = openHistory(file, () => 'quit', () => now);
    expect(later.backupWritten).toBeDefined();
    later.store.close();
    expect(listBackups(file).length).toBeGreaterThanOrEqual(1);
  });
});
