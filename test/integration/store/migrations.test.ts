/**
 * Each migration, run on a committed database of the version before it (test/fixtures/db).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase, runMigrations, SCHEMA_VERSION } from '../../../src-main/store/database.ts';
import { ImageStore } from '../../../src-main/store/images.ts';
import { MIGRATIONS } from '../../../src-main/store/migrations/index.ts';
import type { Migration } from '../../../src-main/store/migrations/index.ts';
import { Store } from '../../../src-main/store/store.ts';
import { FIXTURES, copyFixture, owleryErrorOf, schemaText, tempDir } from './helpers.ts';

const PHOTO_SHA = 'c2100b11c9a1c6608f66e693b529e15bc39539b0b6bb6bb1e5cb09dc28a2719d';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

function counts(db: Database.Database) {
  return db.prepare(
    'SELECT (SELECT count(*) FROM conversations) AS conversations, (SELECT count(*) FROM messages) AS messages, ' +
      '(SELECT count(*) FROM images) AS images, (SELECT count(*) FROM message_images) AS links',
  ).get();
}

function ftsIntegrity(db: Database.Database): void {
  db.exec("INSERT INTO messages_fts (messages_fts, rank) VALUES ('integrity-check', 1)");
  db.exec("INSERT INTO conversations_fts (conversations_fts, rank) VALUES ('integrity-check', 1)");
}

function freshSchema(): string {
  const { db } = openDatabase(join(tmp.dir, 'fresh.sqlite'));
  const s = schemaText(db);
  db.close();
  return s;
}

describe('the committed fixtures', () => {
  it('are the versions their names say, with the data the tests expect', () => {
    for (const v of [1, 2, 3, 4]) {
      const db = new Database(join(FIXTURES, `owlery-v${v}.sqlite`), { readonly: true });
      expect(db.pragma('user_version', { simple: true })).toBe(v);
      expect(counts(db)).toEqual({ conversations: 4, messages: 11, images: 1, links: 1 });
      db.close();
    }
  });
});

describe('0002-search (from the v1 fixture)', () => {
  it('indexes the existing messages and titles', () => {
    const file = copyFixture(1, tmp.dir);
    const opened = openDatabase(file, { targetVersion: 2 });
    const { db } = opened;
    expect(opened).toMatchObject({ previousVersion: 1, version: 2 });
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    ftsIntegrity(db);
    const match = (table: string, q: string) =>
      (db.prepare(`SELECT rowid FROM ${table} WHERE ${table} MATCH ? ORDER BY rowid`).all(q) as { rowid: number }[]).map((r) => r.rowid);
    expect(match('messages_fts', 'tawny')).toEqual([2, 3]);
    expect(match('messages_fts', 'cafe')).toEqual([10]); // "café table", diacritics folded
    expect(match('messages_fts', '"🦉"')).toEqual([9]);
    expect(match('conversations_fts', 'mountains')).toEqual([2]);
    expect(match('conversations_fts', '"नमस्ते"')).toEqual([3]);
    // The triggers keep the index in step from now on.
    db.prepare("UPDATE messages SET text = 'a barn owl' WHERE id = 2").run();
    expect(match('messages_fts', 'tawny')).toEqual([3]);
    expect(match('messages_fts', 'barn')).toEqual([2]);
    ftsIntegrity(db);
    expect(counts(db)).toEqual({ conversations: 4, messages: 11, images: 1, links: 1 });
    db.close();
  });
});

describe('0003-branches-thumbnails-stats (from the v2 fixture)', () => {
  it('selects the newest message as the active leaf and adds thumbnail and stats columns', () => {
    const file = copyFixture(2, tmp.dir);
    const { store, opened } = Store.open(file);
    expect(opened).toMatchObject({ previousVersion: 2, version: SCHEMA_VERSION });
    expect([1, 2, 3, 4].map((id) => store.getConversation(id).activeLeafId)).toEqual([5, 8, 11, null]);
    // The thread follows the branch written last: the regenerated answer 3, then 4 and 5.
    const thread = store.getThread(1);
    expect(thread.messages.map((m) => m.id)).toEqual([1, 3, 4, 5]);
    expect(thread.messages[1]).toMatchObject({ siblingIds: [2, 3], siblingIndex: 1, stats: null });
    expect(thread.messages[3]).toMatchObject({ status: 'partial', text: 'Its eyes are open, so it looks awake and al' });
    expect(thread.messages[0].images).toEqual([
      expect.objectContaining({ sha256: PHOTO_SHA, name: 'IMG_2041.jpg', width: 96, height: 64, orientation: 6, displayWidth: 64, displayHeight: 96, thumbnail: null }),
    ]);
    // Old answers keep their settings and model; new ones get stats.
    expect(thread.messages[1]).toMatchObject({ settings: { temperature: 0.7 }, model: { packageId: 'mplug-owl2-llama2-7b' } });
    ftsIntegrity(store.db);
    store.close();
  });

  it('leaves old images without thumbnails until the image store backfills them', async () => {
    const file = copyFixture(2, tmp.dir);
    const { store } = Store.open(file);
    const images = new ImageStore(store, tmp.dir);
    expect(store.imagesWithoutThumbnail().map((i) => i.sha256)).toEqual([PHOTO_SHA]);
    mkdirSync(join(images.root, PHOTO_SHA.slice(0, 2)), { recursive: true });
    copyFileSync(join(FIXTURES, 'photo-orientation-6.jpg'), images.pathOf({ sha256: PHOTO_SHA, ext: 'jpg' }));
    expect(await images.backfillThumbnails()).toBe(1);
    expect(store.imagesWithoutThumbnail()).toEqual([]);
    // Orientation 6: the 96×64 file is shown as 64×96, and so is its thumbnail.
    expect(store.getImage(PHOTO_SHA)!.thumbnail).toEqual({ mime: 'image/webp', width: 64, height: 96 });
    const meta = await sharp(images.thumbnailPathOf(PHOTO_SHA)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 64, 96]);
    store.close();
  });
});

describe('0005-chat-options-presets (from the v4 fixture)', () => {
  it('keeps existing titles as they are, gives chats default options, backfills cover photos, adds presets', () => {
    const file = copyFixture(4, tmp.dir);
    const { store, opened } = Store.open(file);
    expect(opened).toMatchObject({ previousVersion: 4, version: 5 });
    // Whether an old title was the user's is not known: it is kept (it will not follow an edit).
    expect([1, 2, 3, 4].map((id) => store.getConversation(id).titleSetByUser)).toEqual([true, true, true, true]);
    expect(store.getConversation(1).options).toEqual({ instructions: '', temperature: null, maxNewTokens: null });
    // Conversation 1 has the only photo; the list shows it as its cover.
    expect(store.listConversations().items.map((c) => [c.id, c.coverImage])).toEqual([[1, PHOTO_SHA], [4, null], [3, null]]);
    expect(store.listPresets()).toEqual([]);
    const preset = store.savePreset({ name: 'French', instructions: 'Answer in French.', temperature: 0.2 });
    expect(store.listPresets()).toEqual([preset]);
    expect(store.setConversationOptions(3, { instructions: preset.instructions }).options.instructions).toBe('Answer in French.');
    expect(store.db.pragma('foreign_key_check')).toEqual([]);
    expect(counts(store.db)).toEqual({ conversations: 4, messages: 11, images: 1, links: 1 });
    store.close();
  });
});

describe('upgrading the v1 fixture to the latest version', () => {
  it('backs up the old file first, keeps every row and ends with the same schema as a new database', () => {
    const file = copyFixture(1, tmp.dir);
    const { store, opened } = Store.open(file, { now: () => new Date(Date.UTC(2025, 6, 1, 8, 30)) });
    expect(opened).toMatchObject({ previousVersion: 1, version: SCHEMA_VERSION });
    expect(basename(opened.backupPath!)).toBe('owlery-v1-20250701T083000000Z.sqlite');
    const backup = new Database(opened.backupPath!, { readonly: true });
    expect(backup.pragma('user_version', { simple: true })).toBe(1);
    expect(counts(backup)).toEqual({ conversations: 4, messages: 11, images: 1, links: 1 });
    backup.close();

    expect(counts(store.db)).toEqual({ conversations: 4, messages: 11, images: 1, links: 1 });
    expect(store.db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(store.db.pragma('foreign_key_check')).toEqual([]);
    expect(schemaText(store.db)).toBe(freshSchema());

    // The old history works with today's API: list, trash, search, threads with two roots.
    expect(store.listConversations().items.map((c) => c.id)).toEqual([1, 4, 3]);
    expect(store.listTrash().items.map((c) => c.id)).toEqual([2]);
    expect(store.search('tawny').hits.map((h) => h.messageId)).toEqual(expect.arrayContaining([2, 3]));
    expect(store.search('glacier').hits).toEqual([]); // in the trash
    store.restoreConversation(2);
    expect(store.search('glacier').hits.map((h) => h.messageId).sort()).toEqual([6, 7]); // the question and the cancelled answer
    expect(store.getThread(3).messages.map((m) => m.id)).toEqual([10, 11]);
    expect(store.branches(9).map((m) => m.id)).toEqual([9, 10]);
    // Streaming continues where the old partial answer stopped.
    store.appendText(5, 'ert.');
    expect(store.finishMessage(5, { status: 'complete' }).text).toBe('Its eyes are open, so it looks awake and alert.');
    store.close();
  });

  it('rolls back a failing migration and keeps the steps before it', () => {
    const file = copyFixture(1, tmp.dir);
    const db = new Database(file);
    const broken: Migration = {
      version: 3,
      name: '0003-broken',
      up(d) {
        d.exec('ALTER TABLE messages ADD COLUMN doomed TEXT');
        throw new Error('boom');
      },
    };
    expect(() => runMigrations(db, [MIGRATIONS[0], MIGRATIONS[1], broken], 3)).toThrow('boom');
    expect(db.pragma('user_version', { simple: true })).toBe(2);
    expect((db.pragma('table_info(messages)') as { name: string }[]).map((c) => c.name)).not.toContain('doomed');
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    db.close();
  });

  it('does not migrate a read-only database', () => {
    const file = copyFixture(1, tmp.dir);
    expect(owleryErrorOf(() => openDatabase(file, { readonly: true })).code).toBe('DB_READONLY');
  });
});
