/**
 * Hostile photos through the real decode + preprocess path INSIDE the engine process
 * (`EngineHost.preprocess`, the same code a chat request runs on each photo):
 *
 * - a seeded mutation fuzzer over small valid JPEG, PNG, WebP, GIF, TIFF, AVIF and HEIC files
 *   (bit flips, interesting bytes, truncation, deletions, duplications, insertions, splices,
 *   repeated chunks, odd width/height fields, PNG damage behind recomputed CRCs): every case must
 *   end as valid pixel values or a typed `IMAGE_*` error, and the engine process must never die;
 * - decompression bombs (huge canvases behind a few bytes, in every format): refused from the
 *   header as `IMAGE_TOO_LARGE`/`IMAGE_UNREADABLE` by the engine, by the image store (import) and
 *   by the chat service (which then writes nothing), with the engine's peak memory bounded.
 *
 * Reproduce a failing case with its index: the fuzzer is deterministic for FUZZ_SEED.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import {
  compressedChunkBomb, gifHugeCanvas, gifHugeFrame, heicContainer, jpegClaiming, mutate, pngBomb, pngWithChunk, rng,
  seedImages, tiffClaiming, webpClaiming, webpHugeCanvas,
} from './helpers/images.ts';
import type { SeedImage } from './helpers/images.ts';
import { Figures } from './helpers/summary.ts';

const FUZZ_SEED = 20250601;
/** Cases per seed file (17 seeds: 2,040 cases). */
const CASES_PER_SEED = 120;
/** Requests in flight at once (the engine handles them one by one; this keeps it busy). */
const IN_FLIGHT = 6;

const figures = new Figures('image-fuzz');
let work: string;
let pkg: string;
let host: EngineHost;
let seeds: SeedImage[];
let crashes = 0;
let firstPid: number | undefined;

/** Pixel values a tiny-model preprocess returns: [3, 28, 28]. */
let pixelCount: number;

function enginePeakMb(): number {
  const status = readFileSync(`/proc/${host.enginePid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)![1]) / 1024;
}

beforeAll(async () => {
  work = await tempDir('owlery-fuzz-');
  pkg = await tinyPackage(work);
  host = new EngineHost();
  host.onDidCrash(() => crashes++);
  const info = await host.load(pkg, { provider: 'cpu' });
  pixelCount = 3 * info.imageSize * info.imageSize;
  firstPid = host.enginePid;
  seeds = await seedImages();
});

afterAll(async () => {
  figures.write();
  await host?.dispose();
  await removeDir(work);
});

describe('mutated images through EngineHost.preprocess', () => {
  it('every seed file decodes (HEIC: IMAGE_UNSUPPORTED, as a real iPhone photo without an HEVC decoder)', async () => {
    for (const s of seeds) {
      if (s.format === 'heic') {
        await expect(host.preprocess(s.bytes), s.name).rejects.toMatchObject({ code: 'IMAGE_UNSUPPORTED' });
      } else {
        expect((await host.preprocess(s.bytes)).length, s.name).toBe(pixelCount);
      }
    }
  });

  it(`${17 * CASES_PER_SEED} seeded mutations: valid pixels or a typed IMAGE_* error each, and the engine never restarts`, async () => {
    const r = rng(FUZZ_SEED);
    type Case = { index: number; seed: SeedImage; kind: string; bytes: Uint8Array; viaFile: boolean };
    const cases: Case[] = [];
    for (let round = 0; round < CASES_PER_SEED; round++) {
      for (const seed of seeds) {
        const m = mutate(seed, r.pick(seeds), r);
        cases.push({ index: cases.length, seed, kind: m.kind, bytes: m.bytes, viaFile: cases.length % 10 === 9 });
      }
    }
    const byCode = new Map<string, number>();
    const failures: string[] = [];
    let accepted = 0;
    let rejected = 0;
    let slowest = { ms: 0, what: '' };
    const count = (key: string) => byCode.set(key, (byCode.get(key) ?? 0) + 1);

    const runCase = async (c: Case): Promise<void> => {
      let input: string | Uint8Array = c.bytes;
      if (c.viaFile) {
        input = join(work, `case-${c.index}-${c.seed.name}`);
        await writeFile(input, c.bytes);
      }
      const t0 = performance.now();
      try {
        const px = await host.preprocess(input);
        if (px.length !== pixelCount || !px.every(Number.isFinite)) failures.push(`#${c.index} ${c.seed.name} ${c.kind}: bad pixel values (${px.length})`);
        else accepted++;
        count(`${c.seed.format} decoded`);
      } catch (err) {
        const code = err instanceof OwleryError ? err.code : `untyped ${String(err)}`;
        count(`${c.seed.format} ${code}`);
        if (err instanceof OwleryError && err.code.startsWith('IMAGE_') && err.message.length > 0) rejected++;
        else failures.push(`#${c.index} ${c.seed.name} ${c.kind}: ${code}: ${err instanceof Error ? err.message : String(err)}`);
      }
      const ms = performance.now() - t0;
      if (ms > slowest.ms) slowest = { ms, what: `#${c.index} ${c.seed.name} ${c.kind} (${c.bytes.length} bytes)` };
    };

    let next = 0;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (next < cases.length) await runCase(cases[next++]);
    }));

    figures.add('image fuzz (engine process)', { badInputsTried: cases.length, badInputsRejected: rejected, badInputsAccepted: accepted, engineRestarts: crashes });
    figures.note('image fuzz (engine process)', 'seed', FUZZ_SEED);
    figures.note('image fuzz (engine process)', 'outcomes', Object.fromEntries([...byCode].sort()));
    figures.note('image fuzz (engine process)', 'slowestCase', { ms: Math.round(slowest.ms), case: slowest.what });
    figures.note('image fuzz (engine process)', 'failures', failures.slice(0, 20));

    expect(failures).toEqual([]);
    expect(accepted + rejected).toBe(cases.length);
    expect(crashes).toBe(0);
    expect(host.enginePid).toBe(firstPid);
    // Every format produced both outcomes' worth of cases, so the fuzzer reached the decoders.
    for (const f of ['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heic']) {
      expect([...byCode.keys()].some((k) => k.startsWith(`${f} IMAGE_`)), f).toBe(true);
    }
    // The engine still answers afterwards.
    expect(await host.preprocess(seeds[0].bytes)).toHaveLength(pixelCount);
  }, 600_000);
});

describe('decompression bombs', () => {
  /** name, bytes, the codes accepted as a refusal. */
  let bombs: { name: string; bytes: Uint8Array; codes: string[] }[];
  beforeAll(async () => {
    const tooLarge = ['IMAGE_TOO_LARGE'];
    const tooLargeOrBadHeader = ['IMAGE_TOO_LARGE', 'IMAGE_UNREADABLE'];
    bombs = [
      { name: 'PNG 30000×30000 of zeros (a real 900 MB IDAT, 0.9 MB file)', bytes: pngBomb(30000, 30000), codes: tooLarge },
      { name: 'PNG 100000×20000', bytes: pngBomb(100000, 20000), codes: tooLarge },
      { name: 'JPEG claiming 65000×65000', bytes: await jpegClaiming(65000, 65000), codes: tooLarge },
      { name: 'JPEG claiming 65535×1525 (100 MP, past libjpeg’s 65500)', bytes: await jpegClaiming(65535, 1525), codes: tooLargeOrBadHeader },
      { name: 'JPEG claiming 20000×20000', bytes: await jpegClaiming(20000, 20000), codes: tooLarge },
      { name: 'WebP (VP8X, animated) with a 16384×16384 canvas and a 1×1 frame', bytes: await webpHugeCanvas(16384, 16384), codes: tooLargeOrBadHeader },
      { name: 'WebP (VP8X) with a 2^24×2^24 canvas', bytes: await webpHugeCanvas(1 << 24, 1 << 24), codes: tooLargeOrBadHeader },
      { name: 'WebP (VP8X) with a 12000×12000 canvas', bytes: await webpHugeCanvas(12000, 12000), codes: tooLargeOrBadHeader },
      { name: 'WebP (VP8L) claiming 16384×16384', bytes: await webpClaiming(16384, 16384), codes: tooLargeOrBadHeader },
      { name: 'GIF whose one frame is 65535×65535', bytes: gifHugeFrame(65535, 65535), codes: tooLarge },
      { name: 'GIF whose one frame is 20000×10000', bytes: gifHugeFrame(20000, 10000), codes: tooLarge },
      { name: 'TIFF claiming 100000×100000', bytes: await tiffClaiming(100000, 100000), codes: tooLargeOrBadHeader },
      { name: 'HEIC claiming 100000×100000', bytes: heicContainer(100000, 100000), codes: ['IMAGE_TOO_LARGE', 'IMAGE_UNREADABLE', 'IMAGE_UNSUPPORTED'] },
    ];
  });

  it('are refused by the engine from their headers, with its memory bounded and no restart', async () => {
    let refused = 0;
    for (const b of bombs) {
      const err = await host.preprocess(b.bytes).then(() => null, (e: unknown) => e);
      expect(err, b.name).toBeInstanceOf(OwleryError);
      expect(b.codes, `${b.name}: ${(err as OwleryError).code} ${(err as Error).message}`).toContain((err as OwleryError).code);
      refused++;
    }
    // Bombs with a huge canvas in a format whose decoder ignores it (GIF screen size): decoded as the small frame.
    const gifScreen = await host.preprocess(gifHugeCanvas(65535, 65535));
    expect(gifScreen).toHaveLength(pixelCount);
    // Compressed text and ICC chunks that inflate to 256 MiB: the decoder does not inflate them.
    for (const type of ['zTXt', 'iCCP']) {
      expect(await host.preprocess(pngWithChunk(type, compressedChunkBomb(type === 'zTXt' ? 'Comment' : 'icc', 256 << 20)))).toHaveLength(pixelCount);
    }
    // None of it was decoded: the engine never came near a decoded bomb (900 MP of RGB is 2.7 GB).
    // The engine starts at ~150-250 MB (runtime, tiny model, decoder); 600 MB leaves room for the fuzz's
    // largest legal cases (a 4096² square step is 50 MB) and allocator slack.
    const peak = enginePeakMb();
    figures.add('decompression bombs (engine process)', { badInputsTried: bombs.length + 3, badInputsRejected: refused, badInputsAccepted: 3, engineRestarts: crashes });
    figures.note('decompression bombs (engine process)', 'enginePeakRssMb', Math.round(peak));
    expect(peak).toBeLessThan(600);
    expect(crashes).toBe(0);
    expect(host.enginePid).toBe(firstPid);
  }, 120_000);

  it('are refused on import by the image store, leaving no file and no record', async () => {
    const env: StoreEnv = openStoreEnv(join(work, 'import'));
    try {
      let refused = 0;
      for (const b of bombs) {
        const err = await env.images.put(b.bytes, { name: 'bomb' }).then(() => null, (e: unknown) => e);
        expect(err, b.name).toBeInstanceOf(OwleryError);
        expect(b.codes.concat('IMAGE_UNSUPPORTED'), `${b.name}: ${(err as OwleryError).code}`).toContain((err as OwleryError).code);
        refused++;
      }
      expect(await readdir(join(work, 'import', 'images')).catch(() => [])).toEqual([]);
      expect(env.store.db.prepare('SELECT count(*) AS n FROM images').get()).toEqual({ n: 0 });
      figures.add('decompression bombs (image import)', { badInputsTried: bombs.length, badInputsRejected: refused });
    } finally {
      env.close();
    }
  }, 120_000);

  it('are refused by the chat service before anything is written', async () => {
    const env: StoreEnv = openStoreEnv(join(work, 'chat'));
    const chat = new ChatService({ store: env.store, images: env.images, engine: host });
    try {
      let refused = 0;
      for (const b of bombs.slice(0, 6)) {
        await expect(chat.send({ text: 'What is this?', images: [{ kind: 'bytes', bytes: b.bytes, name: 'bomb.png' }] }), b.name)
          .rejects.toBeInstanceOf(OwleryError);
        refused++;
      }
      expect(env.store.listConversations({ limit: 10 }).items).toEqual([]);
      figures.add('decompression bombs (chat send)', { badInputsTried: 6, badInputsRejected: refused, messagesLost: 0 });
    } finally {
      await chat.dispose();
      env.close();
    }
  }, 120_000);
});
