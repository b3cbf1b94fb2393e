/**
 * Model presets for synthetic checkpoints: the sizes of real mPLUG-Owl2 releases (and a tiny one
 * for tests), with `config.json` written in the official Hugging Face layout.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { parseOwl2Config } from '../owl2/config.ts';
import type { Owl2Config } from '../owl2/config.ts';
import { tinyConfigJson } from '../tiny/factory.ts';
import { DEFAULT_TINY_SIZES, owl2ConfigJson, torchDtypeName } from '../tiny/files.ts';
import type { TinySizes } from '../tiny/files.ts';
import { pyJson } from '../tiny/pyjson.ts';

/** Weight dtypes a synthetic checkpoint can hold. */
export type SynthDType = 'F32' | 'F16' | 'BF16';

/** Names of the presets. */
export type SynthPreset = 'tiny' | '7b';

/** Every preset name, for argument checking and help text. */
export const SYNTH_PRESETS: readonly SynthPreset[] = ['tiny', '7b'];

/**
 * `MAGAer13/mplug-owl2-llama2-7b`: LLaMA-2-7B (hidden 4096, 32 layers, 32 heads, MLP 11008, vocab
 * 32000, RMSNorm eps 1e-5, 4096 positions), ViT-L/14 at 448² (hidden 1024, 24 layers, 16 heads,
 * MLP 4096), visual abstractor (hidden 1024, 6 layers, 16 heads, intermediate 2816, 64 queries,
 * grid 32).
 */
export const OWL2_7B_SIZES: Readonly<TinySizes> = {
  hiddenSize: 4096,
  numLayers: 32,
  numHeads: 32,
  numKvHeads: 32,
  intermediateSize: 11008,
  vocabSize: 32000,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  maxPositions: 4096,
  visionHiddenSize: 1024,
  visionLayers: 24,
  visionHeads: 16,
  visionIntermediateSize: 4096,
  imageSize: 448,
  patchSize: 14,
  abstractorHiddenSize: 1024,
  abstractorLayers: 6,
  abstractorHeads: 16,
  abstractorIntermediateSize: 2816,
  numQueries: 64,
};

/** A preset's `config.json`: raw object (floats marked for `pyJson`), its text, and the parsed config. */
export interface SynthConfig {
  /** The object as written (floats are `PyFloat`s: serialise with `pyJson`, not `JSON.stringify`). */
  raw: Record<string, unknown>;
  /** `config.json` text, exactly as `save_pretrained` writes it. */
  text: string;
  /** `text` parsed as JSON (plain numbers). */
  json: Record<string, unknown>;
  config: Owl2Config;
}

/** Checks a preset name given by a user; throws `INVALID_ARGUMENT` naming the presets. */
export function checkSynthPreset(name: string): SynthPreset {
  if (!(SYNTH_PRESETS as readonly string[]).includes(name)) {
    throw new OwleryError('INVALID_ARGUMENT', `unknown preset "${name}": expected one of ${SYNTH_PRESETS.join(', ')}`);
  }
  return name as SynthPreset;
}

/**
 * The full `config.json` of a preset. `tiny` is the tiny-model factory's default config (same
 * sizes as `DEFAULT_TINY_SIZES`); `7b` is the official layout with the 7B sizes (the vision
 * config's unused `projection_dim` keeps the official default 768). `torch_dtype` follows `dtype`.
 */
export function synthConfigJson(preset: SynthPreset, dtype: SynthDType = 'F16'): SynthConfig {
  let raw: Record<string, unknown>;
  if (preset === 'tiny') {
    raw = tinyConfigJson({ dtype }).raw;
  } else if (preset === '7b') {
    raw = owl2ConfigJson({ ...OWL2_7B_SIZES }, torchDtypeName(dtype));
    const vc = raw.visual_config as { visual_model: Record<string, unknown> };
    vc.visual_model.projection_dim = 768;
  } else {
    throw new OwleryError('INVALID_ARGUMENT', `unknown preset "${String(preset)}": expected one of ${SYNTH_PRESETS.join(', ')}`);
  }
  const text = pyJson(raw);
  const json = JSON.parse(text) as Record<string, unknown>;
  return { raw, text, json, config: parseOwl2Config(json) };
}

/** The sizes behind a preset. */
export function synthPresetSizes(preset: SynthPreset): Readonly<TinySizes> {
  return preset === '7b' ? OWL2_7B_SIZES : DEFAULT_TINY_SIZES;
}
