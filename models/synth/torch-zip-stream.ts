/**
 * A streaming variant of `writeTorchZip` (models/checkpoint/write-pytorch.ts): the same byte layout
 * (STORED entries, data 64-byte aligned through an `FB` padding extra field, DOS time 0, ZIP64
 * records when an entry or offset needs them), but each entry's bytes are produced by a callback
 * just before they are written and dropped right after, so a file of many gigabytes is written
 * holding one entry at a time.
 */
import { open } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

/** One zip entry, produced on demand. */
export interface StreamedZipEntry {
  name: string;
  /** The entry's bytes; called once, when the entry is written. */
  load: () => Promise<Uint8Array> | Uint8Array;
}

/** Options of `writeTorchZipStreaming`. */
export interface TorchZipStreamOptions {
  /** Called after each entry with the bytes written to the file so far. */
  onEntry?: (name: string, fileBytes: number) => void;
  signal?: AbortSignal;
}

const U32_MAX = 0xffffffff;

/**
 * Writes a torch-style zip of STORED entries to `path`, generating each entry when its turn comes.
 * Byte-identical to `writeTorchZip` for the same entries (without its test-only options).
 */
export async function writeTorchZipStreaming(path: string, entries: Iterable<StreamedZipEntry>, options: TorchZipStreamOptions = {}): Promise<number> {
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
      const data = await e.load();
      const name = new TextEncoder().encode(e.name);
      const size = data.byteLength;
      const crc = crc32(data) >>> 0;
      const localOffset = offset;
      const big = size >= U32_MAX || localOffset >= U32_MAX;
      const z64Local = big ? 20 : 0;
      const base = localOffset + 30 + name.length + z64Local;
      const pad = (64 - ((base + 4) % 64)) % 64;
      const extraLen = z64Local + 4 + pad;
      const h = new Uint8Array(30 + name.length + extraLen);
      const v = new DataView(h.buffer);
      v.setUint32(0, 0x04034b50, true);
      v.setUint16(4, big ? 45 : 20, true);
      v.setUint16(6, 0x0800, true);
      v.setUint16(8, 0, true);
      v.setUint32(14, crc, true);
      v.setUint32(18, big ? U32_MAX : size, true);
      v.setUint32(22, big ? U32_MAX : size, true);
      v.setUint16(26, name.length, true);
      v.setUint16(28, extraLen, true);
      h.set(name, 30);
      let p = 30 + name.length;
      if (big) {
        v.setUint16(p, 0x0001, true);
        v.setUint16(p + 2, 16, true);
        v.setBigUint64(p + 4, BigInt(size), true);
        v.setBigUint64(p + 12, BigInt(size), true);
        p += 20;
      }
      v.setUint16(p, 0x4246, true); // "FB"
      v.setUint16(p + 2, pad, true);
      h.fill(0x5a, p + 4, p + 4 + pad); // "Z"
      await write(h);
      await write(data);
      const z64Central = big ? 28 : 0;
      const c = new Uint8Array(46 + name.length + z64Central);
      const cv = new DataView(c.buffer);
      cv.setUint32(0, 0x02014b50, true);
      cv.setUint16(4, big ? 45 : 20, true);
      cv.setUint16(6, big ? 45 : 20, true);
      cv.setUint16(8, 0x0800, true);
      cv.setUint16(10, 0, true);
      cv.setUint32(16, crc, true);
      cv.setUint32(20, big ? U32_MAX : size, true);
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
        cv.setBigUint64(q + 12, BigInt(size), true);
        cv.setBigUint64(q + 20, BigInt(localOffset), true);
      }
      central.push(c);
      count++;
      options.onEntry?.(e.name, offset);
    }
    const cdOffset = offset;
    for (const c of central) await write(c);
    const cdSize = offset - cdOffset;
    const needZip64 = cdOffset >= U32_MAX || count >= 0xffff;
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
