/**
 * `pullCheckpoint` against a Hugging Face compatible server started on 127.0.0.1 that serves a tiny
 * sharded checkpoint (tree API with LFS sha256 and git blob ids, `resolve` redirecting to a
 * Range-capable file route) and misbehaves on request: drops connections mid-file, corrupts a byte,
 * stalls, answers 404/401, or lacks the tree API. Then the pulled folder is converted.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { OwleryError } from '../../src-shared/errors.ts';
import { pullCheckpoint, PullError, PART_SUFFIX } from '../../models/pull/index.ts';
import type { PullOptions } from '../../models/pull/index.ts';
import { convertCheckpoint } from '../../models/convert.ts';
import { readPackage } from '../../models/package/read.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { VERIFY } from '../helpers/verify.ts';

const REPO = 'owl-test/tiny-owl2';

interface Scenario {
  /** Files whose first full (non-Range) GET sends this fraction of the bytes, then drops the connection. */
  dropOnce: Map<string, number>;
  /** Files served with one byte flipped. */
  corrupt: Set<string>;
  /** Files whose GETs send half the bytes, then stall (never finish). */
  stall: Set<string>;
  /** Serve no tree API (404), only model info. */
  noTree: boolean;
  /** Repositories that answer 401 without a token. */
  private: Set<string>;
  /** Files whose first GET answers 503 with Retry-After: 0. */
  busyOnce: Set<string>;
}

interface LoggedRequest { path: string; range?: string; auth?: string }

let ckpt: string;
let files: Map<string, Buffer>;
let server: Server;
let endpoint: string;
let work: string;
const log: LoggedRequest[] = [];
let scenario: Scenario;
const dropped = new Set<string>();

function fresh(): Scenario {
  return { dropOnce: new Map(), corrupt: new Set(), stall: new Set(), noTree: false, private: new Set(), busyOnce: new Set() };
}

const LFS = (name: string): boolean => name.endsWith('.bin') || name.endsWith('.safetensors') || name === 'tokenizer.model';

function treeEntry(name: string, data: Buffer): Record<string, unknown> {
  const gitOid = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
  const sha256 = createHash('sha256').update(data).digest('hex');
  return LFS(name)
    ? { type: 'file', path: name, size: data.length, oid: 'f'.repeat(40), lfs: { oid: sha256, size: data.length, pointerSize: 134 } }
    : { type: 'file', path: name, size: data.length, oid: gitOid };
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url!, 'http://x');
  const path = decodeURIComponent(url.pathname);
  log.push({ path, range: req.headers.range, auth: req.headers.authorization });
  const repoOf = (p: string): string => p.split('/').slice(0, 2).join('/');
  let m: RegExpExecArray | null;
  if ((m = /^\/api\/models\/([^/]+\/[^/]+)\/tree\/([^/]+)$/.exec(path))) {
    if (scenario.private.has(m[1]) && req.headers.authorization !== 'Bearer s3cret') return json(res, 401, { error: 'Repository not found' });
    if (scenario.noTree || m[1] !== REPO) return json(res, 404, { error: 'Repository not found' });
    return json(res, 200, [...files].map(([n, d]) => treeEntry(n, d)));
  }
  if ((m = /^\/api\/models\/([^/]+\/[^/]+)$/.exec(path))) {
    if (m[1] !== REPO) return json(res, 404, { error: 'Repository not found' });
    return json(res, 200, {
      id: REPO,
      siblings: [...files].map(([n, d]) => {
        const e = treeEntry(n, d) as { oid: string; lfs?: { oid: string; size: number } };
        return { rfilename: n, size: d.length, blobId: e.oid, ...(e.lfs ? { lfs: { sha256: e.lfs.oid, size: d.length, pointer_size: 134 } } : {}) };
      }),
    });
  }
  if ((m = /^\/([^/]+\/[^/]+)\/resolve\/main\/(.+)$/.exec(path))) {
    if (repoOf(m[1]) !== REPO || !files.has(m[2])) return json(res, 404, { error: 'Entry not found' });
    res.writeHead(302, { location: `/cdn/${m[2]}` });
    return void res.end();
  }
  if ((m = /^\/cdn\/(.+)$/.exec(path))) return serveFile(m[1], req, res);
  json(res, 404, { error: 'no route' });
}

function serveFile(name: string, req: IncomingMessage, res: ServerResponse): void {
  let data = files.get(name);
  if (!data) return json(res, 404, { error: 'Entry not found' });
  if (scenario.busyOnce.delete(name)) {
    res.writeHead(503, { 'retry-after': '0', 'content-length': 0 });
    return void res.end();
  }
  if (scenario.corrupt.has(name)) {
    data = Buffer.from(data);
    data[data.length >> 1] ^= 0x40;
  }
  let start = 0;
  const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  if (range) {
    start = Number(range[1]);
    if (start >= data.length) {
      res.writeHead(416, { 'content-range': `bytes */${data.length}` });
      return void res.end();
    }
    res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}`, 'accept-ranges': 'bytes' });
  } else {
    res.writeHead(200, { 'content-length': data.length, 'accept-ranges': 'bytes' });
  }
  const body = data.subarray(start);
  const drop = scenario.dropOnce.get(name);
  if (!range && drop !== undefined && !dropped.has(name)) {
    dropped.add(name);
    res.write(body.subarray(0, Math.floor(body.length * drop)), () => res.socket?.destroy());
    return;
  }
  if (scenario.stall.has(name)) {
    res.write(body.subarray(0, body.length >> 1)); // …and never finish
    return;
  }
  res.end(body);
}

beforeAll(async () => {
  ckpt = await ensureTinyCheckpoint({ seed: 21, format: 'pytorch', dtype: 'F16', shards: 2 });
  files = new Map();
  for (const n of (await readdir(ckpt)).sort()) files.set(n, await readFile(join(ckpt, n)));
  // Something the checkpoint does not need, which a pull must not fetch.
  files.set('README.md', Buffer.from('# tiny owl\n'));
  server = createServer(handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  work = await mkdtemp(join(tmpdir(), 'owlery-pull-'));
});

afterAll(async () => {
  server?.closeAllConnections();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  if (work) await rm(work, { recursive: true, force: true });
});

beforeEach(() => {
  scenario = fresh();
  dropped.clear();
  log.length = 0;
});

const quick: PullOptions = { backoffMs: 1, maxBackoffMs: 5, retries: 3 };
const shardNames = (): string[] => [...files.keys()].filter((n) => /^pytorch_model-\d+-of-\d+\.bin$/.test(n));
let dirCount = 0;
const newDir = (): string => join(work, `pull-${++dirCount}`);

async function expectIdentical(dir: string, names: Iterable<string>): Promise<void> {
  for (const n of names) expect((await readFile(join(dir, n))).equals(files.get(n)!), n).toBe(true);
}

async function caught(p: Promise<unknown>): Promise<PullError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PullError);
    expect(err).toBeInstanceOf(OwleryError);
    return err as PullError;
  }
  throw new Error('expected the pull to fail');
}

describe('pullCheckpoint', () => {
  it('fetches exactly the checkpoint files, verified, and the result converts', async () => {
    const dir = newDir();
    const progress: number[] = [];
    const r = await pullCheckpoint(REPO, dir, { ...quick, endpoint, onProgress: (p) => progress.push(p.bytesDone) });
    const want = [...files.keys()].filter((n) => n !== 'README.md').sort();
    expect((await readdir(dir)).sort()).toEqual(want);
    expect(r.format).toBe('pytorch');
    expect(r.files.map((f) => f.path).sort()).toEqual(want);
    expect(r.files.every((f) => f.status === 'downloaded' && f.resumedFrom === 0)).toBe(true);
    await expectIdentical(dir, want);
    expect(progress.at(-1)).toBe(want.reduce((a, n) => a + files.get(n)!.length, 0));
    expect(log.some((l) => l.path.endsWith('README.md'))).toBe(false);

    const pkg = join(work, 'pkg-pulled');
    const manifest = await convertCheckpoint(dir, pkg, { verify: VERIFY });
    const loaded = await readPackage(pkg, { verify: true });
    expect(loaded.manifest.id).toBe(manifest.id);
    expect(manifest.source.format).toBe('pytorch');
  });

  it('(a) resumes with an HTTP Range request after the connection drops mid-file; the file is byte-identical', async () => {
    const [shard] = shardNames();
    scenario.dropOnce.set(shard, 0.4);
    const retries: string[] = [];
    const dir = newDir();
    await pullCheckpoint(REPO, dir, { ...quick, endpoint, onRetry: (e) => retries.push(`${e.file}:${e.attempt}`) });
    expect(retries).toEqual([`${shard}:1`]);
    const gets = log.filter((l) => l.path === `/cdn/${shard}`);
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    const from = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThan(files.get(shard)!.length);
    await expectIdentical(dir, [shard]);
    expect((await readdir(dir)).some((n) => n.endsWith(PART_SUFFIX))).toBe(false);
  });

  it('(b) rejects a corrupted byte by sha256, naming the file, and leaves nothing that looks complete', async () => {
    const [, shard] = shardNames();
    scenario.corrupt.add(shard);
    const dir = newDir();
    const err = await caught(pullCheckpoint(REPO, dir, { ...quick, endpoint }));
    expect(err.reason).toBe('checksum');
    expect(err.code).toBe('CHECKPOINT_INVALID');
    expect(err.message).toContain(shard);
    expect(err.message).toMatch(/sha256 mismatch/);
    const left = await readdir(dir);
    expect(left).not.toContain(shard);
    expect(left).not.toContain(shard + PART_SUFFIX);
  });

  it('rejects a corrupted small file by its git blob id', async () => {
    scenario.corrupt.add('config.json');
    const err = await caught(pullCheckpoint(REPO, newDir(), { ...quick, endpoint }));
    expect(err.reason).toBe('checksum');
    expect(err.message).toContain('config.json');
  });

  it('(c) says clearly when the repository does not exist, or needs a token', async () => {
    const err = await caught(pullCheckpoint('nobody/no-such-model', newDir(), { ...quick, endpoint }));
    expect(err.reason).toBe('not-found');
    expect(err.message).toMatch(/404/);
    expect(err.message).toContain('nobody/no-such-model');

    scenario.private.add(REPO);
    const err401 = await caught(pullCheckpoint(REPO, newDir(), { ...quick, endpoint }));
    expect(err401.reason).toBe('unauthorized');
    expect(err401.message).toMatch(/401.*token/);
    const dir = newDir();
    await pullCheckpoint(REPO, dir, { ...quick, endpoint, token: 's3cret' });
    expect(log.filter((l) => l.path.startsWith('/api/')).at(-1)?.auth).toBe('Bearer s3cret');
  });

  it('(d) cancellation leaves only .part files, which a later pull resumes', async () => {
    const [shard] = shardNames();
    scenario.stall.add(shard);
    const dir = newDir();
    const ac = new AbortController();
    const err = await caught(pullCheckpoint(REPO, dir, {
      ...quick,
      endpoint,
      signal: ac.signal,
      onProgress: (p) => { if (p.file === shard && (p.fileBytes ?? 0) > 0 && p.phase === 'downloading') ac.abort(); },
    }));
    expect(err.reason).toBe('cancelled');
    expect(err.code).toBe('CANCELLED');
    const left = await readdir(dir);
    expect(left).toContain(shard + PART_SUFFIX);
    expect(left).not.toContain(shard);
    expect(left.filter((n) => n.endsWith('.bin'))).toEqual([]);
    const partSize = (await stat(join(dir, shard + PART_SUFFIX))).size;
    expect(partSize).toBeGreaterThan(0);

    scenario = fresh();
    log.length = 0;
    const r = await pullCheckpoint(REPO, dir, { ...quick, endpoint });
    const resumed = r.files.find((f) => f.path === shard)!;
    expect(resumed.status).toBe('downloaded');
    expect(resumed.resumedFrom).toBe(partSize);
    expect(log.filter((l) => l.path === `/cdn/${shard}`).map((l) => l.range)).toEqual([`bytes=${partSize}-`]);
    // Files completed before the cancel were verified and kept, not fetched again.
    expect(r.files.filter((f) => f.status === 'present').map((f) => f.path)).toContain('config.json');
    expect(log.some((l) => l.path === '/cdn/config.json')).toBe(false);
    await expectIdentical(dir, [...files.keys()].filter((n) => n !== 'README.md'));
    expect((await readdir(dir)).some((n) => n.endsWith(PART_SUFFIX))).toBe(false);
  });

  it('re-downloads a file already present that does not match the listing', async () => {
    const dir = newDir();
    await pullCheckpoint(REPO, dir, { ...quick, endpoint });
    const [shard] = shardNames();
    const damaged = Buffer.from(files.get(shard)!);
    damaged[100] ^= 1;
    await writeFile(join(dir, shard), damaged);
    log.length = 0;
    const r = await pullCheckpoint(REPO, dir, { ...quick, endpoint });
    expect(r.files.filter((f) => f.status === 'downloaded').map((f) => f.path)).toEqual([shard]);
    await expectIdentical(dir, [shard]);
  });

  it('falls back to the model-info API on endpoints without the tree API', async () => {
    scenario.noTree = true;
    const dir = newDir();
    const r = await pullCheckpoint(REPO, dir, { ...quick, endpoint });
    expect(log.some((l) => l.path === `/api/models/${REPO}`)).toBe(true);
    expect(r.files.length).toBe(files.size - 1);
    await expectIdentical(dir, shardNames());
  });

  it('gives up after the retries when the connection keeps dropping, keeping the .part', async () => {
    const [shard] = shardNames();
    const dir = newDir();
    scenario.stall.add(shard);
    const err = await caught(pullCheckpoint(REPO, dir, { ...quick, retries: 1, idleTimeoutMs: 200, endpoint }));
    expect(err.reason).toBe('network');
    expect(err.message).toContain(shard);
    expect(err.message).toMatch(/2 attempts/);
    expect(await readdir(dir)).toContain(shard + PART_SUFFIX);
  });

  it('owlery pull --endpoint … <repo> <dir> <package-dir> downloads and converts; errors are one line', async () => {
    const run = promisify(execFile);
    const bin = resolve('bin/owlery.js');
    const dir = newDir();
    const pkg = join(work, 'pkg-cli');
    const env = { ...process.env, HF_TOKEN: '' };
    const { stdout, stderr } = await run(process.execPath, [bin, 'pull', '--endpoint', endpoint, REPO, dir, pkg], { env });
    expect(stderr).toBe('');
    expect(stdout).toMatch(/^pulled owl-test\/tiny-owl2 \(main, pytorch\) → .*: \d+ downloaded, 0 already present\nconverted /);
    await readPackage(pkg, { verify: true });
    const missing = await run(process.execPath, [bin, 'pull', '--endpoint', endpoint, 'nobody/nothing', newDir()], { env })
      .then(() => undefined, (e: { code: number; stderr: string }) => e);
    expect(missing?.code).toBe(1);
    expect(missing?.stderr).toMatch(/^owlery: error: listing nobody\/nothing: 404 Not Found .*\n$/);
  });

  it('retries a 503 (honouring Retry-After) and refuses bad repository ids and endpoints', async () => {
    const [shard] = shardNames();
    scenario.busyOnce.add(shard);
    const retries: number[] = [];
    const dir = newDir();
    await pullCheckpoint(REPO, dir, { ...quick, endpoint, onRetry: (e) => retries.push(e.delayMs) });
    expect(retries).toEqual([0]);
    await expectIdentical(dir, [shard]);

    for (const bad of ['../etc', 'a/b/c', '', 'owner/na me']) {
      expect((await caught(pullCheckpoint(bad, newDir(), { endpoint }))).reason).toBe('invalid');
    }
    const ftp = await caught(pullCheckpoint(REPO, newDir(), { endpoint: 'ftp://127.0.0.1/' }));
    expect(ftp.reason).toBe('invalid');
    expect(ftp.code).toBe('INVALID_ARGUMENT');
  });
});
