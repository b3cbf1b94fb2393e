/**
 * Disk faults on real, small filesystems (a tmpfs mounted for the test; skipped, with the reason,
 * where mounting is not possible): the disk filling up in the middle of a streamed answer, when a
 * message is sent, when photos are imported and while a model is converted, and the disk turning
 * read-only under a running app. Each must end with a clear typed error, nothing half-written,
 * nothing saved before lost, and the app working again once the disk is back.
 *
 * Already covered elsewhere (not repeated here): the answer writer on a full database
 * (test/integration/store/store.test.ts, via max_page_count), exports onto a full tmpfs
 * (test/integration/export-disk-full.test.ts), DISK_FULL before converting when the free space is
 * too small (test/integration/convert-quant.test.ts), read-only files and folders at open
 * (test/integration/store/database.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatEvent, ChatOutcome } from '../../src-shared/chat.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { convertCheckpoint } from '../../models/convert.ts';
import { exportJson, importJson } from '../../src-main/export/index.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { ImageStore } from '../../src-main/store/images.ts';
import { Store } from '../../src-main/store/store.ts';
import { makePhoto, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { mountSmallDisk, TMPFS_UNAVAILABLE } from './helpers/disk.ts';
import type { SmallDisk } from './helpers/disk.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('disk-faults');
const CATEGORY = 'fault injection: disk full / read-only';

let work: string;
let pkg: string;
let host: EngineHost;
const disks: SmallDisk[] = [];

beforeAll(async () => {
  work = await tempDir('owlery-disk-faults-');
  if (TMPFS_UNAVAILABLE) return;
  pkg = await tinyPackage(work);
  host = new EngineHost();
  await host.load(pkg, { provider: 'cpu' });
});

afterAll(async () => {
  figures.write();
  await host?.dispose();
  for (const d of disks) d.unmount();
  await removeDir(work);
});

function disk(prefix: string, bytes: number): SmallDisk {
  const d = mountSmallDisk(prefix, bytes);
  if (!d) throw new Error('could not mount a tmpfs');
  disks.push(d);
  return d;
}

/** Every file under `dir`, relative, sorted (temporary and half-written files show up here). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function quickCheck(file: string): string {
  const db = new Database(file, { readonly: true });
  try {
    return db.pragma('quick_check', { simple: true }) as string;
  } finally {
    db.close();
  }
}

/** A chat service on a data folder (database and photos) on `dir`. */
function chatOn(dir: string, opts: { onSaved?: (chars: number, requestId: string) => void } = {}) {
  const dbFile = join(dir, 'owlery.sqlite');
  const { store } = Store.open(dbFile);
  const images = new ImageStore(store, dir);
  const chat = new ChatService({
    store,
    images,
    engine: host,
    saveIntervalMs: 0,
    deltaIntervalMs: 5,
    onSaved: (info) => opts.onSaved?.(info.chars, info.requestId),
  });
  return { dbFile, store, images, chat, close: async () => { await chat.dispose(); store.close(); } };
}

async function run(chat: ChatService, start: Promise<{ requestId: string }>, events: ChatEvent[]): Promise<ChatOutcome> {
  const started = await start;
  const outcome = await chat.outcome(started.requestId);
  expect(events.at(-1)).toEqual(outcome);
  return outcome;
}

describe.skipIf(TMPFS_UNAVAILABLE !== null)(`full and read-only disks (${TMPFS_UNAVAILABLE ?? 'tmpfs'})`, () => {
  it('the disk fills up in the middle of a streamed answer: DISK_FULL, the saved text and the history intact, works again once space is freed', async () => {
    const d = disk('owlery-rb-chat-', 6 * 1024 * 1024);
    let filler: string | null = null;
    let longRequest = '';
    let savedBeforeFull = 0;
    const env = chatOn(d.dir, {
      onSaved: (chars, requestId) => {
        if (requestId !== longRequest || filler) return;
        savedBeforeFull = chars;
        filler = d.fill();
      },
    });
    try {
      // An earlier exchange, with a photo.
      const photo = await makePhoto(3, 40, 30);
      const first = await env.chat.send({ text: 'What is in this photo?', images: [{ kind: 'bytes', bytes: photo, name: 'p.png' }], sampling: { greedy: true, maxNewTokens: 6 } });
      const firstOutcome = await env.chat.outcome(first.requestId);
      expect(firstOutcome.type).toBe('done');
      const before = env.store.getThread(first.conversationId).messages.map((m) => ({ id: m.id, text: m.text, status: m.status }));

      const events: ChatEvent[] = [];
      const start = env.chat.send(
        { conversationId: first.conversationId, text: 'Now tell me a long story about it.', sampling: { temperature: 1, seed: 11, maxNewTokens: 400 } },
        { onEvent: (e) => events.push(e) },
      );
      longRequest = (await start).requestId;
      const outcome = await run(env.chat, start, events);
      expect(filler, 'the disk was filled mid-answer').not.toBeNull();

      // A clear error, with the answer as far as it was saved.
      expect(outcome).toMatchObject({ type: 'error', error: { code: 'DISK_FULL', message: expect.stringMatching(/full.*intact/s) } });
      const streamed = events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
      if (outcome.type !== 'error') throw new Error('unreachable');
      expect(outcome.message).not.toBeNull();
      expect(outcome.message!.status).toBe('partial');
      expect(outcome.message!.text.length).toBeGreaterThanOrEqual(savedBeforeFull);
      expect(outcome.message!.text.length).toBeGreaterThan(0);
      expect(streamed.startsWith(outcome.message!.text)).toBe(true); // what is saved is what was shown, up to where the disk filled

      // Nothing saved before was lost; the file is sound even while the disk is full.
      expect(quickCheck(env.dbFile)).toBe('ok');
      expect(env.store.getThread(first.conversationId).messages.slice(0, before.length).map((m) => ({ id: m.id, text: m.text, status: m.status }))).toEqual(before);
      expect(sha(readFileSync(env.images.pathOf(env.store.getImage(sha(photo))!)))).toBe(sha(photo));

      // Still full: a new message is refused with DISK_FULL and writes nothing.
      const count = env.store.listConversations({ limit: 50 }).items.length;
      await expect(env.chat.send({ text: 'Another question', sampling: { greedy: true, maxNewTokens: 4 } })).rejects.toMatchObject({ code: 'DISK_FULL' });
      expect(env.store.listConversations({ limit: 50 }).items.length).toBe(count);

      // Space back: the next question is answered and saved.
      rmSync(filler!);
      const after = await env.chat.send({ conversationId: first.conversationId, text: 'Are you still there?', sampling: { greedy: true, maxNewTokens: 5 } });
      const afterOutcome = await env.chat.outcome(after.requestId);
      expect(afterOutcome.type).toBe('done');
      expect(env.store.getMessage(after.assistantMessageId).status).toBe('complete');
      expect(quickCheck(env.dbFile)).toBe('ok');
      figures.add(CATEGORY, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
      figures.note(CATEGORY, 'midStreamUnsavedTail', 'text generated after the disk filled reached the window but is not saved: the answer stays partial with the text saved before');
    } finally {
      await env.close();
    }
  }, 120_000);

  it('sending a message with a photo on a full disk: DISK_FULL, no conversation, no photo, no temporary file', async () => {
    const d = disk('owlery-rb-send-', 4 * 1024 * 1024);
    const env = chatOn(d.dir);
    try {
      const filesBefore = filesUnder(d.dir);
      const filler = d.fill();
      const photo = await makePhoto(5, 300, 200); // noise-free but larger than a page
      const err = await env.chat.send({ text: 'Look', images: [{ kind: 'bytes', bytes: photo, name: 'big.png' }] }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OwleryError);
      expect(err).toMatchObject({ code: 'DISK_FULL', message: expect.stringMatching(/disk .* is full/) });
      expect(env.store.listConversations({ limit: 10 }).items).toEqual([]);
      expect(env.store.getImage(sha(photo))).toBeUndefined();
      expect(filesUnder(d.dir).filter((f) => !f.startsWith('.filler') && !f.startsWith('owlery.sqlite'))).toEqual(filesBefore.filter((f) => !f.startsWith('owlery.sqlite')));
      rmSync(filler);
      const ok = await env.chat.send({ text: 'Look', images: [{ kind: 'bytes', bytes: photo, name: 'big.png' }], sampling: { greedy: true, maxNewTokens: 3 } });
      expect((await env.chat.outcome(ok.requestId)).type).toBe('done');
      figures.add(CATEGORY, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
    } finally {
      await env.close();
    }
  }, 60_000);

  it('importing photos onto a full disk: DISK_FULL whether the photo, its thumbnail or its record does not fit; nothing half-written; imports work once space is freed', async () => {
    const d = disk('owlery-rb-images-', 3 * 1024 * 1024);
    const { store } = Store.open(join(d.dir, 'owlery.sqlite'));
    const images = new ImageStore(store, d.dir);
    try {
      const kept = await images.put(await makePhoto(1, 64, 48), { name: 'kept.png' });
      const keptBytes = readFileSync(images.pathOf(kept));
      const noise = new Uint8Array(await (await import('sharp')).default(
        Uint8Array.from({ length: 180 * 180 * 3 }, (_, i) => (i * 2654435761) >>> 24),
        { raw: { width: 180, height: 180, channels: 3 } },
      ).png().toBuffer());
      let survived = 0;

      // 1. The photo itself does not fit.
      let filler = d.fill(16 * 1024);
      await expect(images.put(noise, { name: 'noise.png' })).rejects.toMatchObject({ code: 'DISK_FULL', message: expect.stringMatching(/image folder.*full/) });
      expect(filesUnder(join(d.dir, 'images')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(store.getImage(sha(noise))).toBeUndefined();
      rmSync(filler);
      survived++;

      // 2. The photo fits, its thumbnail does not: the photo file may stay (complete, under its
      //    content hash, harmless without a record), never a temporary or partial file.
      filler = d.fill(noise.length + 4096);
      await expect(images.put(noise, { name: 'noise.png' })).rejects.toMatchObject({ code: 'DISK_FULL' });
      const left = filesUnder(join(d.dir, 'images'));
      expect(left.filter((f) => f.endsWith('.tmp'))).toEqual([]);
      for (const f of left) {
        const bytes = readFileSync(join(d.dir, 'images', f));
        if (f.includes(sha(noise)) && !f.includes('.thumb.')) expect(sha(bytes)).toBe(sha(noise));
      }
      expect(store.getImage(sha(noise))).toBeUndefined();
      rmSync(filler);
      survived++;

      // 3. Both files fit, the database cannot grow: the record is refused with DISK_FULL.
      const pages = store.db.pragma('page_count', { simple: true }) as number;
      filler = d.fill(noise.length + 64 * 1024);
      const walSize = existsSync(join(d.dir, 'owlery.sqlite-wal')) ? statSync(join(d.dir, 'owlery.sqlite-wal')).size : 0;
      const err = await images.put(noise, { name: 'noise.png' }).then(() => null, (e: unknown) => e);
      if (err !== null) {
        expect(err).toMatchObject({ code: 'DISK_FULL' });
        expect(store.getImage(sha(noise))).toBeUndefined();
      } else {
        // The write-ahead log had room left from earlier writes: then the record is complete.
        expect(store.getImage(sha(noise))).toBeDefined();
        expect(walSize).toBeGreaterThan(0);
      }
      rmSync(filler);
      survived++;
      expect(store.db.pragma('page_count', { simple: true })).toBeGreaterThanOrEqual(pages);

      // Space back: the import completes, the earlier photo is untouched, the database is sound.
      const rec = await images.put(noise, { name: 'noise.png' });
      expect(sha(readFileSync(images.pathOf(rec)))).toBe(sha(noise));
      expect(existsSync(images.thumbnailPathOf(rec.sha256))).toBe(true);
      expect(readFileSync(images.pathOf(kept))).toEqual(keptBytes);
      expect(filesUnder(join(d.dir, 'images')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(quickCheck(join(d.dir, 'owlery.sqlite'))).toBe('ok');
      figures.add(CATEGORY, { faultsInjected: 3, faultsSurvived: survived, messagesLost: 0 });
    } finally {
      store.close();
    }
  }, 60_000);

  it('importing a JSON backup onto a full disk: DISK_FULL, no conversation imported, the history intact', async () => {
    const source = join(work, 'json-source');
    const { store: src } = Store.open(join(source, 'owlery.sqlite'));
    const backup = join(work, 'backup.json');
    try {
      const c = src.createConversation({ title: 'Long notes' });
      src.appendUserMessage({ conversationId: c.id, text: `notes ${'lorem ipsum dolor sit amet '.repeat(12_000)}` });
      await exportJson({ store: src, images: new ImageStore(src, source) }, { conversations: [c.id], dest: backup });
    } finally {
      src.close();
    }
    const d = disk('owlery-rb-import-', 3 * 1024 * 1024);
    const { store } = Store.open(join(d.dir, 'owlery.sqlite'));
    const ctx = { store, images: new ImageStore(store, d.dir) };
    try {
      const mine = store.createConversation({ title: 'Mine' });
      store.appendUserMessage({ conversationId: mine.id, text: 'kept' });
      const filler = d.fill(32 * 1024);
      const err = await importJson(ctx, readFileSync(backup)).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OwleryError);
      expect(err).toMatchObject({ code: 'DISK_FULL' });
      expect(store.listConversations({ limit: 10 }).items.map((x) => x.title)).toEqual(['Mine']);
      expect(store.getThread(mine.id).messages.map((m) => m.text)).toEqual(['kept']);
      rmSync(filler);
      const result = await importJson(ctx, readFileSync(backup));
      expect(result.conversations).toHaveLength(1);
      expect(quickCheck(join(d.dir, 'owlery.sqlite'))).toBe('ok');
      figures.add(CATEGORY, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
    } finally {
      store.close();
    }
  }, 60_000);

  it('converting a model when the disk fills up mid-way: DISK_FULL, no package and no staging folder left, the checkpoint untouched; converts once space is freed', async () => {
    const ckpt = await ensureTinyCheckpoint({ seed: 1 });
    const ckptFiles = filesUnder(ckpt).map((f) => [f, sha(readFileSync(join(ckpt, f)))]);
    const d = disk('owlery-rb-convert-', 64 * 1024 * 1024);
    const dest = join(d.dir, 'models', 'tiny');
    let filler: string | null = null;
    const err = await convertCheckpoint(ckpt, dest, {
      verify: false,
      onProgress: (p) => {
        // The estimate passed; now something else takes the disk while the graphs are written.
        if (p.phase === 'writing-graphs' && p.tensorsDone >= 3 && !filler) filler = d.fill(0, 'other-program.bin');
      },
    }).then(() => null, (e: unknown) => e);
    expect(filler, 'the disk was filled during the conversion').not.toBeNull();
    expect(err).toBeInstanceOf(OwleryError);
    expect(err).toMatchObject({ code: 'DISK_FULL', message: expect.stringMatching(/not enough disk space/) });
    expect(existsSync(dest)).toBe(false);
    expect(filesUnder(d.dir)).toEqual(['other-program.bin']); // the staging folder is gone
    expect(filesUnder(ckpt).map((f) => [f, sha(readFileSync(join(ckpt, f)))])).toEqual(ckptFiles);

    rmSync(filler!);
    const manifest = await convertCheckpoint(ckpt, dest, { verify: false });
    expect(manifest.files.length).toBeGreaterThan(0);
    const loaded = new EngineHost();
    try {
      await loaded.load(dest, { provider: 'cpu' });
      expect(await loaded.tokenize('hello')).not.toHaveLength(0);
    } finally {
      await loaded.dispose();
    }
    figures.add(CATEGORY, { faultsInjected: 1, faultsSurvived: 1 });
  }, 180_000);

  it('the data folder is on a read-only disk: DB_READONLY with a clear message, nothing changed; writable again, all is there', async () => {
    const d = disk('owlery-rb-ro-', 8 * 1024 * 1024);
    let env = chatOn(d.dir);
    const first = await env.chat.send({ text: 'Before the disk went read-only.', sampling: { greedy: true, maxNewTokens: 5 } });
    expect((await env.chat.outcome(first.requestId)).type).toBe('done');
    const before = env.store.getThread(first.conversationId).messages.map((m) => m.text);
    await env.close(); // a mounted filesystem cannot turn read-only under open files (EBUSY): as after a restart
    const filesBefore = filesUnder(d.dir);

    d.readOnly(true);
    try {
      const err = (() => {
        try {
          Store.open(join(d.dir, 'owlery.sqlite'));
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(OwleryError);
      expect((err as OwleryError).code, (err as Error).message).toBe('DB_READONLY');
      expect((err as Error).message).toMatch(/cannot write to the history database.*read-only/);
      // Reading it read-only does not work either on a read-only filesystem: SQLite cannot create the
      // WAL index (-shm) there. Reported, clearly, as DB_READONLY; nothing is changed.
      expect(() => Store.open(join(d.dir, 'owlery.sqlite'), { readonly: true })).toThrow(expect.objectContaining({ code: 'DB_READONLY' }));
      expect(filesUnder(d.dir)).toEqual(filesBefore);
    } finally {
      d.readOnly(false);
    }
    env = chatOn(d.dir);
    try {
      const again = await env.chat.send({ conversationId: first.conversationId, text: 'Writable again?', sampling: { greedy: true, maxNewTokens: 4 } });
      expect((await env.chat.outcome(again.requestId)).type).toBe('done');
      expect(env.store.getThread(first.conversationId).messages.map((m) => m.text).slice(0, before.length)).toEqual(before);
      expect(quickCheck(env.dbFile)).toBe('ok');
      figures.add(CATEGORY, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
    } finally {
      await env.close();
    }
  }, 60_000);
});

it.runIf(TMPFS_UNAVAILABLE !== null)('tmpfs fault tests skipped', () => {
  console.log(`[robustness] disk faults skipped: ${TMPFS_UNAVAILABLE}`);
  figures.note(CATEGORY, 'skipped', TMPFS_UNAVAILABLE);
});
