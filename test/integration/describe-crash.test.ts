/**
 * A describe job killed in the middle of a photo: the job runs in a child process
 * (test/helpers/describe-crash-child.ts) that is SIGKILLed while a photo's request is in the
 * engine. The database must open cleanly with the finished photos recorded and the rest pending;
 * a new service continues the job at the photo that was interrupted, never redoing a finished one,
 * and the photos stay byte-identical.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { execFile, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { DescribeEvent } from '../../src-shared/describe.ts';
import { DescribeService } from '../../src-main/describe/describe-service.ts';
import { EngineHost } from '../../src-main/engine/index.ts';
import { Store } from '../../src-main/store/store.ts';
import { forkTestChild, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { DescribeCrashMessage } from '../helpers/describe-crash-child.ts';
import { makePhotoFolder } from '../helpers/photo-folder.ts';
import type { PhotoFolder } from '../helpers/photo-folder.ts';

const run = promisify(execFile);
const AFTER_PHOTOS = 6;
let work: string;
let pkg: string;
let folder: PhotoFolder;
let running: ChildProcess | undefined;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  work = await tempDir('owlery-describe-crash-');
  pkg = await tinyPackage(work);
  folder = await makePhotoFolder(join(work, 'photos'));
});

afterAll(async () => {
  if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
  await removeDir(work);
});

it('a job killed mid-photo continues after a restart where it stopped, without redoing finished photos', async () => {
  const before = await Promise.all(folder.all.map(async (p) => sha(await readFile(p))));
  const dataDir = join(work, 'data');
  const { child, exited, message } = forkTestChild<DescribeCrashMessage>('helpers/describe-crash-child.ts', [dataDir, pkg, folder.dir, String(AFTER_PHOTOS)]);
  running = child;
  const frozen = await message((m) => (m.type === 'frozen' ? m : undefined));
  expect(frozen.finished).toEqual(folder.all.slice(0, AFTER_PHOTOS));
  expect(frozen.inFlight).toBe(folder.all[AFTER_PHOTOS]);
  child.kill('SIGKILL');
  expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });

  // Reopen: clean; the finished photos are recorded, the interrupted one and the rest pending.
  const { store } = Store.open(join(dataDir, 'owlery.sqlite'), { integrityCheck: true });
  const host = new EngineHost();
  let service: DescribeService | undefined;
  try {
    const job = store.describeJobs.get(frozen.jobId);
    expect(job.state).toBe('running');
    const counts = store.describeJobs.counts(frozen.jobId);
    expect(counts).toMatchObject({ total: folder.all.length, pending: folder.all.length - AFTER_PHOTOS });
    const describedBefore = store.db.prepare('SELECT id, sha256, described_at FROM photo_descriptions ORDER BY id').all();
    expect(describedBefore).toHaveLength(counts.described);
    expect(counts.described).toBeGreaterThan(0);

    // A new service (as the app at its next start) continues the job.
    await host.load(pkg, { provider: 'cpu' });
    service = new DescribeService({ store, engine: host });
    const events: DescribeEvent[] = [];
    service.subscribe((e) => events.push(e));
    expect(service.resumeInterrupted()).toBe(1);
    await service.idle();
    const done = service.job(frozen.jobId);
    expect(done.state).toBe('done');
    expect(done.progress).toMatchObject({ total: 32, finished: 32, described: 28, failed: 4, skipped: 0 });
    // Only the photos that were not finished were worked on, starting with the interrupted one.
    const items = events.filter((e): e is Extract<DescribeEvent, { type: 'item' }> => e.type === 'item').map((e) => e.path);
    expect(items).toEqual(folder.all.slice(AFTER_PHOTOS));
    // The descriptions written before the kill are the same rows, untouched; one description per good photo.
    const after = store.db.prepare('SELECT id, sha256, described_at FROM photo_descriptions ORDER BY id').all();
    expect(after.slice(0, describedBefore.length)).toEqual(describedBefore);
    expect(after).toHaveLength(folder.good.length);
    // Sidecars for every good photo; the photos byte-identical.
    const { stdout } = await run('exiftool', ['-j', '-XMP-dc:Description', ...folder.good.map((p) => `${p}.xmp`)]);
    const personal = new Map(folder.sidecars.map((s) => [s.photo, s.description]));
    const read = new Map((JSON.parse(stdout) as { SourceFile: string; Description: string }[]).map((r) => [r.SourceFile, r.Description]));
    for (const p of folder.good) expect(read.get(`${p}.xmp`)).toBe(personal.get(p) ?? service.description(p)!.caption);
    expect(await Promise.all(folder.all.map(async (p) => sha(await readFile(p))))).toEqual(before);
  } finally {
    await service?.dispose();
    await host.dispose();
    store.close();
  }
});
