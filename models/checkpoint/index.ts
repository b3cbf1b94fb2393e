/**
 * Opening a Hugging Face checkpoint folder: picks the weight format present (`model.safetensors`,
 * sharded `model.safetensors.index.json`, `pytorch_model.bin`, sharded `pytorch_model.bin.index.json`)
 * and returns one `CheckpointReader` over all of its files; also reads `config.json`.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { parseOwl2Config } from '../owl2/config.ts';
import type { Owl2Config } from '../owl2/config.ts';
import { rawToFloat32 } from './dtype.ts';
import type { TensorFile } from './io.ts';
import { PytorchFile } from './pytorch.ts';
import { SafetensorsFile } from './safetensors.ts';
import type { CheckpointReader, TensorInfo } from './types.ts';

export type { CheckpointReader, TensorInfo, CheckpointDType } from './types.ts';

/** Weight file names of the Hugging Face layout, per format. */
export const CHECKPOINT_FILES = {
  safetensors: { single: 'model.safetensors', index: 'model.safetensors.index.json' },
  pytorch: { single: 'pytorch_model.bin', index: 'pytorch_model.bin.index.json' },
} as const;

/** Options of `openCheckpoint`. */
export interface OpenCheckpointOptions {
  /** Format to use when the folder holds both (default `safetensors`). */
  prefer?: 'safetensors' | 'pytorch';
  /** Stops reads that take long (inflating deflated `.bin` storages) with `CANCELLED`. */
  signal?: AbortSignal;
}

type Format = 'safetensors' | 'pytorch';

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

function openOne(format: Format, path: string, displayName: string, signal?: AbortSignal): Promise<TensorFile> {
  return format === 'safetensors' ? SafetensorsFile.open(path, displayName) : PytorchFile.open(path, displayName, signal);
}

/** A `CheckpointReader` over one or more tensor files. */
class MultiFileReader implements CheckpointReader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly files: readonly string[];

  constructor(
    readonly format: Format,
    files: string[],
    private readonly owners: Map<string, TensorFile>,
    infos: Map<string, TensorInfo>,
    private readonly open: TensorFile[],
    readonly signal?: AbortSignal,
  ) {
    this.files = files;
    this.tensors = infos;
  }

  private owner(name: string): TensorFile {
    const f = this.owners.get(name);
    if (!f) throw new OwleryError('CHECKPOINT_INVALID', `the checkpoint has no tensor "${name}"`, { tensor: name });
    return f;
  }

  readRaw(name: string): Promise<Uint8Array> {
    return this.owner(name).readRaw(name);
  }

  async readFloat32(name: string): Promise<Float32Array> {
    const info = this.tensors.get(name);
    const raw = await this.readRaw(name);
    // The raw buffer is ours alone: view F32 data in place instead of copying it.
    if (info!.dtype === 'F32' && raw.byteOffset % 4 === 0 && raw.byteLength % 4 === 0) {
      return new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
    }
    try {
      return rawToFloat32(raw, info!.dtype);
    } catch (err) {
      if (err instanceof OwleryError) throw new OwleryError(err.code, `${info!.file}: tensor "${name}": ${err.message}`, { tensor: name });
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.open.map((f) => f.close()));
  }
}

async function openSingle(dir: string, format: Format, signal?: AbortSignal): Promise<CheckpointReader> {
  const name = CHECKPOINT_FILES[format].single;
  const f = await openOne(format, join(dir, name), name, signal);
  return new MultiFileReader(format, [name], new Map([...f.tensors.keys()].map((k) => [k, f])), new Map(f.tensors), [f], signal);
}

/** Parses a `*.index.json` shard index: `{ "metadata": {...}, "weight_map": { tensor: shard file } }`. */
export function parseShardIndex(raw: unknown, indexPath: string): Map<string, string> {
  const wm = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).weight_map : undefined;
  if (!wm || typeof wm !== 'object' || Array.isArray(wm)) {
    throw new OwleryError('CHECKPOINT_INVALID', `${indexPath}: no "weight_map" object`, { path: indexPath });
  }
  const map = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '') {
      throw new OwleryError('CHECKPOINT_INVALID', `${indexPath}: weight_map entry for "${tensor}" is not a file name`, { path: indexPath, tensor });
    }
    if (/[\\/]/.test(shard) || shard === '.' || shard === '..' || shard.includes('\0')) {
      throw new OwleryError('CHECKPOINT_UNSAFE', `${indexPath}: weight_map entry for "${tensor}" names "${shard}", which is not a plain file name in the checkpoint folder`, { path: indexPath, tensor });
    }
    map.set(tensor, shard);
  }
  if (map.size === 0) throw new OwleryError('CHECKPOINT_INVALID', `${indexPath}: weight_map is empty`, { path: indexPath });
  return map;
}

async function openSharded(dir: string, format: Format, signal?: AbortSignal): Promise<CheckpointReader> {
  const indexName = CHECKPOINT_FILES[format].index;
  const indexPath = join(dir, indexName);
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `shard index not found: ${indexPath}`, { path: indexPath });
    throw new OwleryError('CHECKPOINT_INVALID', `${indexPath}: not valid JSON (${(err as Error).message})`, { path: indexPath });
  }
  const weightMap = parseShardIndex(raw, indexPath);
  const shardNames = [...new Set(weightMap.values())].sort();
  const opened: TensorFile[] = [];
  const byShard = new Map<string, TensorFile>();
  try {
    for (const shard of shardNames) {
      const path = join(dir, shard);
      if (!(await isFile(path))) {
        throw new OwleryError('FILE_NOT_FOUND', `shard ${shard} listed in ${indexName} is missing: ${path}`, { path, index: indexPath });
      }
      const f = await openOne(format, path, shard, signal);
      opened.push(f);
      byShard.set(shard, f);
    }
    const owners = new Map<string, TensorFile>();
    const infos = new Map<string, TensorInfo>();
    for (const [tensor, shard] of weightMap) {
      const f = byShard.get(shard)!;
      const info = f.tensors.get(tensor);
      if (!info) {
        throw new OwleryError('CHECKPOINT_INVALID',
          `tensor "${tensor}" is listed in ${indexName} as being in ${shard}, but ${shard} does not contain it`,
          { path: join(dir, shard), index: indexPath, tensor });
      }
      owners.set(tensor, f);
      infos.set(tensor, info);
    }
    return new MultiFileReader(format, [indexName, ...shardNames], owners, infos, opened, signal);
  } catch (err) {
    await Promise.all(opened.map((f) => f.close()));
    throw err;
  }
}

/** Which weight files a folder holds, per format. */
export async function detectCheckpointFormats(dir: string): Promise<{ format: Format; sharded: boolean }[]> {
  const found: { format: Format; sharded: boolean }[] = [];
  for (const format of ['safetensors', 'pytorch'] as const) {
    if (await isFile(join(dir, CHECKPOINT_FILES[format].index))) found.push({ format, sharded: true });
    else if (await isFile(join(dir, CHECKPOINT_FILES[format].single))) found.push({ format, sharded: false });
  }
  return found;
}

/**
 * Opens the checkpoint in `dir`. Safetensors is used when both formats are present unless
 * `prefer: 'pytorch'`; a shard index takes precedence over a single file of the same format.
 */
export async function openCheckpoint(dir: string, options: OpenCheckpointOptions = {}): Promise<CheckpointReader> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new OwleryError('FILE_NOT_FOUND', `checkpoint folder not found: ${dir}`, { path: dir });
  }
  if (!st.isDirectory()) throw new OwleryError('CHECKPOINT_INVALID', `not a checkpoint folder: ${dir}`, { path: dir });
  const found = await detectCheckpointFormats(dir);
  if (found.length === 0) {
    throw new OwleryError('FILE_NOT_FOUND',
      `no weights in ${dir}: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json`,
      { path: dir });
  }
  const prefer = options.prefer ?? 'safetensors';
  const pick = found.find((f) => f.format === prefer) ?? found[0];
  return pick.sharded ? openSharded(dir, pick.format, options.signal) : openSingle(dir, pick.format, options.signal);
}

/** A checkpoint's parsed configuration and the raw `config.json` object. */
export interface CheckpointConfig {
  config: Owl2Config;
  raw: Record<string, unknown>;
}

/**
 * Reads and parses `config.json` in `dir`. Checkpoints of other models (mPLUG-Owl v1, the Qwen-based
 * mPLUG-Owl2.1) are refused with `CHECKPOINT_UNSUPPORTED`.
 */
export async function readConfig(dir: string): Promise<CheckpointConfig> {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `config.json not found: ${path}`, { path });
    throw err;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new OwleryError('CHECKPOINT_INVALID', `${path}: not valid JSON (${(err as Error).message})`, { path });
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new OwleryError('CHECKPOINT_INVALID', `${path}: not a JSON object`, { path });
  try {
    return { config: parseOwl2Config(raw), raw: raw as Record<string, unknown> };
  } catch (err) {
    if (err instanceof OwleryError) throw new OwleryError(err.code, `${path}: ${err.message.replace(/^config\.json:\s*/, '')}`, { path });
    throw err;
  }
}
