/**
 * The web test harness: binds loopback only, refuses foreign hosts and origins, serves a page with
 * the client injected, and round-trips calls and events through a real WebSocket client (the `ws`
 * package driving the same transport code the page runs) to the real services.
 */
import { request } from 'node:http';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { mkdir, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { createOwleryApi, createOwleryClient } from '../../src-shared/ipc/index.ts';
import type { OwleryClient, SettingsChanged } from '../../src-shared/ipc/index.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { HARNESS_SOCKET_PATH, createWebSocketTransport } from '../harness/client.ts';
import { decode, encode, fromBase64, toBase64 } from '../harness/codec.ts';
import { harnessClientBundle, injectClient, startHarness } from '../harness/server.ts';
import type { Harness } from '../harness/server.ts';
import { makePhoto, removeDir, tempDir } from '../helpers/chat-env.ts';

let harness: Harness;
let root: string;
let socket: WebSocket;
let owlery: OwleryClient;

function get(path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: harness.port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

function connect(origin: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${harness.port}${HARNESS_SOCKET_PATH}`, { origin });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

beforeAll(async () => {
  root = await tempDir('owlery-harness-test-');
  harness = await startHarness({ dataDir: join(root, 'data'), rendererDir: join(root, 'no-build'), services: { autoLoadModel: false } });
  socket = await connect(harness.url);
  owlery = createOwleryClient(createOwleryApi(createWebSocketTransport(socket)));
});

afterAll(async () => {
  socket?.close();
  await harness?.close();
  await removeDir(root);
});

describe('binding and access', () => {
  it('listens on 127.0.0.1 only', async () => {
    expect(harness.url).toBe(`http://127.0.0.1:${harness.port}`);
    const external = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal)
      .map((a) => a!.address);
    for (const address of external) {
      const refused = await new Promise<boolean>((resolve) => {
        const req = request({ host: address, port: harness.port, path: '/', timeout: 5000 }, () => resolve(false));
        req.on('error', () => resolve(true));
        req.on('timeout', () => {
          req.destroy();
          resolve(true);
        });
        req.end();
      });
      expect(refused, `reachable on ${address}`).toBe(true);
    }
  });

  it('refuses requests for another host name (DNS rebinding)', async () => {
    expect((await get('/', { host: `evil.example:${harness.port}` })).status).toBe(421);
    expect((await get('/')).status).toBe(200);
  });

  it('refuses WebSocket upgrades from another origin', async () => {
    await expect(connect('http://evil.example')).rejects.toThrow(/403/);
    await expect(connect(`http://127.0.0.1:${harness.port + 1}`)).rejects.toThrow(/403/);
  });

  it('refuses dispatches from a foreign sender (same table as the app)', async () => {
    const r = await harness.dispatch('app:info', undefined, { url: 'http://evil.example' });
    expect(r).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});

describe('pages', () => {
  it('serves a placeholder page with the client injected, under the app CSP', async () => {
    const r = await get('/');
    const html = r.body.toString('utf8');
    expect(html).toContain('<script src="/__harness/client.js"></script>');
    expect(html.indexOf('/__harness/client.js')).toBeLessThan(html.indexOf('<title>'));
    expect(String(r.headers['content-security-policy'])).toContain("script-src 'self'");
    expect(injectClient('<html><head lang="x"><script type="module" src="/a.js"></script>')).toBe(
      '<html><head lang="x"><script src="/__harness/client.js"></script><script type="module" src="/a.js"></script>',
    );
  });

  it('serves a renderer build when there is one, never files outside it', async () => {
    const build = join(root, 'build');
    await mkdir(join(build, 'assets'), { recursive: true });
    await writeFile(join(build, 'index.html'), '<!doctype html><html><head><title>R</title></head><body></body></html>');
    await writeFile(join(build, 'assets', 'app.js'), 'console.log(1)');
    await writeFile(join(root, 'secret.txt'), 'secret');
    const h2 = await startHarness({ dataDir: join(root, 'data2'), rendererDir: build, services: { autoLoadModel: false } });
    try {
      const page = await fetch(`${h2.url}/conversations/3`);
      expect(await page.text()).toContain('<head><script src="/__harness/client.js"></script><title>R</title>');
      const js = await fetch(`${h2.url}/assets/app.js`);
      expect(js.headers.get('content-type')).toContain('javascript');
      for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt']) {
        const r = await fetch(`${h2.url}${p}`);
        expect(await r.text(), p).not.toContain('secret');
      }
    } finally {
      await h2.close();
    }
  });

  it('bundles the page client for the browser', async () => {
    const code = await harnessClientBundle();
    expect(code).not.toMatch(/^\s*import\s/m);
    expect(code).toContain(HARNESS_SOCKET_PATH);
    expect((await get('/__harness/client.js')).status).toBe(200);
  });
});

describe('round trips over the WebSocket', () => {
  it('calls return values; expected errors keep their code', async () => {
    const info = await owlery.app.info();
    expect(info).toMatchObject({ harness: true, platform: 'browser', imageBase: `${harness.url}/owlery-image/` });
    const conv = await owlery.conversations.create({ title: 'Over the wire' });
    expect((await owlery.conversations.rename({ id: conv.id, title: 'Renamed' })).title).toBe('Renamed');
    expect((await owlery.conversations.list()).items.map((c) => c.id)).toContain(conv.id);
    const err = await owlery.conversations.get({ id: 999_999 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OwleryError);
    expect((err as OwleryError).code).toBe('NOT_FOUND');
    const bad = await owlery.conversations.get({ id: -1 }).catch((e: unknown) => e);
    expect((bad as OwleryError).code).toBe('INVALID_ARGUMENT');
  });

  it('events arrive at subscribers', async () => {
    const api = createOwleryApi(createWebSocketTransport(socket));
    const seen = new Promise<SettingsChanged>((resolve) => {
      const off = api.settings.onChange((e) => {
        off();
        resolve(e);
      });
    });
    await owlery.settings.set({ patch: { fontSize: 19 } });
    expect((await seen).changed).toEqual(['fontSize']);
  });

  it('image bytes go up, and come back from /owlery-image/', async () => {
    const jpeg = await makePhoto(7, 64, 48, 'jpeg');
    const stored = await owlery.images.import({ name: 'pier.jpg', bytes: jpeg });
    expect(stored.url).toBe(`${harness.url}/owlery-image/image/${stored.sha256}`);
    const full = await get(`/owlery-image/image/${stored.sha256}`);
    expect(full.headers['content-type']).toBe('image/jpeg');
    expect(new Uint8Array(full.body)).toEqual(jpeg);
    const thumb = await get(`/owlery-image/thumb/${stored.sha256}`);
    expect(thumb.headers['content-type']).toBe('image/webp');
    expect((await get('/owlery-image/image/../../etc/passwd')).status).toBe(404);
    expect((await get(`/owlery-image/image/${'0'.repeat(64)}`)).status).toBe(404);
  });

  it('scripted dialogs: the test chooses the files', async () => {
    const dir = join(root, 'photos');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.png'), await makePhoto(1, 20, 20));
    await writeFile(join(dir, 'b.png'), await makePhoto(2, 20, 20));
    await writeFile(join(dir, 'notes.txt'), 'not a photo');

    const post = (body: unknown) => get('/__test/choose-files', { 'content-type': 'application/json' }, 'POST', JSON.stringify(body));
    expect((await post({ dialog: 'images', paths: [join(dir, 'notes.txt'), join(dir, 'a.png')] })).status).toBe(200);
    expect((await post({ dialog: 'images', paths: ['relative.png'] })).status).toBe(400);
    expect((await get('/__test/choose-files', { origin: 'http://evil.example' }, 'POST', '{}')).status).toBe(405);
    // A file that is not a photo is refused on its own; the others are stored.
    const picked = await owlery.images.pick();
    expect(picked.images.map((p) => p.name)).toEqual(['a.png']);
    expect(picked.refused).toEqual([{ name: 'notes.txt', error: expect.objectContaining({ code: 'IMAGE_UNSUPPORTED' }) }]);
    expect(await owlery.images.pick()).toEqual({ images: [], refused: [] });

    await post({ dialog: 'photos-folder', paths: [dir] });
    const folder = (await owlery.images.pickFolder())!;
    expect(folder).toMatchObject({ name: 'photos', imageCount: 2 });
    const page = await owlery.images.listFolder({ folderId: folder.folderId, limit: 1 });
    expect(page.items.map((e) => e.name)).toEqual(['a.png']);
    const rest = await owlery.images.listFolder({ folderId: folder.folderId, cursor: page.nextCursor });
    expect(rest.items.map((e) => e.name)).toEqual(['b.png']);
    expect(rest.nextCursor).toBeNull();
    expect(JSON.stringify([folder, page, rest])).not.toContain(dir);
    const thumb = await get(new URL(rest.items[0]!.thumbnailUrl).pathname);
    expect(thumb.headers['content-type']).toBe('image/webp');
    const imported = await owlery.images.importFromFolder({ folderId: folder.folderId, entryIds: [rest.items[0]!.entryId] });
    expect(imported[0]).toMatchObject({ name: 'b.png', width: 20 });
    const unknown = await owlery.images.importFromFolder({ folderId: folder.folderId, entryIds: ['notListedEntry'] }).catch((e: unknown) => e);
    expect((unknown as OwleryError).code).toBe('NOT_FOUND');
    // The folder is remembered (name and id, never the path) and opens again by its id.
    const recent = await owlery.images.recentFolders();
    expect(recent).toEqual([{ recentId: expect.any(String), name: folder.name, openedAt: expect.any(Number) }]);
    expect(JSON.stringify(recent)).not.toContain(dir);
    expect(await owlery.images.openRecentFolder({ recentId: recent[0]!.recentId })).toMatchObject({ name: folder.name, imageCount: folder.imageCount });
    await owlery.images.forgetRecentFolder({ recentId: recent[0]!.recentId });
    expect(await owlery.images.recentFolders()).toEqual([]);
  });

  it('export to a chosen file and import it back', async () => {
    const conv = await owlery.conversations.create({ title: 'Exported: harbour' });
    harness.services.store.appendUserMessage({ conversationId: conv.id, text: 'Is the tide in?' });
    const file = join(root, 'export.json');
    harness.choose('save', [file]);
    const saved = await owlery.export.conversation({ id: conv.id, format: 'json' });
    expect(saved).toEqual({ saved: true, fileName: 'export.json', conversations: 1 });
    harness.choose('import', [file]);
    const changed = new Promise<unknown>((resolve) => {
      const off = createOwleryApi(createWebSocketTransport(socket)).conversations.onChange((e) => {
        if (e.reason === 'imported') {
          off();
          resolve(e);
        }
      });
    });
    // It is already here (exported from this history): left out, and a copy is imported on request.
    const skipped = await owlery.export.import();
    expect(skipped.result?.duplicates).toEqual([{ sourceId: conv.id, title: 'Exported: harbour', existingId: conv.id }]);
    const imported = await owlery.export.importCopies({ token: skipped.copiesToken!, sourceIds: [conv.id] });
    expect(imported.imported).toBe(true);
    expect(imported.result?.messages).toBe(1);
    const newId = imported.result!.conversations[0]!.id;
    expect(newId).not.toBe(conv.id);
    expect(await changed).toEqual({ reason: 'imported', ids: [newId] });
    expect((await owlery.conversations.get({ id: newId })).messages.map((m) => m.text)).toEqual(['Is the tide in?']);
  });

  it('the socket closes on a malformed frame, and pending calls settle', async () => {
    const ws = await connect(harness.url);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('not json');
    expect(await closed).toBe(1003);
  });
});

describe('wire codec', () => {
  it('round-trips bytes inside values', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 255, 1000]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256);
      expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'));
      expect(fromBase64(toBase64(bytes))).toEqual(bytes);
    }
    const v = { a: [1, { b: new Uint8Array([1, 2, 250]) }], c: null };
    expect(decode(encode(v))).toEqual(v);
    expect(() => fromBase64('***')).toThrow();
  });
});
