/**
 * Hostile images for the robustness suite: small valid seed files in every format the app reads
 * (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC), a seeded mutation fuzzer over them, and decompression
 * bombs (huge canvases behind a few bytes). Everything is made here from code: no binary files.
 */
import { deflateRawSync, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { mulberry32 } from '../../../src-shared/random.ts';
import { PNG_SIGNATURE, crc32, heicContainer, pngChunk, u16le, u32be, u32le } from '../../helpers/image-bytes.ts';

export { heicContainer } from '../../helpers/image-bytes.ts';

/** A seeded PRNG (mulberry32): the same seed gives the same cases on every machine. */
export function rng(seed: number): { next: () => number; int: (n: number) => number; pick: <T>(xs: readonly T[]) => T } {
  const next = mulberry32(seed);
  const int = (n: number): number => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)] };
}

// Byte helpers ------------------------------------------------------------------------------------

/** Recomputes the CRC of every chunk of a PNG (so a mutation gets past the CRC check). */
export function fixPngCrcs(b: Uint8Array): Uint8Array {
  const out = Buffer.from(b);
  let p = 8;
  while (p + 12 <= out.length) {
    const len = out.readUInt32BE(p);
    if (len > out.length - p - 12) break;
    out.writeUInt32BE(crc32(out.subarray(p + 4, p + 8 + len)), p + 8 + len);
    p += 12 + len;
  }
  return out;
}

// Seeds -------------------------------------------------------------------------------------------

/** A seed file the fuzzer mutates. */
export interface SeedImage {
  name: string;
  format: 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'avif' | 'heic';
  bytes: Uint8Array;
}

function picture(w: number, h: number, channels: 3 | 4, seed: number): Uint8Array {
  const r = rng(seed);
  const data = new Uint8Array(w * h * channels);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * channels;
      const disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 3) ** 2;
      data[i] = (x * 255) / w;
      data[i + 1] = disc ? 200 : (y * 255) / h;
      data[i + 2] = r.int(256); // some noise, so the entropy coders have real work
      if (channels === 4) data[i + 3] = disc ? 255 : (x * 7) & 255;
    }
  }
  return data;
}

/** Small valid images in every format and most of their variants (sizes 17 to 64 pixels). */
export async function seedImages(): Promise<SeedImage[]> {
  const rgb = (w: number, h: number, seed: number) => sharp(picture(w, h, 3, seed), { raw: { width: w, height: h, channels: 3 } });
  const rgba = (w: number, h: number, seed: number) => sharp(picture(w, h, 4, seed), { raw: { width: w, height: h, channels: 4 } });
  const out: SeedImage[] = [];
  const add = async (name: string, format: SeedImage['format'], p: Promise<Buffer> | Buffer): Promise<void> => {
    out.push({ name, format, bytes: new Uint8Array(await p) });
  };
  await add('baseline.jpg', 'jpeg', rgb(48, 32, 1).jpeg({ quality: 80 }).toBuffer());
  await add('progressive.jpg', 'jpeg', rgb(40, 40, 2).jpeg({ progressive: true, quality: 70 }).toBuffer());
  await add('gray-444.jpg', 'jpeg', rgb(33, 17, 3).greyscale().jpeg({ chromaSubsampling: '4:4:4' }).toBuffer());
  await add('exif-rotated.jpg', 'jpeg', rgb(32, 24, 4).jpeg().withMetadata({ orientation: 6 }).toBuffer());
  await add('cmyk.jpg', 'jpeg', rgb(24, 24, 5).toColourspace('cmyk').jpeg().toBuffer());
  await add('rgb.png', 'png', rgb(40, 30, 6).png().toBuffer());
  await add('rgba-interlaced.png', 'png', rgba(32, 32, 7).png({ progressive: true }).toBuffer());
  await add('palette.png', 'png', rgb(36, 20, 8).png({ palette: true, colours: 16 }).toBuffer());
  await add('rgb16.png', 'png', rgb(20, 20, 9).toColourspace('rgb16').png().toBuffer());
  await add('lossy.webp', 'webp', rgb(48, 32, 10).webp({ quality: 60 }).toBuffer());
  await add('lossless-alpha.webp', 'webp', rgba(32, 32, 11).webp({ lossless: true }).toBuffer());
  await add('animated.webp', 'webp', animated(3).webp({ loop: 0 }).toBuffer());
  await add('static.gif', 'gif', rgb(40, 24, 12).gif().toBuffer());
  await add('animated.gif', 'gif', animated(4).gif({ loop: 0 }).toBuffer());
  await add('deflate.tif', 'tiff', rgb(24, 24, 13).tiff({ compression: 'deflate' }).toBuffer());
  await add('photo.avif', 'avif', rgb(32, 32, 14).avif({ quality: 50, effort: 0 }).toBuffer());
  await add('iphone.heic', 'heic', heicContainer(64, 48));
  return out;

  function animated(frames: number) {
    const w = 24;
    const h = 16;
    const strip = new Uint8Array(w * h * frames * 3);
    for (let f = 0; f < frames; f++) strip.set(picture(w, h, 3, 100 + f), f * w * h * 3);
    return sharp(strip, { raw: { width: w, height: h * frames, channels: 3, pageHeight: h } as { width: number; height: number; channels: 3 } });
  }
}

// Mutations ---------------------------------------------------------------------------------------

const INTERESTING = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
const INTERESTING16 = [0, 1, 0x7fff, 0x8000, 0xffff, 0x4000, 16383, 16384];

/** The mutation applied to a seed (for reproducing a case). */
export type MutationKind = 'bitflip' | 'bytes' | 'truncate' | 'delete' | 'duplicate' | 'insert' | 'splice' | 'size-field' | 'png-crc-fixed' | 'repeat-chunk';

/**
 * One fuzz case: a seed mutated with a mutation picked by `r`. The seed's own format decides the
 * structured mutations (header size fields, PNG chunks with fixed CRCs).
 */
export function mutate(seed: SeedImage, other: SeedImage, r: ReturnType<typeof rng>): { kind: MutationKind; bytes: Uint8Array } {
  const src = seed.bytes;
  const b = Buffer.from(src);
  const pos = (): number => r.int(b.length);
  const kinds: MutationKind[] = ['bitflip', 'bitflip', 'bytes', 'truncate', 'delete', 'duplicate', 'insert', 'splice', 'size-field', 'repeat-chunk'];
  if (seed.format === 'png') kinds.push('png-crc-fixed', 'png-crc-fixed');
  const kind = r.pick(kinds);
  switch (kind) {
    case 'bitflip': {
      // Mostly in the first 256 bytes, where the headers are.
      for (let n = 1 + r.int(8); n > 0; n--) {
        const p = r.next() < 0.6 ? r.int(Math.min(256, b.length)) : pos();
        b[p] ^= 1 << r.int(8);
      }
      return { kind, bytes: b };
    }
    case 'bytes': {
      for (let n = 1 + r.int(4); n > 0; n--) b[pos()] = r.pick(INTERESTING);
      return { kind, bytes: b };
    }
    case 'truncate':
      return { kind, bytes: b.subarray(0, r.int(b.length)) };
    case 'delete': {
      const at = pos();
      const len = 1 + r.int(Math.min(64, b.length - at));
      return { kind, bytes: Buffer.concat([b.subarray(0, at), b.subarray(at + len)]) };
    }
    case 'duplicate': {
      const at = pos();
      const len = 1 + r.int(Math.min(128, b.length - at));
      const to = pos();
      return { kind, bytes: Buffer.concat([b.subarray(0, to), b.subarray(at, at + len), b.subarray(to)]) };
    }
    case 'insert': {
      const junk = Buffer.alloc(1 + r.int(64));
      for (let i = 0; i < junk.length; i++) junk[i] = r.next() < 0.5 ? r.pick(INTERESTING) : r.int(256);
      const to = pos();
      return { kind, bytes: Buffer.concat([b.subarray(0, to), junk, b.subarray(to)]) };
    }
    case 'splice': {
      const cut = pos();
      const from = r.int(other.bytes.length);
      return { kind, bytes: Buffer.concat([b.subarray(0, cut), Buffer.from(other.bytes.subarray(from))]) };
    }
    case 'repeat-chunk': {
      // A slice repeated many times (long runs of markers, chunks or frames), capped at 256 KiB.
      const at = pos();
      const len = 1 + r.int(Math.min(32, b.length - at));
      const times = 2 + r.int(Math.floor((256 * 1024) / len / 4));
      const rep = Buffer.alloc(len * times);
      for (let i = 0; i < times; i++) b.copy(rep, i * len, at, at + len);
      return { kind, bytes: Buffer.concat([b.subarray(0, at), rep, b.subarray(at)]) };
    }
    case 'size-field':
      return { kind, bytes: sizeFieldMutation(seed, b, r) };
    case 'png-crc-fixed': {
      // Flip bits anywhere, then recompute the CRCs: the decoder sees damage the CRC cannot flag.
      for (let n = 1 + r.int(6); n > 0; n--) b[8 + r.int(b.length - 8)] ^= 1 << r.int(8);
      return { kind, bytes: fixPngCrcs(b) };
    }
  }
}

/** Writes odd values into a format's width/height fields (0, 1, huge, sign bits). */
function sizeFieldMutation(seed: SeedImage, b: Buffer, r: ReturnType<typeof rng>): Uint8Array {
  const v16 = () => r.pick(INTERESTING16);
  switch (seed.format) {
    case 'png': {
      b.writeUInt32BE(r.pick([0, 1, 0x7fffffff, 0x80000000, 100000, 65535]), r.next() < 0.5 ? 16 : 20);
      return r.next() < 0.7 ? fixPngCrcs(b) : b;
    }
    case 'gif': {
      b.writeUInt16LE(v16(), r.next() < 0.5 ? 6 : 8); // logical screen
      const desc = b.indexOf(0x2c, 13);
      if (desc > 0 && desc + 9 < b.length && r.next() < 0.5) b.writeUInt16LE(v16(), desc + 5 + 2 * r.int(2)); // frame size
      return b;
    }
    case 'jpeg': {
      for (const marker of [0xc0, 0xc1, 0xc2]) {
        const at = b.indexOf(Buffer.from([0xff, marker]));
        if (at > 0 && at + 9 < b.length) {
          b.writeUInt16BE(v16(), at + 5 + 2 * r.int(2));
          if (r.next() < 0.3) b[at + 9] = r.pick([0, 1, 2, 4, 255]); // component count
          return b;
        }
      }
      return b;
    }
    case 'webp': {
      const vp8x = b.indexOf(Buffer.from('VP8X'));
      if (vp8x > 0 && vp8x + 18 <= b.length) {
        const at = vp8x + 12 + 3 * r.int(2);
        const v = r.pick([0, 1, 0xffffff, 16383, 16384]);
        b[at] = v & 255;
        b[at + 1] = (v >> 8) & 255;
        b[at + 2] = (v >> 16) & 255;
        return b;
      }
      const vp8l = b.indexOf(Buffer.from('VP8L'));
      if (vp8l > 0 && vp8l + 13 <= b.length) {
        b.writeUInt32LE(0x2f | ((r.int(1 << 14) << 8) >>> 0), vp8l + 8) ; // signature + width bits
        return b;
      }
      const vp8 = b.indexOf(Buffer.from('VP8 '));
      if (vp8 > 0 && vp8 + 18 <= b.length) b.writeUInt16LE(v16() & 0x3fff, vp8 + 14 + 2 * r.int(2));
      return b;
    }
    case 'tiff': {
      // First IFD entries for ImageWidth (256) and ImageLength (257).
      const ifd = b.readUInt32LE(4);
      const n = ifd + 2 < b.length ? b.readUInt16LE(ifd) : 0;
      for (let i = 0; i < n && ifd + 2 + i * 12 + 12 <= b.length; i++) {
        const o = ifd + 2 + i * 12;
        const tag = b.readUInt16LE(o);
        if ((tag === 256 || tag === 257) && r.next() < 0.7) {
          if (b.readUInt16LE(o + 2) === 3) b.writeUInt16LE(v16(), o + 8);
          else b.writeUInt32LE(r.pick([0, 1, 0xffffffff, 100000, 65536]), o + 8);
        }
      }
      return b;
    }
    case 'avif':
    case 'heic': {
      const ispe = b.indexOf(Buffer.from('ispe'));
      if (ispe > 0 && ispe + 16 <= b.length) b.writeUInt32BE(r.pick([0, 1, 0xffffffff, 100000, 65536]), ispe + 8 + 4 * r.int(2));
      return b;
    }
  }
}

// Decompression bombs -----------------------------------------------------------------------------

/** Adler-32 of `n` zero bytes. */
function adler32OfZeros(n: number): number {
  const MOD = 65521;
  const a = 1;
  const bsum = n % MOD; // b += a (= 1) for every byte
  return ((bsum << 16) | a) >>> 0;
}

/**
 * A real PNG bomb: an 8-bit grayscale `w`×`h` image of zeros whose IDAT really inflates to
 * h·(w+1) bytes. The deflate stream is one compressed block of zeros repeated (full-flushed, so
 * each copy stands alone), which keeps building it cheap even for gigapixel images.
 */
export function pngBomb(w: number, h: number): Buffer {
  const row = w + 1;
  const rowsPerBlock = Math.max(1, Math.floor((4 * 1024 * 1024) / row));
  const blockRaw = deflateRawSync(Buffer.alloc(row * rowsPerBlock), { level: 9, finishFlush: 3 /* Z_FULL_FLUSH */ });
  const full = Math.floor(h / rowsPerBlock);
  const rest = h - full * rowsPerBlock;
  const tail = deflateRawSync(Buffer.alloc(row * rest), { level: 9 }); // final block
  const parts: Buffer[] = [Buffer.from([0x78, 0xda])];
  for (let i = 0; i < full; i++) parts.push(blockRaw);
  parts.push(tail, u32be(adler32OfZeros(row * h)));
  const ihdr = Buffer.concat([u32be(w), u32be(h), Buffer.from([8, 0, 0, 0, 0])]);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A small valid PNG carrying an extra chunk before IDAT (e.g. a compressed-text or ICC bomb). */
export function pngWithChunk(type: string, data: Uint8Array): Buffer {
  const ihdr = Buffer.concat([u32be(8), u32be(8), Buffer.from([8, 0, 0, 0, 0])]);
  const idat = deflateSync(Buffer.alloc(8 * 9));
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk(type, data), pngChunk('IDAT', idat), pngChunk('IEND', Buffer.alloc(0))]);
}

/** `zTXt`/`iCCP` payload: a keyword, NUL, method 0, then zlib data inflating to `n` zero bytes. */
export function compressedChunkBomb(keyword: string, n: number): Buffer {
  return Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.from([0, 0]), deflateSync(Buffer.alloc(n), { level: 9 })]);
}

/** A JPEG whose frame header claims `w`×`h` (the scan data is that of a small image). */
export async function jpegClaiming(w: number, h: number): Promise<Buffer> {
  const jpg = Buffer.from(await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer());
  const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
  jpg.writeUInt16BE(h, sof + 5);
  jpg.writeUInt16BE(w, sof + 7);
  return jpg;
}

/**
 * A GIF with a `w`×`h` logical screen (the "huge canvas" bomb: decoders allocate the screen) and one
 * tiny 1×1 frame in it.
 */
export function gifHugeCanvas(w: number, h: number): Buffer {
  return Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    u16le(w), u16le(h), Buffer.from([0x80, 0, 0]), // global colour table of 2 entries
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x2c]), u16le(0), u16le(0), u16le(1), u16le(1), Buffer.from([0]), // image descriptor, 1×1
    Buffer.from([2, 2, 0x4c, 0x01, 0]), // LZW min code size 2, one sub-block: clear, 0, end
    Buffer.from([0x3b]),
  ]);
}

/** A GIF whose single frame (and screen) is `w`×`h`, with LZW data for a few pixels only. */
export function gifHugeFrame(w: number, h: number): Buffer {
  return Buffer.concat([
    Buffer.from('GIF89a', 'latin1'),
    u16le(w), u16le(h), Buffer.from([0x80, 0, 0]),
    Buffer.from([0, 0, 0, 255, 255, 255]),
    Buffer.from([0x2c]), u16le(0), u16le(0), u16le(w), u16le(h), Buffer.from([0]),
    Buffer.from([2, 2, 0x4c, 0x01, 0]),
    Buffer.from([0x3b]),
  ]);
}

/**
 * An extended (VP8X) animated WebP with a `w`×`h` canvas (up to 2^24 each) and one tiny 1×1
 * lossless frame: decoding the first frame means compositing onto the whole canvas.
 */
export async function webpHugeCanvas(w: number, h: number): Promise<Buffer> {
  const tiny = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 4, background: '#ff000080' } }).webp({ lossless: true }).toBuffer());
  const vp8l = tiny.indexOf(Buffer.from('VP8L'));
  const frameData = tiny.subarray(vp8l); // the VP8L chunk, header included
  const u24 = (v: number) => Buffer.from([v & 255, (v >> 8) & 255, (v >> 16) & 255]);
  const chunk = (fourcc: string, data: Buffer) => Buffer.concat([Buffer.from(fourcc, 'latin1'), u32le(data.length), data, data.length % 2 ? Buffer.from([0]) : Buffer.alloc(0)]);
  const vp8x = chunk('VP8X', Buffer.concat([Buffer.from([0x12, 0, 0, 0]), u24(w - 1), u24(h - 1)])); // animation + alpha
  const anim = chunk('ANIM', Buffer.concat([u32le(0), u16le(0)]));
  const anmf = chunk('ANMF', Buffer.concat([u24(0), u24(0), u24(0), u24(0), u24(100), Buffer.from([0]), frameData]));
  const body = Buffer.concat([Buffer.from('WEBP', 'latin1'), vp8x, anim, anmf]);
  return Buffer.concat([Buffer.from('RIFF', 'latin1'), u32le(body.length), body]);
}

/** A lossless WebP whose VP8L header claims `w`×`h` (at most 16384 each). */
export async function webpClaiming(w: number, h: number): Promise<Buffer> {
  const b = Buffer.from(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#336699' } }).webp({ lossless: true }).toBuffer());
  const at = b.indexOf(Buffer.from('VP8L')) + 8;
  const bits = ((w - 1) & 0x3fff) | (((h - 1) & 0x3fff) << 14) | (b.readUInt32LE(at + 1) & 0xf0000000);
  b.writeUInt32LE(bits >>> 0, at + 1);
  return b;
}

/** A TIFF whose first IFD claims `w`×`h` with a tiny strip. */
export async function tiffClaiming(w: number, h: number): Promise<Buffer> {
  const b = Buffer.from(await sharp({ create: { width: 4, height: 4, channels: 3, background: '#102030' } }).tiff().toBuffer());
  const ifd = b.readUInt32LE(4);
  const n = b.readUInt16LE(ifd);
  for (let i = 0; i < n; i++) {
    const o = ifd + 2 + i * 12;
    const tag = b.readUInt16LE(o);
    if (tag !== 256 && tag !== 257) continue;
    const v = tag === 256 ? w : h;
    if (b.readUInt16LE(o + 2) === 3) {
      b.writeUInt16LE(4, o + 2); // make it a LONG so values past 65535 fit
    }
    b.writeUInt32LE(v, o + 8);
  }
  return b;
}
