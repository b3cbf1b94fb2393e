/**
 * Fidelity of the GPU path against the OFFICIAL mPLUG-Owl2 outputs in test/fixtures/owl2-public,
 * through the engine: the fixture checkpoint converted with the GPU decoder graph
 * (models/owl2/decoder-graph-gpu.ts) in float32 (`--decoder gpu`: the CPU suite's tolerances
 * apply, greedy ids exact) and in float16 (the `gpu` preset: its agreement with the official
 * float32 numbers is printed), run on WebGPU (lavapipe on machines without a GPU) with the KV cache
 * in gpu-buffer tensors, and the float32 one on the CPU provider too (a GPU package's CPU fallback).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { convertCheckpoint } from '../../models/convert.ts';
import { parseNpy } from '../../models/npy.ts';
import { Owl2Engine } from '../../src-main/engine/index.ts';
import { GpuKvCache } from '../../src-main/engine/gpu/gpu-decoder.ts';
import { cosine } from '../../models/verify.ts';
import { maxAbsDiff } from '../helpers/arrays.ts';
import { describeWebGpu } from '../helpers/webgpu.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/owl2-public');

/* eslint-disable @typescript-eslint/no-explicit-any -- the fixture manifest is loosely typed JSON */
type FixtureManifest = { vision: Record<string, any>; forward: Record<string, any>; tolerances: Record<string, any> };
const fixture = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8')) as FixtureManifest;
const TOL = { encode: fixture.tolerances.encode_images_abs as number, embeds: fixture.tolerances.inputs_embeds_abs as number, logits: fixture.tolerances.last_logits_abs as number };

async function npy(rel: string): Promise<Float32Array> {
  return parseNpy(new Uint8Array(await readFile(join(FIXTURE, rel)))).data as Float32Array;
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** Worst difference per quantity, printed at the end. */
const worst = new Map<string, number>();
function record(key: string, diff: number, tol: number): void {
  worst.set(key, Math.max(worst.get(key) ?? 0, diff));
  expect(diff, key).toBeLessThanOrEqual(tol);
}

/** One forward case through an engine: prefill with the case's images, then greedy steps with the cache. */
async function runCase(engine: Owl2Engine, c: any, steps: number): Promise<{ embeds: Float32Array; logits: Float32Array[]; ids: number[]; kvLocation: string }> {
  const images: Float32Array[] = [];
  for (const im of c.images) images.push(await engine.model.embedPixels(await npy(im.pixel_values)));
  const inputs = await engine.model.buildInputs(c.input_ids, images);
  const cache = engine.model.emptyCache();
  let logits = await engine.model.decode(inputs.embeds, inputs.modality, cache);
  const out: Float32Array[] = [];
  const ids: number[] = [];
  for (let s = 0; s < steps; s++) {
    out.push(logits);
    ids.push(argmax(logits));
    if (s < steps - 1) (logits = await engine.model.decode(await engine.model.embedTokens([ids[s]]), new BigInt64Array(1), cache));
  }
  const kvLocation = cache instanceof GpuKvCache ? cache.location : 'host (CPU graph)';
  if (cache instanceof GpuKvCache) cache.release();
  return { embeds: inputs.embeds, logits: out, ids, kvLocation };
}

let work: string;
const engines: Owl2Engine[] = [];
let gpu32: Owl2Engine;
let cpu32: Owl2Engine;
let gpu16: Owl2Engine;

await describeWebGpu('GPU decoder graph and vision on WebGPU against the official outputs', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'owlery-fidelity-gpu-'));
    const ckpt = join(FIXTURE, 'checkpoint');
    await convertCheckpoint(ckpt, join(work, 'f32'), { prefer: 'safetensors', decoder: 'gpu', verify: false });
    await convertCheckpoint(ckpt, join(work, 'f16'), { prefer: 'safetensors', preset: 'gpu', verify: false });
    engines.push((gpu32 = await Owl2Engine.load(join(work, 'f32'), { provider: 'webgpu' })));
    engines.push((cpu32 = await Owl2Engine.load(join(work, 'f32'), { provider: 'cpu' })));
    engines.push((gpu16 = await Owl2Engine.load(join(work, 'f16'), { provider: 'webgpu' })));
  });

  afterAll(async () => {
    for (const e of engines) await e.dispose();
    if (work) await rm(work, { recursive: true, force: true });
    console.log(`owl2-public on the GPU path, worst differences:\n${[...worst].map(([k, d]) => `  ${k.padEnd(52)} ${d.toExponential(2)}`).join('\n')}`);
  });

  it('loads on WebGPU with the GPU decoder graph', () => {
    expect(gpu32.providerReport.used).toBe('webgpu');
    expect(gpu32.manifest.graphs.decoder.variant).toBe('gpu');
    expect(gpu16.manifest.quantization.llm).toBe('fp16');
  });

  it('vision.onnx on WebGPU: encode_images of every fixture image within tolerance', async () => {
    for (const c of Object.values(fixture.vision)) {
      const e = await gpu32.model.embedPixels(await npy(c.pixel_values));
      record('webgpu F32 encode_images', maxAbsDiff(e, await npy(c.encode_images)), TOL.encode);
    }
  });

  for (const [key, c] of Object.entries(fixture.forward)) {
    it(`${key}: float32 GPU graph on WebGPU and on the CPU: inputs_embeds, last logits, ${c.greedy.ids.length} greedy ids`, async () => {
      const steps = c.greedy.ids.length;
      const stepLogits = c.greedy.step_logits ? await npy(c.greedy.step_logits) : undefined;
      const V = gpu32.config.llm.vocabSize;
      for (const [name, engine] of [['webgpu', gpu32], ['cpu', cpu32]] as const) {
        const r = await runCase(engine, c, steps);
        if (name === 'webgpu') expect(r.kvLocation).toBe('gpu-buffer');
        record(`${name} F32 inputs_embeds`, maxAbsDiff(r.embeds, await npy(c.inputs_embeds)), TOL.embeds);
        record(`${name} F32 last_logits (GPU graph)`, maxAbsDiff(r.logits[0], await npy(c.last_logits)), TOL.logits);
        expect(r.ids, `${name} greedy ids`).toEqual(c.greedy.ids);
        if (stepLogits) r.logits.forEach((l, s) => record(`${name} F32 greedy step logits (KV cache)`, maxAbsDiff(l, stepLogits.subarray(s * V, (s + 1) * V)), TOL.logits));
      }
    });
  }

  it('float16 GPU package (preset gpu) on WebGPU: agreement with the official float32 logits', async () => {
    let agree = 0;
    let total = 0;
    let minCos = 1;
    for (const c of Object.values(fixture.forward)) {
      const r = await runCase(gpu16, c, c.greedy.ids.length);
      r.ids.forEach((id, s) => { agree += id === c.greedy.ids[s] ? 1 : 0; total++; });
      minCos = Math.min(minCos, cosine(r.logits[0], await npy(c.last_logits)));
      worst.set('webgpu F16 last_logits max |Δ|', Math.max(worst.get('webgpu F16 last_logits max |Δ|') ?? 0, maxAbsDiff(r.logits[0], await npy(c.last_logits))));
    }
    console.log(`float16 GPU package on WebGPU: greedy ids equal to the official float32 ones at ${agree}/${total} steps, lowest last-logits cosine ${minCos.toFixed(6)}`);
    // The first ids follow from the last logits, which float16 keeps close; later ones may drift.
    expect(minCos).toBeGreaterThan(0.999);
    expect(agree / total).toBeGreaterThan(0.5);
  });
});
