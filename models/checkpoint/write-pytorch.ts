/**
 * Writer for PyTorch `.bin` checkpoints in the `torch.save` zip format, as `save_pretrained` writes
 * them: `<archive>/data.pkl` (a protocol-2 pickle of a dict of `_rebuild_tensor_v2` tensors, one
 * storage per tensor), `<archive>/data/<key>` (STORED, 64-byte aligned), `<archive>/version`.
 * Single file or sharded with `pytorch_model.bin.index.json`. Output is deterministic.
 *
 * Also crafts hostile files for tests (`encodeCallPickle`, `writeTorchZip`): they are data only,
 * and the reader must refuse them.
 */
import { open } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { OwleryError } from '../../src-shared/errors.ts';
import { contiguousStrides } from './pytorch.ts';
import { STORAGE_DTYPES } from './pickle.ts';
import type { CheckpointDType } from './types.ts';
import { DTYPE_SIZE } from './dtype.ts';
import { checkWritable, shardFileName, splitShards, writeShardIndex } from './write-common.ts';
import type { WritableTensor } from './write-common.ts';

export type { WritableTensor } from './write-common.ts';

const STORAGE_CLASS: Partial<Record<CheckpointDType, string>> = Object.fromEntries(
  Object.entries(STORAGE_DTYPES).map(([cls, dt]) => [dt, cls]),
);

/** Builds protocol-2 pickles the way CPython's pickler does (memoizing with BINPUT). */
export class PickleWriter {
  private readonly parts: number[] = [];
  private memoCount = 0;
  private readonly memo = new Map<string, number>();

  /** Raw bytes. */
  raw(...bytes: number[]): this {
    for (const b of bytes) this.parts.push(b & 0xff);
    return this;
  }

  private u32(v: number): this {
    return this.raw(v, v >>> 8, v >>> 16, v >>> 24);
  }

  /** `PROTO 2`. */
  proto(p = 2): this {
    return this.raw(0x80, p);
  }

  /** Stores the top of the stack in the memo (BINPUT / LONG_BINPUT), remembering it under `key`. */
  put(key?: string): this {
    const idx = this.memoCount++;
    if (key !== undefined) this.memo.set(key, idx);
    return idx < 256 ? this.raw(0x71, idx) : this.raw(0x72).u32(idx);
  }

  /** Pushes a memoized value (BINGET / LONG_BINGET) if `key` was stored; returns false otherwise. */
  get(key: string): boolean {
    const idx = this.memo.get(key);
    if (idx === undefined) return false;
    if (idx < 256) this.raw(0x68, idx);
    else this.raw(0x6a).u32(idx);
    return true;
  }

  /** A str (BINUNICODE), memoized. */
  str(s: string, memoKey?: string): this {
    if (memoKey !== undefined && this.get(memoKey)) return this;
    const b = new TextEncoder().encode(s);
    this.raw(0x58).u32(b.length);
    for (const x of b) this.parts.push(x);
    return this.put(memoKey);
  }

  /** An int: BININT1 / BININT2 / BININT / LONG1, as CPython chooses. */
  int(v: number): this {
    if (v >= 0 && v < 256) return this.raw(0x4b, v);
    if (v >= 0 && v < 65536) return this.raw(0x4d, v, v >>> 8);
    if (v >= -(2 ** 31) && v < 2 ** 31) return this.raw(0x4a).u32(v >>> 0);
    let x = BigInt(v);
    const bytes: number[] = [];
    while (true) {
      bytes.push(Number(x & 0xffn));
      x >>= 8n;
      if ((x === 0n && !(bytes[bytes.length - 1] & 0x80)) || (x === -1n && bytes[bytes.length - 1] & 0x80)) break;
    }
    return this.raw(0x8a, bytes.length, ...bytes);
  }

  /** A global (GLOBAL "module\nname\n"), memoized. */
  global(module: string, name: string): this {
    const key = `global:${module}.${name}`;
    if (this.get(key)) return this;
    this.raw(0x63);
    for (const b of new TextEncoder().encode(`${module}\n${name}\n`)) this.parts.push(b);
    return this.put(key);
  }

  /** A tuple of ints, with the opcode CPython uses for its length, memoized (not reused). */
  intTuple(items: readonly number[]): this {
    if (items.length === 0) return this.raw(0x29);
    if (items.length <= 3) {
      for (const v of items) this.int(v);
      return this.raw(0x84 + items.length).put();
    }
    this.raw(0x28);
    for (const v of items) this.int(v);
    return this.raw(0x74).put();
  }

  /** The bytes written so far. */
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** One tensor of a state dict pickle: which storage it uses. */
interface PickledTensor {
  name: string;
  dtype: CheckpointDType;
  shape: number[];
  storageKey: string;
  numel: number;
  /** Element offset of the tensor in its storage (default 0; views of a shared storage differ). */
  storageOffset?: number;
}

/** Encodes a state dict (name → tensor with its own storage) as torch's protocol-2 `data.pkl`. */
export function encodeStateDictPickle(tensors: readonly PickledTensor[]): Uint8Array {
  const w = new PickleWriter().proto(2).raw(0x7d).put();
  for (let start = 0; start < tensors.length; start += 1000) {
    const batch = tensors.slice(start, start + 1000);
    if (batch.length > 1) w.raw(0x28);
    for (const t of batch) {
      const cls = STORAGE_CLASS[t.dtype];
      if (!cls) throw new OwleryError('INVALID_ARGUMENT', `tensor "${t.name}": no torch storage class for ${t.dtype}`);
      w.str(t.name).global('torch._utils', '_rebuild_tensor_v2');
      w.raw(0x28); // MARK (args of _rebuild_tensor_v2)
      w.raw(0x28).str('storage', 'str:storage').global('torch', cls).str(t.storageKey).str('cpu', 'str:cpu').int(t.numel).raw(0x74).put();
      w.raw(0x51); // BINPERSID
      w.int(t.storageOffset ?? 0).intTuple(t.shape).intTuple(contiguousStrides(t.shape)).raw(0x89);
      w.global('collections', 'OrderedDict').raw(0x29, 0x52).put(); // OrderedDict() backward hooks
      w.raw(0x74).put().raw(0x52).put(); // TUPLE, REDUCE
    }
    w.raw(batch.length > 1 ? 0x75 : 0x73); // SETITEMS / SETITEM
  }
  return w.raw(0x2e).bytes();
}

/** A zip entry to write: its bytes, or a callback that produces them when the entry's turn comes. */
export interface ZipInput {
  name: string;
  data?: Uint8Array;
  /** Called once, just before the entry is written (so a multi-GB file holds one entry at a time). */
  load?: () => Promise<Uint8Array> | Uint8Array;
  /** Store the entry DEFLATE-compressed (torch never does; readers must cope); a number is the zlib level. */
  deflate?: boolean | number;
  /**
   * FOR TESTS: raw DEFLATE data written as is, with the uncompressed size and CRC-32 it declares
   * (lets a test write a gigabyte-sized entry from a few kilobytes; `data`/`load` are ignored).
   */
  deflated?: { data: Uint8Array; size: number; crc32: number };
}

/** Options of {@link writeTorchZip}. */
export interface TorchZipOptions {
  /** Write ZIP64 records even when nothing needs them (to exercise readers). */
  zip64?: boolean;
  /** Called after each entry with the bytes written to the file so far. */
  onEntry?: (name: string, fileBytes: number) => void;
  signal?: AbortSignal;
}

const U32_MAX = 0xffffffff;

/**
 * Writes a zip of STORED entries the way PyTorch's writer lays it out (data 64-byte aligned through
 * an `FB` padding extra field, DOS time 0), streaming: each entry's bytes are produced, written and
 * dropped in turn. ZIP64 records are written when needed or when `zip64: true`. Returns the size.
 */
export async function writeTorchZip(path: string, entries: Iterable<ZipInput>, options: TorchZipOptions = {}): Promise<number> {
  const fh = await open(path, 'w');
  try {
    let offset = 0;
    const write = async (b: Uint8Array): Promise<void> => {
      let done = 0;
      while (done < b.length) {
        const { bytesWritten } = await fh.write(b, done, b.length - done, offset + done);
        done += bytesWritten;
      }
      offset += b.length;
    };
    const central: Uint8Array[] = [];
    let count = 0;
    for (const e of entries) {
      options.signal?.throwIfAborted();
      const data = e.deflated ? e.deflated.data : (e.data ?? (await e.load!()));
      const name = new TextEncoder().encode(e.name);
      const size = e.deflated ? e.deflated.size : data.byteLength;
      const crc = e.deflated ? e.deflated.crc32 >>> 0 : crc32(data) >>> 0;
      const stored = e.deflate !== undefined && e.deflate !== false && !e.deflated
        ? new Uint8Array(deflateRawSync(data, typeof e.deflate === 'number' ? { level: e.deflate } : {}))
        : data;
      const csize = stored.byteLength;
      const method = stored !== data || e.deflated ? 8 : 0;
      const localOffset = offset;
      const big = options.zip64 === true || size >= U32_MAX || csize >= U32_MAX || localOffset >= U32_MAX;
      const z64Local = big ? 20 : 0;
      const base = localOffset + 30 + name.length + z64Local;
      const pad = (64 - ((base + 4) % 64)) % 64;
      const extraLen = z64Local + 4 + pad;
      const h = new Uint8Array(30 + name.length + extraLen);
      const v = new DataView(h.buffer);
      v.setUint32(0, 0x04034b50, true);
      v.setUint16(4, big ? 45 : 20, true);
      v.setUint16(6, 0x0800, true);
      v.setUint16(8, method, true);
      v.setUint32(14, crc, true);
      v.setUint32(18, big ? U32_MAX : csize, true);
      v.setUint32(22, big ? U32_MAX : size, true);
      v.setUint16(26, name.length, true);
      v.setUint16(28, extraLen, true);
      h.set(name, 30);
      let p = 30 + name.length;
      if (big) {
        v.setUint16(p, 0x0001, true);
        v.setUint16(p + 2, 16, true);
        v.setBigUint64(p + 4, BigInt(size), true);
        v.setBigUint64(p + 12, BigInt(csize), true);
        p += 20;
      }
      v.setUint16(p, 0x4246, true); // "FB"
      v.setUint16(p + 2, pad, true);
      h.fill(0x5a, p + 4, p + 4 + pad); // "Z"
      await write(h);
      await write(stored);
      const z64Central = big ? 28 : 0;
      const c = new Uint8Array(46 + name.length + z64Central);
      const cv = new DataView(c.buffer);
      cv.setUint32(0, 0x02014b50, true);
      cv.setUint16(4, big ? 45 : 20, true);
      cv.setUint16(6, big ? 45 : 20, true);
      cv.setUint16(8, 0x0800, true);
      cv.setUint16(10, method, true);
      cv.setUint32(16, crc, true);
      cv.setUint32(20, big ? U32_MAX : csize, true);
      cv.setUint32(24, big ? U32_MAX : size, true);
      cv.setUint16(28, name.length, true);
      cv.setUint16(30, z64Central, true);
      cv.setUint32(42, big ? U32_MAX : localOffset, true);
      c.set(name, 46);
      if (big) {
        const q = 46 + name.length;
        cv.setUint16(q, 0x0001, true);
        cv.setUint16(q + 2, 24, true);
        cv.setBigUint64(q + 4, BigInt(size), true);
        cv.setBigUint64(q + 12, BigInt(csize), true);
        cv.setBigUint64(q + 20, BigInt(localOffset), true);
      }
      central.push(c);
      count++;
      options.onEntry?.(e.name, offset);
    }
    const cdOffset = offset;
    for (const c of central) await write(c);
    const cdSize = offset - cdOffset;
    const needZip64 = options.zip64 === true || cdOffset >= U32_MAX || count >= 0xffff;
    if (needZip64) {
      const z64Offset = offset;
      const r = new Uint8Array(56 + 20);
      const rv = new DataView(r.buffer);
      rv.setUint32(0, 0x06064b50, true);
      rv.setBigUint64(4, 44n, true);
      rv.setUint16(12, 45, true);
      rv.setUint16(14, 45, true);
      rv.setBigUint64(24, BigInt(count), true);
      rv.setBigUint64(32, BigInt(count), true);
      rv.setBigUint64(40, BigInt(cdSize), true);
      rv.setBigUint64(48, BigInt(cdOffset), true);
      rv.setUint32(56, 0x07064b50, true);
      rv.setBigUint64(56 + 8, BigInt(z64Offset), true);
      rv.setUint32(56 + 16, 1, true);
      await write(r);
    }
    const end = new Uint8Array(22);
    const ev = new DataView(end.buffer);
    ev.setUint32(0, 0x06054b50, true);
    ev.setUint16(8, needZip64 ? 0xffff : count, true);
    ev.setUint16(10, needZip64 ? 0xffff : count, true);
    ev.setUint32(12, needZip64 ? U32_MAX : cdSize, true);
    ev.setUint32(16, needZip64 ? U32_MAX : cdOffset, true);
    await write(end);
    await fh.truncate(offset);
    return offset;
  } finally {
    await fh.close();
  }
}

/** The archive folder name torch.save uses for a file: its base name without the extension. */
export function torchArchiveName(path: string): string {
  return basename(path).replace(/\.[^.]*$/, '');
}

/** Writes one `torch.save`-style `.bin` holding `tensors` (F32/F16/BF16/… as given). */
export async function writePytorchFile(path: string, tensors: readonly WritableTensor[], options: { zip64?: boolean; deflate?: boolean } = {}): Promise<void> {
  checkWritable(tensors);
  const archive = torchArchiveName(path);
  const pickled: PickledTensor[] = tensors.map((t, i) => ({
    name: t.name, dtype: t.dtype, shape: t.shape, storageKey: String(i), numel: t.data.byteLength / DTYPE_SIZE[t.dtype],
  }));
  const entries: ZipInput[] = [{ name: `${archive}/data.pkl`, data: encodeStateDictPickle(pickled) }];
  tensors.forEach((t, i) => entries.push({ name: `${archive}/data/${i}`, data: t.data, deflate: options.deflate }));
  entries.push({ name: `${archive}/version`, data: new TextEncoder().encode('3\n') });
  await writeTorchZip(path, entries, options);
}

/**
 * Writes a checkpoint's weights into `dir`: `pytorch_model.bin` when `shards` ≤ 1, otherwise
 * `pytorch_model-0000i-of-0000n.bin` plus `pytorch_model.bin.index.json`. Returns the file names.
 */
export async function writePytorchCheckpoint(
  dir: string,
  tensors: readonly WritableTensor[],
  options: { shards?: number; zip64?: boolean; deflate?: boolean } = {},
): Promise<string[]> {
  checkWritable(tensors);
  const shards = options.shards ?? 1;
  if (shards <= 1) {
    await writePytorchFile(join(dir, 'pytorch_model.bin'), tensors, options);
    return ['pytorch_model.bin'];
  }
  const groups = splitShards(tensors, shards);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  let total = 0;
  for (let i = 0; i < groups.length; i++) {
    const name = shardFileName('pytorch_model', 'bin', i, groups.length);
    await writePytorchFile(join(dir, name), groups[i], options);
    for (const t of groups[i]) {
      weightMap.set(t.name, name);
      total += t.data.byteLength;
    }
    files.push(name);
  }
  await writeShardIndex(join(dir, 'pytorch_model.bin.index.json'), weightMap, total);
  return ['pytorch_model.bin.index.json', ...files];
}

/**
 * FOR TESTS: a protocol-2 pickle `{ key: module.name(*args) }` built with GLOBAL + REDUCE (or
 * protocol 4 STACK_GLOBAL with `stackGlobal`). Unpickled by Python, it would call `module.name`;
 * the project's reader must refuse it without running anything.
 */
export function encodeCallPickle(module: string, name: string, args: readonly string[], options: { key?: string; stackGlobal?: boolean } = {}): Uint8Array {
  const w = new PickleWriter().proto(options.stackGlobal ? 4 : 2).raw(0x7d).put();
  w.str(options.key ?? 'model.embed_tokens.weight');
  if (options.stackGlobal) {
    w.str(module).str(name).raw(0x93).put();
  } else {
    w.global(module, name);
  }
  w.raw(0x28);
  for (const a of args) w.str(a);
  w.raw(0x74).put().raw(0x52).put().raw(0x73, 0x2e);
  return w.bytes();
}

/** FOR TESTS: writes a torch-style zip whose `data.pkl` is `pickle` (with a version entry). */
export async function writeRawPickleCheckpoint(path: string, pickle: Uint8Array, extra: readonly ZipInput[] = []): Promise<void> {
  const archive = torchArchiveName(path);
  await writeTorchZip(path, [
    { name: `${archive}/data.pkl`, data: pickle },
    ...extra.map((e) => ({ name: `${archive}/${e.name}`, data: e.data })),
    { name: `${archive}/version`, data: new TextEncoder().encode('3\n') },
  ]);
}

