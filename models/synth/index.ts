/**
 * Synthetic mPLUG-Owl2 checkpoints and packages for benchmarks and tests: the real tensor layout of
 * a preset (`7b` = MAGAer13/mplug-owl2-llama2-7b, `tiny` for tests) with seeded random weights,
 * generated tensor by tensor, never held whole in memory.
 *
 * - `SyntheticCheckpointReader`: a virtual `CheckpointReader` (nothing on disk).
 * - `synthesizePackage`: preset → model package, straight from the virtual reader (no checkpoint
 *   on disk), through `convertFromReader`.
 * - `writeSyntheticCheckpoint`: preset → checkpoint folder on disk (`.bin` or safetensors), streaming.
 */
import { createHash } from 'node:crypto';
import { convertFromReader } from '../convert.ts';
import type { ConvertFromReaderOptions } from '../convert.ts';
import type { FileEntry, PackageManifest } from '../package/manifest.ts';
import { synthConfigJson } from './presets.ts';
import type { SynthDType, SynthPreset } from './presets.ts';
import { SyntheticCheckpointReader } from './reader.ts';
import { synthSideFiles } from './write.ts';

export { OWL2_7B_SIZES, SYNTH_PRESETS, checkSynthPreset, synthConfigJson, synthPresetSizes } from './presets.ts';
export type { SynthConfig, SynthDType, SynthPreset } from './presets.ts';
export { HF_MAX_SHARD_BYTES, SyntheticCheckpointReader, hfShardSplit, synthTensorValues } from './reader.ts';
export type { SynthShard, SynthTensorSpec, SyntheticReaderOptions } from './reader.ts';
export { synthSideFiles, synthWeightBytes, writeSyntheticCheckpoint } from './write.ts';
export type { SynthWriteProgress, SynthWriteResult, WriteSyntheticOptions } from './write.ts';

/** Version of the weight generator, recorded in the provenance of synthetic packages. */
export const SYNTH_GENERATOR_VERSION = 1;

/** File name of the provenance entry of a synthetic package (`manifest.source.files`). */
export const SYNTH_SOURCE_NAME = 'synthetic-checkpoint.json';

/** Options of `synthesizePackage`: the weights and tokenizer, plus everything `convertFromReader` takes. */
export interface SynthPackageOptions extends Omit<ConvertFromReaderOptions, 'sourceFiles'> {
  /** The bytes of the LLaMA `tokenizer.model` the package gets (`readTokenizerModelFile`). */
  tokenizer: Uint8Array;
  /** PRNG seed (default 0). */
  seed?: number;
  /** Dtype the weights are rounded to, as a checkpoint would store them (default `F16`). */
  dtype?: SynthDType;
}

/**
 * The provenance of a synthetic checkpoint: `config.json` and a descriptor of the generator
 * (preset, seed, dtype, generator version, the tokenizer's sha256) with their sizes and sha256, so
 * equal options give the same package id.
 */
export function synthSourceFiles(preset: SynthPreset, seed: number, dtype: SynthDType, configText: string, tokenizer: Uint8Array): FileEntry[] {
  const enc = new TextEncoder();
  const config = enc.encode(configText);
  const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  const descriptor = enc.encode(`${JSON.stringify({
    generator: 'owlery synth', generatorVersion: SYNTH_GENERATOR_VERSION, preset, seed, dtype, configSha256: sha(config), tokenizerSha256: sha(tokenizer),
  })}\n`);
  return [
    { path: 'config.json', size: config.byteLength, sha256: sha(config) },
    { path: SYNTH_SOURCE_NAME, size: descriptor.byteLength, sha256: sha(descriptor) },
  ];
}

/**
 * Writes a model package with `preset`'s real shapes and seeded random weights into `packageDir`
 * (absent or empty), converting straight from a `SyntheticCheckpointReader`: no checkpoint is
 * written, and memory stays bounded by the largest tensor. The same options give the same graphs
 * as converting `writeSyntheticCheckpoint`'s (or, for `tiny`, the tiny factory's) checkpoint.
 */
export async function synthesizePackage(preset: SynthPreset, packageDir: string, opts: SynthPackageOptions): Promise<PackageManifest> {
  const { seed = 0, dtype = 'F16', tokenizer, ...convertOpts } = opts;
  const { text, json, config } = synthConfigJson(preset, dtype);
  const reader = new SyntheticCheckpointReader(config, { seed, dtype });
  try {
    return await convertFromReader(reader, config, json, { files: synthSideFiles(preset, dtype, tokenizer) }, packageDir, {
      defaultName: `synthetic-${preset}-seed${seed}`,
      ...convertOpts,
      sourceFiles: synthSourceFiles(preset, seed, dtype, text, tokenizer),
    });
  } finally {
    await reader.close();
  }
}
