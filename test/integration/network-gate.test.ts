/**
 * Offline mode and the network log, in plain Node: the gate every request of the app goes
 * through (src-main/services/network.ts), the pull downloader using it, and the services and
 * `network:log` channel on top. Real HTTP servers on 127.0.0.1 play the model hub and its CDN.
 *
 * Not covered here (no Electron binary): that `session.webRequest` really hands Chromium's requests
 * to `NetworkGate.sessionRequest` (src-main/app/network.ts); its decisions are tested below.
 * @see docs/security.md, "Offline mode and the network log"
 */
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingHttpHeaders, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pullCheckpoint } from '../../models/pull/index.ts';
import type { IpcResult, ModelTask, NetworkLogPage } from '../../src-shared/ipc/index.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import { NetworkGate, NetworkLog, originOf } from '../../src-main/services/network.ts';
import { createServices } from '../../src-main/services/composition.ts';
import { serveHubTree } from '../helpers/fake-hub.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';

/** A test HTTP server that records requests and can be closed with open sockets. */
interface TestServer {
  origin: string;
  requests: { path: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

async function serve(handler: (path: string, res: ServerResponse) => void): Promise<TestServer> {
  const requests: TestServer['requests'] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push({ path, headers: req.headers });
    handler(path, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', () => ok()));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}

/** A Hugging Face compatible hub for `files` whose file downloads redirect to `cdn` (another origin). */
function hubHandler(repo: string, files: Map<string, Buffer>, cdn: () => string) {
  return (path: string, res: ServerResponse) => {
    if (serveHubTree(path, repo, files, res)) return;
    const m = new RegExp(`^/${repo}/resolve/main/(.+)$`).exec(path);
    if (m && files.has(m[1]!)) {
      res.writeHead(302, { location: `${cdn()}/blobs/${encodeURIComponent(m[1]!)}` }).end();
      return;
    }
    res.writeHead(404).end();
  };
}

function cdnHandler(files: Map<string, Buffer>, hold?: (name: string) => boolean) {
  return (path: string, res: ServerResponse) => {
    const name = path.startsWith('/blobs/') ? path.slice('/blobs/'.length) : '';
    const data = files.get(name);
    if (!data) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': data.length });
    // A held file sends its first bytes and then nothing: a download in progress.
    if (hold?.(name)) res.write(data.subarray(0, 16));
    else res.end(data);
  };
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'owlery-network-'));
});
afterAll(async () => rm(tmp, { recursive: true, force: true }));

describe('network log', () => {
  it('keeps origins only: no path, query, credentials or token', () => {
    const log = new NetworkLog({ now: () => 1000 });
    const e = log.record({ source: 'model-download', method: 'get', url: 'https://user:secret@huggingface.co:8443/org/repo/resolve/main/x?token=abc', allowed: true, reason: 'r' });
    expect(e).toEqual({ seq: 1, time: 1000, source: 'model-download', method: 'GET', origin: 'https://huggingface.co:8443', allowed: true, reason: 'r' });
    expect(originOf('data:text/plain,hi')).toBe('data:');
    expect(originOf('not a url')).toBe('(not a URL)');
  });

  it('keeps the last entries in memory, counts the dropped ones, and appends every entry to its file', async () => {
    const file = join(tmp, 'logs', 'network.jsonl');
    const log = new NetworkLog({ capacity: 3, file });
    for (let i = 0; i < 5; i++) log.record({ source: 'window', method: 'GET', url: `https://example.com/${i}`, allowed: false, reason: 'the window never uses the network' });
    expect(log.entries().map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(log.entries(2).map((e) => e.seq)).toEqual([4, 5]);
    expect(log.dropped).toBe(2);
    await log.flush();
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { seq: number; origin: string; allowed: boolean; time: string });
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(lines[0]).toMatchObject({ origin: 'https://example.com', allowed: false });
    expect(new Date(lines[0]!.time).toISOString()).toBe(lines[0]!.time);
  });

  it('rotates the file when it grows past its limit', async () => {
    const file = join(tmp, 'rotating.jsonl');
    const log = new NetworkLog({ file, maxFileBytes: 400 });
    for (let i = 0; i < 6; i++) log.record({ source: 'app', method: 'GET', url: 'https://example.com/', allowed: false, reason: 'x'.repeat(40) });
    await log.flush();
    expect((await readdir(tmp)).filter((f) => f.startsWith('rotating'))).toEqual(['rotating.jsonl', 'rotating.jsonl.1']);
    expect((await readFile(file, 'utf8')).length).toBeLessThanOrEqual(400);
  });
});

describe('network gate', () => {
  let offline = true;
  const log = new NetworkLog();
  const gate = new NetworkGate({ isOffline: () => offline, log });
  const since = () => {
    const start = log.entries().at(-1)?.seq ?? 0;
    return () => log.entries().filter((e) => e.seq > start);
  };

  it('offline: a user-started download is refused with OFFLINE, and the refusal is logged', () => {
    offline = true;
    const entries = since();
    expect(() => gate.userDownload({ label: 'the download of a/b', url: 'https://huggingface.co' })).toThrow(expect.objectContaining({ code: 'OFFLINE' }));
    expect(entries()).toMatchObject([{ source: 'model-download', method: 'GET', origin: 'https://huggingface.co', allowed: false, reason: expect.stringMatching(/^offline mode is on/) }]);
    expect(gate.activeDownloads).toBe(0);
  });

  it('online: a user-started download is allowed; every hop is checked and logged, credentials stay on their origin', async () => {
    offline = false;
    const cdn = await serve((_path, res) => res.end('payload'));
    cleanups.push(cdn.close);
    const hub = await serve((path, res) => {
      if (path === '/same') res.writeHead(307, { location: '/file' }).end();
      else if (path === '/file') res.writeHead(302, { location: `${cdn.origin}/blob` }).end();
      else res.writeHead(404).end();
    });
    cleanups.push(hub.close);
    const entries = since();
    const grant = gate.userDownload({ label: 'the download of a/b', url: hub.origin });
    const res = await grant.fetch(`${hub.origin}/same`, { headers: { authorization: 'Bearer t0ken' } });
    expect(await res.text()).toBe('payload');
    grant.close();
    expect(entries().map((e) => [e.origin, e.allowed, e.reason])).toEqual([
      [hub.origin, true, 'the download of a/b, started by the user'],
      [hub.origin, true, 'the download of a/b, started by the user (redirect 1)'],
      [cdn.origin, true, 'the download of a/b, started by the user (redirect 2)'],
    ]);
    expect(hub.requests.map((r) => r.headers.authorization)).toEqual(['Bearer t0ken', 'Bearer t0ken']);
    expect(cdn.requests.map((r) => r.headers.authorization)).toEqual([undefined]);
    expect(gate.activeDownloads).toBe(0);
  });

  it('refuses requests through a closed grant, other schemes and writes, and logs them', async () => {
    offline = false;
    const grant = gate.userDownload({ label: 'the download of a/b', url: 'https://huggingface.co' });
    const entries = since();
    await expect(grant.fetch('ftp://example.com/x', {})).rejects.toMatchObject({ code: 'FORBIDDEN' });
    await expect(grant.fetch('https://example.com/x', { method: 'POST', body: 'data' })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    grant.close();
    await expect(grant.fetch('https://example.com/x', {})).rejects.toMatchObject({ code: 'FORBIDDEN' });
    expect(entries().map((e) => [e.method, e.origin, e.allowed, e.reason])).toEqual([
      ['GET', 'ftp://example.com', false, 'a model download uses http(s) only'],
      ['POST', 'https://example.com', false, 'a model download only reads (GET, HEAD)'],
      ['GET', 'https://example.com', false, 'the download of a/b has already ended'],
    ]);
  });

  it('turning offline mode on stops a download in flight with OFFLINE and logs it', async () => {
    offline = false;
    let arrived!: () => void;
    const requestArrived = new Promise<void>((ok) => (arrived = ok));
    const slow = await serve(() => arrived()); // never answers
    cleanups.push(slow.close);
    const grant = gate.userDownload({ label: 'the download of a/b', url: slow.origin });
    const entries = since();
    const pending = grant.fetch(`${slow.origin}/big`, {});
    await requestArrived;
    offline = true;
    gate.offlineChanged();
    await expect(pending).rejects.toMatchObject({ code: 'OFFLINE' });
    expect(grant.signal.aborted).toBe(true);
    expect(entries().map((e) => [e.origin, e.allowed, e.reason])).toEqual([
      [slow.origin, true, 'the download of a/b, started by the user'],
      [slow.origin, false, 'offline mode was turned on: the download of a/b was stopped'],
    ]);
    await expect(grant.fetch(`${slow.origin}/big`, {})).rejects.toMatchObject({ code: 'OFFLINE' });
  });

  it('session requests: local schemes pass unlogged, the network is blocked (the dev server excepted) and logged', () => {
    for (const url of ['app://owlery/index.html', 'owlery-image://image/abc', 'file:///tmp/x.png', 'data:image/png;base64,AA', 'blob:app://owlery/1', 'devtools://devtools/x']) {
      const entries = since();
      expect(gate.sessionRequest({ url, method: 'GET', fromWindow: true }), url).toBe(true);
      expect(entries(), url).toEqual([]);
    }
    const dev = { devOrigin: 'http://127.0.0.1:5173' };
    const cases: [string, boolean, boolean, string][] = [
      ['https://example.com/track.gif', true, false, 'offline mode is on'],
      ['wss://example.com/socket', true, false, 'offline mode is on'],
      ['http://127.0.0.1:5173/src/main.ts', true, true, 'development server (unpackaged app only)'],
      ['ws://127.0.0.1:5173/', true, true, 'development server (unpackaged app only)'],
      ['http://127.0.0.1:5174/', true, false, 'offline mode is on'],
    ];
    offline = true;
    for (const [url, fromWindow, allowed, reason] of cases) {
      const entries = since();
      expect(gate.sessionRequest({ url, method: 'GET', fromWindow }, dev), url).toBe(allowed);
      expect(entries(), url).toMatchObject([{ source: 'window', origin: originOf(url), allowed, reason }]);
    }
    offline = false;
    let entries = since();
    expect(gate.sessionRequest({ url: 'https://example.com/', method: 'GET', fromWindow: true })).toBe(false);
    expect(entries()).toMatchObject([{ source: 'window', allowed: false, reason: 'the window never uses the network' }]);
    entries = since();
    expect(gate.sessionRequest({ url: 'https://example.com/', method: 'POST', fromWindow: false })).toBe(false);
    expect(entries()).toMatchObject([{ source: 'app', method: 'POST', allowed: false, reason: 'only a model download started by the user may use the network' }]);
    // Without a dev origin (packaged), the dev server's address is blocked like any other.
    expect(gate.sessionRequest({ url: 'http://127.0.0.1:5173/', method: 'GET', fromWindow: true })).toBe(false);
  });
});

describe('pulls through the gate', () => {
  const repo = 'owlery-test/tiny-owl';
  let files: Map<string, Buffer>;

  beforeAll(async () => {
    const ckpt = await ensureTinyCheckpoint({ seed: 1 });
    files = new Map();
    for (const name of await readdir(ckpt)) files.set(name, await readFile(join(ckpt, name)));
  });

  it('the downloader makes every request through the grant: hub and CDN, each logged', async () => {
    const log = new NetworkLog();
    const gate = new NetworkGate({ isOffline: () => false, log });
    let cdnOrigin = '';
    const cdn = await serve(cdnHandler(files));
    cdnOrigin = cdn.origin;
    cleanups.push(cdn.close);
    const hub = await serve(hubHandler(repo, files, () => cdnOrigin));
    cleanups.push(hub.close);
    const grant = gate.userDownload({ label: `the download of ${repo}`, url: hub.origin });
    const dest = join(tmp, 'pulled');
    const result = await pullCheckpoint(repo, dest, { endpoint: hub.origin, fetch: grant.fetch, signal: grant.signal, retries: 0 });
    grant.close();
    expect(result.files.map((f) => f.path).sort()).toEqual([...files.keys()].sort());
    expect(await readFile(join(dest, 'config.json'))).toEqual(files.get('config.json'));
    const entries = log.entries();
    expect(entries.every((e) => e.allowed && e.source === 'model-download')).toBe(true);
    expect(new Set(entries.map((e) => e.origin))).toEqual(new Set([hub.origin, cdn.origin]));
    // One listing request, then per file the hub's redirect and the CDN.
    expect(entries.length).toBe(1 + 2 * files.size);
    expect(hub.requests.length + cdn.requests.length).toBe(entries.length);
  });

  it('services: refused offline (OFFLINE, logged, visible on network:log), then a user-started pull is allowed, logged, installs, and offline mode comes back on', async () => {
    let cdnOrigin = '';
    const cdn = await serve(cdnHandler(files));
    cdnOrigin = cdn.origin;
    cleanups.push(cdn.close);
    const hub = await serve(hubHandler(repo, files, () => cdnOrigin));
    cleanups.push(hub.close);
    const dataDir = join(tmp, 'services');
    const services = createServices({ dataDir, autoLoadModel: false, hubEndpoint: hub.origin });
    cleanups.push(() => services.close());
    const d = createDispatcher(createHandlers(services), { isTrustedSender: () => true });
    const from = { url: 'app://owlery/index.html' };
    const logPage = async () => ((await d('network:log', {}, from)) as IpcResult<NetworkLogPage> & { ok: true }).value;

    expect(services.settings.get().offlineMode).toBe(true);
    expect(await d('models:pull', { repo }, from)).toMatchObject({ ok: false, error: { code: 'OFFLINE' } });
    expect(await logPage()).toMatchObject({ offline: true, dropped: 0, entries: [{ source: 'model-download', origin: hub.origin, allowed: false, reason: `offline mode is on: the download of ${repo} was refused` }] });
    expect(hub.requests).toEqual([]);

    expect(await d('settings:set', { patch: { offlineMode: false } }, from)).toMatchObject({ ok: true });
    const started = (await d('models:pull', { repo, name: 'pulled owl' }, from)) as IpcResult<{ taskId: string }>;
    if (!started.ok) throw new Error(started.error.message);
    const task: ModelTask = await services.models.settled(started.value.taskId);
    expect(task).toMatchObject({ state: 'done', error: null });
    expect(await services.models.list()).toMatchObject([{ id: task.modelId, name: 'pulled owl' }]);

    const page = await logPage();
    const allowed = page.entries.filter((e) => e.allowed);
    expect(allowed.length).toBe(hub.requests.length + cdn.requests.length);
    expect(new Set(allowed.map((e) => e.origin))).toEqual(new Set([hub.origin, cdn.origin]));
    expect(allowed.every((e) => e.source === 'model-download' && e.reason.startsWith(`the download of ${repo}, started by the user`))).toBe(true);
    // Offline by default once a model is installed.
    expect(services.settings.get().offlineMode).toBe(true);
    expect(page.offline).toBe(true);
    // The log file has the same entries.
    await services.network.log.flush();
    const lines = (await readFile(join(dataDir, 'logs', 'network.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(page.entries.length);
  });

  it('services: turning offline mode on during a pull stops it with OFFLINE', async () => {
    let cdnOrigin = '';
    let arrived!: () => void;
    const weightsRequested = new Promise<void>((ok) => (arrived = ok));
    const cdn = await serve(cdnHandler(files, (name) => {
      if (name !== 'model.safetensors') return false;
      arrived();
      return true;
    }));
    cdnOrigin = cdn.origin;
    cleanups.push(cdn.close);
    const hub = await serve(hubHandler(repo, files, () => cdnOrigin));
    cleanups.push(hub.close);
    const services = createServices({ dataDir: join(tmp, 'services-stop'), autoLoadModel: false, hubEndpoint: hub.origin });
    cleanups.push(() => services.close());
    services.settings.set({ offlineMode: false });
    const taskId = services.models.pull({ repo });
    await weightsRequested;
    services.settings.set({ offlineMode: true });
    const task = await services.models.settled(taskId);
    expect(task).toMatchObject({ state: 'failed', error: { code: 'OFFLINE' } });
    expect(services.network.activeDownloads).toBe(0);
    expect(services.network.log.entries().at(-1)).toMatchObject({ origin: cdn.origin, allowed: false, reason: `offline mode was turned on: the download of ${repo} was stopped` });
  });
});
