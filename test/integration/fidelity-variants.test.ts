/**
 * Config variants the official fixture does not exercise (grouped-query attention, attention
 * biases, tied embeddings, a small vocabulary), checked against the independent float64
 * reference (test/reference/owl2-f64.ts) on a seeded random checkpoint written as safetensors.
 * Also: batching, chunked prefill with a KV cache (P > 0 and T > 1), and that the checkpoint's
 * stored RoPE inv_freq is ignored.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WritableTensor } from '../../models/checkpoint/write-common.ts';
import { writeSafetensorsCheckpoint } from '../../models/checkpoint/write-safetensors.ts';
import { convertCheckpoint, expectedCheckpointTensors } from '../../models/convert.ts';
import { DECODER_IO } from '../../models/owl2/decoder-graph.ts';
import { DecoderKvCache, decoderFeedTensor } from '../../src-main/engine/mplug-owl2/kv-cache.ts';
import { parseOwl2Config } from '../../models/owl2/config.ts';
import type { Owl2Config } from '../../models/owl2/config.ts';
import { readPackage } from '../../models/package/index.ts';
import { Owl2Reference, abstractorPosEmbeds, argmax } from '../reference/owl2-f64.ts';
import { maxAbsDiff as maxAbs } from '../helpers/arrays.ts';
import { VERIFY } from '../helpers/verify.ts';
import { withFirstPieces } from '../helpers/tokenizer-model.ts';

const FIXTURE_CHECKPOINT = join(import.meta.dirname, '../fixtures/owl2-public/checkpoint');

/** Seeded standard normal draws (LCG + Box–Muller). */
function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function randomTensor(name: string, shape: number[], rnd: () => number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const isNorm = /norm|_ln|layernorm/.test(name);
  let mean = 0;
  let std = 1;
  if (name.endsWith('.bias')) std = isNorm ? 0.1 : 0.1;
  else if (isNorm) { mean = 1; std = 0.2; }
  else if (shape.length === 2 && !name.includes('embed_tokens')) std = 1.3 / Math.sqrt(shape[1]);
  else if (name.endsWith('patch_embed.weight')) std = 1.3 / Math.sqrt(shape[1] * shape[2] * shape[3]);
  for (let i = 0; i < n; i++) out[i] = mean + std * rnd();
  return out;
}

const f32bytes = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Writes a random checkpoint for `raw` config into `dir` and returns the parsed config. */
async function writeRandomCheckpoint(dir: string, raw: Record<string, unknown>, seed: number): Promise<Owl2Config> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'config.json'), JSON.stringify(raw));
  for (const f of ['tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json']) {
    await copyFile(join(FIXTURE_CHECKPOINT, f), join(dir, f));
  }
  // The real tokenizer cut to the config's vocabulary (conversion checks that they match).
  await writeFile(join(dir, 'tokenizer.model'), withFirstPieces(await readFile(join(FIXTURE_CHECKPOINT, 'tokenizer.model')), Number(raw.vocab_size)));
  const cfg = parseOwl2Config(raw);
  const { required, optional } = expectedCheckpointTensors(cfg);
  const rnd = gaussian(seed);
  const { qPos, kPos } = abstractorPosEmbeds(cfg);
  const tensors: WritableTensor[] = [];
  for (const [name, shape] of required) tensors.push({ name, dtype: 'F32', shape, data: f32bytes(randomTensor(name, shape, rnd)) });
  for (const [name, shape] of optional) {
    let data: Float32Array;
    if (name.endsWith('q_pos_embed')) data = Float32Array.from(qPos);
    else if (name.endsWith('k_pos_embed')) data = Float32Array.from(kPos);
    else if (name.endsWith('inv_freq')) data = randomTensor(name, shape, rnd); // garbage on purpose: must be ignored
    else continue; // a tied lm_head is left out
    tensors.push({ name, dtype: 'F32', shape, data: f32bytes(data) });
  }
  await writeSafetensorsCheckpoint(dir, tensors);
  return cfg;
}

const i64 = (xs: readonly number[], dims: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), dims);

let work: string;
let cfg: Owl2Config;
let ref: Owl2Reference;
let vision: ort.InferenceSession;
let embed: ort.InferenceSession;
let decoder: ort.InferenceSession;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-variants-'));
  const raw = JSON.parse(await readFile(join(FIXTURE_CHECKPOINT, 'config.json'), 'utf8')) as Record<string, unknown>;
  Object.assign(raw, { num_key_value_heads: 2, attention_bias: true, tie_word_embeddings: true, vocab_size: 300, num_hidden_layers: 2, rope_theta: 500 });
  const ckpt = join(work, 'ckpt');
  cfg = await writeRandomCheckpoint(ckpt, raw, 1234);
  expect(cfg.llm).toMatchObject({ numHeads: 6, numKvHeads: 2, attentionBias: true, tieWordEmbeddings: true });
  await convertCheckpoint(ckpt, join(work, 'pkg'), { verify: VERIFY });
  const pkg = await readPackage(join(work, 'pkg'));
  [vision, embed, decoder] = await Promise.all([
    ort.InferenceSession.create(pkg.graphPaths.vision),
    ort.InferenceSession.create(pkg.graphPaths.embed),
    ort.InferenceSession.create(pkg.graphPaths.decoder),
  ]);
  ref = await Owl2Reference.load(ckpt);
});

afterAll(async () => {
  await Promise.all([vision?.release(), embed?.release(), decoder?.release()]);
  if (work) await rm(work, { recursive: true, force: true });
});

function pixels(seed: number): Float32Array {
  const rnd = gaussian(seed);
  const S = cfg.vision.imageSize;
  return Float32Array.from({ length: 3 * S * S }, () => rnd());
}

/** A caller-owned KV cache; small initial capacity so the chunked tests also grow it. */
function emptyPast(batch: number): DecoderKvCache {
  return new DecoderKvCache(cfg.llm.numLayers, cfg.llm.numKvHeads, cfg.llm.headDim, { batch, initialCapacity: 4 });
}

/** Runs the decoder after `past` and appends the new K/V to it. */
async function runDecoder(embeds: Float32Array, modality: number[], positions: number[], batch: number, past: DecoderKvCache): Promise<ort.InferenceSession.ReturnType> {
  const T = modality.length / batch;
  const feeds: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor('float32', embeds, [batch, T, cfg.llm.hiddenSize]),
    modality: i64(modality, [batch, T]),
    position_ids: i64(positions, [batch, T]),
  };
  for (const x of past.feeds()) feeds[x.name] = decoderFeedTensor(x);
  const out = await decoder.run(feeds);
  past.append(
    Array.from({ length: cfg.llm.numLayers }, (_, i) => out[DECODER_IO.newKey(i)].data as Float32Array),
    Array.from({ length: cfg.llm.numLayers }, (_, i) => out[DECODER_IO.newValue(i)].data as Float32Array),
    T,
  );
  return out;
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

describe('GQA + attention bias + tied embeddings, against the float64 reference', () => {
  const ids = [1, 17, -200, 42, 99, -200, -200, 250, 3];
  let inputs: { embeds: Float64Array; modality: Uint8Array };
  let images: Float32Array[];

  beforeAll(() => {
    images = [pixels(1), pixels(2), pixels(3)];
    inputs = ref.buildInputs(ids, images);
  });

  it('vision.onnx matches, batched', async () => {
    const S = cfg.vision.imageSize;
    const batch = new Float32Array(2 * 3 * S * S);
    batch.set(images[0], 0);
    batch.set(images[1], 3 * S * S);
    const out = await vision.run({ pixel_values: new ort.Tensor('float32', batch, [2, 3, S, S]) });
    const rows = cfg.imageTokens * cfg.llm.hiddenSize;
    const e = out.image_embeds.data as Float32Array;
    expect(maxAbs(e.subarray(0, rows), ref.encodeImage(images[0]))).toBeLessThan(1e-4);
    expect(maxAbs(e.subarray(rows), ref.encodeImage(images[1]))).toBeLessThan(1e-4);
  });

  it('decoder.onnx matches on a full prefill: every layer, the final norm, the last logits', async () => {
    const T = inputs.modality.length;
    const want = ref.forward(inputs.embeds, inputs.modality);
    const out = await runDecoder(Float32Array.from(inputs.embeds), [...inputs.modality], range(0, T), 1, emptyPast(1));
    for (let i = 0; i < cfg.llm.numLayers; i++) expect(maxAbs(out[DECODER_IO.hidden(i)].data as Float32Array, want.hidden[i])).toBeLessThan(2e-4);
    expect(maxAbs(out[DECODER_IO.finalNorm].data as Float32Array, want.finalNorm)).toBeLessThan(2e-4);
    expect(maxAbs(out.logits.data as Float32Array, want.lastLogits)).toBeLessThan(2e-4);
    expect(out[DECODER_IO.newKey(0)].dims).toEqual([T, 1, cfg.llm.numKvHeads, cfg.llm.headDim]);
  });

  it('chunked prefill through the KV cache (P > 0, T > 1) gives the same logits', async () => {
    const T = inputs.modality.length;
    const H = cfg.llm.hiddenSize;
    const want = ref.forward(inputs.embeds, inputs.modality).lastLogits;
    const past = emptyPast(1);
    let out: ort.InferenceSession.ReturnType | undefined;
    for (const [a, b] of [[0, 5], [5, 13], [13, 14], [14, T]]) {
      out = await runDecoder(Float32Array.from(inputs.embeds.subarray(a * H, b * H)), [...inputs.modality.subarray(a, b)], range(a, b), 1, past);
    }
    expect(maxAbs(out!.logits.data as Float32Array, want)).toBeLessThan(2e-4);
  });

  it('a batch of two sequences gives each one\'s own results', async () => {
    const T = inputs.modality.length;
    const H = cfg.llm.hiddenSize;
    const other = ref.buildInputs([1, -200, ...range(5, 5 + T - 1 - cfg.imageTokens)], [images[2]]);
    expect(other.modality.length).toBe(T);
    const embeds = new Float32Array(2 * T * H);
    embeds.set(Float32Array.from(inputs.embeds), 0);
    embeds.set(Float32Array.from(other.embeds), T * H);
    const out = await runDecoder(embeds, [...inputs.modality, ...other.modality], [...range(0, T), ...range(0, T)], 2, emptyPast(2));
    const V = cfg.llm.vocabSize;
    const l = out.logits.data as Float32Array;
    expect(out.logits.dims).toEqual([2, V]);
    expect(maxAbs(l.subarray(0, V), ref.forward(inputs.embeds, inputs.modality).lastLogits)).toBeLessThan(2e-4);
    expect(maxAbs(l.subarray(V), ref.forward(other.embeds, other.modality).lastLogits)).toBeLessThan(2e-4);
  });

  it('greedy decoding with the cache gives the reference\'s ids (which re-runs without a cache)', async () => {
    const steps = 8;
    const T = inputs.modality.length;
    const want = ref.greedy(ids, images, steps);
    const past = emptyPast(1);
    let out = await runDecoder(Float32Array.from(inputs.embeds), [...inputs.modality], range(0, T), 1, past);
    const got: number[] = [];
    for (let s = 0; s < steps; s++) {
      const id = argmax(out.logits.data as Float32Array);
      got.push(id);
      const e = (await embed.run({ input_ids: i64([id], [1, 1]) })).inputs_embeds.data as Float32Array;
      out = await runDecoder(e, [0], [T + s], 1, past);
    }
    expect(got).toEqual(want);
  });
});
