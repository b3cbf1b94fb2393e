import { createHash } from 'node:crypto';
import { readdir, readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import { roundThrough } from '../../../models/checkpoint/dtype.ts';
import { openCheckpoint, readConfig } from '../../../models/checkpoint/index.ts';
import { PytorchFile } from '../../../models/checkpoint/pytorch.ts';
import { parseOwl2Config } from '../../../models/owl2/config.ts';
import {
  generationConfigJson, LLAMA_TOKENIZER_SHA256, owl2ConfigJson, preprocessorConfigJson, specialTokensMapJson, tokenizerConfigJson,
} from '../../../models/tiny/files.ts';
import { owl2TensorSpecs, ropeInvFreq, writeTinyCheckpoint } from '../../../models/tiny/factory.ts';
import type { TinyCheckpointOptions } from '../../../models/tiny/factory.ts';
import { pyFloatRepr, pyJson } from '../../../models/tiny/pyjson.ts';
import { ensureTinyCheckpoint, TINY_CACHE_DIR, tinyCheckpointKey } from '../../helpers/tiny-model.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/', import.meta.url));
const CKPT = join(FIXTURE, 'checkpoint');
const weights = JSON.parse(await readFile(join(FIXTURE, 'expected/weights.json'), 'utf8')) as Record<string, { shape: number[] }>;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'owlery-tiny-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** The fixture's sizes in TinySizes form, read from its config. */
async function fixtureSizes(): Promise<Parameters<typeof owl2ConfigJson>[0]> {
  const { config: c } = await readConfig(CKPT);
  return {
    hiddenSize: c.llm.hiddenSize, numLayers: c.llm.numLayers, numHeads: c.llm.numHeads, numKvHeads: c.llm.numKvHeads,
    intermediateSize: c.llm.intermediateSize, vocabSize: c.llm.vocabSize, rmsNormEps: c.llm.rmsNormEps, ropeTheta: c.llm.ropeTheta,
    maxPositions: c.llm.maxPositions, visionHiddenSize: c.vision.hiddenSize, visionLayers: c.vision.numLayers,
    visionHeads: c.vision.numHeads, visionIntermediateSize: c.vision.intermediateSize, imageSize: c.vision.imageSize,
    patchSize: c.vision.patchSize, abstractorHiddenSize: c.abstractor.hiddenSize, abstractorLayers: c.abstractor.numLayers,
    abstractorHeads: c.abstractor.numHeads, abstractorIntermediateSize: c.abstractor.intermediateSize, numQueries: c.abstractor.numQueries,
  };
}

describe('official layout', () => {
  it('config.json and the tokenizer/preprocessor/generation files match the fixture byte for byte at its sizes', async () => {
    const s = await fixtureSizes();
    const read = (f: string): Promise<string> => readFile(join(CKPT, f), 'utf8');
    expect(pyJson(owl2ConfigJson(s, 'float16'))).toBe(await read('config.json'));
    expect(pyJson(generationConfigJson())).toBe(await read('generation_config.json'));
    expect(pyJson(preprocessorConfigJson(s.imageSize))).toBe(await read('preprocessor_config.json'));
    expect(pyJson(tokenizerConfigJson())).toBe(await read('tokenizer_config.json'));
    expect(pyJson(specialTokensMapJson())).toBe(await read('special_tokens_map.json'));
  });

  it('tensor names, order and shapes match the official state dict at the fixture sizes', async () => {
    const { config } = await readConfig(CKPT);
    const specs = owl2TensorSpecs(config);
    const bin = await PytorchFile.open(join(CKPT, 'pytorch_model.bin'));
    try {
      expect(specs.map((s) => s.name)).toEqual([...bin.tensors.keys()]);
    } finally {
      await bin.close();
    }
    for (const s of specs) expect(s.shape, s.name).toEqual(weights[s.name].shape);
  });

  it('rotary inv_freq is computed as transformers does (matches the fixture buffer exactly)', async () => {
    const { config } = await readConfig(CKPT);
    const r = await openCheckpoint(CKPT);
    try {
      expect(ropeInvFreq(config.llm.headDim, config.llm.ropeTheta)).toEqual(await r.readFloat32('model.layers.0.self_attn.rotary_emb.inv_freq'));
    } finally {
      await r.close();
    }
  });

  it('Python float repr', () => {
    expect([1e-5, 1e-6, 10000, 0.02, 0.48145466, 1e16, 123.5, -0.0001, 0].map(pyFloatRepr))
      .toEqual(['1e-05', '1e-06', '10000.0', '0.02', '0.48145466', '1e+16', '123.5', '-0.0001', '0.0']);
  });
});

describe('writeTinyCheckpoint', () => {
  it('writes a complete checkpoint: all files, the genuine tokenizer, a config that parses, the official key set', async () => {
    const dir = await ensureTinyCheckpoint({ seed: 1 });
    expect((await readdir(dir)).sort()).toEqual([
      'config.json', 'generation_config.json', 'model.safetensors', 'preprocessor_config.json',
      'special_tokens_map.json', 'tokenizer.model', 'tokenizer_config.json',
    ]);
    expect(sha256(await readFile(join(dir, 'tokenizer.model')))).toBe(LLAMA_TOKENIZER_SHA256);
    expect(sha256(await readFile(join(dir, 'tokenizer.model')))).toBe(sha256(await readFile(join(CKPT, 'tokenizer.model'))));
    const { config, raw } = await readConfig(dir);
    expect(config.llm).toMatchObject({ hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, vocabSize: 32000 });
    expect(config.vision).toMatchObject({ hiddenSize: 32, numLayers: 2, numHeads: 2, imageSize: 28, patchSize: 14, numTokens: 5 });
    expect(config.abstractor).toMatchObject({ numLayers: 2, numQueries: 4, gridSize: 2 });
    expect(raw.torch_dtype).toBe('float32');
    const pre = JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')) as Record<string, unknown>;
    expect(pre).toMatchObject({ size: 28, crop_size: 28 });
    // Same key set as the official checkpoint, modulo the number of layers.
    const norm = (k: string): string => k.replace(/layers\.\d+\./, 'layers.N.');
    const r = await openCheckpoint(dir);
    try {
      expect(new Set([...r.tensors.keys()].map(norm))).toEqual(new Set(Object.keys(weights).map(norm)));
      // Healthy scales; multiway branches clearly different.
      const stats = async (name: string): Promise<{ mean: number; std: number }> => {
        const v = await r.readFloat32(name);
        const mean = v.reduce((a, b) => a + b, 0) / v.length;
        return { mean, std: Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length) };
      };
      const n0 = await stats('model.layers.0.input_layernorm.multiway.0.weight');
      const n1 = await stats('model.layers.0.input_layernorm.multiway.1.weight');
      expect(Math.abs(n0.mean - 1)).toBeLessThan(0.1);
      expect(n0.mean - n1.mean).toBeGreaterThan(0.15);
      const q = await stats('model.layers.0.self_attn.q_proj.weight');
      expect(q.std).toBeGreaterThan(0.02);
      expect(q.std).toBeLessThan(0.11);
      const k0 = await r.readFloat32('model.layers.1.self_attn.k_proj.multiway.0.weight');
      const k1 = await r.readFloat32('model.layers.1.self_attn.k_proj.multiway.1.weight');
      let diff = 0;
      for (let i = 0; i < k0.length; i++) diff = Math.max(diff, Math.abs(k0[i] - k1[i]));
      expect(diff).toBeGreaterThan(0.05);
    } finally {
      await r.close();
    }
  });

  it('is deterministic: same seed → byte-identical files; another seed → other weights, same config', async () => {
    const a = join(tmp, 'a');
    const b = join(tmp, 'b');
    const c = join(tmp, 'c');
    const opts: TinyCheckpointOptions = { seed: 42, format: 'pytorch', dtype: 'F16', shards: 2 };
    const ra = await writeTinyCheckpoint(a, opts);
    await writeTinyCheckpoint(b, opts);
    await writeTinyCheckpoint(c, { ...opts, seed: 43 });
    expect(ra.files).toEqual((await readdir(a)).sort());
    for (const f of ra.files) {
      expect(sha256(await readFile(join(a, f))), f).toBe(sha256(await readFile(join(b, f))));
    }
    expect(sha256(await readFile(join(a, 'config.json')))).toBe(sha256(await readFile(join(c, 'config.json'))));
    expect(sha256(await readFile(join(a, 'pytorch_model-00001-of-00002.bin')))).not.toBe(sha256(await readFile(join(c, 'pytorch_model-00001-of-00002.bin'))));
  });

  it('applies config overrides and keeps the grid consistent; refuses another vocabulary size', async () => {
    const r = await writeTinyCheckpoint(join(tmp, 'o'), {
      seed: 3, config: { num_hidden_layers: 3, num_key_value_heads: 2, visual_config: { visual_model: { image_size: 42 } } },
    });
    expect(r.config.llm.numLayers).toBe(3);
    expect(r.config.abstractor.gridSize).toBe(3);
    expect(r.tensors.find((t) => t.name === 'model.layers.2.self_attn.k_proj.multiway.1.weight')!.shape).toEqual([32, 64]);
    expect(r.tensors.find((t) => t.name.endsWith('layers.0.crossattention.attention.k_pos_embed'))!.shape).toEqual([10, 32]);
    expect(parseOwl2Config(JSON.parse(await readFile(join(tmp, 'o', 'config.json'), 'utf8'))).vision.numTokens).toBe(10);
    await expect(writeTinyCheckpoint(join(tmp, 'v'), { seed: 1, config: { vocab_size: 1000 } })).rejects.toThrow(OwleryError);
    const b = await writeTinyCheckpoint(join(tmp, 'bias'), { seed: 3, config: { attention_bias: true } });
    const names = new Set(b.tensors.map((t) => t.name));
    for (const n of ['q_proj.bias', 'k_proj.multiway.0.bias', 'k_proj.multiway.1.bias', 'v_proj.multiway.1.bias', 'o_proj.bias']) {
      expect(names.has(`model.layers.1.self_attn.${n}`), n).toBe(true);
    }
  });
});

describe('round trips in every format give the same float32 tensors', () => {
  const variants: { label: string; opts: Omit<TinyCheckpointOptions, 'seed'>; files: RegExp }[] = [
    { label: 'safetensors sharded F32', opts: { shards: 3 }, files: /^model-0000[1-3]-of-00003\.safetensors$/ },
    { label: 'safetensors F16', opts: { dtype: 'F16' }, files: /^model\.safetensors$/ },
    { label: 'safetensors BF16', opts: { dtype: 'BF16' }, files: /^model\.safetensors$/ },
    { label: '.bin F32', opts: { format: 'pytorch' }, files: /^pytorch_model\.bin$/ },
    { label: '.bin F16', opts: { format: 'pytorch', dtype: 'F16' }, files: /^pytorch_model\.bin$/ },
    { label: '.bin BF16', opts: { format: 'pytorch', dtype: 'BF16' }, files: /^pytorch_model\.bin$/ },
    { label: 'sharded .bin BF16', opts: { format: 'pytorch', dtype: 'BF16', shards: 2 }, files: /^pytorch_model-0000[12]-of-00002\.bin$/ },
  ];
  let reference: Map<string, Float32Array>;

  beforeAll(async () => {
    const r = await openCheckpoint(await ensureTinyCheckpoint({ seed: 7 }));
    reference = new Map();
    try {
      for (const name of r.tensors.keys()) reference.set(name, await r.readFloat32(name));
    } finally {
      await r.close();
    }
  });

  for (const v of variants) {
    it(v.label, async () => {
      const dir = await ensureTinyCheckpoint({ seed: 7, ...v.opts });
      const r = await openCheckpoint(dir);
      try {
        expect(r.format).toBe(v.opts.format ?? 'safetensors');
        for (const f of r.files.filter((f) => !f.endsWith('.json'))) expect(f).toMatch(v.files);
        expect([...r.tensors.keys()].sort()).toEqual([...reference.keys()].sort());
        const dtype = v.opts.dtype ?? 'F32';
        for (const [name, ref] of reference) {
          expect(r.tensors.get(name)!.dtype).toBe(dtype);
          const got = await r.readFloat32(name);
          const want = roundThrough(ref, dtype);
          expect(got.length).toBe(want.length);
          expect(Buffer.compare(Buffer.from(got.buffer), Buffer.from(want.buffer)), name).toBe(0);
        }
      } finally {
        await r.close();
      }
    });
  }
});

describe('ensureTinyCheckpoint', () => {
  it('builds once when several callers race, leaves no temporary folders, and reuses the result', async () => {
    const opts: TinyCheckpointOptions = { seed: 1234, config: { num_hidden_layers: 1 } };
    const key = await tinyCheckpointKey(opts);
    await rm(join(TINY_CACHE_DIR, key), { recursive: true, force: true });
    const dirs = await Promise.all([1, 2, 3, 4].map(() => ensureTinyCheckpoint(opts)));
    expect(new Set(dirs)).toEqual(new Set([join(TINY_CACHE_DIR, key)]));
    expect((await readdir(TINY_CACHE_DIR)).filter((n) => n.includes(key) && n !== key)).toEqual([]);
    const r = await openCheckpoint(dirs[0]);
    try {
      expect(r.tensors.has('model.layers.0.self_attn.q_proj.weight')).toBe(true);
      expect(r.tensors.has('model.layers.1.self_attn.q_proj.weight')).toBe(false);
    } finally {
      await r.close();
    }
    expect(await ensureTinyCheckpoint({ ...opts, format: 'safetensors', dtype: 'F32', shards: 1 })).toBe(dirs[0]);
  });
});
