/**
 * Bounded reading of DEFLATE entries in PyTorch zip checkpoints (a `.bin` from outside is data an
 * attacker may have shaped):
 *
 * - a compression-ratio cap: a storage entry of 1 MiB or more may declare at most
 *   {@link MAX_DEFLATE_RATIO} times its compressed size (real weights deflate barely at all, ~1.1:1;
 *   a gigabyte of zeros deflates ~1000:1). Checked from the central directory, before inflating;
 * - streaming inflation in 1 MiB chunks that stops as soon as the bytes asked for are out (never
 *   past what the tensors need), refuses an entry that inflates past its declared size (or short of
 *   it), and checks the CRC-32 whenever the whole entry was inflated;
 * - {@link InflatedSpill}: a storage that several tensors view is inflated once, as far as its
 *   tensors reach, into a temporary file, and read from there by position afterwards.
 *
 * Memory stays at the bytes asked for plus a chunk or two, whatever the entry declares; the event
 * loop turns between chunks, so Ctrl-C is seen while a large entry inflates.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createInflateRaw, crc32 } from 'node:zlib';
import { OwleryError } from '../../src-shared/errors.ts';
import { throwIfAborted } from '../onnx/writer.ts';
import { removeStale } from '../package/stale.ts';
import { readAt } from './io.ts';
import type { OpenFile } from './io.ts';

/** Largest declared/compressed size ratio accepted for storage entries of {@link RATIO_CHECKED_FROM} bytes or more. */
export const MAX_DEFLATE_RATIO = 64;
/** Entries smaller than this are not ratio-checked (small zero-filled tensors, such as biases, deflate well). */
export const RATIO_CHECKED_FROM = 1024 * 1024;
/** Compressed bytes read, and inflated bytes handed on, per step. */
const CHUNK = 1024 * 1024;
/** Prefix of the temporary folders of {@link InflatedSpill} (followed by the process id). */
export const SPILL_PREFIX = 'owlery-inflate-';
const SPILL_FOLDER = /^owlery-inflate-(\d+)-/;

/** The parts of a zip entry an inflation needs. */
export interface DeflatedEntry {
  name: string;
  crc32: number;
  compressedSize: number;
  size: number;
}

/** Inflations done so far: how many, and the bytes they produced. */
export interface InflateStats {
  runs: number;
  bytes: number;
}

function corrupt(path: string, msg: string): OwleryError {
  return new OwleryError('CHECKPOINT_INVALID', `${path}: corrupt zip archive: ${msg}`, { path });
}

/** Refuses a storage entry whose declared size is out of proportion to its compressed size. */
export function checkDeflateRatio(path: string, entry: DeflatedEntry): void {
  if (entry.size < RATIO_CHECKED_FROM) return;
  const ratio = entry.size / Math.max(1, entry.compressedSize);
  if (ratio <= MAX_DEFLATE_RATIO) return;
  throw new OwleryError('CHECKPOINT_UNSAFE',
    `${path}: storage "${entry.name}" declares ${entry.size} bytes from ${entry.compressedSize} compressed ` +
    `(compression ratio ${Math.round(ratio)}:1; real weights stay under ${MAX_DEFLATE_RATIO}:1): refusing what looks like a decompression bomb`,
    { path, entry: entry.name, ratio });
}

/** The compressed bytes of an entry, chunk by chunk. */
async function* compressedChunks(file: OpenFile, start: number, length: number, name: string): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < length; at += CHUNK) yield await readAt(file, start + at, Math.min(CHUNK, length - at), `zip entry "${name}"`);
}

/**
 * Inflates `entry` (compressed data at `dataStart` of `file`) from its start up to byte `end`,
 * handing each piece to `sink` with its offset in the entry. Stops at `end`; when `end` is the
 * whole entry, also checks that it ends there and that its CRC-32 matches. Adds to `stats`;
 * `signal` stops it between pieces (`CANCELLED`).
 */
export async function inflateEntry(
  file: OpenFile,
  entry: DeflatedEntry,
  dataStart: number,
  end: number,
  sink: (piece: Uint8Array, at: number) => void | Promise<void>,
  stats?: InflateStats,
  signal?: AbortSignal,
): Promise<void> {
  const path = file.path;
  const whole = end >= entry.size;
  const source = Readable.from(compressedChunks(file, dataStart, entry.compressedSize, entry.name));
  const inflater = createInflateRaw({ chunkSize: CHUNK });
  source.on('error', (err) => inflater.destroy(err));
  source.pipe(inflater);
  let produced = 0;
  let crc = 0;
  try {
    for await (const chunk of inflater as AsyncIterable<Buffer>) {
      throwIfAborted(signal);
      if (produced + chunk.length > entry.size) {
        throw corrupt(path, `cannot inflate "${entry.name}": it inflates past its declared ${entry.size} bytes`);
      }
      const piece = whole ? chunk : chunk.subarray(0, Math.max(0, Math.min(chunk.length, end - produced)));
      if (whole) crc = crc32(piece, crc);
      await sink(piece, produced);
      produced += chunk.length;
      if (!whole && produced >= end) break;
    }
  } catch (err) {
    if (err instanceof OwleryError) throw err;
    throw corrupt(path, `cannot inflate "${entry.name}": ${(err as Error).message}`);
  } finally {
    source.destroy();
    inflater.destroy();
    if (stats) {
      stats.runs++;
      stats.bytes += Math.min(produced, end);
    }
  }
  if (produced < Math.min(end, entry.size) || (whole && produced !== entry.size)) {
    throw corrupt(path, `"${entry.name}" inflates to only ${produced} of the ${entry.size} bytes it declares`);
  }
  if (whole && crc >>> 0 !== entry.crc32 >>> 0) throw corrupt(path, `CRC-32 mismatch in "${entry.name}"`);
}

/** Reads `length` bytes at `offset` of a deflated entry, inflating only as far as needed. */
export async function inflateRange(file: OpenFile, entry: DeflatedEntry, dataStart: number, offset: number, length: number, stats?: InflateStats, signal?: AbortSignal): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  const end = offset + length;
  await inflateEntry(file, entry, dataStart, end, (piece, at) => {
    const from = Math.max(offset, at);
    const to = Math.min(end, at + piece.length);
    if (to > from) out.set(piece.subarray(from - at, to - at), from - offset);
  }, stats, signal);
  return out;
}

/**
 * Deflated storages that several tensors view, each inflated once (up to the byte its tensors
 * reach) into a file of a temporary folder `<tmpdir>/owlery-inflate-<pid>-…`, then read by
 * position. {@link close} removes the folder; a killed process's folder is removed the next time
 * one is made (`models/package/stale.ts`).
 */
export class InflatedSpill {
  private dir: Promise<string> | undefined;
  private readonly files = new Map<string, Promise<{ handle: FileHandle; end: number }>>();

  constructor(private readonly parent: string = tmpdir(), private readonly signal?: AbortSignal) {}

  /** `length` bytes at `offset` of `entry`, inflating it once up to `reach` (≥ offset + length). */
  async read(file: OpenFile, entry: DeflatedEntry, dataStart: number, reach: number, offset: number, length: number, stats?: InflateStats): Promise<Uint8Array> {
    let spilled = this.files.get(entry.name);
    if (!spilled) {
      spilled = this.spill(file, entry, dataStart, reach, stats);
      spilled.catch(() => this.files.delete(entry.name));
      this.files.set(entry.name, spilled);
    }
    const { handle, end } = await spilled;
    if (offset + length > end) throw corrupt(file.path, `bytes ${offset}..${offset + length} of "${entry.name}" lie past the ${end} bytes its tensors reach`);
    return readAt({ path: file.path, size: end, handle }, offset, length, `zip entry "${entry.name}" (inflated)`);
  }

  private async spill(file: OpenFile, entry: DeflatedEntry, dataStart: number, reach: number, stats?: InflateStats): Promise<{ handle: FileHandle; end: number }> {
    this.dir ??= removeStale(this.parent, SPILL_FOLDER).then(() => mkdtemp(join(this.parent, `${SPILL_PREFIX}${process.pid}-`)));
    const path = join(await this.dir, `${this.files.size}`);
    const handle = await open(path, 'w+');
    try {
      await inflateEntry(file, entry, dataStart, reach, async (piece, at) => {
        let done = 0;
        while (done < piece.length) done += (await handle.write(piece, done, piece.length - done, at + done)).bytesWritten;
      }, stats, this.signal);
    } catch (err) {
      await handle.close();
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
        throw new OwleryError('DISK_FULL', `not enough space in ${this.parent} to unpack "${entry.name}" of ${file.path} (${reach} bytes)`, { path: file.path });
      }
      throw err;
    }
    return { handle, end: Math.min(reach, entry.size) };
  }

  /** Closes and removes the temporary files. */
  async close(): Promise<void> {
    for (const f of this.files.values()) await f.then((x) => x.handle.close(), () => {});
    this.files.clear();
    const dir = this.dir;
    this.dir = undefined;
    if (dir) await dir.then((d) => rm(d, { recursive: true, force: true }), () => {}).catch(() => {});
  }
}
