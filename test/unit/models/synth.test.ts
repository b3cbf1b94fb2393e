/**
 * Synthetic checkpoints: the virtual reader lays out exactly the official tensor list and shapes
 * (the tiny factory's for a tiny config; the released 7B's for the 7b preset), generates the same
 * bytes as the tiny factory, deterministically and in any order; the streaming writer produces
 * files identical to the in-memory writers and readable by the checkpoint readers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OwleryError } from '../../../src-shared/errors.ts';
import { openCheckpoint, readConfig } from '../../../models/checkpoint/index.ts';
import { rawToFloat32 } from '../../../models/checkpoint/dtype.ts';
import { checkCheckpointTensors, expectedCheckpointTensors } from '../../../models/convert.ts';
import { writeTinyCheckpoint } from '../../../models/tiny/factory.ts';
import { llamaTokenizerModel } from '../../../models/tiny/files.ts';
import {
  OWL2_7B_SIZES, SyntheticCheckpointReader, checkSynthPreset, hfShardSplit, synthConfigJson, synthWeightBytes, writeSyntheticCheckpoint,
} from '../../../models/synth/index.ts';

let work: string;
/** LLaMA's tokenizer.model, from the dev dependency (what the tiny factory writes too). */
let tokenizer: Uint8Array;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-synth-'));
  tokenizer = await llamaTokenizerModel();
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const tinyConfig = () => synthConfigJson('tiny', 'F32').config;

describe('SyntheticCheckpointReader', () => {
  it('lists exactly the tiny factory tensors (names, shapes, order) for a tiny config, and reads the same bytes', async () => {
    const dir = join(work, 'factory-f32');
    const made = await writeTinyCheckpoint(dir, { seed: 3, dtype: 'F32' });
    const r = new SyntheticCheckpointReader(tinyConfig(), { seed: 3, dtype: 'F32' });
    expect([...r.tensors.values()].map((t) => ({ name: t.name, shape: t.shape }))).toEqual(made.tensors);
    const disk = await openCheckpoint(dir);
    try {
      expect([...r.tensors.keys()].sort()).toEqual([...disk.tensors.keys()].sort());
      for (const [name, info] of disk.tensors) {
        expect(r.tensors.get(name)!.shape).toEqual(info.shape);
        expect(r.tensors.get(name)!.byteLength).toBe(info.byteLength);
        expect(Buffer.from(await r.readRaw(name)).equals(Buffer.from(await disk.readRaw(name))), name).toBe(true);
      }
    } finally {
      await disk.close();
    }
  });

  it('F16 bytes equal the tiny factory F16 checkpoint; readFloat32 is the stored values exactly', async () => {
    const dir = join(work, 'factory-f16');
    await writeTinyCheckpoint(dir, { seed: 4, dtype: 'F16', format: 'pytorch' });
    const r = new SyntheticCheckpointReader(tinyConfig(), { seed: 4, dtype: 'F16' });
    const disk = await openCheckpoint(dir);
    try {
      for (const name of ['model.embed_tokens.weight', 'model.layers.1.mlp.down_proj.weight', 'model.visual_abstractor.encoder.layers.0.crossattention.attention.k_pos_embed']) {
        const raw = await r.readRaw(name);
        expect(Buffer.from(raw).equals(Buffer.from(await disk.readRaw(name))), name).toBe(true);
        const f = await r.readFloat32(name);
        const want = rawToFloat32(raw, 'F16');
        expect(Buffer.from(f.buffer, f.byteOffset, f.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), name).toBe(true);
      }
    } finally {
      await disk.close();
    }
  });

  it('is deterministic: same seed → same bytes in any read order; another seed → other bytes', async () => {
    const a = new SyntheticCheckpointReader(tinyConfig(), { seed: 9 });
    const b = new SyntheticCheckpointReader(tinyConfig(), { seed: 9 });
    const c = new SyntheticCheckpointReader(tinyConfig(), { seed: 10 });
    const names = [...a.tensors.keys()];
    const first = await Promise.all(names.map((n) => a.readRaw(n)));
    const reversed = await Promise.all([...names].reverse().map((n) => b.readRaw(n)));
    reversed.reverse();
    names.forEach((n, i) => expect(Buffer.from(first[i]).equals(Buffer.from(reversed[i])), n).toBe(true));
    expect(Buffer.from(await a.readRaw('model.norm.weight')).equals(Buffer.from(await a.readRaw('model.norm.weight')))).toBe(true);
    expect(Buffer.from(await c.readRaw('model.norm.weight')).equals(Buffer.from(first[names.indexOf('model.norm.weight')]))).toBe(false);
  });

  it('refuses unknown tensors and reads after close', async () => {
    const r = new SyntheticCheckpointReader(tinyConfig());
    await expect(r.readRaw('model.nope')).rejects.toThrow(/no tensor "model.nope"/);
    await r.close();
    await expect(r.readRaw('model.norm.weight')).rejects.toBeInstanceOf(OwleryError);
  });

  it('7b preset: the released checkpoint layout (config, tensor list, shapes, 8.2 B parameters, two .bin shards)', async () => {
    const { config, json, text } = synthConfigJson('7b', 'F16');
    expect(config.llm).toMatchObject({
      hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 32, headDim: 128, intermediateSize: 11008,
      vocabSize: 32000, rmsNormEps: 1e-5, ropeTheta: 10000, maxPositions: 4096, attentionBias: false, tieWordEmbeddings: false,
    });
    expect(config.vision).toMatchObject({ hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096, imageSize: 448, patchSize: 14, layerNormEps: 1e-6, numTokens: 1025 });
    expect(config.abstractor).toMatchObject({ hiddenSize: 1024, encoderHiddenSize: 1024, numLayers: 6, numHeads: 16, intermediateSize: 2816, numQueries: 64, gridSize: 32 });
    expect(config.imageTokens).toBe(65);
    expect(json).toMatchObject({ architectures: ['MPLUGOwl2LlamaForCausalLM'], model_type: 'mplug_owl2', torch_dtype: 'float16', image_aspect_ratio: 'pad' });
    expect(text).toContain('"rms_norm_eps": 1e-05');
    expect(text).toContain('"rope_theta": 10000.0');
    const vc = json.visual_config as Record<string, Record<string, unknown>>;
    expect(vc.visual_model).toMatchObject({ model_type: 'mplug_owl_vision_model', hidden_act: 'quick_gelu', projection_dim: 768, use_flash_attn: false });
    expect(vc.visual_abstractor).toMatchObject({ model_type: 'mplug_owl_visual_abstract', num_learnable_queries: 64, grid_size: 32 });

    const r = new SyntheticCheckpointReader(config);
    checkCheckpointTensors(config, r);
    const { required, optional } = expectedCheckpointTensors(config);
    expect(r.tensors.size).toBe(required.size + optional.size);
    const shape = (n: string) => r.tensors.get(n)!.shape;
    expect(shape('model.embed_tokens.weight')).toEqual([32000, 4096]);
    expect(shape('lm_head.weight')).toEqual([32000, 4096]);
    expect(shape('model.layers.31.self_attn.k_proj.multiway.1.weight')).toEqual([4096, 4096]);
    expect(shape('model.layers.0.mlp.gate_proj.weight')).toEqual([11008, 4096]);
    expect(shape('model.layers.0.self_attn.rotary_emb.inv_freq')).toEqual([64]);
    expect(shape('model.vision_model.embeddings.patch_embed.weight')).toEqual([1024, 3, 14, 14]);
    expect(shape('model.vision_model.embeddings.position_embedding')).toEqual([1, 1025, 1024]);
    expect(shape('model.vision_model.encoder.layers.23.self_attn.query_key_value.weight')).toEqual([3072, 1024]);
    expect(shape('model.visual_abstractor.encoder.layers.5.crossattention.output.mlp.w1.weight')).toEqual([2816, 1024]);
    expect(shape('model.visual_abstractor.encoder.layers.0.crossattention.attention.k_pos_embed')).toEqual([1025, 1024]);
    expect(shape('model.visual_abstractor.visual_fc.weight')).toEqual([4096, 1024]);
    expect(r.totalBytes).toBe(2 * 8_204_552_192);
    expect(synthWeightBytes('7b')).toBe(r.totalBytes);
    expect(r.files).toEqual(['pytorch_model.bin.index.json', 'pytorch_model-00001-of-00002.bin', 'pytorch_model-00002-of-00002.bin']);
    expect(r.shards.every((s) => s.bytes <= 10e9)).toBe(true);
    expect(r.tensors.get('model.embed_tokens.weight')!.file).toBe('pytorch_model-00001-of-00002.bin');
    expect(r.tensors.get('lm_head.weight')!.file).toBe('pytorch_model-00002-of-00002.bin');
    // A small tensor of the full-size model, generated on demand.
    const norm = await r.readFloat32('model.layers.7.input_layernorm.multiway.1.weight');
    expect(norm).toHaveLength(4096);
    expect(norm.every(Number.isFinite)).toBe(true);
    expect(OWL2_7B_SIZES.hiddenSize).toBe(4096);
  });

  it('shards like save_pretrained: a tensor that would tip a shard over starts the next one', () => {
    const t = (name: string, bytes: number) => ({ name, bytes });
    expect(hfShardSplit([t('a', 4), t('b', 4), t('c', 4), t('d', 9), t('e', 1)], 10).map((s) => s.tensors)).toEqual([['a', 'b'], ['c'], ['d', 'e']]);
    expect(hfShardSplit([t('big', 50), t('x', 1)], 10).map((s) => s.tensors)).toEqual([['big'], ['x']]);
  });

  it('checks presets and options', () => {
    expect(checkSynthPreset('7b')).toBe('7b');
    expect(() => checkSynthPreset('13b')).toThrow(/unknown preset "13b": expected one of tiny, 7b/);
    expect(() => new SyntheticCheckpointReader(tinyConfig(), { seed: 1.5 })).toThrow(OwleryError);
    expect(() => new SyntheticCheckpointReader(tinyConfig(), { dtype: 'I8' as never })).toThrow(/unsupported dtype/);
  });
});

describe('writeSyntheticCheckpoint', () => {
  it('writes .bin and safetensors byte-identical to the in-memory writers (tiny factory)', async () => {
    for (const [fmt, factoryFormat] of [['bin', 'pytorch'], ['safetensors', 'safetensors']] as const) {
      const a = join(work, `w-factory-${fmt}`);
      const b = join(work, `w-synth-${fmt}`);
      await writeTinyCheckpoint(a, { seed: 6, dtype: 'F16', format: factoryFormat });
      const res = await writeSyntheticCheckpoint(b, 'tiny', fmt, { seed: 6, dtype: 'F16', maxShardBytes: Infinity, tokenizer });
      const names = (await readdir(a)).sort();
      expect(res.files).toEqual(names);
      expect((await readdir(b)).sort()).toEqual(names);
      for (const n of names) expect((await readFile(join(a, n))).equals(await readFile(join(b, n))), `${fmt}: ${n}`).toBe(true);
    }
  });

  it('shards with an index that the checkpoint readers open, holding the virtual reader\'s bytes', async () => {
    for (const fmt of ['bin', 'safetensors'] as const) {
      const dir = join(work, `w-sharded-${fmt}`);
      const progress: number[] = [];
      const res = await writeSyntheticCheckpoint(dir, 'tiny', fmt, { seed: 8, maxShardBytes: 3_000_000, onProgress: (p) => progress.push(p.bytesDone), tokenizer });
      expect(progress.at(-1)).toBe(res.weightBytes);
      const virtual = new SyntheticCheckpointReader(res.config, { seed: 8, format: fmt === 'bin' ? 'pytorch' : 'safetensors', maxShardBytes: 3_000_000 });
      expect(virtual.shards.length).toBeGreaterThan(2);
      const disk = await openCheckpoint(dir);
      try {
        expect(disk.format).toBe(fmt === 'bin' ? 'pytorch' : 'safetensors');
        expect(disk.files).toEqual([virtual.files[0], ...[...virtual.files.slice(1)].sort()]);
        expect(disk.tensors.size).toBe(virtual.tensors.size);
        for (const [name, info] of virtual.tensors) {
          expect(disk.tensors.get(name)!.file).toBe(info.file);
          expect(Buffer.from(await disk.readRaw(name)).equals(Buffer.from(await virtual.readRaw(name))), name).toBe(true);
        }
      } finally {
        await disk.close();
      }
      const { config } = await readConfig(dir);
      expect(config).toEqual(res.config);
    }
  });

  it('refuses a non-empty folder and cleans up after cancellation', async () => {
    const dir = join(work, 'w-busy');
    await writeSyntheticCheckpoint(dir, 'tiny', 'bin', { seed: 1, tokenizer });
    await expect(writeSyntheticCheckpoint(dir, 'tiny', 'bin', { tokenizer })).rejects.toThrow(/not empty/);
    const dir2 = join(work, 'w-cancel');
    const ac = new AbortController();
    await expect(writeSyntheticCheckpoint(dir2, 'tiny', 'bin', {
      signal: ac.signal, maxShardBytes: 3_000_000, onProgress: () => ac.abort(), tokenizer,
    })).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await readdir(dir2)).toEqual([]);
  });
});
