/**
 * A small, strict zip reader for PyTorch checkpoints: central directory (ZIP64 included, since 7B
 * shards exceed 4 GB), local headers, STORED entries read by position, DEFLATE entries inflated
 * with node:zlib as a stream that stops at the last byte asked for (`bounded-inflate.ts`).
 */
import { crc32 } from 'node:zlib';
import { OwleryError } from '../../src-shared/errors.ts';
import { inflateRange } from './bounded-inflate.ts';
import type { InflateStats } from './bounded-inflate.ts';
import { readAt } from './io.ts';
import type { OpenFile } from './io.ts';

const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

/** Largest central directory accepted (a 7B shard's has a few hundred entries, well under 1 MB). */
const MAX_CENTRAL_DIRECTORY = 256 * 1024 * 1024;

/** One entry of the central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = STORED, 8 = DEFLATE. */
  method: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function corrupt(path: string, msg: string): OwleryError {
  return new OwleryError('CHECKPOINT_INVALID', `${path}: corrupt zip archive: ${msg}`, { path });
}

function u64(view: DataView, off: number, path: string, what: string): number {
  const v = view.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(path, `${what} ${v} is too large`);
  return Number(v);
}

/** An open zip archive: its entries by name, and reads of entry data. */
export class ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /** DEFLATE inflations done through this archive (how many, bytes produced). */
  readonly inflated: InflateStats = { runs: 0, bytes: 0 };
  private readonly dataOffsets = new Map<string, number>();

  private constructor(readonly file: OpenFile, entries: Map<string, ZipEntry>, private readonly centralStart: number, readonly signal?: AbortSignal) {
    this.entries = entries;
  }

  /** Reads and validates the central directory of an open file; `signal` stops inflations between pieces. */
  static async open(file: OpenFile, signal?: AbortSignal): Promise<ZipArchive> {
    const path = file.path;
    if (file.size < 22) throw corrupt(path, `file is only ${file.size} bytes`);
    const tailLen = Math.min(file.size, 22 + 65535);
    const tailStart = file.size - tailLen;
    const tail = await readAt(file, tailStart, tailLen, 'the end of the zip archive');
    const tv = new DataView(tail.buffer);
    let eocd = -1;
    for (let i = tailLen - 22; i >= 0; i--) {
      if (tv.getUint32(i, true) === SIG_EOCD && i + 22 + tv.getUint16(i + 20, true) <= tailLen) {
        eocd = i;
        break;
      }
    }
    if (eocd < 0) throw corrupt(path, 'no end-of-central-directory record (the file is truncated or not a zip)');
    let count = tv.getUint16(eocd + 10, true);
    let cdSize = tv.getUint32(eocd + 12, true);
    let cdOffset = tv.getUint32(eocd + 16, true);
    const eocdAbs = tailStart + eocd;
    let cdEndLimit = eocdAbs;
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff || (eocd >= 20 && tv.getUint32(eocd - 20, true) === SIG_ZIP64_LOCATOR)) {
      if (eocd < 20 || tv.getUint32(eocd - 20, true) !== SIG_ZIP64_LOCATOR) throw corrupt(path, 'ZIP64 values without a ZIP64 locator');
      const z64Off = u64(tv, eocd - 20 + 8, path, 'ZIP64 record offset');
      if (z64Off + 56 > eocdAbs - 20) throw corrupt(path, `ZIP64 end record offset ${z64Off} is out of range`);
      const rec = await readAt(file, z64Off, 56, 'the ZIP64 end-of-central-directory record');
      const rv = new DataView(rec.buffer);
      if (rv.getUint32(0, true) !== SIG_ZIP64_EOCD) throw corrupt(path, 'bad ZIP64 end-of-central-directory signature');
      count = u64(rv, 32, path, 'entry count');
      cdSize = u64(rv, 40, path, 'central directory size');
      cdOffset = u64(rv, 48, path, 'central directory offset');
      cdEndLimit = z64Off;
    }
    if (cdSize > MAX_CENTRAL_DIRECTORY) throw corrupt(path, `central directory of ${cdSize} bytes exceeds the limit`);
    if (cdOffset + cdSize > cdEndLimit) {
      throw corrupt(path, `central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record; the file is truncated or damaged`);
    }
    const cd = await readAt(file, cdOffset, cdSize, 'the zip central directory');
    const cv = new DataView(cd.buffer);
    const entries = new Map<string, ZipEntry>();
    const dec = new TextDecoder('utf-8', { fatal: false });
    let p = 0;
    for (let n = 0; n < count; n++) {
      if (p + 46 > cdSize || cv.getUint32(p, true) !== SIG_CENTRAL) throw corrupt(path, `central directory entry ${n} is damaged`);
      const flags = cv.getUint16(p + 8, true);
      const method = cv.getUint16(p + 10, true);
      const crc = cv.getUint32(p + 16, true);
      let compressedSize = cv.getUint32(p + 20, true);
      let size = cv.getUint32(p + 24, true);
      const nameLen = cv.getUint16(p + 28, true);
      const extraLen = cv.getUint16(p + 30, true);
      const commentLen = cv.getUint16(p + 32, true);
      let localHeaderOffset = cv.getUint32(p + 42, true);
      const end = p + 46 + nameLen + extraLen + commentLen;
      if (end > cdSize) throw corrupt(path, `central directory entry ${n} runs past the directory`);
      const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
      // ZIP64 extended information: the fields present are those whose 32-bit value is all ones.
      let q = p + 46 + nameLen;
      const extraEnd = q + extraLen;
      while (q + 4 <= extraEnd) {
        const id = cv.getUint16(q, true);
        const len = cv.getUint16(q + 2, true);
        if (q + 4 + len > extraEnd) throw corrupt(path, `entry "${name}" has a damaged extra field`);
        if (id === 0x0001) {
          let r = q + 4;
          const need = (): number => {
            if (r + 8 > q + 4 + len) throw corrupt(path, `entry "${name}" has a short ZIP64 extra field`);
            const v = u64(cv, r, path, `entry "${name}" ZIP64 value`);
            r += 8;
            return v;
          };
          if (size === 0xffffffff) size = need();
          if (compressedSize === 0xffffffff) compressedSize = need();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = need();
        }
        q += 4 + len;
      }
      if (flags & 1) throw new OwleryError('CHECKPOINT_UNSUPPORTED', `${path}: zip entry "${name}" is encrypted`, { path });
      if (entries.has(name)) throw corrupt(path, `entry "${name}" appears twice`);
      if (localHeaderOffset + 30 > cdOffset) throw corrupt(path, `entry "${name}" starts beyond the data area`);
      entries.set(name, { name, method, crc32: crc, compressedSize, size, localHeaderOffset });
      p = end;
    }
    return new ZipArchive(file, entries, cdOffset, signal);
  }

  /** Absolute file offset of an entry's (compressed) data, checked against the archive layout. */
  async dataOffset(entry: ZipEntry): Promise<number> {
    const known = this.dataOffsets.get(entry.name);
    if (known !== undefined) return known;
    const path = this.file.path;
    const h = await readAt(this.file, entry.localHeaderOffset, 30, `the local header of "${entry.name}"`);
    const hv = new DataView(h.buffer);
    if (hv.getUint32(0, true) !== SIG_LOCAL) throw corrupt(path, `entry "${entry.name}" has no local header at offset ${entry.localHeaderOffset}`);
    const start = entry.localHeaderOffset + 30 + hv.getUint16(26, true) + hv.getUint16(28, true);
    if (start + entry.compressedSize > this.centralStart) {
      throw corrupt(path, `data of "${entry.name}" (${entry.compressedSize} bytes at ${start}) runs into the central directory`);
    }
    this.dataOffsets.set(entry.name, start);
    return start;
  }

  /** Looks an entry up, failing with a message naming it. */
  entry(name: string): ZipEntry {
    const e = this.entries.get(name);
    if (!e) throw new OwleryError('CHECKPOINT_INVALID', `${this.file.path}: zip entry "${name}" is missing`, { path: this.file.path, entry: name });
    return e;
  }

  /** Reads and (if needed) inflates a whole entry, verifying its CRC-32. */
  async read(name: string): Promise<Uint8Array> {
    const e = this.entry(name);
    const data = await this.readRange(e, 0, e.size);
    if ((crc32(data) >>> 0) !== e.crc32) throw corrupt(this.file.path, `CRC-32 mismatch in "${name}"`);
    return data;
  }

  /**
   * Reads `length` bytes at `offset` of an entry's uncompressed data. STORED entries are read by
   * position; DEFLATE entries are inflated from their start up to `offset + length`, no further.
   */
  async readRange(e: ZipEntry, offset: number, length: number): Promise<Uint8Array> {
    const path = this.file.path;
    if (offset < 0 || offset + length > e.size) {
      throw corrupt(path, `bytes ${offset}..${offset + length} requested from "${e.name}", which holds ${e.size}`);
    }
    const start = await this.dataOffset(e);
    if (e.method === 0) {
      if (e.compressedSize !== e.size) throw corrupt(path, `stored entry "${e.name}" has different compressed and uncompressed sizes`);
      return readAt(this.file, start + offset, length, `zip entry "${e.name}"`);
    }
    if (e.method === 8) return inflateRange(this.file, e, start, offset, length, this.inflated, this.signal);
    throw new OwleryError('CHECKPOINT_UNSUPPORTED', `${path}: zip entry "${e.name}" uses compression method ${e.method} (only stored and deflate are supported)`, { path });
  }
}
