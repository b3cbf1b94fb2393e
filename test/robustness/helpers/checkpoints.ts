/**
 * Hostile checkpoint folders for the robustness tests, built in the test from a seed: the tiny
 * checkpoint's side files (config.json, tokenizer, …) with a crafted `pytorch_model.bin`, a
 * changed `config.json` or a replaced `tokenizer.model`. Everything stays a few megabytes on disk,
 * however large the data it declares.
 */
import { copyFile, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants, crc32, deflateRawSync } from 'node:zlib';
import { encodeStateDictPickle, torchArchiveName, writeTorchZip } from '../../../models/checkpoint/write-pytorch.ts';
import type { ZipInput } from '../../../models/checkpoint/write-pytorch.ts';
import { owl2TensorSpecs, tinyConfigJson } from '../../../models/tiny/factory.ts';
import { mulberry32 } from '../../../src-shared/random.ts';

const MiB = 1024 * 1024;

/** A raw DEFLATE entry: its compressed bytes and the size and CRC-32 it inflates to. */
export interface DeflatedEntry {
  data: Uint8Array;
  size: number;
  crc32: number;
}

/**
 * Raw DEFLATE data inflating to `size` bytes of `block` repeated (zeros by default), built from
 * independently compressed, byte-aligned blocks (full flush) plus an empty final block: ~1 kB per
 * MiB of zeros, so a gigabyte costs a megabyte and a fraction of a second.
 */
export function deflatedRepeat(size: number, block: Uint8Array = new Uint8Array(MiB)): DeflatedEntry {
  const parts: Uint8Array[] = [];
  let crc = 0;
  const packed = new Map<number, Uint8Array>();
  const pack = (n: number): Uint8Array => {
    let p = packed.get(n);
    if (!p) {
      p = new Uint8Array(deflateRawSync(block.subarray(0, n), { level: 9, finishFlush: constants.Z_FULL_FLUSH }));
      packed.set(n, p);
    }
    return p;
  };
  for (let done = 0; done < size; done += block.length) {
    const n = Math.min(block.length, size - done);
    parts.push(pack(n));
    crc = crc32(block.subarray(0, n), crc);
  }
  parts.push(Uint8Array.of(0x03, 0x00)); // BFINAL, fixed Huffman, end of block
  const data = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return { data, size, crc32: crc >>> 0 };
}

/** `n` bytes from a seed (float32 values drawn from a set of 16, so they deflate a few times over). */
export function seededFloats(seed: number, n: number): Uint8Array {
  const rand = mulberry32(seed);
  const palette = Float32Array.from({ length: 16 }, () => (rand() - 0.5) / 10);
  const out = new Float32Array(n / 4);
  for (let i = 0; i < out.length; i++) out[i] = palette[Math.floor(rand() * 16)];
  return new Uint8Array(out.buffer);
}

/** Seeded random bytes. */
export function seededBytes(seed: number, n: number): Uint8Array {
  const rand = mulberry32(seed);
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

/** The tiny checkpoint's tensors (names and shapes, state-dict order) and its config. */
export function tinyTensors(): { name: string; shape: number[]; numel: number }[] {
  const { config } = tinyConfigJson({});
  return owl2TensorSpecs(config).map((s) => ({ name: s.name, shape: s.shape, numel: s.shape.reduce((a, b) => a * b, 1) }));
}

/** One storage of a crafted `.bin`: its key, element count (F32) and bytes on disk. */
export interface CraftedStorage {
  key: string;
  numel: number;
  entry: Pick<ZipInput, 'data' | 'deflate' | 'deflated'>;
}

/** One tensor of a crafted `.bin`: which storage it views, from which element. */
export interface CraftedView {
  name: string;
  shape: number[];
  storageKey: string;
  storageNumel: number;
  storageOffset: number;
}

/** Writes a torch zip whose F32 tensors are the given views of the given storages. */
export async function writeCraftedBin(path: string, views: readonly CraftedView[], storages: readonly CraftedStorage[]): Promise<void> {
  const archive = torchArchiveName(path);
  const pickle = encodeStateDictPickle(views.map((v) => ({
    name: v.name, dtype: 'F32', shape: v.shape, storageKey: v.storageKey, numel: v.storageNumel, storageOffset: v.storageOffset,
  })));
  await writeTorchZip(path, [
    { name: `${archive}/data.pkl`, data: pickle },
    ...storages.map((s) => ({ ...s.entry, name: `${archive}/data/${s.key}` })),
    { name: `${archive}/version`, data: new TextEncoder().encode('3\n') },
  ]);
}

/**
 * A checkpoint folder `dir` with the side files of the checkpoint in `from` (weights left out),
 * `config.json` patched by `patchConfig` and files replaced or added by `files`.
 */
export async function checkpointFolder(
  dir: string,
  from: string,
  opts: { patchConfig?: (raw: Record<string, unknown>) => void; files?: Record<string, Uint8Array>; keepWeights?: boolean } = {},
): Promise<string> {
  await mkdir(dir, { recursive: true });
  for (const name of await readdir(from)) {
    const weights = /\.(bin|safetensors)$|\.index\.json$/.test(name);
    if (!weights || opts.keepWeights) await copyFile(join(from, name), join(dir, name));
  }
  if (opts.patchConfig) {
    const raw = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    opts.patchConfig(raw);
    await writeFile(join(dir, 'config.json'), JSON.stringify(raw, null, 2));
  }
  for (const [name, bytes] of Object.entries(opts.files ?? {})) await writeFile(join(dir, name), bytes);
  return dir;
}
