/**
 * Fidelity of the converted ONNX graphs against the OFFICIAL mPLUG-Owl2 outputs in
 * test/fixtures/owl2-public: the checkpoint is converted twice (model.safetensors F32 and
 * pytorch_model.bin F16) and the graphs are run directly with onnxruntime-node on the CPU.
 */
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../models/checkpoint/index.ts';
import { convertCheckpoint } from '../../models/convert.ts';
import { parseNpy } from '../../models/npy.ts';
import { DECODER_IO, ropeInvFreq } from '../../models/owl2/decoder-graph.ts';
import { DecoderKvCache, decoderFeedTensor } from '../../src-main/engine/mplug-owl2/kv-cache.ts';
import { readPackage } from '../../models/package/index.ts';
import type { LoadedPackage, PackageManifest } from '../../models/package/index.ts';
import { maxAbsDiff as maxAbs } from '../helpers/arrays.ts';
import { VERIFY } from '../helpers/verify.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/owl2-public');
const CHECKPOINT = join(FIXTURE, 'checkpoint');
const IMAGE_TOKEN = -200;

/* eslint-disable @typescript-eslint/no-explicit-any -- the fixture manifest is loosely typed JSON */
type FixtureManifest = { vision: Record<string, any>; forward: Record<string, any>; tolerances: Record<string, any> };

async function npy(rel: string): Promise<Float32Array> {
  const a = parseNpy(new Uint8Array(await readFile(join(FIXTURE, rel))));
  if (a.dtype !== 'float32') throw new Error(`${rel}: expected float32, got ${a.dtype}`);
  return a.data;
}
async function npyWithShape(rel: string): Promise<{ data: Float32Array; shape: number[] }> {
  const a = parseNpy(new Uint8Array(await readFile(join(FIXTURE, rel))));
  return { data: a.data as Float32Array, shape: a.shape };
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

const i64 = (xs: readonly number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), dims);

/** Worst difference seen per quantity and package, for the summary printed at the end. */
const worst = new Map<string, { diff: number; tol: number }>();
function record(key: string, diff: number, tol: number): void {
  const w = worst.get(key);
  if (!w || diff > w.diff) worst.set(key, { diff, tol });
  expect(diff, key).toBeLessThanOrEqual(tol);
}

/** The three sessions of a converted package, and the steps the engine would take. */
class Runner {
  constructor(
    readonly pkg: LoadedPackage,
    readonly vision: ort.InferenceSession,
    readonly embed: ort.InferenceSession,
    readonly decoder: ort.InferenceSession,
  ) {}

  static async open(dir: string): Promise<Runner> {
    const pkg = await readPackage(dir, { verify: true });
    const [v, e, d] = await Promise.all([
      ort.InferenceSession.create(pkg.graphPaths.vision),
      ort.InferenceSession.create(pkg.graphPaths.embed),
      ort.InferenceSession.create(pkg.graphPaths.decoder),
    ]);
    return new Runner(pkg, v, e, d);
  }

  get cfg(): PackageManifest['config'] {
    return this.pkg.manifest.config;
  }

  async encodeImage(pixelValues: { data: Float32Array; shape: number[] }): Promise<{ imageEmbeds: Float32Array; visionHidden: Float32Array }> {
    const out = await this.vision.run({ pixel_values: new ort.Tensor('float32', pixelValues.data, pixelValues.shape) });
    expect(out.image_embeds.dims).toEqual([1, this.cfg.imageTokens, this.cfg.llm.hiddenSize]);
    expect(out.vision_hidden.dims).toEqual([1, this.cfg.vision.numTokens, this.cfg.vision.hiddenSize]);
    return { imageEmbeds: out.image_embeds.data as Float32Array, visionHidden: out.vision_hidden.data as Float32Array };
  }

  async embedIds(ids: readonly number[]): Promise<Float32Array> {
    const out = await this.embed.run({ input_ids: i64(ids, [1, ids.length]) });
    return out.inputs_embeds.data as Float32Array;
  }

  /** Splices each image's rows in place of each −200; returns embeddings and modality per row. */
  async buildInputs(ids: readonly number[], images: Float32Array[]): Promise<{ embeds: Float32Array; modality: number[] }> {
    const H = this.cfg.llm.hiddenSize;
    const textIds = ids.filter((id) => id !== IMAGE_TOKEN);
    const text = await this.embedIds(textIds);
    const T = textIds.length + (ids.length - textIds.length) * this.cfg.imageTokens;
    const embeds = new Float32Array(T * H);
    const modality: number[] = [];
    let t = 0;
    let img = 0;
    for (const id of ids) {
      if (id === IMAGE_TOKEN) {
        embeds.set(images[img++], modality.length * H);
        for (let j = 0; j < this.cfg.imageTokens; j++) modality.push(1);
      } else {
        embeds.set(text.subarray(t * H, (t + 1) * H), modality.length * H);
        t++;
        modality.push(0);
      }
    }
    expect(img).toBe(images.length);
    return { embeds, modality };
  }

  emptyPast(): DecoderKvCache {
    const { numLayers, numKvHeads, headDim } = this.cfg.llm;
    return new DecoderKvCache(numLayers, numKvHeads, headDim);
  }

  /** Runs the decoder after `past` (P valid positions) and appends the new K/V to it. */
  async decode(embeds: Float32Array, modality: number[], P: number, past: DecoderKvCache, fetchHidden: boolean): Promise<ort.InferenceSession.ReturnType> {
    const T = modality.length;
    const { numLayers, hiddenSize } = this.cfg.llm;
    expect(past.length).toBe(P);
    const fetches: string[] = [DECODER_IO.logits, ...past.fetches()];
    if (fetchHidden) {
      for (let i = 0; i < numLayers; i++) fetches.push(DECODER_IO.hidden(i));
      fetches.push(DECODER_IO.finalNorm);
    }
    const out = await this.decoder.run({
      inputs_embeds: new ort.Tensor('float32', embeds, [1, T, hiddenSize]),
      modality: i64(modality, [1, T]),
      position_ids: i64(Array.from({ length: T }, (_, j) => P + j), [1, T]),
      ...pastFeeds(past),
    }, fetches);
    past.append(
      Array.from({ length: numLayers }, (_, i) => out[DECODER_IO.newKey(i)].data as Float32Array),
      Array.from({ length: numLayers }, (_, i) => out[DECODER_IO.newValue(i)].data as Float32Array),
      T,
    );
    return out;
  }

  /** `steps` greedy tokens with the KV cache, one token per step (text modality). Returns ids and each step's logits. */
  async greedy(first: ort.InferenceSession.ReturnType, past: DecoderKvCache, P0: number, steps: number): Promise<{ ids: number[]; logits: Float32Array[] }> {
    const ids: number[] = [];
    const logits: Float32Array[] = [];
    let out = first;
    let P = P0;
    for (let s = 0; s < steps; s++) {
      const l = out[DECODER_IO.logits].data as Float32Array;
      logits.push(l);
      const id = argmax(l);
      ids.push(id);
      if (s === steps - 1) break;
      const e = await this.embedIds([id]);
      out = await this.decode(e, [0], P, past, false);
      expect(out[DECODER_IO.newKey(0)].dims[0]).toBe(1);
      expect(past.length).toBe(P + 1);
      P++;
    }
    return { ids, logits };
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.embed.release(), this.decoder.release()]);
  }
}

const fixture = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8')) as FixtureManifest;
const TOL = {
  visionHidden: fixture.tolerances.vision_last_hidden_state_abs as number,
  encodeImages: fixture.tolerances.encode_images_abs as number,
  inputsEmbeds: fixture.tolerances.inputs_embeds_abs as number,
  hidden: fixture.tolerances.hidden_states_abs as number,
  logits: fixture.tolerances.last_logits_abs as number,
  f16Logits: fixture.tolerances.f16_weights_last_logits_abs as number,
};

let work: string;
let f32: Runner;
let f16: Runner;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-fidelity-'));
  await convertCheckpoint(CHECKPOINT, join(work, 'f32'), { verify: VERIFY, prefer: 'safetensors' });
  await convertCheckpoint(CHECKPOINT, join(work, 'f16'), { verify: VERIFY, prefer: 'pytorch' });
  f32 = await Runner.open(join(work, 'f32'));
  f16 = await Runner.open(join(work, 'f16'));
});

afterAll(async () => {
  await f32?.release();
  await f16?.release();
  if (work) await rm(work, { recursive: true, force: true });
  const lines = [...worst].map(([k, { diff, tol }]) => `  ${k.padEnd(40)} max |Δ| ${diff.toExponential(2)}  (tolerance ${tol})`);
  console.log(`owl2-public fidelity, worst differences:\n${lines.join('\n')}`);
});

describe('converted packages', () => {
  it('record where the weights came from', () => {
    expect(f32.pkg.manifest.source.format).toBe('safetensors');
    expect(f32.pkg.manifest.source.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors']);
    expect(f16.pkg.manifest.source.format).toBe('pytorch');
    expect(f16.pkg.manifest.source.files.map((f) => f.path)).toEqual(['config.json', 'pytorch_model.bin']);
    expect(f32.pkg.manifest.id).not.toBe(f16.pkg.manifest.id);
    expect(f32.pkg.manifest.quantization).toEqual({ vision: 'fp32', llm: 'fp32', embed: 'fp32' });
  });

  it('compute RoPE frequencies equal to the checkpoint\'s stored inv_freq', async () => {
    const r = await openCheckpoint(CHECKPOINT, { prefer: 'safetensors' });
    try {
      const stored = await r.readFloat32('model.layers.0.self_attn.rotary_emb.inv_freq');
      const { headDim, ropeTheta } = f32.cfg.llm;
      expect(maxAbs(ropeInvFreq(headDim, ropeTheta), stored)).toBeLessThanOrEqual(1e-7);
    } finally {
      await r.close();
    }
  });
});

describe('vision.onnx against the official encode_images', () => {
  for (const [key, c] of Object.entries(fixture.vision)) {
    it(`${key}: F32 weights`, async () => {
      const out = await f32.encodeImage(await npyWithShape(c.pixel_values));
      record('F32 vision_last_hidden_state', maxAbs(out.visionHidden, await npy(c.vision_last_hidden_state)), TOL.visionHidden);
      record('F32 encode_images', maxAbs(out.imageEmbeds, await npy(c.encode_images)), TOL.encodeImages);
    });
    it(`${key}: F16 weights (pytorch_model.bin)`, async () => {
      const out = await f16.encodeImage(await npyWithShape(c.pixel_values));
      record('F16 encode_images_f16_weights', maxAbs(out.imageEmbeds, await npy(c.encode_images_f16_weights)), TOL.encodeImages);
    });
  }
});

describe('decoder.onnx against the official forward and greedy decode', () => {
  for (const [key, c] of Object.entries(fixture.forward)) {
    const prepare = async (run: Runner): Promise<{ embeds: Float32Array; modality: number[] }> => {
      const images: Float32Array[] = [];
      for (const im of c.images) images.push((await run.encodeImage(await npyWithShape(im.pixel_values))).imageEmbeds);
      return run.buildInputs(c.input_ids, images);
    };

    it(`${key}: F32 weights: inputs_embeds, hidden states, last logits, 16 greedy ids`, async () => {
      const { embeds, modality } = await prepare(f32);
      expect(modality).toEqual(c.modality_indicators);
      expect(modality.length).toBe(c.expanded_seq_len);
      record('F32 inputs_embeds', maxAbs(embeds, await npy(c.inputs_embeds)), TOL.inputsEmbeds);

      const past = f32.emptyPast();
      const out = await f32.decode(embeds, modality, 0, past, true);
      const { numLayers, hiddenSize } = f32.cfg.llm;
      const T = modality.length;
      const hs = await npy(c.hidden_states); // [L + 1, T, H]: embeddings, after each layer, last one after the final norm
      const row = (i: number): Float32Array => hs.subarray(i * T * hiddenSize, (i + 1) * T * hiddenSize);
      for (let i = 0; i < numLayers - 1; i++) {
        record('F32 hidden_states', maxAbs(out[DECODER_IO.hidden(i)].data as Float32Array, row(i + 1)), TOL.hidden);
      }
      record('F32 hidden_states (final_norm)', maxAbs(out[DECODER_IO.finalNorm].data as Float32Array, row(numLayers)), TOL.hidden);
      expect(out[DECODER_IO.logits].dims).toEqual([1, f32.cfg.llm.vocabSize]);
      record('F32 last_logits', maxAbs(out[DECODER_IO.logits].data as Float32Array, await npy(c.last_logits)), TOL.logits);

      const { ids, logits } = await f32.greedy(out, past, T, c.greedy.ids.length);
      expect(ids).toEqual(c.greedy.ids);
      if (c.greedy.step_logits) {
        const steps = await npy(c.greedy.step_logits);
        const V = f32.cfg.llm.vocabSize;
        logits.forEach((l, s) => record('F32 greedy step logits (cached)', maxAbs(l, steps.subarray(s * V, (s + 1) * V)), TOL.logits));
      }
    });

    it(`${key}: F16 weights (pytorch_model.bin): last logits and greedy ids`, async () => {
      const { embeds, modality } = await prepare(f16);
      const past = f16.emptyPast();
      const out = await f16.decode(embeds, modality, 0, past, false);
      record('F16 last_logits.f16_weights', maxAbs(out[DECODER_IO.logits].data as Float32Array, await npy(c.f16_weights.last_logits)), TOL.f16Logits);
      const { ids } = await f16.greedy(out, past, modality.length, c.f16_weights.greedy_ids.length);
      expect(ids).toEqual(c.f16_weights.greedy_ids);
    });
  }
});

/** The decoder's past inputs for `past` (zero-copy views of its buffers). */
function pastFeeds(past: DecoderKvCache): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {};
  for (const x of past.feeds()) f[x.name] = decoderFeedTensor(x);
  return f;
}
