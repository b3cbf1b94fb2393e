/**
 * Hardening round two, the history's side (issue 12, defects 4 and 5):
 *
 * - an import whose dates, numbers or texts an exporter could not format is refused before
 *   anything is written (`createdAt: 8640000000000001` used to import, and then break every
 *   HTML/Markdown export of the history); and a value that did get in (an older Owlery's import)
 *   never fails a whole export: the exporters write what they can and say what they left out;
 * - damage inside a page of the database (not its header) is found by the full integrity check the
 *   services run in the background after start, and whenever a request meets it: the same
 *   recovery as for a damaged header is offered (restore the last backup, start empty keeping a
 *   copy, or quit), with the conversations that cannot be read listed by name.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ExportFile } from '../../src-shared/chat.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { mulberry32 } from '../../src-shared/random.ts';
import { buildExportFile, exportConversations, importJson } from '../../src-main/export/index.ts';
import type { ExportContext } from '../../src-main/export/index.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services } from '../../src-main/services/composition.ts';
import { HistoryHealth } from '../../src-main/store/health.ts';
import type { DamagedHistoryInfo } from '../../src-main/store/health.ts';
import { listBackups } from '../../src-main/store/database.ts';
import { Store } from '../../src-main/store/store.ts';
import { deadPid, makePhoto, openStoreEnv, removeDir, tempDir } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { writeSampleHistory } from '../helpers/chat-history.ts';
import { errorOf } from './helpers/errors.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('history-damage');
const APP_URL = 'app://owlery/index.html';

let work: string;

beforeAll(async () => {
  work = await tempDir('owlery-history-damage-');
});

afterAll(async () => {
  figures.write();
  await removeDir(work);
});

describe('imports whose values an export could not format', () => {
  const CATEGORY = 'hostile import values';
  let source: StoreEnv;
  let target: StoreEnv;
  let good: ExportFile;
  let tried = 0;
  let refused = 0;

  beforeAll(async () => {
    source = openStoreEnv(join(work, 'import-source'));
    target = openStoreEnv(join(work, 'import-target'));
    await writeSampleHistory(source, await makePhoto(1, 40, 30), await makePhoto(2, 25, 50, 'jpeg'));
    good = await buildExportFile({ store: source.store, images: source.images }, 'all');
  });

  afterAll(() => {
    figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: refused, messagesLost: 0 });
    source?.close();
    target?.close();
  });

  /** The sample export with one change. */
  function variant(change: (f: ExportFile) => void): Uint8Array {
    const f = structuredClone(good);
    change(f);
    return new TextEncoder().encode(JSON.stringify(f));
  }

  const withAnswer = (f: ExportFile) => f.conversations.flatMap((c) => c.messages).find((m) => m.role === 'assistant' && m.stats)!;
  const cases: [string, (f: ExportFile) => void, string[]][] = [
    ['createdAt 8640000000000001 (past the last date JavaScript can show)', (f) => { f.conversations[0].createdAt = 8640000000000001; }, ['createdAt', 'date']],
    ['a message updatedAt of 2^53 − 1', (f) => { f.conversations[0].messages[0].updatedAt = Number.MAX_SAFE_INTEGER; }, ['updatedAt']],
    ['deletedAt 9e15', (f) => { f.conversations[0].deletedAt = 9e15; }, ['deletedAt']],
    ['stats.decodeTokensPerSecond true', (f) => { (withAnswer(f).stats as unknown as Record<string, unknown>).decodeTokensPerSecond = true; }, ['decodeTokensPerSecond']],
    ['stats.outputTokens "many"', (f) => { (withAnswer(f).stats as unknown as Record<string, unknown>).outputTokens = 'many'; }, ['outputTokens']],
    ['stats.provider of 10,000 characters', (f) => { withAnswer(f).stats!.provider = 'x'.repeat(10_000); }, ['provider']],
    ['settings.temperature "hot"', (f) => { (withAnswer(f).settings as unknown as Record<string, unknown>).temperature = 'hot'; }, ['temperature']],
    ['model.packageId of 100,000 characters', (f) => { withAnswer(f).model = { packageId: 'p'.repeat(100_000), sha256: 'a'.repeat(64) }; }, ['packageId']],
    ['a message role "root"', (f) => { (f.conversations[0].messages[0] as unknown as Record<string, unknown>).role = 'root'; }, ['role']],
    ['an image orientation 9', (f) => { f.images[0].orientation = 9; }, ['orientation']],
  ];

  it.each(cases)('%s: refused, naming the field, nothing written', async (_name, change, parts) => {
    const before = target.store.listConversations({ limit: 100 }).items.length;
    tried++;
    const err = await errorOf(importJson({ store: target.store, images: target.images }, variant(change)));
    expect(err).toBeInstanceOf(OwleryError);
    expect((err as OwleryError).code, (err as Error).message).toBe('IMPORT_INVALID');
    for (const p of parts) expect((err as Error).message).toContain(p);
    expect(target.store.listConversations({ limit: 100 }).items.length).toBe(before);
    refused++;
  });

  it('the unchanged file still imports', async () => {
    const r = await importJson({ store: target.store, images: target.images }, variant(() => {}));
    expect(r.conversations.length).toBe(good.conversations.length);
  });
});

describe('a value an exporter cannot format, already in the history', () => {
  const CATEGORY = 'unformattable values in exports';
  let env: StoreEnv;
  let ctx: ExportContext;
  let badId: number;
  let photoGoneId: number;
  let total: number;

  beforeAll(async () => {
    env = openStoreEnv(join(work, 'export-bad-values'));
    await writeSampleHistory(env, await makePhoto(3, 40, 30), await makePhoto(4, 25, 50, 'jpeg'));
    // As an older Owlery's import left it: a date past JavaScript's range, and stats of the wrong type.
    const bad = env.store.createConversation({ title: 'Imported with a broken date' });
    const q = env.store.appendUserMessage({ conversationId: bad.id, text: 'Still readable?' });
    const a = env.store.createAssistantMessage({ conversationId: bad.id, parentId: q.id });
    env.store.finishMessage(a.id, { status: 'complete', text: 'Yes every word' });
    env.store.db.prepare('UPDATE conversations SET created_at = 8640000000000001 WHERE id = ?').run(bad.id);
    env.store.db.prepare('UPDATE messages SET created_at = 8640000000000001, updated_at = 8640000000000002 WHERE id = ?').run(q.id);
    badId = bad.id;
    // A conversation whose photo file went missing from the image folder.
    const photo = await env.images.put(await makePhoto(5, 20, 20), { name: 'gone.png' });
    const gone = env.store.createConversation({ title: 'Photo deleted by hand' });
    env.store.appendUserMessage({ conversationId: gone.id, text: 'Look at this', images: [{ sha256: photo.sha256, name: 'gone.png' }] });
    await rm(env.images.pathOf(photo));
    photoGoneId = gone.id;
    ctx = { store: env.store, images: env.images };
    total = env.store.listConversations({ limit: 100 }).items.length;
  });

  afterAll(() => env?.close());

  it.each(['html', 'markdown', 'json'] as const)('%s export of everything: written in full, the bad values left out and listed', async (format) => {
    const dest = join(work, `all.${format === 'markdown' ? 'md' : format}`);
    // What an export killed half-way left next to its file: removed by this export.
    const leftover = join(work, `.all.${format}.${deadPid()}-0badc0de.tmp`);
    writeFileSync(leftover, 'half an export');
    const summary = await exportConversations(ctx, { format, conversations: 'all', dest });
    expect(existsSync(leftover)).toBe(false);
    expect(summary.conversations).toBe(total);
    const text = readFileSync(dest, 'utf8');
    expect(text).toContain('Yes every word');
    expect(text).toContain('Look at this');
    expect(summary.skipped.join('\n')).toMatch(/Imported with a broken date.*date/);
    expect(summary.skipped.join('\n')).toMatch(/Photo deleted by hand.*gone\.png/);
    if (format === 'json') {
      // The backup imports again, whole.
      const again = openStoreEnv(join(work, 'reimport'));
      try {
        const r = await importJson({ store: again.store, images: again.images }, dest);
        expect(r.conversations.length).toBe(total);
      } finally {
        again.close();
      }
    }
    figures.add(CATEGORY, { badInputsTried: 2, badInputsRejected: 2, messagesLost: 0 });
  });

  it('one conversation exported alone (HTML, Markdown) says what it left out', async () => {
    for (const format of ['html', 'markdown'] as const) {
      const summary = await exportConversations(ctx, { format, conversations: [badId], dest: join(work, `one.${format}`) });
      expect(summary.conversations).toBe(1);
      expect(summary.skipped.length).toBeGreaterThan(0);
    }
    const withPhoto = await exportConversations(ctx, { format: 'html', conversations: [photoGoneId], dest: join(work, 'photo.html') });
    expect(readFileSync(join(work, 'photo.html'), 'utf8')).toContain('could not be embedded');
    expect(withPhoto.skipped.join(' ')).toContain('gone.png');
  });
});

describe('damage inside a page of the history database', () => {
  const CATEGORY = 'page-level database damage';
  let injected = 0;
  let survived = 0;
  afterAll(() => figures.add(CATEGORY, { faultsInjected: injected, faultsSurvived: survived, messagesLost: 0 }));

  /** A history of 40 conversations × 6 long messages with a backup, closed. Returns the titles by id. */
  function writeHistory(dataDir: string): Map<number, string> {
    const { store } = Store.open(join(dataDir, 'owlery.sqlite'));
    const titles = new Map<number, string>();
    for (let i = 0; i < 40; i++) {
      const c = store.createConversation({ title: `Conversation ${i}` });
      titles.set(c.id, c.title);
      let parent: number | null = null;
      for (let k = 0; k < 6; k++) parent = store.appendUserMessage({ conversationId: c.id, parentId: parent, text: `message ${i}.${k} `.repeat(40) }).id;
    }
    store.backupNow();
    store.close();
    return titles;
  }

  /** Flips bytes (seeded) all over one leaf page of the messages table (or of `name`), not the file's header. */
  function damageMessagesPage(file: string, seed: number, name = 'messages'): number {
    const db = new Database(file, { readonly: true });
    const pages = db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").all(name) as { pageno: number }[];
    const pageSize = db.pragma('page_size', { simple: true }) as number;
    db.close();
    const rand = mulberry32(seed);
    const page = pages[Math.floor(pages.length / 2)].pageno;
    const fd = openSync(file, 'r+');
    const buf = Buffer.alloc(pageSize);
    readSync(fd, buf, 0, pageSize, (page - 1) * pageSize);
    for (let i = 0; i < pageSize; i += 1 + Math.floor(rand() * 12)) buf[i] ^= 1 + Math.floor(rand() * 255);
    writeSync(fd, buf, 0, pageSize, (page - 1) * pageSize);
    closeSync(fd);
    return page;
  }

  /** The conversations the app cannot open now. */
  function unopenable(services: Services, ids: Iterable<number>): number[] {
    const out: number[] = [];
    for (const id of ids) {
      try {
        services.store.getThread(id);
      } catch {
        out.push(id);
      }
    }
    return out.sort((a, b) => a - b);
  }

  it('found by the check after start (in the background): the recovery screen lists what cannot be read; restoring brings the backup back', async () => {
    const dataDir = join(work, 'page-damage');
    const titles = writeHistory(dataDir);
    damageMessagesPage(join(dataDir, 'owlery.sqlite'), 21);
    injected++;
    const told: DamagedHistoryInfo[] = [];
    const services = createServices({ dataDir, autoLoadModel: false, onDamagedHistory: (info) => told.push(info) });
    expect(services.health.last, 'the window opens before the check is done').toBeNull();
    const report = await services.health.whenChecked();
    expect(report.ok).toBe(false);
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ backupAvailable: true, file: join(dataDir, 'owlery.sqlite'), message: expect.stringMatching(/damaged.*Restore the latest backup/s) });
    const broken = unopenable(services, titles.keys());
    expect(broken.length).toBeGreaterThan(0);
    expect(told[0].unreadable.map((u) => u.id).sort((a, b) => a - b)).toEqual(broken);
    expect(told[0].unreadable.map((u) => u.title)).toEqual(broken.map((id) => titles.get(id)));
    // Opening one answers DB_CORRUPT with what to do.
    const dispatch = createDispatcher(createHandlers(services), { isTrustedSender: () => true });
    const r = await dispatch('conversations:get', { id: broken[0] }, { url: APP_URL });
    expect(r.ok ? null : r.error.code).toBe('DB_CORRUPT');

    const outcome = await services.recoverHistory('restore');
    expect(outcome.movedAside.every((p) => existsSync(p))).toBe(true);
    const again = createServices({ dataDir, autoLoadModel: false });
    try {
      expect(again.store.listConversations({ limit: 100 }).items).toHaveLength(40);
      expect(unopenable(again, titles.keys())).toEqual([]);
      expect((await again.health.whenChecked()).ok).toBe(true);
    } finally {
      await again.close();
    }
    survived++;
  });

  it('met by a request before any check: the answer is DB_CORRUPT and the check runs then; "start empty" keeps the damaged file', async () => {
    const dataDir = join(work, 'page-damage-request');
    const titles = writeHistory(dataDir);
    damageMessagesPage(join(dataDir, 'owlery.sqlite'), 22);
    injected++;
    const told: DamagedHistoryInfo[] = [];
    const services = createServices({ dataDir, autoLoadModel: false, healthCheckDelayMs: 3_600_000, onDamagedHistory: (info) => told.push(info) });
    const broken = unopenable(services, titles.keys());
    expect(told).toHaveLength(0);
    const dispatch = createDispatcher(createHandlers(services), { isTrustedSender: () => true });
    const r = await dispatch('conversations:get', { id: broken[0] }, { url: APP_URL });
    expect(r.ok ? null : r.error.code).toBe('DB_CORRUPT');
    const report = await services.health.whenChecked();
    expect(report.ok).toBe(false);
    expect(told).toHaveLength(1);
    expect(told[0].unreadable.map((u) => u.id).sort((a, b) => a - b)).toEqual(broken);

    const outcome = await services.recoverHistory('fresh');
    expect(outcome.movedAside[0]).toMatch(/owlery\.sqlite\.damaged-/);
    expect(existsSync(outcome.movedAside[0])).toBe(true);
    const again = createServices({ dataDir, autoLoadModel: false });
    try {
      expect(again.store.listConversations({ limit: 100 }).items).toHaveLength(0);
    } finally {
      await again.close();
    }
    survived++;
  });

  it('a damaged history is never backed up, however old its backup: the rotation keeps the last good copy', async () => {
    const dataDir = join(work, 'page-damage-backup');
    writeHistory(dataDir);
    const file = join(dataDir, 'owlery.sqlite');
    // An index page this time: the tables still read. (SQLite's VACUUM INTO refuses a malformed
    // file as well; the check's verdict is asked first all the same.)
    damageMessagesPage(file, 23, 'messages_by_parent');
    injected++;
    const good = listBackups(file);
    const health = new HistoryHealth({ file, delayMs: 0, backup: { now: () => new Date(Date.now() + 365 * 24 * 3600 * 1000) } });
    try {
      expect((await health.check()).ok).toBe(false);
      expect(await health.backupIfDue()).toBeNull();
      expect(listBackups(file)).toEqual(good);
    } finally {
      await health.dispose();
    }
    survived++;
  });

  it('an undamaged history checks ok and nothing is offered', async () => {
    const dataDir = join(work, 'healthy');
    writeHistory(dataDir);
    const told: DamagedHistoryInfo[] = [];
    const services = createServices({ dataDir, autoLoadModel: false, onDamagedHistory: (info) => told.push(info) });
    try {
      const report = await services.health.whenChecked();
      expect(report).toMatchObject({ ok: true, unreadable: [] });
      expect(told).toEqual([]);
    } finally {
      await services.close();
    }
  });
});
