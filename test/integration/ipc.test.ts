/**
 * The IPC layer over the real services (SQLite store, image store, settings, models service) on a
 * temporary data folder, through `registerHandlers` with an ipcMain-shaped recorder standing in
 * for Electron's transport: every channel validates its payload, refuses frames that are not the
 * app's, answers plain `{ ok, value | error }` data, and events reach the window.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS, EVENT_CHANNEL } from '../../src-shared/ipc/index.ts';
import type { ChannelName, IpcResult, OwleryEvent, RequestOf, ResponseOf } from '../../src-shared/ipc/index.ts';
import { createDispatcher, createHandlers, createSenderCheck, forwardEvents, registerHandlers } from '../../src-main/ipc/index.ts';
import type { InvokeEventLike, IpcMainLike, Registration } from '../../src-main/ipc/index.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services } from '../../src-main/services/composition.ts';
import { makePhoto } from '../helpers/chat-env.ts';

const APP_URL = 'app://owlery/index.html';

/** Records handlers the way ipcMain does; `invoke` plays the renderer's `ipcRenderer.invoke`. */
class IpcMainRecorder implements IpcMainLike {
  readonly handlers = new Map<string, (event: InvokeEventLike, ...args: unknown[]) => unknown>();
  handle(channel: string, listener: (event: InvokeEventLike, ...args: unknown[]) => unknown): void {
    if (this.handlers.has(channel)) throw new Error(`second handler for ${channel}`);
    this.handlers.set(channel, listener);
  }
  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }
  async invoke(channel: string, frameUrl: string | null, ...args: unknown[]): Promise<IpcResult<unknown>> {
    const h = this.handlers.get(channel);
    if (!h) throw new Error(`no handler for ${channel}`);
    const result = (await h({ senderFrame: frameUrl === null ? null : { url: frameUrl } }, ...args)) as IpcResult<unknown>;
    // What crosses Electron's IPC is structured-cloned: the answer must survive it unchanged.
    expect(structuredClone(result)).toEqual(result);
    return result;
  }
}

let dataDir: string;
let rendererDir: string;
let services: Services;
let ipc: IpcMainRecorder;
let registration: Registration;
const sent: OwleryEvent[] = [];

async function call<C extends ChannelName>(channel: C, payload: RequestOf<C>, frame = APP_URL): Promise<ResponseOf<C>> {
  const r = await ipc.invoke(channel, frame, payload);
  if (!r.ok) throw new Error(`${channel} failed: ${r.error.code} ${r.error.message}`);
  return r.value as ResponseOf<C>;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'owlery-ipc-'));
  rendererDir = join(dataDir, 'renderer');
  services = createServices({ dataDir, autoLoadModel: false });
  ipc = new IpcMainRecorder();
  registration = registerHandlers(ipc, services, { isTrustedSender: createSenderCheck({ rendererDir }) });
  forwardEvents(services, {
    isDestroyed: () => false,
    send: (channel, event) => {
      expect(channel).toBe(EVENT_CHANNEL);
      sent.push(event as OwleryEvent);
    },
  });
});

afterAll(async () => {
  registration?.dispose();
  await services?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('registration', () => {
  it('registers exactly the contract channels, and removes them', () => {
    expect([...ipc.handlers.keys()].sort()).toEqual([...CHANNELS].sort());
    const other = new IpcMainRecorder();
    const r = registerHandlers(other, services, { isTrustedSender: () => true });
    r.dispose();
    expect(other.handlers.size).toBe(0);
  });
});

describe('every channel rejects malformed payloads with a typed error', () => {
  const malformed: unknown[] = [42, 'text', [], { unknownField: 1 }, new Uint8Array(3)];
  for (const channel of CHANNELS) {
    it(channel, async () => {
      for (const payload of malformed) {
        const r = await ipc.invoke(channel, APP_URL, payload);
        expect(r.ok, `${channel} accepted ${String(payload)}`).toBe(false);
        if (!r.ok) {
          expect(r.error.code).toBe('INVALID_ARGUMENT');
          expect(r.error.name).toBe('OwleryError');
          expect(r.error.stack).toBeUndefined();
        }
      }
      // More than one argument is refused too (the preload never sends more).
      const extra = await ipc.invoke(channel, APP_URL, undefined, 'smuggled');
      expect(extra.ok).toBe(false);
      if (!extra.ok) expect(extra.error.code).toBe('INVALID_ARGUMENT');
    });
  }
});

describe('frames that are not the app are refused', () => {
  const foreign = [
    'https://evil.example/',
    'http://127.0.0.1:8080/',
    'app://owlery.evil/index.html',
    'app://evil@owlery/index.html',
    'app://other/index.html',
    'owlery-image://image/x',
    'file:///etc/passwd',
    'data:text/html,<script>1</script>',
    'about:blank',
    '',
  ];

  it('with FORBIDDEN, before the handler runs', async () => {
    const before = services.store.listConversations().items.length;
    for (const url of foreign) {
      const r = await ipc.invoke('conversations:create', url, { title: 'from elsewhere' });
      expect(r, url).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
    const destroyed = await ipc.invoke('conversations:create', null, { title: 'no frame' });
    expect(destroyed).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(services.store.listConversations().items.length).toBe(before);
  });

  it('on every channel', async () => {
    for (const channel of CHANNELS) {
      const r = await ipc.invoke(channel, 'https://evil.example/', undefined);
      expect(r, channel).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    }
  });

  it('file:// pages are trusted only inside the renderer folder', async () => {
    const inside = pathToFileURL(join(rendererDir, 'index.html')).href;
    const outside = pathToFileURL(join(dataDir, 'index.html')).href;
    const sneaky = pathToFileURL(join(rendererDir, '..', 'index.html')).href;
    expect((await ipc.invoke('app:info', inside)).ok).toBe(true);
    expect(await ipc.invoke('app:info', outside)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
    expect(await ipc.invoke('app:info', sneaky)).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});

describe('handlers over the real services', () => {
  it('app info and engine status', async () => {
    const info = await call('app:info', undefined);
    expect(info).toMatchObject({ name: 'Owlery', harness: false, imageBase: 'owlery-image://' });
    expect(await call('engine:status', undefined)).toMatchObject({ state: 'idle', modelId: null, restarts: 0 });
  });

  it('conversations: create, rename, pin, list pinned first, page, trash, restore, purge', async () => {
    const a = await call('conversations:create', { title: 'Alpine lakes' });
    const b = await call('conversations:create', { title: 'Birds of the coast' });
    const c = await call('conversations:create', { title: 'Cats' });
    await call('conversations:pin', { id: a.id, pinned: true });
    expect((await call('conversations:rename', { id: c.id, title: 'Cats indoors' })).title).toBe('Cats indoors');

    const first = await call('conversations:list', { limit: 2 });
    expect(first.items.map((x) => x.id)).toEqual([a.id, c.id]);
    expect(first.nextCursor).not.toBeNull();
    const second = await call('conversations:list', { limit: 2, cursor: first.nextCursor });
    expect(second.items.map((x) => x.id)).toContain(b.id);

    const purgeLive = await ipc.invoke('conversations:purge', APP_URL, { id: b.id });
    expect(purgeLive).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect((await call('conversations:delete', { id: b.id })).deletedAt).not.toBeNull();
    expect((await call('conversations:list', { trash: true })).items.map((x) => x.id)).toEqual([b.id]);
    expect((await call('conversations:restore', { id: b.id })).deletedAt).toBeNull();
    await call('conversations:delete', { id: b.id });
    expect(await call('conversations:purge', { id: b.id })).toBeNull();
    expect(await ipc.invoke('conversations:get', APP_URL, { id: b.id })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    await call('conversations:delete', { id: c.id });
    expect(await call('conversations:empty-trash', undefined)).toEqual({ purged: 1 });

    const reasons = sent.filter((e) => e.type === 'conversations:changed').map((e) => (e.payload as { reason: string }).reason);
    expect(reasons).toEqual(expect.arrayContaining(['created', 'updated', 'deleted', 'restored', 'purged']));
  });

  it('thread and search with highlighted snippets', async () => {
    const conv = await call('conversations:create', { title: 'Harbour at dusk' });
    services.store.appendUserMessage({ conversationId: conv.id, text: 'What colour is the lighthouse?' });
    const thread = await call('conversations:get', { id: conv.id });
    expect(thread.messages.map((m) => [m.text, m.siblingIndex, m.siblingIds.length])).toEqual([['What colour is the lighthouse?', 0, 1]]);
    const results = await call('conversations:search', { query: 'lighthouse' });
    const hit = results.hits.find((h) => h.kind === 'message' && h.conversationId === conv.id)!;
    const { text, highlights } = hit.snippet;
    expect(highlights.map((r) => text.slice(r.start, r.end).toLowerCase())).toContain('lighthouse');
  });

  it('images: import bytes, size limits, get, and the dialog', async () => {
    const png = await makePhoto(3, 40, 30);
    const img = await call('images:import', { name: 'harbour.png', bytes: png });
    expect(img).toMatchObject({ name: 'harbour.png', mime: 'image/png', width: 40, height: 30 });
    expect(img.url).toBe(`owlery-image://image/${img.sha256}`);
    expect(img.thumbnailUrl).toBe(`owlery-image://thumb/${img.sha256}`);
    expect(JSON.stringify(img)).not.toContain(dataDir);
    expect((await call('images:get', { sha256: img.sha256 })).sha256).toBe(img.sha256);
    expect(await ipc.invoke('images:import', APP_URL, { name: 'x.png', bytes: new Uint8Array([1, 2, 3]) })).toMatchObject({
      ok: false,
      error: { code: 'IMAGE_UNSUPPORTED' },
    });
    // The default dialogs cancel: nothing is picked.
    expect(await call('images:pick', undefined)).toEqual({ images: [], refused: [] });
    expect(await call('images:pick-folder', undefined)).toBeNull();
  });

  it('settings: get, set (event to the window), invalid patch refused, reset', async () => {
    sent.length = 0;
    const s = await call('settings:set', { patch: { theme: 'dark', temperature: 0.1 } });
    expect(s).toMatchObject({ theme: 'dark', temperature: 0.1 });
    expect(sent).toContainEqual({ type: 'settings:changed', payload: { settings: s, changed: ['temperature', 'theme'] } });
    expect(await ipc.invoke('settings:set', APP_URL, { patch: { temperature: -1 } })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect((await call('settings:get', undefined)).temperature).toBe(0.1);
    expect((await call('settings:reset', undefined)).theme).toBe('system');
  });

  it('chat and models need a model: NO_MODEL, OFFLINE, NOT_FOUND', async () => {
    const conv = await call('conversations:create', {});
    expect(await ipc.invoke('chat:send', APP_URL, { conversationId: conv.id, text: 'hello' })).toMatchObject({ ok: false, error: { code: 'NO_MODEL' } });
    expect(await call('chat:cancel', { requestId: 'nope' })).toEqual({ cancelled: false });
    expect(await call('models:list', undefined)).toEqual([]);
    expect(await ipc.invoke('models:pull', APP_URL, { repo: 'MAGAer13/mplug-owl2-llama2-7b' })).toMatchObject({ ok: false, error: { code: 'OFFLINE' } });
    expect(await ipc.invoke('models:select', APP_URL, { id: 'mplug-owl2-0000' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await call('models:choose-checkpoint', undefined)).toBeNull();
    expect(await ipc.invoke('models:import', APP_URL, { checkpointId: 'never-chosen' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    expect(await call('models:tasks', undefined)).toEqual([]);
  });

  it('export and import do nothing when the dialog is cancelled; PDF needs the app', async () => {
    expect(await call('export:all', { format: 'markdown' })).toEqual({ saved: false, fileName: null, conversations: 0 });
    expect(await call('export:import', undefined)).toEqual({ imported: false, result: null, copiesToken: null });
    expect(await ipc.invoke('export:conversation', APP_URL, { id: 999_999, format: 'json' })).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    const pdf = await services.exporter.exportTo(join(dataDir, 'x.pdf'), 'pdf', 'all').catch((e: unknown) => e);
    expect(pdf).toMatchObject({ code: 'EXPORT_FAILED' });
  });
});

describe('dispatcher', () => {
  it('answers unexpected exceptions as INTERNAL, without the stack unless asked', async () => {
    const handlers = createHandlers(services);
    const seen: unknown[] = [];
    const dispatch = createDispatcher(
      {
        ...handlers,
        'app:info': () => {
          throw new TypeError('boom');
        },
      },
      { isTrustedSender: () => true, onException: (_c, err) => seen.push(err) },
    );
    const r = await dispatch('app:info', undefined, { url: APP_URL });
    expect(r).toMatchObject({ ok: false, error: { code: 'INTERNAL', message: 'Something went wrong in Owlery: boom' } });
    expect(!r.ok && r.error.stack).toBeFalsy();
    expect(seen).toHaveLength(1);
    expect(await dispatch('app:eval', {}, { url: APP_URL })).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
  });
});
