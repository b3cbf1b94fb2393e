/**
 * Process and database faults against the real services: the engine process killed at every
 * stage of an answer (and while idle, while restarting, with requests queued) or frozen; the
 * service host itself SIGKILLed again and again at random moments while it chats; the database
 * locked by another program (at send and mid-stream) and damaged (at start and during use).
 *
 * The app must report each fault (chat `error` event, `engine:status` crashed → restarted, a typed
 * error), keep what was saved (partial answers included), and answer the next question.
 *
 * Covered elsewhere and not repeated: a kill on the first streamed token (test/integration/chat.test.ts,
 * engine.test.ts, models-service.test.ts), a SIGKILL of a process frozen right after a save
 * (test/integration/chat-crash.test.ts, store/crash.test.ts), DB_CORRUPT/DB_LOCKED/DB_READONLY at
 * the store level and restoring a backup (test/integration/store/database.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { ChatEvent, ChatOutcome, SendRequest } from '../../src-shared/chat.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import type { EngineStatus } from '../../src-shared/ipc/index.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import { EngineService } from '../../src-main/services/engine-service.ts';
import { createServices } from '../../src-main/services/composition.ts';
import { restoreLatestBackup } from '../../src-main/store/database.ts';
import { ImageStore } from '../../src-main/store/images.ts';
import { Store } from '../../src-main/store/store.ts';
import { forkTestChild, isAlive, makePhoto, openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { rng } from './helpers/images.ts';
import type { HostChildMessage } from './helpers/service-host-child.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('engine-faults');
const ENGINE = 'fault injection: engine process';
const HOST = 'fault injection: service host SIGKILL';
const DB = 'fault injection: database locked / damaged';

let work: string;
let pkg: string;

beforeAll(async () => {
  work = await tempDir('owlery-engine-faults-');
  pkg = await tinyPackage(work);
});

afterAll(async () => {
  figures.write();
  await removeDir(work);
});

describe('the engine process killed or frozen', () => {
  let env: StoreEnv;
  let host: EngineHost;
  let controller: EngineService;
  let chat: ChatService;
  const statuses: EngineStatus[] = [];

  beforeAll(async () => {
    env = openStoreEnv(join(work, 'engine'));
    host = new EngineHost();
    // As the app wires them: the chat service generates through the engine service.
    controller = new EngineService({ host, modelDir: () => pkg, loadOptions: () => ({ provider: 'cpu' }), onStatus: (s) => statuses.push(s) });
    await controller.load('tiny');
    chat = new ChatService({ store: env.store, images: env.images, engine: controller, saveIntervalMs: 0, deltaIntervalMs: 5 });
  });

  afterAll(async () => {
    await chat?.dispose();
    await controller?.dispose();
    env?.close();
  });

  const long = { temperature: 1, seed: 17, maxNewTokens: 1500 };

  /** Sends `req`; when `trigger` says so, SIGKILLs the engine (once). Resolves with the outcome and what was streamed. */
  async function sendAndKill(req: SendRequest, trigger: (e: ChatEvent, streamed: string) => boolean) {
    const events: ChatEvent[] = [];
    let streamed = '';
    let killedPid: number | undefined;
    const started = await chat.send(req, {
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'delta') streamed += e.text;
        if (killedPid === undefined && trigger(e, streamed)) {
          killedPid = host.enginePid!;
          process.kill(killedPid, 'SIGKILL');
        }
      },
    });
    const outcome = await chat.outcome(started.requestId);
    return { started, outcome, events, streamed, killedPid };
  }

  /** Checks a killed request ended as reported and kept, the status said crashed, and the next question works. */
  async function expectSurvived(r: Awaited<ReturnType<typeof sendAndKill>>): Promise<void> {
    expect(r.killedPid, 'the kill happened').toBeDefined();
    expect(r.outcome).toMatchObject({ type: 'error', error: { code: 'ENGINE_CRASHED', message: expect.stringMatching(/stopped unexpectedly.*restarted/) } });
    const saved = env.store.getMessage(r.started.assistantMessageId);
    expect(saved.status).toBe('error');
    expect(saved.text).toBe(r.streamed); // the partial answer is kept, exactly as shown
    expect(saved.error).toMatch(/stopped unexpectedly/);
    expect(env.store.getMessage(r.started.userMessageId).status).toBe('complete');
    expect(controller.status()).toMatchObject({ state: 'crashed', error: { code: 'ENGINE_CRASHED' } });
    const restarts = controller.status().restarts;

    const next = await chat.send({ conversationId: r.started.conversationId, text: 'Still there?', sampling: { greedy: true, maxNewTokens: 6 } });
    const outcome = await chat.outcome(next.requestId);
    expect(outcome.type).toBe('done');
    expect(env.store.getMessage(next.assistantMessageId).status).toBe('complete');
    expect(env.store.getMessage(next.userMessageId).parentId).toBe(r.started.assistantMessageId);
    expect(controller.status()).toMatchObject({ state: 'ready', restarts: restarts + 1, error: null });
    expect(host.enginePid).not.toBe(r.killedPid);
    expect(isAlive(r.killedPid!)).toBe(false);
    figures.add(ENGINE, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
  }

  it('while it decodes and encodes the photo', async () => {
    const photo = await makePhoto(21, 60, 40);
    const r = await sendAndKill(
      { text: 'Describe this photo in detail.', images: [{ kind: 'bytes', bytes: photo, name: 'x.png' }], sampling: long },
      (e) => e.type === 'phase' && (e.phase === 'decode-image' || e.phase === 'encode-image'),
    );
    expect(r.streamed).toBe('');
    await expectSurvived(r);
    // The photo stays stored and attached.
    expect(env.store.getMessage(r.started.userMessageId).images).toHaveLength(1);
  });

  it('during prefill', async () => {
    await expectSurvived(await sendAndKill({ text: 'A long question. '.repeat(20), sampling: long }, (e) => e.type === 'phase' && e.phase === 'prefill'));
  });

  it('in the middle of the answer, after several saved pieces', async () => {
    let deltas = 0;
    const r = await sendAndKill({ text: 'Tell me everything you know.', sampling: long }, (e) => e.type === 'delta' && ++deltas === 4);
    expect(r.streamed.length).toBeGreaterThan(0);
    await expectSurvived(r);
  });

  it('with two more requests queued behind the one it was answering: those are answered after the restart', async () => {
    const queued: { requestId: string; assistantMessageId: number }[] = [];
    let deltas = 0;
    const r = await sendAndKill({ text: 'First of three.', sampling: long }, (e, streamed) => {
      if (e.type === 'phase' && e.phase === 'prefill' && queued.length === 0) {
        // Queue two more while the first runs (send is async: fire and collect).
        for (const text of ['Second of three.', 'Third of three.']) {
          void chat.send({ text, sampling: { greedy: true, maxNewTokens: 5 } }).then((s) => queued.push(s));
        }
      }
      return e.type === 'delta' && ++deltas === 2 && streamed.length > 0;
    });
    expect(r.outcome.type).toBe('error');
    await expect.poll(() => queued.length).toBe(2);
    for (const q of queued) {
      const o = await chat.outcome(q.requestId);
      expect(o.type, JSON.stringify(o)).toBe('done');
      expect(env.store.getMessage(q.assistantMessageId).status).toBe('complete');
    }
    expect(controller.status().state).toBe('ready');
    figures.add(ENGINE, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
  });

  it('while idle: reported at once; the next question restarts it', async () => {
    const pid = host.enginePid!;
    process.kill(pid, 'SIGKILL');
    await expect.poll(() => controller.status().state).toBe('crashed');
    const restarts = controller.status().restarts;
    const s = await chat.send({ text: 'Hello after an idle crash', sampling: { greedy: true, maxNewTokens: 5 } });
    expect((await chat.outcome(s.requestId)).type).toBe('done');
    expect(controller.status()).toMatchObject({ state: 'ready', restarts: restarts + 1 });
    figures.add(ENGINE, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
  });

  it('again while it restarts (a crash loop): that request fails clearly, the one after works', async () => {
    process.kill(host.enginePid!, 'SIGKILL');
    await expect.poll(() => controller.status().state).toBe('crashed');
    const events: ChatEvent[] = [];
    const s = await chat.send({ text: 'Crash loop?', sampling: { greedy: true, maxNewTokens: 5 } }, { onEvent: (e) => events.push(e) });
    // The engine process is being started for this request: kill it as soon as it exists.
    await expect.poll(() => host.enginePid, { interval: 1 }).toBeDefined();
    process.kill(host.enginePid!, 'SIGKILL');
    const o = await chat.outcome(s.requestId);
    expect(o).toMatchObject({ type: 'error', error: { code: 'ENGINE_CRASHED' } });
    expect(env.store.getMessage(s.assistantMessageId).status).toBe('error');
    const again = await chat.send({ conversationId: s.conversationId, text: 'And now?', sampling: { greedy: true, maxNewTokens: 5 } });
    expect((await chat.outcome(again.requestId)).type).toBe('done');
    expect(controller.status().state).toBe('ready');
    figures.add(ENGINE, { faultsInjected: 2, faultsSurvived: 2, messagesLost: 0 });
  });

  it('frozen (SIGSTOP) mid-answer: a cancel takes effect once it runs again, the partial answer is kept', async () => {
    let deltas = 0;
    let frozen: number | undefined;
    let streamed = '';
    const s = await chat.send({ text: 'A story, please.', sampling: long }, {
      onEvent: (e) => {
        if (e.type === 'delta') {
          streamed += e.text;
          if (++deltas === 3 && frozen === undefined) {
            frozen = host.enginePid!;
            process.kill(frozen, 'SIGSTOP');
          }
        }
      },
    });
    await expect.poll(() => frozen).toBeDefined();
    expect(chat.cancel(s.requestId)).toBe(true);
    // The app is not blocked while the engine is frozen: the history reads fine.
    expect(env.store.getMessage(s.userMessageId).text).toBe('A story, please.');
    await new Promise((r) => setTimeout(r, 300));
    process.kill(frozen!, 'SIGCONT');
    const o = await chat.outcome(s.requestId);
    expect(o).toMatchObject({ type: 'done', finish: 'cancelled' });
    expect(env.store.getMessage(s.assistantMessageId)).toMatchObject({ status: 'cancelled', text: streamed });
    expect(host.enginePid).toBe(frozen);
    figures.add(ENGINE, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
    figures.note(ENGINE, 'frozenEngine', 'no watchdog: a cancel waits until a frozen engine runs again; an engine hung for good blocks the queue until restart');
  });
});

describe('the service host SIGKILLed at random moments while it chats', () => {
  it('4 kills: the database always opens clean, nothing acknowledged as written is lost', async () => {
    const dataDir = join(work, 'host');
    await mkdir(dataDir, { recursive: true });
    const r = rng(4242);
    const enginePids: number[] = [];
    let lost = 0;
    let checked = 0;
    const KILLS = 4;
    for (let round = 0; round < KILLS; round++) {
      const { child, exited, output } = forkTestChild<HostChildMessage>('robustness/helpers/service-host-child.ts', [dataDir, pkg, String(round + 1)]);
      const sent: Extract<HostChildMessage, { type: 'sent' }>[] = [];
      const saved = new Map<number, number>();
      const done = new Map<number, Extract<HostChildMessage, { type: 'done' }>>();
      let fail: string | null = null;
      let readyResolve!: () => void;
      const ready = new Promise<void>((resolve) => (readyResolve = resolve));
      child.on('message', (m: HostChildMessage) => {
        if (m.type === 'ready') {
          if (m.enginePid) enginePids.push(m.enginePid);
          readyResolve();
        } else if (m.type === 'sent') sent.push(m);
        else if (m.type === 'saved') saved.set(m.messageId, Math.max(saved.get(m.messageId) ?? 0, m.chars));
        else if (m.type === 'done') done.set(m.messageId, m);
        else fail = m.message;
      });
      await Promise.race([ready, exited.then(() => Promise.reject(new Error(`the host exited early\n${output()}`)))]);
      // Let it chat for a random while (0.4-2 s: mid-transaction, mid-image-write, between requests…).
      const until = Date.now() + 400 + r.int(1600);
      await expect.poll(() => Date.now() >= until && sent.length > round % 2, { timeout: 60_000, interval: 20 }).toBe(true);
      child.kill('SIGKILL');
      expect((await exited).signal).toBe('SIGKILL');
      expect(fail, output()).toBeNull();

      const { store } = Store.open(join(dataDir, 'owlery.sqlite'), { integrityCheck: true });
      try {
        for (const s of sent) {
          checked++;
          const q = store.getMessage(s.userMessageId);
          if (q.text !== s.text || q.images.length !== s.photos) lost++;
          const a = store.getMessage(s.assistantMessageId);
          const final = done.get(s.assistantMessageId);
          if (final && (a.status !== final.status || a.text !== final.text)) lost++;
          if (!final && a.text.length < (saved.get(s.assistantMessageId) ?? 0)) lost++;
          if (!final && a.status !== 'partial') lost++;
        }
        // Every stored photo's file is whole.
        const images = new ImageStore(store, dataDir);
        for (const row of store.db.prepare('SELECT sha256, ext FROM images').all() as { sha256: string; ext: string }[]) {
          expect(existsSync(images.pathOf(row))).toBe(true);
        }
      } finally {
        store.close();
      }
      figures.add(HOST, { faultsInjected: 1, faultsSurvived: 1 });
    }
    figures.add(HOST, { messagesLost: lost });
    figures.note(HOST, 'acknowledgedMessagesChecked', checked);
    expect(checked).toBeGreaterThan(KILLS);
    expect(lost).toBe(0);
    // The orphaned engine processes notice their host is gone and exit.
    for (const pid of enginePids) await expect.poll(() => isAlive(pid), { timeout: 30_000, interval: 50 }).toBe(false);
  }, 240_000);
});

describe('the database locked by another program', () => {
  let env: { store: Store; images: ImageStore; chat: ChatService; host: EngineHost; file: string };
  let other: Database.Database;

  beforeAll(async () => {
    const dir = join(work, 'locked');
    const file = join(dir, 'owlery.sqlite');
    const { store } = Store.open(file, { busyTimeoutMs: 250 });
    const images = new ImageStore(store, dir);
    const host = new EngineHost();
    await host.load(pkg, { provider: 'cpu' });
    const chat = new ChatService({ store, images, engine: host, saveIntervalMs: 0, deltaIntervalMs: 5 });
    env = { store, images, chat, host, file };
    other = new Database(file);
  });

  afterAll(async () => {
    other?.close();
    await env?.chat.dispose();
    await env?.host.dispose();
    env?.store.close();
  });

  it('sending while another program holds the write lock: DB_LOCKED, nothing written; works once released', async () => {
    other.prepare('BEGIN IMMEDIATE').run();
    try {
      const err = await env.chat.send({ text: 'Locked?' }).then(() => null, (e: unknown) => e);
      expect(err).toBeInstanceOf(OwleryError);
      expect(err).toMatchObject({ code: 'DB_LOCKED', message: expect.stringMatching(/in use by another program/) });
    } finally {
      other.prepare('ROLLBACK').run();
    }
    expect(env.store.listConversations().items).toEqual([]);
    const s = await env.chat.send({ text: 'Unlocked.', sampling: { greedy: true, maxNewTokens: 4 } });
    expect((await env.chat.outcome(s.requestId)).type).toBe('done');
    figures.add(DB, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
  });

  it('locked for a while in the middle of an answer: the saves wait, and the whole answer is saved once released', async () => {
    // Locked when the first piece is shown (its save then waits out the busy timeout and fails),
    // released when the second is shown (its save then writes both): deterministic, no timers.
    let deltas = 0;
    let streamed = '';
    let savedWhileLocked = '';
    const s = await env.chat.send({ text: 'Write a long answer while the lock comes and goes.', sampling: { temperature: 1, seed: 5, maxNewTokens: 60 } }, {
      onEvent: (e) => {
        if (e.type !== 'delta') return;
        streamed += e.text;
        deltas++;
        if (deltas === 1) other.prepare('BEGIN IMMEDIATE').run();
        if (deltas === 2) {
          savedWhileLocked = env.store.getMessage(s.assistantMessageId).text;
          other.prepare('ROLLBACK').run();
        }
      },
    });
    const outcome: ChatOutcome = await env.chat.outcome(s.requestId);
    if (other.inTransaction) other.prepare('ROLLBACK').run();
    expect(deltas, 'the answer streamed past the lock').toBeGreaterThanOrEqual(2);
    expect(savedWhileLocked).toBe(''); // the first piece could not be written while locked
    expect(outcome.type).toBe('done');
    expect(env.store.getMessage(s.assistantMessageId)).toMatchObject({ status: expect.stringMatching(/^(complete|cancelled)$/), text: streamed });
    figures.add(DB, { faultsInjected: 1, faultsSurvived: 1, messagesLost: 0 });
  });
});

describe('a damaged database', () => {
  it('at start: the services refuse with DB_CORRUPT, say a backup exists, and start on the restored backup', async () => {
    const dataDir = join(work, 'damaged-start');
    const file = join(dataDir, 'owlery.sqlite');
    const { store } = Store.open(file);
    const c = store.createConversation({ title: 'Backed up' });
    store.appendUserMessage({ conversationId: c.id, text: 'in the backup' });
    store.backupNow();
    store.createConversation({ title: 'After the backup' });
    store.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(3000, 0xa5), 0, 3000, 100); // the schema page: unreadable
    closeSync(fd);

    let err: unknown;
    try {
      createServices({ dataDir, autoLoadModel: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OwleryError);
    expect(err).toMatchObject({ code: 'DB_CORRUPT', details: { backupAvailable: true }, message: expect.stringMatching(/damaged.*Restore the latest backup/s) });

    const restored = restoreLatestBackup(file);
    expect(existsSync(restored.movedAside[0])).toBe(true);
    const services = createServices({ dataDir, autoLoadModel: false });
    try {
      expect(services.store.listConversations().items.map((x) => x.title)).toEqual(['Backed up']);
    } finally {
      await services.close();
    }
    figures.add(DB, { faultsInjected: 1, faultsSurvived: 1 });
    figures.note(DB, 'damagedAtStart', 'services/store report DB_CORRUPT with backupAvailable; the app asks: restore the last backup, start empty or quit (src-main/store/recovery.ts)');
  });

  it('found during use: the request is answered DB_CORRUPT with what to do, not INTERNAL', async () => {
    const dataDir = join(work, 'damaged-use');
    const file = join(dataDir, 'owlery.sqlite');
    const { store } = Store.open(file);
    const c = store.createConversation({ title: 'Big' });
    for (let i = 0; i < 150; i++) store.appendUserMessage({ conversationId: c.id, text: `message ${i} `.repeat(60) });
    store.close();
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(4096 * 12, 0xa5), 0, 4096 * 12, 4096 * 29); // message pages deep in the file (pages 30-41 of ~60)
    closeSync(fd);

    const services = createServices({ dataDir, autoLoadModel: false }); // opening reads only the header
    const dispatch = createDispatcher(createHandlers(services), { isTrustedSender: () => true });
    try {
      const r = await dispatch('conversations:get', { id: c.id }, { url: 'app://owlery/index.html' });
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.code, r.error.message).toBe('DB_CORRUPT');
        expect(r.error.message).toMatch(/damaged.*Restore the latest backup/s);
      }
    } finally {
      await services.close().catch(() => {});
    }
    figures.add(DB, { faultsInjected: 1, faultsSurvived: 1 });
  });
});
