/**
 * Describe jobs end to end, as the app wires them: a real SQLite store, the engine service over a
 * real engine process on the seeded tiny model, the chat service sharing that engine, and a folder
 * of generated photos (test/helpers/photo-folder.ts: broken ones, a huge one, existing sidecars).
 * Sidecars are read back with exiftool; the photos must come out byte-identical.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import sharp from 'sharp';
import type { DescribeEvent, DescribeJob } from '../../src-shared/describe.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { DescribeService } from '../../src-main/describe/describe-service.ts';
import { PROMPT_VERSION } from '../../src-main/describe/prompts.ts';
import { MAX_KEYWORDS, normalizeKeyword } from '../../src-main/describe/text.ts';
import { EngineHost } from '../../src-main/engine/index.ts';
import { EngineService } from '../../src-main/services/engine-service.ts';
import { makePhoto, openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { makePhotoFolder } from '../helpers/photo-folder.ts';
import type { PhotoFolder } from '../helpers/photo-folder.ts';

const run = promisify(execFile);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let work: string;
let pkg: string;
let env: StoreEnv;
let engine: EngineService;
let chat: ChatService;
let describeService: DescribeService;
let folder: PhotoFolder;
let hashesBefore: Map<string, string>;

const embeddingsCache = (): string => join(work, 'data', 'cache', 'embeddings');

/** Files under a folder, recursively (none when it does not exist). */
async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((e) => e.isFile()).map((e) => e.name);
}

async function hashes(paths: readonly string[]): Promise<Map<string, string>> {
  return new Map(await Promise.all(paths.map(async (p) => [p, sha(await readFile(p))] as const)));
}

/** exiftool's reading of sidecars: Description, Subject (always a list) and the other fields. */
async function exiftool(files: string[]): Promise<Map<string, { Description?: string; Subject: string[]; Rating?: number; Creator?: string; City?: string }>> {
  const { stdout } = await run('exiftool', ['-j', '-XMP-dc:Description', '-XMP-dc:Subject', '-XMP-xmp:Rating', '-XMP-dc:Creator', '-XMP-photoshop:City', ...files]);
  const rows = JSON.parse(stdout) as { SourceFile: string; Description?: string; Subject?: string | string[] | number; Rating?: number; Creator?: string; City?: string }[];
  return new Map(rows.map((r) => [r.SourceFile, { ...r, Subject: r.Subject === undefined ? [] : Array.isArray(r.Subject) ? r.Subject.map(String) : [String(r.Subject)] }]));
}

/** Resolves with the job once it reaches a state. */
function until(service: DescribeService, id: number, test: (job: DescribeJob) => boolean): Promise<DescribeJob> {
  return new Promise((resolve) => {
    const check = (job: DescribeJob) => {
      if (job.id !== id || !test(job)) return;
      off();
      resolve(job);
    };
    const off = service.subscribe((e) => e.type === 'job' && check(e.job));
    check(service.job(id));
  });
}

beforeAll(async () => {
  work = await tempDir('owlery-describe-');
  pkg = await tinyPackage(work);
  folder = await makePhotoFolder(join(work, 'photos'));
  hashesBefore = await hashes(folder.all);
  env = openStoreEnv(join(work, 'data'));
  // With the on-disk embeddings cache, as the app runs it.
  engine = new EngineService({ host: new EngineHost(), modelDir: () => pkg, loadOptions: () => ({ provider: 'cpu', cacheDir: embeddingsCache() }), activeModel: () => 'tiny' });
  chat = new ChatService({ store: env.store, images: env.images, engine });
  describeService = new DescribeService({
    store: env.store,
    engine,
    chatBusy: () => chat.queueState.running !== null || chat.queueState.queued > 0,
    pollMs: 20,
    progressIntervalMs: 0,
  });
});

afterAll(async () => {
  await describeService?.dispose();
  await chat?.dispose();
  await engine?.dispose();
  env?.close();
  await removeDir(work);
});

describe('describe jobs', () => {
  it('describes a folder with its subfolders, lists the broken and the huge photo as errors, and writes sidecars exiftool reads', async () => {
    const events: DescribeEvent[] = [];
    const off = describeService.subscribe((e) => events.push(e));
    const started = await describeService.start({ folders: [folder.dir], recursive: true, sidecars: true });
    expect(started).toMatchObject({ state: 'queued', promptVersion: PROMPT_VERSION, progress: { total: folder.all.length, finished: 0 } });
    expect(started.spec).toEqual({ folders: [folder.dir], files: [], recursive: true, sidecars: { naming: 'photo.jpg.xmp' } });
    await describeService.idle();
    off();

    const job = describeService.job(started.id);
    expect(job.state).toBe('done');
    expect(job.finishedAt).not.toBeNull();
    expect(job.progress).toMatchObject({ total: 32, finished: 32, described: 28, skipped: 0, failed: 4, current: null, etaSeconds: null });
    expect(job.progress.photosPerMinute).toBeGreaterThan(0);

    // Progress went up one photo at a time, naming the photo being described.
    const progress = events.flatMap((e) => (e.type === 'job' ? [e.job.progress] : []));
    const finishedCounts = [...new Set(progress.map((p) => p.finished))];
    expect(finishedCounts).toEqual(Array.from({ length: 33 }, (_, i) => i));
    expect(new Set(progress.flatMap((p) => (p.current ? [p.current] : [])))).toEqual(new Set(folder.all));
    const items = events.filter((e): e is Extract<DescribeEvent, { type: 'item' }> => e.type === 'item');
    expect(items.map((e) => e.path)).toEqual(folder.all);

    // Errors, per photo, with specific codes; the job went on.
    const errors = describeService.errors(started.id);
    expect(errors.map((e) => e.path).sort()).toEqual([...folder.broken, folder.huge].sort());
    const byPath = new Map(errors.map((e) => [e.path, e]));
    expect(byPath.get(folder.huge)!.error.code).toBe('IMAGE_TOO_LARGE');
    expect(byPath.get(join(folder.dir, 'broken-empty.png'))!.error.code).toMatch(/^IMAGE_/);
    expect(byPath.get(join(folder.dir, 'broken-noise.jpg'))!.error.code).toMatch(/^IMAGE_/);
    expect(byPath.get(join(folder.dir, 'broken-truncated.jpg'))!.error.code).toMatch(/^IMAGE_/);
    for (const e of errors) expect(e).toMatchObject({ stage: 'describe' });

    // Each good photo: a caption, clean keywords, provenance.
    const manifestSha = sha(await readFile(join(pkg, 'manifest.json')));
    for (const path of folder.good) {
      const d = describeService.description(path)!;
      expect(d.caption.length).toBeGreaterThan(0);
      expect(d.keywords.length).toBeLessThanOrEqual(MAX_KEYWORDS);
      for (const k of d.keywords) expect(normalizeKeyword(k)).toBe(k);
      expect(d.sha256).toBe(hashesBefore.get(path));
      expect(d.provenance).toMatchObject({ modelSha256: manifestSha, promptVersion: PROMPT_VERSION, settings: { greedy: true, aspectMode: 'resize', provider: 'cpu' } });
      expect(d.provenance.packageId).toBe(engine.info!.packageId);
      expect(d.provenance.describedAt).toBeGreaterThan(0);
      const item = items.find((e) => e.path === path)!;
      expect(item).toMatchObject({ state: 'described', error: null });
      expect(item.description).toEqual({ sha256: d.sha256, caption: d.caption, keywords: d.keywords, provenance: d.provenance });
    }
    expect(describeService.description(folder.huge)).toBeNull();

    // Sidecars: exiftool reads our caption and keywords; the other fields and somebody's keywords and caption stay.
    const sidecarFiles = folder.good.map((p) => `${p}.xmp`);
    const read = await exiftool(sidecarFiles);
    const existing = new Map(folder.sidecars.map((s) => [s.photo, s]));
    for (const path of folder.good) {
      const d = describeService.description(path)!;
      const x = read.get(`${path}.xmp`)!;
      const before = existing.get(path);
      expect(x.Description).toBe(before?.description ?? d.caption);
      const expected = [...(before?.subjects ?? []), ...d.keywords.filter((k) => !(before?.subjects ?? []).some((s) => s.toLowerCase() === k))];
      expect(x.Subject).toEqual(expected);
      if (before) expect(x).toMatchObject({ Rating: before.rating, Creator: before.creator, City: before.city });
    }
    // No sidecar for photos that were not described; the originals are untouched, nothing else was written.
    const names = await readdir(folder.dir);
    expect(names.filter((n) => n.startsWith('broken') || n.startsWith('huge')).sort()).toEqual(['broken-empty.png', 'broken-noise.jpg', 'broken-truncated.jpg', 'huge.png']);
    expect(names.filter((n) => n.includes('.tmp'))).toEqual([]);
    expect(await hashes(folder.all)).toEqual(hashesBefore);
    // A library's embeddings stay out of the on-disk cache (a chat photo's go in).
    expect(await filesUnder(embeddingsCache())).toEqual([]);
    const chatPhoto = await makePhoto(999, 40, 40);
    const asked = await chat.send({ text: 'What is this?', images: [{ kind: 'bytes', bytes: chatPhoto }], sampling: { greedy: true, maxNewTokens: 4 } });
    expect((await chat.outcome(asked.requestId)).type).toBe('done');
    expect(await filesUnder(embeddingsCache())).toEqual([`${sha(chatPhoto)}-resize.f32`]);
  });

  it('describes a photo over the pixel limit from the downscaled copy a chat import would store', async () => {
    const dir = join(work, 'big');
    await mkdir(dir, { recursive: true });
    const big = join(dir, 'panorama.png');
    const bytes = await sharp({ create: { width: 12000, height: 9000, channels: 3, background: { r: 40, g: 90, b: 160 } } }).png({ compressionLevel: 1 }).toBuffer();
    await writeFile(big, bytes);
    const job = await describeService.start({ files: [big] });
    await describeService.idle();
    expect(describeService.job(job.id).progress).toMatchObject({ total: 1, described: 1, failed: 0 });
    // Kept under the original's hash: the original is what the photo is.
    expect(describeService.description(big)).toMatchObject({ sha256: sha(bytes) });
    expect(describeService.description(big)!.caption.length).toBeGreaterThan(0);
    expect(sha(await readFile(big))).toBe(sha(bytes));
  });

  it('skips photos already described with the same model and prompts; searches and exports what it wrote', async () => {
    const again = await describeService.start({ folders: [folder.dir] });
    await describeService.idle();
    const job = describeService.job(again.id);
    const top = folder.topLevel;
    expect(job.progress).toMatchObject({ total: top.length, described: 0, skipped: top.length - 4, failed: 4 });
    expect(job.progress.photosPerMinute).toBeNull();

    // Search: a word of a caption finds that photo, ranked, with the word marked.
    const target = describeService.description(folder.good[5])!;
    const word = target.caption.split(/[^\p{L}\p{N}]+/u).find((w) => w.length >= 5)!;
    const hits = describeService.search(`${word} `);
    const hit = hits.find((h) => h.sha256 === target.sha256)!;
    expect(hit.paths).toEqual([folder.good[5]]);
    expect(hit.caption.text).toBe(target.caption);
    expect(hit.caption.highlights.length).toBeGreaterThan(0);
    for (const r of hit.caption.highlights) expect(hit.caption.text.slice(r.start, r.end).toLowerCase()).toBe(word.toLowerCase());
    expect(describeService.search(`${word} `, { folder: join(folder.dir, 'trip') }).some((h) => h.sha256 === target.sha256)).toBe(false);

    // Export: every described photo of the folder, with provenance.
    const json = JSON.parse(describeService.renderExport(folder.dir, 'json', { recursive: true }).text) as { format: string; photos: { path: string; caption: string; keywords: string[]; provenance: { promptVersion: string } }[] };
    expect(json.format).toBe('owlery-photo-descriptions');
    expect(json.photos.map((p) => p.path)).toEqual(folder.good);
    expect(json.photos[5]).toMatchObject({ caption: target.caption, keywords: target.keywords, provenance: { promptVersion: PROMPT_VERSION } });
    const flat = describeService.renderExport(folder.dir, 'csv');
    expect(flat.count).toBe(folder.good.filter((p) => !p.includes('/trip/')).length);
    expect(() => describeService.renderExport(folder.dir, 'xml' as never)).toThrow(/csv or json/);
    expect(() => describeService.search('dog', { keywords: 'dog' as never })).toThrow(/list of keywords/);
    const file = join(work, 'export.csv');
    await describeService.exportFolder(folder.dir, file, 'csv');
    expect(await readFile(file, 'utf8')).toBe(flat.text);
  });

  it('pauses, resumes and cancels; chat answers while a job runs', async () => {
    const small = join(work, 'small');
    await mkdir(small);
    for (let i = 0; i < 6; i++) await writeFile(join(small, `s${i}.png`), await makePhoto(500 + i, 56, 40));
    const job = await describeService.start({ folders: [small] });
    const first = await until(describeService, job.id, (j) => j.progress.finished >= 1);
    expect(first.state).toBe('running');
    const paused = describeService.pause(job.id);
    expect(paused.state).toBe('paused');
    await describeService.idle();
    const stopped = describeService.job(job.id);
    expect(stopped.state).toBe('paused');
    expect(stopped.progress.finished).toBeLessThan(6);
    expect(stopped.progress.current).toBeNull();

    // A chat question sent as the job resumes is answered before the job ends.
    const order: string[] = [];
    const off = describeService.subscribe((e) => e.type === 'job' && e.job.id === job.id && e.job.state === 'done' && order.push('job done'));
    describeService.resume(job.id);
    const sent = await chat.send({ text: 'Is the engine free?', sampling: { greedy: true, maxNewTokens: 8 } });
    const outcome = await chat.outcome(sent.requestId);
    order.push('chat done');
    expect(outcome.type).toBe('done');
    await describeService.idle();
    off();
    expect(order).toEqual(['chat done', 'job done']);
    const done = describeService.job(job.id);
    expect(done.progress).toMatchObject({ finished: 6, described: 6, failed: 0 });

    // Cancel: the job ends at once; what was described stays.
    const more = join(work, 'more');
    await mkdir(more);
    for (let i = 0; i < 4; i++) await writeFile(join(more, `m${i}.png`), await makePhoto(600 + i, 50, 50));
    const second = await describeService.start({ folders: [more] });
    await until(describeService, second.id, (j) => j.progress.finished >= 1);
    expect(describeService.cancel(second.id).state).toBe('cancelled');
    await describeService.idle();
    const cancelled = describeService.job(second.id);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.progress.finished).toBeLessThan(4);
    expect(() => describeService.resume(second.id)).toThrow(/has ended/);
  });

  it('refuses bad requests before anything is written', async () => {
    const jobs = describeService.jobs().length;
    await expect(describeService.start({})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(describeService.start({ folders: ['relative/folder'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(describeService.start({ folders: [join(work, 'missing')] })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    const empty = join(work, 'empty');
    await mkdir(empty);
    await expect(describeService.start({ folders: [empty] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/no photos/) });
    const readOnly = join(work, 'read-only');
    await mkdir(readOnly);
    await writeFile(join(readOnly, 'r.png'), await makePhoto(700, 30, 30));
    await chmod(readOnly, 0o555);
    if (process.getuid?.() !== 0) {
      await expect(describeService.start({ folders: [readOnly], sidecars: true })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    }
    await expect(describeService.start({ folders: [readOnly], sidecars: 'photo.tiff' as never })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await chmod(readOnly, 0o755);
    expect(describeService.jobs().length).toBe(jobs);

    // No model chosen: refused at start; a job left running (as after a crash) is paused with the reason.
    const modelless = new EngineService({ host: new EngineHost(), modelDir: () => pkg, loadOptions: () => ({ provider: 'cpu' }) });
    const service = new DescribeService({ store: env.store, engine: modelless });
    try {
      await expect(service.start({ folders: [readOnly] })).rejects.toMatchObject({ code: 'NO_MODEL' });
      const left = env.store.describeJobs.create({ folders: [readOnly], files: [], recursive: false, sidecars: null }, PROMPT_VERSION, [join(readOnly, 'r.png')], 'running');
      expect(service.resumeInterrupted()).toBe(1);
      await service.idle();
      expect(service.job(left.id)).toMatchObject({ state: 'paused', progress: { total: 1, finished: 0 } });
      expect(service.stopReason(left.id)).toMatchObject({ code: 'NO_MODEL' });
      expect(env.store.describeJobs.nextPending(left.id)).toEqual({ position: 0, path: join(readOnly, 'r.png') });
    } finally {
      await service.dispose();
      await modelless.dispose();
    }
  });
});
