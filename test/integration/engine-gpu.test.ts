/**
 * The engine on WebGPU (lavapipe on machines without a GPU) with a GPU package of the seeded tiny
 * model (float32 GPU decoder graph, so answers must equal the CPU graph's exactly): photo question
 * and follow-up with prefix reuse, the KV cache kept in gpu-buffer tensors between steps, the
 * device buffers released when the conversation moves on, the engine process on WebGPU, and the
 * same package on the CPU provider (what a GPU failure falls back to).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type * as ort from 'onnxruntime-node';
import { convertCheckpoint } from '../../models/convert.ts';
import { Owl2Engine } from '../../src-main/engine/index.ts';
import { EngineHost, buildChatPrompt } from '../../src-main/engine/index.ts';
import { GpuDecoder, GpuKvCache } from '../../src-main/engine/gpu/gpu-decoder.ts';
import { providerOptions } from '../../src-main/engine/providers.ts';
import { readPackage } from '../../models/package/read.ts';
import { maxAbsDiff } from '../helpers/arrays.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { makePhoto } from '../helpers/chat-env.ts';
import { describeWebGpu } from '../helpers/webgpu.ts';

let work: string;
let cpuPkg: string;
let gpuPkg: string;
let cpu: Owl2Engine;
let gpu: Owl2Engine;
let photo: Uint8Array;

const question = () => buildChatPrompt([{ role: 'user', content: 'What is in this photo?', images: 1 }]);
const followUp = (answer: string) => buildChatPrompt([
  { role: 'user', content: 'What is in this photo?', images: 1 },
  { role: 'assistant', content: answer },
  { role: 'user', content: 'What colour is the disc?' },
]);
const greedy = (maxNewTokens: number) => ({ greedy: true, maxNewTokens });

await describeWebGpu('engine on WebGPU with the GPU decoder graph', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'owlery-engine-gpu-'));
    const ckpt = await ensureTinyCheckpoint({ seed: 1 });
    cpuPkg = join(work, 'cpu');
    gpuPkg = join(work, 'gpu');
    await convertCheckpoint(ckpt, cpuPkg, { verify: false });
    await convertCheckpoint(ckpt, gpuPkg, { decoder: 'gpu', verify: false });
    cpu = await Owl2Engine.load(cpuPkg, { provider: 'cpu' });
    gpu = await Owl2Engine.load(gpuPkg, { provider: 'webgpu' });
    photo = await makePhoto(3, 40, 30);
  });

  afterAll(async () => {
    await cpu?.dispose();
    await gpu?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('answers a photo question and a follow-up like the CPU graph on the CPU, reusing the first turn on the device', async () => {
    const a = await cpu.generate({ prompt: question(), images: [photo], sampling: greedy(10) });
    const b = await gpu.generate({ prompt: question(), images: [photo], sampling: greedy(10) });
    expect(b.stats.provider).toBe('webgpu');
    expect(b.outputIds).toEqual(a.outputIds);
    const a2 = await cpu.generate({ prompt: followUp(a.text), images: [photo], sampling: greedy(10) });
    const b2 = await gpu.generate({ prompt: followUp(b.text), images: [photo], sampling: greedy(10) });
    expect(b2.stats.reusedPromptTokens).toBeGreaterThan(b.stats.promptTokens / 2);
    expect(b2.stats.imagesFromCache).toBe(1);
    expect(b2.outputIds).toEqual(a2.outputIds);
  });

  it('keeps the KV cache in gpu-buffer tensors between steps and disposes each one it replaces', async () => {
    const inputs = await gpu.model.buildInputs(gpu.tokenizer.tokenizeWithImages(question()), [await gpu.model.embedPixels(await gpu.preprocess(photo))]);
    const cache = gpu.model.emptyCache();
    expect(cache).toBeInstanceOf(GpuKvCache);
    let logits = await gpu.model.decode(inputs.embeds, inputs.modality, cache);
    const kv = cache as GpuKvCache;
    const seen: ort.Tensor[][] = [];
    for (let step = 0; step < 4; step++) {
      expect(kv.location).toBe('gpu-buffer');
      expect(kv.tensors.every((t) => t.location === 'gpu-buffer')).toBe(true);
      expect(kv.tensors[0].dims[2]).toBe(inputs.length + step);
      seen.push([...kv.tensors]);
      (logits = await gpu.model.decode(await gpu.model.embedTokens([step + 100]), new BigInt64Array(1), kv));
      // The previous step's presents were consumed as the past and are gone.
      expect(seen[step].every((t) => t.location === 'none')).toBe(true);
    }
    expect(logits).toHaveLength(gpu.config.llm.vocabSize);
    kv.release();
    expect(seen.flat().every((t) => t.location === 'none')).toBe(true);
  });

  it('releases the device buffers when the conversation moves on (a dozen new conversations hold one cache)', async () => {
    let previous: GpuKvCache | undefined;
    let held: ort.Tensor[] = [];
    for (let i = 0; i < 12; i++) {
      const prompt = buildChatPrompt([{ role: 'user', content: `Conversation ${i}: ${'tell me something new '.repeat(1 + (i % 3))}` }]);
      await gpu.generate({ prompt, sampling: greedy(2) });
      const kept = gpu.keptCache;
      expect(kept).toBeInstanceOf(GpuKvCache);
      // Only the shared "<s> USER:" prefix is in common: the old buffers were released, not kept.
      if (previous) expect(held.every((t) => t.location === 'none')).toBe(true);
      previous = kept as GpuKvCache;
      held = [...previous.tensors];
      expect(held.every((t) => t.location === 'gpu-buffer')).toBe(true);
    }
  });

  it('runs in the engine process on WebGPU', async () => {
    const host = new EngineHost();
    try {
      const info = await host.load(gpuPkg, { provider: 'webgpu' });
      expect(info.provider.used).toBe('webgpu');
      const viaHost = await host.generate({ prompt: question(), images: [photo], sampling: greedy(6) });
      const direct = await cpu.generate({ prompt: question(), images: [photo], sampling: greedy(6) });
      expect(viaHost.outputIds).toEqual(direct.outputIds);
    } finally {
      await host.dispose();
    }
  });

  it('says which adapter it runs on, and `auto` leaves a software adapter to be asked for by name', async () => {
    const adapter = gpu.providerReport.adapter;
    expect(adapter?.name).toBeTruthy();
    const r = await gpu.generate({ prompt: question(), images: [photo], sampling: greedy(1) });
    expect(r.stats.adapter).toContain(adapter!.name);
    if (!adapter!.software) return; // a machine with a real GPU: auto may well pick it
    const auto = await Owl2Engine.load(gpuPkg, { provider: 'auto' });
    try {
      expect(auto.providerReport.used).toBe('cpu');
      expect(auto.providerReport.attempts.find((a) => a.provider === 'webgpu')?.error).toMatch(/software adapter/);
    } finally {
      await auto.dispose();
    }
  });

  it('verifies draft tokens in one call: the logits after each equal one call per token, and rejected ones are dropped', async () => {
    const paths = (await readPackage(gpuPkg, { verify: false })).graphPaths;
    const decoder = await GpuDecoder.create(paths.decoder, providerOptions('webgpu', undefined), gpu.config.llm);
    try {
      const V = gpu.config.llm.vocabSize;
      const prompt = gpu.tokenizer.tokenizeWithImages(buildChatPrompt([{ role: 'user', content: 'Count with me: one two three' }]));
      const tokens = [3001, 4002, 5003, 6004, 7005];
      const embeds = async (ids: number[]) => gpu.model.embedTokens(ids);
      const text = (n: number) => new BigInt64Array(n);
      const one = decoder.emptyCache();
      await decoder.decode(await embeds(prompt), text(prompt.length), one);
      const stepwise: Float32Array[] = [];
      for (const t of tokens) stepwise.push((await decoder.decode(await embeds([t]), text(1), one)).slice());
      const many = decoder.emptyCache();
      await decoder.decode(await embeds(prompt), text(prompt.length), many);
      const all = await decoder.decode(await embeds(tokens), text(tokens.length), many, Number.POSITIVE_INFINITY, tokens.length);
      expect(all).toHaveLength(tokens.length * V);
      tokens.forEach((_, j) => expect(maxAbsDiff(all.subarray(j * V, (j + 1) * V), stepwise[j])).toBeLessThan(1e-4));
      // Keep the first two, then another token: as if it had followed them from the start.
      many.truncate(prompt.length + 2);
      const other = await decoder.decode(await embeds([9009]), text(1), many);
      one.truncate(prompt.length + 2);
      expect(maxAbsDiff(other, await decoder.decode(await embeds([9009]), text(1), one))).toBeLessThan(1e-4);
      one.release();
      many.release();
    } finally {
      await decoder.release();
    }
  });

  it('gives the same answer with and without prompt-lookup drafts', async () => {
    const plain = await Owl2Engine.load(gpuPkg, { provider: 'webgpu', lookahead: 0 });
    try {
      const prompt = buildChatPrompt([{ role: 'user', content: 'Say it again: blue disc, blue disc, blue disc on a gradient.' }]);
      const a = await plain.generate({ prompt, sampling: greedy(24) });
      const b = await gpu.generate({ prompt, sampling: greedy(24) });
      expect(a.stats.speculation).toBeUndefined();
      expect(b.stats.speculation?.calls).toBeGreaterThan(0);
      expect(b.outputIds).toEqual(a.outputIds);
    } finally {
      await plain.dispose();
    }
  });

  it('runs the same GPU package on the CPU provider with the same answers', async () => {
    const fallback = await Owl2Engine.load(gpuPkg, { provider: 'cpu' });
    try {
      const a = await cpu.generate({ prompt: question(), images: [photo], sampling: greedy(8) });
      const b = await fallback.generate({ prompt: question(), images: [photo], sampling: greedy(8) });
      expect((fallback.keptCache as GpuKvCache).location).toBe('cpu');
      expect(b.outputIds).toEqual(a.outputIds);
    } finally {
      await fallback.dispose();
    }
  });
});
