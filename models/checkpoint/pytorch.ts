/**
 * Reader for PyTorch `.bin` checkpoints in the `torch.save` zip format (PyTorch ≥ 1.6): a zip with
 * `<prefix>/data.pkl` (the pickled state dict), `<prefix>/data/<key>` (one entry per storage) and
 * `<prefix>/version`.
 *
 * The pickle goes through the restricted unpickler (`pickle.ts`): nothing from the file is ever
 * executed. It is read eagerly (it is small); tensor data is read on demand by position. Only
 * contiguous tensors are accepted (that is all `save_pretrained` writes). Deflated storages (torch
 * never writes them, other tools may) are read through `bounded-inflate.ts`: ratio-checked at open,
 * inflated only as far as their tensors reach, and once when several tensors share one.
 */
import { basename } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { InflatedSpill, checkDeflateRatio } from './bounded-inflate.ts';
import type { InflateStats } from './bounded-inflate.ts';
import { DTYPE_SIZE, numel } from './dtype.ts';
import { openFile, readAt } from './io.ts';
import type { OpenFile, TensorFile } from './io.ts';
import { PickleDict, restrictedUnpickle } from './pickle.ts';
import type { TensorRef } from './pickle.ts';
import type { TensorInfo } from './types.ts';
import { ZipArchive } from './zip.ts';

/** Largest `data.pkl` accepted (a 7B shard's is well under 1 MB). */
const MAX_PICKLE_BYTES = 256 * 1024 * 1024;
/** Largest `byteorder` entry accepted (it holds "little" or "big"). */
const MAX_BYTEORDER_BYTES = 64;

/** How the tensors use one storage entry: how many view it, and the byte the furthest one reaches. */
interface StorageUse {
  views: number;
  reach: number;
}

interface Located {
  ref: TensorRef;
  /** Entry name of the storage. */
  entry: string;
  /** Byte offset of the tensor inside the storage entry. */
  byteOffset: number;
  byteLength: number;
}

/** Row-major (contiguous) strides of a shape. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  const want = contiguousStrides(shape);
  return shape.every((d, i) => d <= 1 || stride[i] === want[i]);
}

/** An open PyTorch zip checkpoint file. */
export class PytorchFile implements TensorFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;

  private readonly spill: InflatedSpill;

  private constructor(
    private readonly zip: ZipArchive,
    private readonly located: Map<string, Located>,
    infos: Map<string, TensorInfo>,
    private readonly uses: Map<string, StorageUse>,
  ) {
    this.tensors = infos;
    this.spill = new InflatedSpill(undefined, zip.signal);
  }

  /** DEFLATE inflations done so far (how many, bytes produced): each shared storage counts once. */
  get inflateStats(): InflateStats {
    return { ...this.zip.inflated };
  }

  /** Path of the file, as opened. */
  get path(): string {
    return this.zip.file.path;
  }

  /**
   * Opens a `torch.save` zip checkpoint, reads its state dict through the restricted unpickler and
   * checks every tensor against its storage. `displayName` (default: the base name) is what
   * `TensorInfo.file` reports; `signal` stops the inflation of deflated storages (`CANCELLED`).
   */
  static async open(path: string, displayName = basename(path), signal?: AbortSignal): Promise<PytorchFile> {
    const f = await openFile(path, 'PyTorch checkpoint');
    try {
      return await PytorchFile.load(f, displayName, signal);
    } catch (err) {
      await f.handle.close();
      throw err;
    }
  }

  private static async load(f: OpenFile, displayName: string, signal?: AbortSignal): Promise<PytorchFile> {
    const path = f.path;
    const magic = await readAt(f, 0, Math.min(4, f.size), 'the file signature');
    const isZip = magic.length === 4 && magic[0] === 0x50 && magic[1] === 0x4b && magic[2] === 0x03 && magic[3] === 0x04;
    if (!isZip) {
      if (magic[0] === 0x80) {
        throw new OwleryError('CHECKPOINT_UNSUPPORTED',
          `${path}: this is a legacy (pre-1.6, non-zip) torch.save file; re-save it with a current PyTorch or use safetensors`, { path });
      }
      throw new OwleryError('CHECKPOINT_INVALID', `${path}: not a PyTorch zip checkpoint (no zip signature)`, { path });
    }
    const zip = await ZipArchive.open(f, signal);
    const pkls = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length !== 1) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `${path}: expected exactly one <prefix>/data.pkl in the zip, found ${pkls.length === 0 ? 'none' : pkls.join(', ')}`, { path });
    }
    const prefix = pkls[0].slice(0, -'data.pkl'.length);
    const byteorder = zip.entries.get(`${prefix}byteorder`);
    if (byteorder) {
      if (byteorder.size > MAX_BYTEORDER_BYTES) throw new OwleryError('CHECKPOINT_INVALID', `${path}: the byteorder entry is ${byteorder.size} bytes, not a byte order`, { path });
      const order = new TextDecoder().decode(await zip.read(byteorder.name)).trim();
      if (order !== 'little') throw new OwleryError('CHECKPOINT_UNSUPPORTED', `${path}: byte order "${order}" is not supported`, { path });
    }
    const pklEntry = zip.entry(pkls[0]);
    if (pklEntry.size > MAX_PICKLE_BYTES) {
      throw new OwleryError('CHECKPOINT_INVALID', `${path}: data.pkl is ${pklEntry.size} bytes, more than a state dict needs`, { path });
    }
    const root = restrictedUnpickle(await zip.read(pkls[0]), path);
    if (!(root instanceof PickleDict)) {
      throw new OwleryError('CHECKPOINT_INVALID', `${path}: data.pkl does not hold a state dict (a dict of tensors)`, { path });
    }
    const located = new Map<string, Located>();
    const infos = new Map<string, TensorInfo>();
    const uses = new Map<string, StorageUse>();
    for (const [key, value] of root.map) {
      if (typeof key !== 'string') throw new OwleryError('CHECKPOINT_INVALID', `${path}: state dict key ${String(key)} is not a string`, { path });
      const ref = value as TensorRef | null;
      if (!ref || typeof ref !== 'object' || ref.kind !== 'tensor') {
        throw new OwleryError('CHECKPOINT_INVALID', `${path}: state dict entry "${key}" is not a tensor`, { path, tensor: key });
      }
      const fail = (msg: string): OwleryError =>
        new OwleryError('CHECKPOINT_INVALID', `${path}: tensor "${key}": ${msg}`, { path, tensor: key });
      if (!isContiguous(ref.shape, ref.stride)) {
        throw new OwleryError('CHECKPOINT_UNSUPPORTED',
          `${path}: tensor "${key}" is not contiguous (shape [${ref.shape.join(', ')}], stride [${ref.stride.join(', ')}]); only contiguous tensors are supported`,
          { path, tensor: key });
      }
      const { storage } = ref;
      const item = DTYPE_SIZE[storage.dtype];
      const n = numel(ref.shape);
      if (ref.offset + n > storage.numel) {
        throw fail(`elements ${ref.offset}..${ref.offset + n} lie outside its storage of ${storage.numel} elements`);
      }
      const entryName = `${prefix}data/${storage.key}`;
      const entry = zip.entries.get(entryName);
      if (!entry) throw fail(`its storage entry "${entryName}" is missing from the zip (the file is truncated or damaged)`);
      if (entry.size !== storage.numel * item) {
        throw fail(`storage "${entryName}" holds ${entry.size} bytes but the pickle says ${storage.numel} × ${storage.dtype} = ${storage.numel * item} bytes`);
      }
      await zip.dataOffset(entry);
      located.set(key, { ref, entry: entryName, byteOffset: ref.offset * item, byteLength: n * item });
      infos.set(key, { name: key, dtype: storage.dtype, shape: [...ref.shape], file: displayName, byteLength: n * item });
      const use = uses.get(entryName) ?? { views: 0, reach: 0 };
      uses.set(entryName, { views: use.views + 1, reach: Math.max(use.reach, (ref.offset + n) * item) });
    }
    for (const name of uses.keys()) {
      const entry = zip.entry(name);
      if (entry.method === 8) checkDeflateRatio(path, entry);
    }
    return new PytorchFile(zip, located, infos, uses);
  }

  /** The tensor's bytes as stored (little endian). */
  async readRaw(name: string): Promise<Uint8Array> {
    const l = this.located.get(name);
    if (!l) throw new OwleryError('CHECKPOINT_INVALID', `${this.path}: no tensor "${name}"`, { path: this.path, tensor: name });
    const entry = this.zip.entry(l.entry);
    const use = this.uses.get(l.entry)!;
    if (entry.method === 8 && use.views > 1) {
      return this.spill.read(this.zip.file, entry, await this.zip.dataOffset(entry), use.reach, l.byteOffset, l.byteLength, this.zip.inflated);
    }
    return this.zip.readRange(entry, l.byteOffset, l.byteLength);
  }

  /** Closes the file handle and removes unpacked shared storages. */
  async close(): Promise<void> {
    await this.spill.close();
    await this.zip.file.handle.close();
  }
}
