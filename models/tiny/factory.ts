/**
 * Tiny mPLUG-Owl2 checkpoints for tests: the full Hugging Face layout of
 * `MAGAer13/mplug-owl2-llama2-7b` (official tensor names, config, tokenizer files) with small sizes
 * and seeded random weights.
 *
 * Weights are drawn from a seeded PRNG with one stream per tensor (seed + tensor name), using only
 * exactly rounded arithmetic, so the same options give byte-identical files on every machine.
 * Scales keep activations healthy: linears ~N(0, σ) with σ = 0.7/√fan_in clamped to [0.02, 0.1],
 * norms near 1 (the image branch `multiway.1` norms clearly different from `multiway.0`), small
 * biases; the abstractor's `q_pos_embed`/`k_pos_embed` and the rotary `inv_freq` buffers are computed
 * as the official code does.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32 } from '../../src-shared/random.ts';

export { mulberry32 };
import { OwleryError } from '../../src-shared/errors.ts';
import { float32ToRaw } from '../checkpoint/dtype.ts';
import { writePytorchCheckpoint } from '../checkpoint/write-pytorch.ts';
import { writeSafetensorsCheckpoint } from '../checkpoint/write-safetensors.ts';
import type { WritableTensor } from '../checkpoint/write-common.ts';
import { parseOwl2Config } from '../owl2/config.ts';
import type { Owl2Config } from '../owl2/config.ts';
import { abstractorPosEmbeds } from '../owl2/sincos.ts';
import {
  DEFAULT_TINY_SIZES, generationConfigJson, llamaTokenizerModel, owl2ConfigJson, preprocessorConfigJson,
  specialTokensMapJson, tokenizerConfigJson, torchDtypeName,
} from './files.ts';
import { deepMerge, pyJson } from './pyjson.ts';

/** Options of `writeTinyCheckpoint`. */
export interface TinyCheckpointOptions {
  /** PRNG seed (any 32-bit integer). */
  seed: number;
  /** Weight format (default `safetensors`). */
  format?: 'safetensors' | 'pytorch';
  /** Weight dtype (default `F32`). */
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Number of weight shards (default 1: a single file; more writes an index). */
  shards?: number;
  /**
   * Partial `config.json` overrides, deep-merged into the tiny config in its raw (official) form,
   * e.g. `{ num_hidden_layers: 3, visual_config: { visual_model: { image_size: 42 } } }`. When
   * `image_size`/`patch_size` change, the abstractor's `grid_size` follows unless given too.
   * `vocab_size` must stay 32000 (the real tokenizer).
   */
  config?: Record<string, unknown>;
}

/** What `writeTinyCheckpoint` wrote. */
export interface TinyCheckpointResult {
  dir: string;
  config: Owl2Config;
  /** Every file written, relative to `dir`. */
  files: string[];
  /** Tensor names, shapes and dtypes in state-dict order. */
  tensors: { name: string; shape: number[] }[];
}

/** FNV-1a of a string mixed with a seed: one independent PRNG stream per tensor. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

const SQRT3 = Math.sqrt(3);

/** Approximately normal samples (Irwin–Hall of 4 uniforms, scaled to unit variance): exact arithmetic only. */
function normals(n: number, mean: number, std: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z = (rand() + rand() + rand() + rand() - 2) * SQRT3;
    out[i] = mean + std * z;
  }
  return out;
}

/** How a tensor is initialised. */
type Init =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'values'; values: Float32Array };

interface TensorSpec {
  name: string;
  shape: number[];
  init: Init;
}

const linearStd = (fanIn: number): number => Math.min(0.1, Math.max(0.02, 0.7 / Math.sqrt(fanIn)));

/** RoPE `inv_freq` as transformers 4.31 computes it in float32: 1 / base^(arange(0, dim, 2) / dim). */
export function ropeInvFreq(headDim: number, base: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const e = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(Math.fround(base) ** e));
  }
  return out;
}

/**
 * Every tensor of an mPLUG-Owl2 state dict for a config, with official names and shapes, in the
 * order `state_dict()` lists them.
 */
export function owl2TensorSpecs(c: Owl2Config, options: { attentionBias?: boolean } = {}): TensorSpec[] {
  const specs: TensorSpec[] = [];
  const normal = (name: string, shape: number[], mean: number, std: number): void => {
    specs.push({ name, shape, init: { kind: 'normal', mean, std } });
  };
  const linear = (prefix: string, out: number, inp: number, bias: boolean): void => {
    normal(`${prefix}.weight`, [out, inp], 0, linearStd(inp));
    if (bias) normal(`${prefix}.bias`, [out], 0, 0.02);
  };
  const layerNorm = (prefix: string, dim: number): void => {
    normal(`${prefix}.weight`, [dim], 1, 0.1);
    normal(`${prefix}.bias`, [dim], 0, 0.05);
  };
  const { llm, vision: v, abstractor: a } = c;
  const H = llm.hiddenSize;
  const kvDim = llm.numKvHeads * llm.headDim;
  const bias = options.attentionBias === true;

  normal('model.embed_tokens.weight', [llm.vocabSize, H], 0, 0.5);
  for (let i = 0; i < llm.numLayers; i++) {
    const p = `model.layers.${i}`;
    linear(`${p}.self_attn.q_proj`, H, H, bias);
    for (const m of [0, 1]) linear(`${p}.self_attn.k_proj.multiway.${m}`, kvDim, H, bias);
    for (const m of [0, 1]) linear(`${p}.self_attn.v_proj.multiway.${m}`, kvDim, H, bias);
    linear(`${p}.self_attn.o_proj`, H, H, bias);
    specs.push({ name: `${p}.self_attn.rotary_emb.inv_freq`, shape: [llm.headDim / 2], init: { kind: 'values', values: ropeInvFreq(llm.headDim, llm.ropeTheta) } });
    linear(`${p}.mlp.gate_proj`, llm.intermediateSize, H, false);
    linear(`${p}.mlp.up_proj`, llm.intermediateSize, H, false);
    linear(`${p}.mlp.down_proj`, H, llm.intermediateSize, false);
    // Text branch (0) near 1; image branch (1) clearly different, as in trained MAM checkpoints.
    normal(`${p}.input_layernorm.multiway.0.weight`, [H], 1, 0.1);
    normal(`${p}.input_layernorm.multiway.1.weight`, [H], 0.7, 0.25);
    normal(`${p}.post_attention_layernorm.multiway.0.weight`, [H], 1, 0.1);
    normal(`${p}.post_attention_layernorm.multiway.1.weight`, [H], 0.7, 0.25);
  }
  normal('model.norm.weight', [H], 1, 0.1);

  const vm = 'model.vision_model';
  const Hv = v.hiddenSize;
  normal(`${vm}.embeddings.cls_token`, [1, 1, Hv], 0, 0.5);
  normal(`${vm}.embeddings.position_embedding`, [1, v.numTokens, Hv], 0, 0.5);
  normal(`${vm}.embeddings.patch_embed.weight`, [Hv, 3, v.patchSize, v.patchSize], 0, linearStd(3 * v.patchSize * v.patchSize));
  layerNorm(`${vm}.embeddings.pre_layernorm`, Hv);
  for (let i = 0; i < v.numLayers; i++) {
    const p = `${vm}.encoder.layers.${i}`;
    linear(`${p}.self_attn.query_key_value`, 3 * Hv, Hv, true);
    linear(`${p}.self_attn.dense`, Hv, Hv, true);
    layerNorm(`${p}.input_layernorm`, Hv);
    linear(`${p}.mlp.fc1`, v.intermediateSize, Hv, true);
    linear(`${p}.mlp.fc2`, Hv, v.intermediateSize, true);
    layerNorm(`${p}.post_attention_layernorm`, Hv);
  }
  layerNorm(`${vm}.post_layernorm`, Hv);

  const va = 'model.visual_abstractor';
  const Ha = a.hiddenSize;
  const Ea = a.encoderHiddenSize;
  const pos = abstractorPosEmbeds(a);
  normal(`${va}.query_embeds`, [1, a.numQueries, Ha], 0, 0.5);
  normal(`${va}.vit_eos`, [1, 1, H], 0, 0.5);
  for (let i = 0; i < a.numLayers; i++) {
    const p = `${va}.encoder.layers.${i}.crossattention`;
    specs.push({ name: `${p}.attention.q_pos_embed`, shape: pos.qShape, init: { kind: 'values', values: pos.q } });
    specs.push({ name: `${p}.attention.k_pos_embed`, shape: pos.kShape, init: { kind: 'values', values: pos.k } });
    linear(`${p}.attention.query`, Ha, Ha, true);
    linear(`${p}.attention.key`, Ha, Ea, true);
    linear(`${p}.attention.value`, Ha, Ea, true);
    linear(`${p}.output.out_proj`, Ha, Ha, true);
    layerNorm(`${p}.output.norm2`, Ha);
    linear(`${p}.output.mlp.w1`, a.intermediateSize, Ha, true);
    linear(`${p}.output.mlp.w2`, Ha, a.intermediateSize, true);
    linear(`${p}.output.mlp.w3`, a.intermediateSize, Ha, true);
    layerNorm(`${p}.output.mlp.ffn_ln`, a.intermediateSize);
    layerNorm(`${p}.norm1`, Ea);
    layerNorm(`${p}.normk`, Ea);
  }
  linear(`${va}.visual_fc`, H, Ha, true);

  if (!llm.tieWordEmbeddings) normal('lm_head.weight', [llm.vocabSize, H], 0, linearStd(H));
  return specs;
}

/** The float32 values of one tensor for a seed. */
function materialize(spec: TensorSpec, seed: number): Float32Array {
  if (spec.init.kind === 'values') return spec.init.values;
  const n = spec.shape.reduce((x, y) => x * y, 1);
  return normals(n, spec.init.mean, spec.init.std, mulberry32(streamSeed(seed, spec.name)));
}

/**
 * The raw `config.json` object for options (tiny defaults + overrides; floats marked as `PyFloat` for
 * serialisation with `pyJson`), and the config parsed from the text that will be written.
 */
export function tinyConfigJson(options: Pick<TinyCheckpointOptions, 'config' | 'dtype'>): { raw: Record<string, unknown>; config: Owl2Config } {
  let raw = owl2ConfigJson({ ...DEFAULT_TINY_SIZES }, torchDtypeName(options.dtype ?? 'F32'));
  const patch = options.config ?? {};
  raw = deepMerge(raw, patch);
  // Keep the abstractor grid consistent with the vision encoder unless the caller set it.
  const vc = raw.visual_config as { visual_model: Record<string, unknown>; visual_abstractor: Record<string, unknown> };
  const patchVa = ((patch.visual_config as Record<string, unknown> | undefined)?.visual_abstractor ?? {}) as Record<string, unknown>;
  if (patchVa.grid_size === undefined) vc.visual_abstractor.grid_size = Number(vc.visual_model.image_size) / Number(vc.visual_model.patch_size);
  if (patchVa.encoder_hidden_size === undefined) vc.visual_abstractor.encoder_hidden_size = vc.visual_model.hidden_size;
  const patchVm = ((patch.visual_config as Record<string, unknown> | undefined)?.visual_model ?? {}) as Record<string, unknown>;
  if (patchVm.projection_dim === undefined) vc.visual_model.projection_dim = vc.visual_model.hidden_size;
  if (raw.vocab_size !== 32000) {
    throw new OwleryError('INVALID_ARGUMENT', `tiny checkpoints use the real LLaMA tokenizer: vocab_size must be 32000, got ${String(raw.vocab_size)}`);
  }
  return { raw, config: parseOwl2Config(JSON.parse(pyJson(raw))) };
}

/**
 * Writes a complete tiny mPLUG-Owl2 checkpoint into `dir` (created if needed): weights in the chosen
 * format/dtype/sharding, `config.json`, `generation_config.json`, `preprocessor_config.json`,
 * `tokenizer.model`, `tokenizer_config.json`, `special_tokens_map.json`. Same options → byte-identical files.
 */
export async function writeTinyCheckpoint(dir: string, options: TinyCheckpointOptions): Promise<TinyCheckpointResult> {
  if (!Number.isInteger(options.seed)) throw new OwleryError('INVALID_ARGUMENT', `seed must be an integer, got ${options.seed}`);
  const dtype = options.dtype ?? 'F32';
  const format = options.format ?? 'safetensors';
  if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new OwleryError('INVALID_ARGUMENT', `unsupported dtype ${String(dtype)}`);
  if (format !== 'safetensors' && format !== 'pytorch') throw new OwleryError('INVALID_ARGUMENT', `unsupported format ${String(format)}`);
  const { raw, config } = tinyConfigJson(options);
  const specs = owl2TensorSpecs(config, { attentionBias: config.llm.attentionBias });
  const tensors: WritableTensor[] = specs.map((s) => ({
    name: s.name, dtype, shape: s.shape, data: float32ToRaw(materialize(s, options.seed), dtype),
  }));
  await mkdir(dir, { recursive: true });
  const weightFiles = format === 'safetensors'
    ? await writeSafetensorsCheckpoint(dir, tensors, { shards: options.shards, metadata: { format: 'pt' } })
    : await writePytorchCheckpoint(dir, tensors, { shards: options.shards });
  const side: [string, string | Uint8Array][] = [
    ['config.json', pyJson(raw)],
    ['generation_config.json', pyJson(generationConfigJson())],
    ['preprocessor_config.json', pyJson(preprocessorConfigJson(config.vision.imageSize))],
    ['special_tokens_map.json', pyJson(specialTokensMapJson())],
    ['tokenizer.model', await llamaTokenizerModel()],
    ['tokenizer_config.json', pyJson(tokenizerConfigJson())],
  ];
  for (const [name, data] of side) await writeFile(join(dir, name), data);
  return {
    dir,
    config,
    files: [...side.map(([n]) => n), ...weightFiles].sort(),
    tensors: specs.map((s) => ({ name: s.name, shape: s.shape })),
  };
}
