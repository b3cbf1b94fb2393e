/**
 * The mPLUG-Owl2 model configuration, read from a checkpoint's `config.json`.
 *
 * Every size used by the converter, the graph builders, the tiny-model factory and the engine comes
 * from here; nothing assumes the 7B numbers. Checkpoints of other models (mPLUG-Owl v1, the
 * Qwen-based mPLUG-Owl2.1, plain LLaMA) are refused with a message that says so.
 */
import { OwleryError } from '../../src-shared/errors.ts';

/** LLaMA-2 decoder with the Modality-Adaptive Module. */
export interface LlmConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  attentionBias: boolean;
  tieWordEmbeddings: boolean;
  bosTokenId: number;
  eosTokenId: number;
}

/** ViT vision encoder. */
export interface VisionConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  imageSize: number;
  patchSize: number;
  layerNormEps: number;
  /** Number of tokens the encoder emits: (imageSize / patchSize)² patches + 1 cls token. */
  numTokens: number;
}

/** Visual abstractor (learnable queries cross-attending to the image tokens). */
export interface AbstractorConfig {
  hiddenSize: number;
  encoderHiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  numQueries: number;
  gridSize: number;
  /** `ffn_ln` eps; norm1/normk/norm2 use PyTorch's default 1e-5 (see docs/mplug-owl2.md). */
  layerNormEps: number;
}

export interface Owl2Config {
  llm: LlmConfig;
  vision: VisionConfig;
  abstractor: AbstractorConfig;
  /** Image tokens per image in the LLM sequence: queries + vit_eos. */
  imageTokens: number;
  /** `image_aspect_ratio` as written by training ("pad"), if present; informational. */
  imageAspectRatio?: string;
}

/** PyTorch's default LayerNorm eps, used by the abstractor's norm1/normk/norm2. */
export const TORCH_LAYERNORM_EPS = 1e-5;

type Json = Record<string, unknown>;

function num(obj: Json, key: string, where: string, fallback?: number): number {
  const v = obj[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
  }
  throw new OwleryError('CHECKPOINT_INVALID', `config.json: ${where}${key} is missing or not a number`);
}

function int(obj: Json, key: string, where: string, fallback?: number): number {
  const v = num(obj, key, where, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new OwleryError('CHECKPOINT_INVALID', `config.json: ${where}${key} must be a positive integer, got ${v}`);
  }
  return v;
}

/** Says which unsupported model a config belongs to, or `undefined` when it looks like mPLUG-Owl2 (LLaMA). */
export function unsupportedModelReason(raw: Json): string | undefined {
  const modelType = String(raw.model_type ?? '');
  const arch = Array.isArray(raw.architectures) ? raw.architectures.map(String) : [];
  if (arch.some((a) => /qwen/i.test(a)) || /qwen|owl2_1|owl2\.1/i.test(modelType)) {
    return 'this looks like mPLUG-Owl2.1 (Qwen-based); it is not supported yet, only mPLUG-Owl2 (LLaMA-2) is';
  }
  if (modelType === 'mplug-owl' || arch.some((a) => a === 'MplugOwlForConditionalGeneration')) {
    return 'this looks like mPLUG-Owl (version 1); it is not supported yet, only mPLUG-Owl2 (LLaMA-2) is';
  }
  if (modelType !== 'mplug_owl2') {
    return `config.json model_type is "${modelType || '(none)'}", not "mplug_owl2": not an mPLUG-Owl2 checkpoint`;
  }
  return undefined;
}

/** Parses and validates a `config.json` object (sizes bounded: {@link CONFIG_BOUNDS}). */
export function parseOwl2Config(raw: unknown): Owl2Config {
  if (!raw || typeof raw !== 'object') throw new OwleryError('CHECKPOINT_INVALID', 'config.json is not a JSON object');
  const c = raw as Json;
  const reason = unsupportedModelReason(c);
  if (reason) throw new OwleryError('CHECKPOINT_UNSUPPORTED', reason);
  const vc = c.visual_config as Json | undefined;
  const vm = vc?.visual_model as Json | undefined;
  const va = vc?.visual_abstractor as Json | undefined;
  if (!vm || !va) {
    throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_config.visual_model and visual_config.visual_abstractor are required');
  }
  const hiddenSize = int(c, 'hidden_size', '');
  const numHeads = int(c, 'num_attention_heads', '');
  if (hiddenSize % numHeads !== 0) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: hidden_size is not a multiple of num_attention_heads');
  const numKvHeads = int(c, 'num_key_value_heads', '', numHeads);
  if (numHeads % numKvHeads !== 0) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: num_attention_heads is not a multiple of num_key_value_heads');
  if (c.rope_scaling) throw new OwleryError('CHECKPOINT_UNSUPPORTED', 'config.json: rope_scaling is not supported yet');
  const llm: LlmConfig = {
    hiddenSize,
    numLayers: int(c, 'num_hidden_layers', ''),
    numHeads,
    numKvHeads,
    headDim: hiddenSize / numHeads,
    intermediateSize: int(c, 'intermediate_size', ''),
    vocabSize: int(c, 'vocab_size', ''),
    rmsNormEps: num(c, 'rms_norm_eps', '', 1e-6),
    ropeTheta: num(c, 'rope_theta', '', 10000),
    maxPositions: int(c, 'max_position_embeddings', '', 2048),
    attentionBias: c.attention_bias === true,
    tieWordEmbeddings: c.tie_word_embeddings === true,
    bosTokenId: num(c, 'bos_token_id', '', 1),
    eosTokenId: num(c, 'eos_token_id', '', 2),
  };
  const imageSize = int(vm, 'image_size', 'visual_model.');
  const patchSize = int(vm, 'patch_size', 'visual_model.');
  if (imageSize % patchSize !== 0) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_model.image_size is not a multiple of patch_size');
  const vision: VisionConfig = {
    hiddenSize: int(vm, 'hidden_size', 'visual_model.'),
    numLayers: int(vm, 'num_hidden_layers', 'visual_model.'),
    numHeads: int(vm, 'num_attention_heads', 'visual_model.'),
    intermediateSize: int(vm, 'intermediate_size', 'visual_model.'),
    imageSize,
    patchSize,
    layerNormEps: num(vm, 'layer_norm_eps', 'visual_model.', 1e-6),
    numTokens: (imageSize / patchSize) ** 2 + 1,
  };
  if (vm.hidden_act !== undefined && vm.hidden_act !== 'quick_gelu') {
    throw new OwleryError('CHECKPOINT_UNSUPPORTED', `config.json: visual_model.hidden_act "${String(vm.hidden_act)}" is not supported (quick_gelu only)`);
  }
  const abstractor: AbstractorConfig = {
    hiddenSize: int(va, 'hidden_size', 'visual_abstractor.'),
    encoderHiddenSize: int(va, 'encoder_hidden_size', 'visual_abstractor.', vision.hiddenSize),
    numLayers: int(va, 'num_hidden_layers', 'visual_abstractor.'),
    numHeads: int(va, 'num_attention_heads', 'visual_abstractor.'),
    intermediateSize: int(va, 'intermediate_size', 'visual_abstractor.'),
    numQueries: int(va, 'num_learnable_queries', 'visual_abstractor.'),
    gridSize: int(va, 'grid_size', 'visual_abstractor.'),
    layerNormEps: num(va, 'layer_norm_eps', 'visual_abstractor.', 1e-6),
  };
  if (abstractor.gridSize ** 2 + 1 !== vision.numTokens) {
    throw new OwleryError('CHECKPOINT_INVALID',
      `config.json: visual_abstractor.grid_size ${abstractor.gridSize} does not match the vision encoder's ${vision.numTokens - 1} patches`);
  }
  const config: Owl2Config = {
    llm,
    vision,
    abstractor,
    imageTokens: abstractor.numQueries + 1,
    imageAspectRatio: typeof c.image_aspect_ratio === 'string' ? c.image_aspect_ratio : undefined,
  };
  checkConfigLimits(config); // sizes within what real checkpoints use (CONFIG_BOUNDS below)
  return config;
}

// ---------------------------------------------------------------------------------------------
/*
 * Upper bounds for the sizes in an mPLUG-Owl2 `config.json`, and a check of the model size the
 * config implies against the weights actually present: a config.json from outside is refused
 * before any work (building tensor lists, reading weights) instead of after minutes and gigabytes.
 *
 * The bounds are what real LLaMA and ViT checkpoints use, with headroom: LLaMA-3.1-405B has 126
 * layers, hidden 16,384, MLP 53,248, vocab 128,256 and 131,072 positions; the largest ViTs have 48
 * layers and hidden 1,664 at 224–1,024 px.
 */

/** One bounded field: where it is in config.json, its upper bound, and its parsed value. */
interface Bound {
  field: string;
  max: number;
  value: (c: Owl2Config) => number;
}

const LAYERS = 256;
const HIDDEN = 65_536;
const MLP = 262_144;
const HEADS = 1_024;

/** Every size field of config.json with its upper bound, in the order they are checked. */
export const CONFIG_BOUNDS: readonly Bound[] = [
  { field: 'hidden_size', max: HIDDEN, value: (c) => c.llm.hiddenSize },
  { field: 'num_hidden_layers', max: LAYERS, value: (c) => c.llm.numLayers },
  { field: 'num_attention_heads', max: HEADS, value: (c) => c.llm.numHeads },
  { field: 'num_key_value_heads', max: HEADS, value: (c) => c.llm.numKvHeads },
  { field: 'intermediate_size', max: MLP, value: (c) => c.llm.intermediateSize },
  { field: 'vocab_size', max: 1_000_000, value: (c) => c.llm.vocabSize },
  { field: 'max_position_embeddings', max: 1_048_576, value: (c) => c.llm.maxPositions },
  { field: 'visual_model.hidden_size', max: HIDDEN, value: (c) => c.vision.hiddenSize },
  { field: 'visual_model.num_hidden_layers', max: LAYERS, value: (c) => c.vision.numLayers },
  { field: 'visual_model.num_attention_heads', max: HEADS, value: (c) => c.vision.numHeads },
  { field: 'visual_model.intermediate_size', max: MLP, value: (c) => c.vision.intermediateSize },
  { field: 'visual_model.image_size', max: 4_096, value: (c) => c.vision.imageSize },
  { field: 'visual_model.patch_size', max: 4_096, value: (c) => c.vision.patchSize },
  { field: 'visual_abstractor.hidden_size', max: HIDDEN, value: (c) => c.abstractor.hiddenSize },
  { field: 'visual_abstractor.encoder_hidden_size', max: HIDDEN, value: (c) => c.abstractor.encoderHiddenSize },
  { field: 'visual_abstractor.num_hidden_layers', max: LAYERS, value: (c) => c.abstractor.numLayers },
  { field: 'visual_abstractor.num_attention_heads', max: HEADS, value: (c) => c.abstractor.numHeads },
  { field: 'visual_abstractor.intermediate_size', max: MLP, value: (c) => c.abstractor.intermediateSize },
  { field: 'visual_abstractor.num_learnable_queries', max: 4_096, value: (c) => c.abstractor.numQueries },
];

/** Refuses a parsed config with a size beyond {@link CONFIG_BOUNDS} (`CHECKPOINT_INVALID` naming config.json and the field). */
export function checkConfigLimits(c: Owl2Config): void {
  for (const b of CONFIG_BOUNDS) {
    const v = b.value(c);
    if (v > b.max) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `config.json: ${b.field} is ${v}, more than any real checkpoint uses (at most ${b.max.toLocaleString('en')} is accepted)`, { field: b.field, value: v });
    }
  }
  const vitHeads = c.vision.hiddenSize % c.vision.numHeads === 0;
  const absHeads = c.abstractor.hiddenSize % c.abstractor.numHeads === 0;
  if (!vitHeads) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_model.hidden_size is not a multiple of visual_model.num_attention_heads', { field: 'visual_model.num_attention_heads' });
  if (!absHeads) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_abstractor.hidden_size is not a multiple of visual_abstractor.num_attention_heads', { field: 'visual_abstractor.num_attention_heads' });
}

function millions(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} billion` : `${(n / 1e6).toFixed(2)} million`;
}

/**
 * Refuses a config whose model is more than twice as large, or less than half as large, as the
 * weights present (`required`: the tensors it needs, with their shapes; `present`: element count
 * of each tensor the checkpoint holds). Close calls are left to the per-tensor check, whose
 * messages name the tensor. `file` names config.json in the message.
 */
export function checkImpliedModelSize(c: Owl2Config, required: ReadonlyMap<string, readonly number[]>, present: ReadonlyMap<string, number>, file = 'config.json'): void {
  let implied = 0;
  let held = 0;
  for (const [name, shape] of required) {
    implied += shape.reduce((a, b) => a * b, 1);
    held += present.get(name) ?? 0;
  }
  if (implied <= 2 * held && held <= 2 * implied) return;
  const l = c.llm;
  throw new OwleryError('CHECKPOINT_INVALID',
    `${file} describes a model of ${millions(implied)} parameters (num_hidden_layers ${l.numLayers}, hidden_size ${l.hiddenSize}, ` +
    `intermediate_size ${l.intermediateSize}, vocab_size ${l.vocabSize}; visual_model.num_hidden_layers ${c.vision.numLayers}, ` +
    `visual_model.hidden_size ${c.vision.hiddenSize}), but the weights it should describe hold ${millions(held)}: ` +
    'this config.json does not belong to these weights', { path: file, implied, held });
}
