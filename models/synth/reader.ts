/**
 * A virtual `CheckpointReader` over seeded random weights: the exact tensor list, names, shapes and
 * file layout of an mPLUG-Owl2 checkpoint for a config, with each tensor generated on demand when it
 * is read. Nothing is held in memory but the tensor list (and the small computed buffers), so a
 * full-size (7B) model can be converted or written to disk tensor by tensor.
 *
 * Values are the tiny-model factory's (`models/tiny/factory.ts`): for the same config and seed,
 * `readRaw` returns the bytes `writeTinyCheckpoint` would write. Every tensor has its own PRNG
 * stream (seed + tensor name), so reads are deterministic in any order.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { DTYPE_SIZE, float32ToRaw, numel, rawToFloat32 } from '../checkpoint/dtype.ts';
import { CHECKPOINT_FILES } from '../checkpoint/index.ts';
import type { CheckpointReader, TensorInfo } from '../checkpoint/types.ts';
import { shardFileName } from '../checkpoint/write-common.ts';
import type { Owl2Config } from '../owl2/config.ts';
import { mulberry32, owl2TensorSpecs } from '../tiny/factory.ts';
import type { SynthDType } from './presets.ts';

/** One tensor's recipe, as the tiny factory describes it. */
export type SynthTensorSpec = ReturnType<typeof owl2TensorSpecs>[number];

/** Hugging Face's default `max_shard_size` in transformers 4.31 ("10GB" = 10·10⁹ bytes). */
export const HF_MAX_SHARD_BYTES = 10_000_000_000;

/** Options of `SyntheticCheckpointReader`. */
export interface SyntheticReaderOptions {
  /** PRNG seed, any 32-bit integer (default 0). */
  seed?: number;
  /** Weight dtype (default `F16`, like the released checkpoint). */
  dtype?: SynthDType;
  /** Which file layout the tensors are said to live in (default `pytorch`: `.bin` shards). */
  format?: 'safetensors' | 'pytorch';
  /**
   * Largest shard in bytes, split as `save_pretrained` does (a tensor that would tip a shard over
   * starts the next one). Default `HF_MAX_SHARD_BYTES`; `Infinity` gives a single file.
   */
  maxShardBytes?: number;
}

/** One weight file of the layout and the tensors it holds, in state-dict order. */
export interface SynthShard {
  file: string;
  tensors: string[];
  bytes: number;
}

const SQRT3 = Math.sqrt(3);

/** FNV-1a of a string mixed with a seed: the tiny factory's per-tensor PRNG stream. */
function streamSeed(seed: number, name: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** The float32 values of one tensor for a seed (the tiny factory's Irwin–Hall normals). */
export function synthTensorValues(spec: SynthTensorSpec, seed: number): Float32Array {
  if (spec.init.kind === 'values') return Float32Array.from(spec.init.values);
  const n = numel(spec.shape);
  const { mean, std } = spec.init;
  const rand = mulberry32(streamSeed(seed, spec.name));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const z = (rand() + rand() + rand() + rand() - 2) * SQRT3;
    out[i] = mean + std * z;
  }
  return out;
}

/**
 * Splits tensors (state-dict order) into shards the way transformers 4.31 `shard_checkpoint` does:
 * a tensor that would take the current shard past `maxBytes` starts a new one.
 */
export function hfShardSplit(tensors: readonly { name: string; bytes: number }[], maxBytes: number): { tensors: string[]; bytes: number }[] {
  const shards: { tensors: string[]; bytes: number }[] = [{ tensors: [], bytes: 0 }];
  for (const t of tensors) {
    let cur = shards[shards.length - 1];
    if (cur.tensors.length > 0 && cur.bytes + t.bytes > maxBytes) {
      cur = { tensors: [], bytes: 0 };
      shards.push(cur);
    }
    cur.tensors.push(t.name);
    cur.bytes += t.bytes;
  }
  return shards;
}

/** A `CheckpointReader` whose tensors are generated when read. */
export class SyntheticCheckpointReader implements CheckpointReader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly format: 'safetensors' | 'pytorch';
  /** Weight files of the layout: the shard index first when sharded, then the shards. */
  readonly files: readonly string[];
  /** Weight files with their tensors (state-dict order inside each). */
  readonly shards: readonly SynthShard[];
  /** The shard index file name, when the layout is sharded. */
  readonly indexFile: string | undefined;
  readonly seed: number;
  readonly dtype: SynthDType;
  /** Sum of all tensors' bytes. */
  readonly totalBytes: number;
  private readonly specs: ReadonlyMap<string, SynthTensorSpec>;
  private closed = false;

  /** Lays out the checkpoint of `config` (tensor list, shapes, shards). Generates nothing yet. */
  constructor(readonly config: Owl2Config, options: SyntheticReaderOptions = {}) {
    const seed = options.seed ?? 0;
    if (!Number.isInteger(seed)) throw new OwleryError('INVALID_ARGUMENT', `seed must be an integer, got ${seed}`);
    const dtype = options.dtype ?? 'F16';
    if (dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new OwleryError('INVALID_ARGUMENT', `unsupported dtype ${String(dtype)}: expected F32, F16 or BF16`);
    const format = options.format ?? 'pytorch';
    if (format !== 'safetensors' && format !== 'pytorch') throw new OwleryError('INVALID_ARGUMENT', `unsupported format ${String(format)}`);
    const maxShardBytes = options.maxShardBytes ?? HF_MAX_SHARD_BYTES;
    if (!(maxShardBytes > 0)) throw new OwleryError('INVALID_ARGUMENT', `maxShardBytes must be positive, got ${maxShardBytes}`);
    this.seed = seed;
    this.dtype = dtype;
    this.format = format;

    const specs = owl2TensorSpecs(config, { attentionBias: config.llm.attentionBias });
    const item = DTYPE_SIZE[dtype];
    const sized = specs.map((s) => ({ name: s.name, bytes: numel(s.shape) * item }));
    const split = hfShardSplit(sized, maxShardBytes);
    const names = CHECKPOINT_FILES[format];
    const [stem, ext] = format === 'pytorch' ? ['pytorch_model', 'bin'] : ['model', 'safetensors'];
    const shards: SynthShard[] = split.map((s, i) => ({
      file: split.length === 1 ? names.single : shardFileName(stem, ext, i, split.length),
      tensors: s.tensors,
      bytes: s.bytes,
    }));
    const fileOf = new Map<string, string>();
    for (const s of shards) for (const t of s.tensors) fileOf.set(t, s.file);
    const infos = new Map<string, TensorInfo>();
    for (const s of specs) {
      infos.set(s.name, { name: s.name, dtype, shape: [...s.shape], file: fileOf.get(s.name)!, byteLength: numel(s.shape) * item });
    }
    this.tensors = infos;
    this.specs = new Map(specs.map((s) => [s.name, s]));
    this.shards = shards;
    this.indexFile = shards.length > 1 ? names.index : undefined;
    this.files = [...(this.indexFile ? [this.indexFile] : []), ...shards.map((s) => s.file)];
    this.totalBytes = sized.reduce((a, t) => a + t.bytes, 0);
  }

  /** Every tensor's recipe in state-dict order. */
  get tensorSpecs(): SynthTensorSpec[] {
    return [...this.specs.values()];
  }

  private spec(name: string): SynthTensorSpec {
    if (this.closed) throw new OwleryError('INVALID_ARGUMENT', 'the synthetic checkpoint reader is closed');
    const s = this.specs.get(name);
    if (!s) throw new OwleryError('CHECKPOINT_INVALID', `the checkpoint has no tensor "${name}"`, { tensor: name });
    return s;
  }

  /** The tensor's bytes in the reader's dtype (little endian), generated now. */
  async readRaw(name: string): Promise<Uint8Array> {
    return float32ToRaw(synthTensorValues(this.spec(name), this.seed), this.dtype);
  }

  /** The tensor as float32: exactly the stored (dtype-rounded) values. */
  async readFloat32(name: string): Promise<Float32Array> {
    const values = synthTensorValues(this.spec(name), this.seed);
    if (this.dtype === 'F32') return values;
    return rawToFloat32(float32ToRaw(values, this.dtype), this.dtype);
  }

  /** Marks the reader closed (there are no files to release). */
  async close(): Promise<void> {
    this.closed = true;
  }
}
