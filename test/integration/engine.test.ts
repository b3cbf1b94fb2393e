/**
 * The engine end to end on the seeded tiny model, converted from safetensors by the real converter:
 * ONNX vs the independent float64 reference, KV cache vs no cache, multi-image multi-turn prompts,
 * cancellation, context overflow, and the worker host surviving a crash.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { convertCheckpoint } from '../../models/convert.ts';
import { VERIFIED_STAMP_FILE } from '../../models/package/index.ts';
import type { LoadEvent } from '../../src-shared/engine.ts';
import { Owl2Engine } from '../../src-main/engine/mplug-owl2/engine.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { buildChatPrompt } from '../../src-main/engine/mplug-owl2/prompt.ts';
import { IMAGE_TOKEN_INDEX } from '../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { argmax } from '../../src-main/engine/generation/sampler.ts';
import { Owl2Reference } from '../reference/owl2-f64.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { maxAbsDiff } from '../helpers/arrays.ts';
import { VERIFY } from '../helpers/verify.ts';

let work: string;
let pkg: string;
let ckpt: string;
let engine: Owl2Engine;
let reference: Owl2Reference;
let photoA: Uint8Array;
let photoB: Uint8Array;

/** A small synthetic photo: a colour gradient with a disc, different per seed. */
async function makePhoto(seed: number, w: number, h: number): Promise<Uint8Array> {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      const inDisc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 3) ** 2;
      data[i] = (x * 255) / w;
      data[i + 1] = inDisc ? (seed * 97) % 256 : (y * 255) / h;
      data[i + 2] = (seed * 53 + x + y) % 256;
    }
  }
  return new Uint8Array(await sharp(data, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-engine-'));
  ckpt = await ensureTinyCheckpoint({ seed: 1 });
  pkg = join(work, 'pkg');
  await convertCheckpoint(ckpt, pkg, { verify: VERIFY });
  engine = await Owl2Engine.load(pkg, { provider: 'cpu' });
  reference = await Owl2Reference.load(ckpt);
  photoA = await makePhoto(1, 40, 30);
  photoB = await makePhoto(2, 25, 50);
});

afterAll(async () => {
  await engine?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

const twoTurnsTwoImages = () => buildChatPrompt([
  { role: 'user', content: 'What is in this photo?', images: 1 },
  { role: 'assistant', content: 'A round shape on a gradient.' },
  { role: 'user', content: 'And how does this one differ?', images: 1 },
]);

describe('engine on the seeded tiny model', () => {
  it('matches the float64 reference on image embeddings and logits (two images in different turns)', async () => {
    const prompt = twoTurnsTwoImages();
    const ids = engine.tokenizer.tokenizeWithImages(prompt);
    expect(ids.filter((i) => i === IMAGE_TOKEN_INDEX)).toHaveLength(2);
    const pixels = [await engine.preprocess(photoA), await engine.preprocess(photoB)];
    const embeds = [await engine.model.embedPixels(pixels[0]), await engine.model.embedPixels(pixels[1])];
    for (let i = 0; i < 2; i++) expect(maxAbsDiff(embeds[i], reference.encodeImage(pixels[i]))).toBeLessThan(1e-4);
    const inputs = await engine.model.buildInputs(ids, embeds);
    const logits = await engine.model.decode(inputs.embeds, inputs.modality, engine.model.emptyCache());
    const ref = reference.buildInputs(ids, pixels);
    expect(Array.from(inputs.modality, Number)).toEqual(Array.from(ref.modality));
    expect(maxAbsDiff(logits, reference.forward(ref.embeds, ref.modality).lastLogits)).toBeLessThan(1e-4);
  });

  it('greedy decoding with the KV cache gives the same ids as re-running the whole sequence', async () => {
    const prompt = twoTurnsTwoImages();
    const result = await engine.generate({ prompt, images: [photoA, photoB], sampling: { greedy: true, maxNewTokens: 12 } });
    expect(result.outputIds.length).toBeGreaterThan(0);
    // No cache: feed prompt + generated ids from scratch at every step.
    const pixels = [await engine.preprocess(photoA), await engine.preprocess(photoB)];
    const embeds = [await engine.model.embedPixels(pixels[0]), await engine.model.embedPixels(pixels[1])];
    const ids = [...result.promptIds];
    const noCache: number[] = [];
    for (let step = 0; step < result.outputIds.length; step++) {
      const inputs = await engine.model.buildInputs(ids, embeds);
      const logits = await engine.model.decode(inputs.embeds, inputs.modality, engine.model.emptyCache());
      const next = argmax(logits);
      noCache.push(next);
      ids.push(next);
    }
    expect(result.outputIds).toEqual(noCache);
    // And the float64 reference agrees on the greedy path.
    expect(reference.greedy(result.promptIds, pixels, result.outputIds.length)).toEqual(result.outputIds);
  });

  it('answers a text-only prompt', async () => {
    const prompt = buildChatPrompt([{ role: 'user', content: 'Hello there, how are you today?' }]);
    const result = await engine.generate({ prompt, sampling: { greedy: true, maxNewTokens: 8 } });
    expect(result.promptIds).not.toContain(IMAGE_TOKEN_INDEX);
    expect(result.outputIds).toEqual(reference.greedy(result.promptIds, [], result.outputIds.length));
    expect(result.stats.imageCount).toBe(0);
  });

  it('stops within one step of a cancel, keeping the partial answer', async () => {
    const cancel = { cancelled: false };
    const prompt = buildChatPrompt([{ role: 'user', content: 'Tell me a long story.' }]);
    let tokens = 0;
    const result = await engine.generate({ prompt, sampling: { temperature: 1, seed: 9, maxNewTokens: 200 } }, (e) => {
      if (e.type === 'tokens' && e.ids.length && ++tokens === 3) cancel.cancelled = true;
    }, cancel);
    expect(result.finish).toBe('cancelled');
    expect(result.outputIds).toHaveLength(3);
  });

  it('reuses image embeddings for the same photo bytes', async () => {
    const prompt = buildChatPrompt([{ role: 'user', content: 'Again?', images: 1 }]);
    await engine.generate({ prompt, images: [photoA], sampling: { greedy: true, maxNewTokens: 1 } });
    const again = await engine.generate({ prompt, images: [photoA], sampling: { greedy: true, maxNewTokens: 1 } });
    expect(again.stats.imagesFromCache).toBe(1);
  });

  it('reports reading and looking at the photos it has to encode, with their count, and skips both for cached ones', async () => {
    const fresh = await Owl2Engine.load(pkg, { provider: 'cpu', verify: false });
    try {
      const prompt = buildChatPrompt([{ role: 'user', content: 'Compare.', images: 2 }]);
      const phases = async (): Promise<string[]> => {
        const seen: string[] = [];
        await fresh.generate({ prompt, images: [photoA, photoB], sampling: { greedy: true, maxNewTokens: 1 } }, (e) => {
          if (e.type === 'phase') seen.push(`${e.phase}${e.images ? `:${e.images}` : ''}${e.progress ? ` ${e.progress.done}/${e.progress.total}` : ''}`);
        });
        return seen;
      };
      // Each photo done moves the phase on (the last one ends it: the next phase starts).
      expect(await phases()).toEqual(['decode-image:2 0/2', 'decode-image:2 1/2', 'encode-image:2 0/2', 'encode-image:2 1/2', 'prefill', 'generate']);
      expect(await phases()).toEqual(['prefill', 'generate']);
    } finally {
      await fresh.dispose();
    }
  });

  it('reports a long prefill chunk by chunk, so a long prompt shows how far it is', async () => {
    const chunked = await Owl2Engine.load(pkg, { provider: 'cpu', verify: false, prefillChunk: 16 });
    try {
      const prompt = buildChatPrompt([{ role: 'user', content: 'Describe everything you know about owls and their habits at night in the forest, and how they hunt mice and voles in the snow in winter.' }]);
      const total = chunked.tokenizer.tokenizeWithImages(prompt).length;
      expect(total).toBeGreaterThan(32);
      const seen: string[] = [];
      await chunked.generate({ prompt, sampling: { greedy: true, maxNewTokens: 1 } }, (e) => {
        if (e.type === 'phase') seen.push(`${e.phase}${e.progress ? ` ${e.progress.done}/${e.progress.total}` : ''}`);
      });
      const chunks = Array.from({ length: Math.ceil(total / 16) - 1 }, (_, i) => `prefill ${(i + 1) * 16}/${total}`);
      expect(seen).toEqual(['prefill', ...chunks, 'generate']);
    } finally {
      await chunked.dispose();
    }
  });

  it('reports loading: the bytes of files it checks (none when a check vouches for them), then the graphs opened', async () => {
    const copy = join(work, 'pkg-unchecked');
    await cp(pkg, copy, { recursive: true });
    await rm(join(copy, VERIFIED_STAMP_FILE), { force: true });
    const manifest = JSON.parse(await readFile(join(copy, 'manifest.json'), 'utf8')) as { files: { path: string; size: number }[] };
    const sizes = manifest.files.reduce((n, f) => n + f.size, 0);
    const graphBytes = manifest.files.filter((f) => /\.onnx(\.data)?$/.test(f.path)).reduce((n, f) => n + f.size, 0);
    const load = async (): Promise<LoadEvent[]> => {
      const events: LoadEvent[] = [];
      const e = await Owl2Engine.load(copy, { provider: 'cpu', verify: true }, (ev) => events.push(ev));
      await e.dispose();
      return events;
    };
    const first = await load();
    const checking = first.filter((e) => e.phase === 'checking-files').map((e) => e.progress!);
    expect(checking[0]).toEqual({ done: 0, total: sizes });
    expect(checking.at(-1)).toEqual({ done: sizes, total: sizes });
    const opening = first.filter((e) => e.phase === 'opening-graphs').map((e) => e.progress!.done);
    expect(opening[0]).toBe(0);
    expect(opening.at(-1)).toBe(graphBytes);
    expect(opening).toEqual([...opening].sort((a, b) => a - b));
    expect(first.findIndex((e) => e.phase === 'opening-graphs')).toBeGreaterThan(first.findLastIndex((e) => e.phase === 'checking-files'));
    // The first load left a check that vouches for the files: the next one opens the graphs only.
    expect((await load()).map((e) => e.phase)).toEqual(['opening-graphs', 'opening-graphs', 'opening-graphs', 'opening-graphs']);
  });

  it('takes a stored photo\'s sha256 as its cache key: a cached photo is not read again, a new hash is', async () => {
    const fresh = await Owl2Engine.load(pkg, { provider: 'cpu', verify: false });
    const file = join(work, 'stored-photo.png');
    try {
      await writeFile(file, photoB);
      const sha256 = createHash('sha256').update(photoB).digest('hex');
      const prompt = buildChatPrompt([{ role: 'user', content: 'What is it?', images: 1 }]);
      const ask = (image: { path: string; sha256: string }) => fresh.generate({ prompt, images: [image], sampling: { greedy: true, maxNewTokens: 3 } });
      const first = await ask({ path: file, sha256 });
      expect(first.stats.imagesFromCache).toBe(0);
      const byBytes = await fresh.generate({ prompt, images: [photoB], sampling: { greedy: true, maxNewTokens: 3 } });
      expect(byBytes.stats.imagesFromCache).toBe(1); // the same key as hashing the bytes
      expect(byBytes.outputIds).toEqual(first.outputIds);
      await rm(file);
      const again = await ask({ path: file, sha256 }); // the file is gone: only the cache can answer
      expect(again.stats.imagesFromCache).toBe(1);
      expect(again.outputIds).toEqual(first.outputIds);
      await expect(ask({ path: file, sha256: 'f'.repeat(64) })).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    } finally {
      await fresh.dispose();
    }
  });

  it('fits a chat given as turns to the context window, dropping the oldest pairs and their photos', async () => {
    const small = await Owl2Engine.load(pkg, { provider: 'cpu', verify: false });
    try {
      const limit = small.config.llm.maxPositions;
      const long = 'river '.repeat(Math.ceil(limit / 2)); // two of these do not fit, one does
      const turns = [
        { role: 'user' as const, content: long, images: 1 },
        { role: 'assistant' as const, content: 'A river.' },
        { role: 'user' as const, content: long },
        { role: 'assistant' as const, content: 'Another river.' },
        { role: 'user' as const, content: 'Which photo?', images: 1 },
      ];
      const fitted = await small.generate({ turns, images: [photoA, photoB], sampling: { greedy: true, maxNewTokens: 4 } });
      expect(fitted.droppedPairs).toBeGreaterThan(0);
      expect(fitted.stats.imageCount).toBe(1);
      expect(fitted.stats.promptTokens + 4).toBeLessThanOrEqual(limit);
      const kept = turns.slice(2 * fitted.droppedPairs);
      const direct = await small.generate({ prompt: buildChatPrompt(kept), images: [photoB], sampling: { greedy: true, maxNewTokens: 4 } });
      expect(fitted.outputIds).toEqual(direct.outputIds);
      await expect(small.generate({ turns, images: [photoA] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    } finally {
      await small.dispose();
    }
  });

  it('reuses the KV cache of the conversation so far, with the same answers as a fresh prefill', async () => {
    const fresh = await Owl2Engine.load(pkg, { provider: 'cpu', prefixReuse: false, verify: false });
    try {
      const turn1 = [{ role: 'user' as const, content: 'What is in this photo?', images: 1 }];
      const first = await engine.generate({ prompt: buildChatPrompt(turn1), images: [photoA], sampling: { greedy: true, maxNewTokens: 6 } });
      const turn2 = [...turn1, { role: 'assistant' as const, content: first.text }, { role: 'user' as const, content: 'Are you sure?' }];
      const request = { prompt: buildChatPrompt(turn2), images: [photoA], sampling: { greedy: true, maxNewTokens: 6 } };
      const followUp = await engine.generate(request);
      expect(followUp.stats.reusedPromptTokens).toBeGreaterThan(engine.config.imageTokens);
      expect(followUp.stats.imagesFromCache).toBe(1);
      const baseline = await fresh.generate(request);
      expect(baseline.stats.reusedPromptTokens).toBe(0);
      expect(followUp.outputIds).toEqual(baseline.outputIds);
      // Regenerating the same answer reuses everything but the last prompt token.
      const again = await engine.generate(request);
      expect(again.stats.reusedPromptTokens).toBe(again.stats.promptTokens - 1);
      expect(again.outputIds).toEqual(baseline.outputIds);
    } finally {
      await fresh.dispose();
    }
  });

  it('prefills a long prompt in chunks with the same logits and answer as in one run', async () => {
    const chunked = await Owl2Engine.load(pkg, { provider: 'cpu', prefillChunk: 5, prefixReuse: false, verify: false });
    const whole = await Owl2Engine.load(pkg, { provider: 'cpu', prefillChunk: 100_000, prefixReuse: false, verify: false });
    try {
      const request = { prompt: twoTurnsTwoImages(), images: [photoA, photoB], sampling: { greedy: true, maxNewTokens: 6 }, collectLogits: true };
      const a = await chunked.generate(request);
      const b = await whole.generate(request);
      // The image rows (imageTokens each) cross chunk boundaries at a chunk of 5.
      expect(a.stats.promptTokens).toBeGreaterThan(2 * engine.config.imageTokens + 5);
      expect(a.outputIds).toEqual(b.outputIds);
      expect(maxAbsDiff(a.stepLogits!, b.stepLogits!)).toBeLessThan(1e-4);
    } finally {
      await Promise.all([chunked.dispose(), whole.dispose()]);
    }
  });

  it('loads the decoder from the faster-start cache with the same answers, and rebuilds a damaged one', async () => {
    const cacheDir = join(work, 'prepacked');
    const load = () => Owl2Engine.load(pkg, { provider: 'cpu', prepackedCacheDir: cacheDir, prefixReuse: false, verify: false });
    const request = { prompt: twoTurnsTwoImages(), images: [photoA, photoB], sampling: { greedy: true, maxNewTokens: 5 }, collectLogits: true };
    const plain = await Owl2Engine.load(pkg, { provider: 'cpu', prefixReuse: false, verify: false });
    const want = await plain.generate(request);
    await plain.dispose();

    const first = await load();
    expect(first.decoderSource).toMatchObject({ from: 'prepacked-cache', built: true });
    await first.dispose();
    const second = await load();
    expect(second.decoderSource).toMatchObject({ from: 'prepacked-cache', built: false });
    const got = await second.generate(request);
    await second.dispose();
    expect(got.outputIds).toEqual(want.outputIds);
    expect(maxAbsDiff(got.stepLogits!, want.stepLogits!)).toBeLessThan(1e-5);

    // A damaged entry (here: its data file cut short) is deleted, the package's decoder used, and the next load rebuilds it.
    const entry = (second.decoderSource as { dir: string }).dir;
    await truncate(join(entry, 'decoder.onnx.data'), 100);
    const third = await load();
    expect(third.decoderSource).toMatchObject({ from: 'package', cacheSkipped: expect.stringContaining('could not be loaded') });
    expect((await third.generate(request)).outputIds).toEqual(want.outputIds);
    await third.dispose();
    const fourth = await load();
    expect(fourth.decoderSource).toMatchObject({ from: 'prepacked-cache', built: true });
    await fourth.dispose();
  });

  it('keeps image embeddings on disk, so a new engine does not re-encode the same photo', async () => {
    const cacheDir = join(work, 'embed-cache');
    const prompt = buildChatPrompt([{ role: 'user', content: 'Describe it.', images: 1 }]);
    const a = await Owl2Engine.load(pkg, { provider: 'cpu', cacheDir, verify: false });
    const first = await a.generate({ prompt, images: [photoB], sampling: { greedy: true, maxNewTokens: 3 } });
    await a.dispose();
    const b = await Owl2Engine.load(pkg, { provider: 'cpu', cacheDir, verify: false });
    const second = await b.generate({ prompt, images: [photoB], sampling: { greedy: true, maxNewTokens: 3 } });
    await b.dispose();
    expect(first.stats.imagesFromCache).toBe(0);
    expect(second.stats.imagesFromCache).toBe(1);
    expect(second.stats.imageEncodeMs).toBe(0);
    expect(second.outputIds).toEqual(first.outputIds);
  });

  it('refuses a prompt longer than the context window with a clear error', async () => {
    const limit = engine.config.llm.maxPositions;
    const prompt = buildChatPrompt([{ role: 'user', content: 'word '.repeat(limit) }]);
    await expect(engine.generate({ prompt })).rejects.toMatchObject({ code: 'CONTEXT_OVERFLOW', message: expect.stringMatching(/context window is \d+ tokens/) });
  });

  it('refuses a mismatch between image markers and images', async () => {
    await expect(engine.generate({ prompt: 'USER: <|image|><|image|>hi ASSISTANT:', images: [photoA] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('engine host (separate engine process)', () => {
  let host: EngineHost;
  beforeAll(async () => {
    host = new EngineHost();
    await host.load(pkg, { provider: 'cpu' });
  });
  afterAll(async () => host?.dispose());

  it('streams a load\'s phases across the process boundary', async () => {
    const events: LoadEvent[] = [];
    await host.load(pkg, { provider: 'cpu' }, { onEvent: (e) => events.push(e) });
    expect(events.at(-1)).toMatchObject({ type: 'phase', phase: 'opening-graphs' });
    expect(events.at(-1)!.progress!.done).toBe(events.at(-1)!.progress!.total);
  });

  it('stops on cancel from another thread and keeps the partial answer', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const prompt = buildChatPrompt([{ role: 'user', content: 'Tell me a long story.' }]);
    const result = await host.generate(
      { prompt, sampling: { temperature: 1, seed: 5, maxNewTokens: 400 } },
      { signal: controller.signal, onEvent: (e) => { if (e.type === 'tokens' && e.ids.length) { seen.push(...e.ids); if (seen.length === 3) controller.abort(); } } },
    );
    expect(result.finish).toBe('cancelled');
    expect(result.outputIds.length).toBeGreaterThanOrEqual(3);
    expect(result.outputIds.length).toBeLessThan(400);
    expect(result.outputIds).toEqual(seen);
  });

  it('unloads the model: its sessions are released, requests are refused until the next load', async () => {
    const prompt = buildChatPrompt([{ role: 'user', content: 'Hello' }]);
    const pid = host.enginePid;
    await host.unload();
    expect(host.info).toBeUndefined();
    await expect(host.generate({ prompt })).rejects.toMatchObject({ message: expect.stringMatching(/no model is loaded/) });
    const info = await host.load(pkg, { provider: 'cpu' });
    expect(host.enginePid).toBe(pid); // the same process, loaded again
    expect(info.packageId).toBeTruthy();
    expect((await host.generate({ prompt, sampling: { greedy: true, maxNewTokens: 2 } })).outputIds).toHaveLength(2);
  });

  it('reports a killed engine process; the next load starts a fresh one, which works', async () => {
    const crashes: string[] = [];
    host.onDidCrash((e) => crashes.push(e.code));
    const prompt = buildChatPrompt([{ role: 'user', content: 'Count to one hundred.' }]);
    let killed = false;
    const killedPid = host.enginePid;
    const pending = host.generate({ prompt, sampling: { greedy: true, maxNewTokens: 500 } }, {
      onEvent: (e) => { if (e.type === 'tokens' && !killed) { killed = true; process.kill(host.enginePid!, 'SIGKILL'); } },
    });
    await expect(pending).rejects.toMatchObject({ code: 'ENGINE_CRASHED' });
    expect(crashes).toEqual(['ENGINE_CRASHED']);
    // The host remembers no model (the app's EngineService reloads it: test/robustness/engine-faults.test.ts).
    expect(host.info).toBeUndefined();
    await expect(host.generate({ prompt })).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringMatching(/no model is loaded/) });
    await host.load(pkg, { provider: 'cpu' });
    expect(host.enginePid).not.toBe(killedPid);
    const after = await host.generate({ prompt, sampling: { greedy: true, maxNewTokens: 3 } });
    expect(after.outputIds).toHaveLength(3);
  });

});
