// decodeImage: Pillow convert('RGB') semantics on formats and pixel layouts the fixture does not
// cover, EXIF orientation, and hostile input. Test images are built here, either by hand (PNG,
// TIFF and HEIF containers written byte by byte, so the expected pixels are known without a
// decoder) or with sharp's encoders (round trips).
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync, createDeflate } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ErrorCode } from '../../../src-shared/errors.ts';
import { decodeImage } from '../../../src-main/engine/image/decode.ts';
import type { DecodedImage } from '../../../src-main/engine/image/decode.ts';
import { PNG_SIGNATURE, heicContainer, pngChunk, u32be } from '../../helpers/image-bytes.ts';

// ---------------------------------------------------------------------------------------------
// Byte-level builders

/** A PNG from already-packed scanlines (each row without its filter byte; filter 0 is added). */
function png(w: number, h: number, colorType: number, bitDepth: number, rows: Uint8Array, extra: Buffer[] = []): Buffer {
  const rowBytes = rows.length / h;
  const filtered = Buffer.alloc((rowBytes + 1) * h);
  for (let y = 0; y < h; y++) filtered.set(rows.subarray(y * rowBytes, (y + 1) * rowBytes), y * (rowBytes + 1) + 1);
  const ihdr = Buffer.concat([u32be(w), u32be(h), Buffer.from([bitDepth, colorType, 0, 0, 0])]);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), ...extra, pngChunk('IDAT', deflateSync(filtered)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A `w`×`h` 1-bit all-black PNG, deflated in a stream so the test never holds the raw rows. */
async function pngBomb(w: number, h: number): Promise<Buffer> {
  const rowBytes = 1 + Math.ceil(w / 8);
  const rowsPerWrite = 1000;
  const block = Buffer.alloc(rowBytes * rowsPerWrite);
  const z = createDeflate({ level: 9 });
  const chunks: Buffer[] = [];
  z.on('data', (c: Buffer) => chunks.push(c));
  for (let y = 0; y < h; y += rowsPerWrite) {
    const n = Math.min(rowsPerWrite, h - y);
    if (!z.write(n === rowsPerWrite ? block : block.subarray(0, n * rowBytes))) await once(z, 'drain');
  }
  z.end();
  await once(z, 'end');
  const ihdr = Buffer.concat([u32be(w), u32be(h), Buffer.from([1, 0, 0, 0, 0])]);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(chunks)), pngChunk('IEND', Buffer.alloc(0))]);
}

/** An uncompressed, single-strip, 8-bit CMYK TIFF (little endian). */
function cmykTiff(w: number, h: number, cmyk: Uint8Array): Buffer {
  const entries: [number, number, number, number][] = [
    [256, 4, 1, w],
    [257, 4, 1, h],
    [258, 3, 4, 0], // BitsPerSample → offset patched below
    [259, 3, 1, 1], // no compression
    [262, 3, 1, 5], // separated (CMYK)
    [273, 4, 1, 0], // StripOffsets → patched
    [277, 3, 1, 4],
    [278, 4, 1, h],
    [279, 4, 1, cmyk.length],
    [284, 3, 1, 1],
    [332, 3, 1, 1], // InkSet: CMYK
  ];
  const ifdSize = 2 + entries.length * 12 + 4;
  const bpsOffset = 8 + ifdSize;
  const dataOffset = bpsOffset + 8;
  entries[2][3] = bpsOffset;
  entries[5][3] = dataOffset;
  const b = Buffer.alloc(dataOffset + cmyk.length);
  b.write('II', 0, 'latin1');
  b.writeUInt16LE(42, 2);
  b.writeUInt32LE(8, 4);
  b.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, count, value], i) => {
    const o = 10 + i * 12;
    b.writeUInt16LE(tag, o);
    b.writeUInt16LE(type, o + 2);
    b.writeUInt32LE(count, o + 4);
    if (type === 3 && count === 1) b.writeUInt16LE(value, o + 8);
    else b.writeUInt32LE(value, o + 8);
  });
  for (let i = 0; i < 4; i++) b.writeUInt16LE(8, bpsOffset + i * 2);
  b.set(cmyk, dataOffset);
  return b;
}

/** Deterministic pseudo-random bytes (xorshift32). */
function noise(n: number, seed = 0x9e3779b9): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s & 0xff;
  }
  return out;
}

/** A smooth, asymmetric RGB test picture. */
function gradient(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * 3;
      out[o] = Math.round((255 * x) / Math.max(1, w - 1));
      out[o + 1] = Math.round((255 * y) / Math.max(1, h - 1));
      out[o + 2] = (x * 7 + y * 3) % 256;
    }
  }
  return out;
}

function rawSharp(data: Uint8Array, width: number, height: number, channels: 1 | 2 | 3 | 4, pageHeight?: number) {
  return sharp(data, { raw: { width, height, channels, ...(pageHeight ? { pageHeight } : {}) } });
}

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function meanDiff(a: Uint8Array, b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

async function expectCode(p: Promise<unknown>, code: ErrorCode, messagePart?: string | RegExp): Promise<OwleryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected ${code}`).toBeInstanceOf(OwleryError);
  const oe = err as OwleryError;
  expect(oe.code, oe.message).toBe(code);
  if (messagePart !== undefined) expect(oe.message).toMatch(messagePart);
  return oe;
}

let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-image-'));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function file(name: string, bytes: Uint8Array): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

// ---------------------------------------------------------------------------------------------

describe('decodeImage: pixel layouts (convert("RGB") semantics)', () => {
  it('8-bit grayscale becomes R = G = B', async () => {
    const g = noise(13 * 7);
    const img = await decodeImage(png(13, 7, 0, 8, g));
    expect(img).toMatchObject({ width: 13, height: 7, format: 'png', orientation: 1 });
    for (let p = 0; p < g.length; p++) expect([img.data[p * 3], img.data[p * 3 + 1], img.data[p * 3 + 2]]).toEqual([g[p], g[p], g[p]]);
  });

  it('grayscale + alpha drops the alpha and keeps the gray under transparent pixels', async () => {
    const la = noise(9 * 5 * 2, 7);
    for (let p = 0; p < 45; p += 2) la[p * 2 + 1] = 0; // every other pixel fully transparent
    const img = await decodeImage(png(9, 5, 4, 8, la));
    for (let p = 0; p < 45; p++) expect([img.data[p * 3], img.data[p * 3 + 1], img.data[p * 3 + 2]]).toEqual([la[p * 2], la[p * 2], la[p * 2]]);
  });

  it('RGBA drops the alpha without compositing (loud colours under alpha 0 survive)', async () => {
    const w = 8;
    const h = 6;
    const rgba = new Uint8Array(w * h * 4);
    const want = new Uint8Array(w * h * 3);
    for (let p = 0; p < w * h; p++) {
      const c = p % 3 === 0 ? [255, 0, 255] : p % 3 === 1 ? [0, 255, 0] : [p * 5, 255 - p * 5, 17];
      rgba.set([...c, p % 2 === 0 ? 0 : 128], p * 4);
      want.set(c, p * 3);
    }
    const img = await decodeImage(png(w, h, 6, 8, rgba));
    expect(maxDiff(img.data, want)).toBe(0);
  });

  it('palette PNG is expanded to its palette colours, tRNS ignored', async () => {
    const palette = [
      [255, 0, 255],
      [0, 255, 255],
      [12, 34, 56],
      [200, 100, 0],
    ];
    const plte = Buffer.from(palette.flat());
    const trns = Buffer.from([0, 0, 255, 128]); // entries 0 and 1 transparent, loud colours underneath
    const w = 10;
    const h = 4;
    const idx = new Uint8Array(w * h).map((_, i) => (i * 7 + (i >> 3)) % 4);
    // 2-bit packed indices, 4 per byte, most significant first.
    const rowBytes = Math.ceil(w / 4);
    const rows = new Uint8Array(rowBytes * h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) rows[y * rowBytes + (x >> 2)] |= idx[y * w + x] << (6 - 2 * (x & 3));
    const img = await decodeImage(png(w, h, 3, 2, rows, [pngChunk('PLTE', plte), pngChunk('tRNS', trns)]));
    const want = new Uint8Array(w * h * 3);
    idx.forEach((v, p) => want.set(palette[v], p * 3));
    expect(maxDiff(img.data, want)).toBe(0);
  });

  it('1-bit grayscale becomes 0 / 255', async () => {
    const img = await decodeImage(png(8, 1, 0, 1, Uint8Array.of(0b10110001)));
    expect(Array.from(img.data.filter((_, i) => i % 3 === 0))).toEqual([255, 0, 255, 255, 0, 0, 0, 255]);
  });

  it('16-bit RGB keeps the high byte of each sample, as Pillow does', async () => {
    const w = 7;
    const h = 3;
    const s = noise(w * h * 6, 3);
    const img = await decodeImage(png(w, h, 2, 16, s));
    const want = new Uint8Array(w * h * 3).map((_, i) => s[i * 2]);
    expect(maxDiff(img.data, want)).toBe(0);
  });

  it('16-bit RGBA keeps the high byte and drops alpha', async () => {
    const s = noise(5 * 2 * 8, 4);
    const img = await decodeImage(png(5, 2, 6, 16, s));
    const want = new Uint8Array(5 * 2 * 3).map((_, i) => s[Math.floor(i / 3) * 8 + (i % 3) * 2]);
    expect(maxDiff(img.data, want)).toBe(0);
  });

  it('16-bit grayscale keeps the high byte (Pillow would clip to 255: deliberately not copied)', async () => {
    const s = noise(6 * 2 * 2, 5);
    const img = await decodeImage(png(6, 2, 0, 16, s));
    for (let p = 0; p < 12; p++) expect(img.data.subarray(p * 3, p * 3 + 3)).toEqual(Uint8Array.of(s[p * 2], s[p * 2], s[p * 2]));
  });

  it('CMYK uses Pillow cmyk2rgb, not a colour-managed conversion', async () => {
    const w = 16;
    const h = 16;
    const cmyk = noise(w * h * 4, 11);
    const img = await decodeImage(cmykTiff(w, h, cmyk));
    expect(img.format).toBe('tiff');
    const want = new Uint8Array(w * h * 3);
    for (let p = 0; p < w * h; p++) {
      const nk = 255 - cmyk[p * 4 + 3];
      for (let c = 0; c < 3; c++) {
        const t = cmyk[p * 4 + c] * nk + 128;
        want[p * 3 + c] = Math.min(255, Math.max(0, nk - (((t >> 8) + t) >> 8)));
      }
    }
    expect(maxDiff(img.data, want)).toBe(0);
  });

  it('ignores an embedded ICC profile (Pillow does not colour-manage)', async () => {
    const w = 12;
    const h = 8;
    const rgb = gradient(w, h);
    // Borrow a real Display P3 profile from sharp, then write the known pixels with it by hand.
    const withP3 = await rawSharp(rgb, w, h, 3).withIccProfile('p3').png().toBuffer();
    const icc = (await sharp(withP3).metadata()).icc;
    expect(icc?.length).toBeGreaterThan(100);
    const iccp = pngChunk('iCCP', Buffer.concat([Buffer.from('P3\0', 'latin1'), Buffer.from([0]), deflateSync(icc!)]));
    const bytes = png(w, h, 2, 8, rgb, [iccp]);
    expect((await sharp(bytes).metadata()).hasProfile).toBe(true);
    // A colour-managed decode changes the pixels; ours must not.
    const managed = await sharp(bytes).raw().toBuffer();
    expect(maxDiff(new Uint8Array(managed), rgb)).toBeGreaterThan(0);
    const img = await decodeImage(bytes);
    expect(maxDiff(img.data, rgb)).toBe(0);
  });

  it('decodes a 1×1 image', async () => {
    const img = await decodeImage(png(1, 1, 2, 8, Uint8Array.of(10, 200, 30)));
    expect(img).toMatchObject({ width: 1, height: 1 });
    expect(Array.from(img.data)).toEqual([10, 200, 30]);
  });

  it('decodes a very wide image (4000×10)', async () => {
    const rgb = gradient(4000, 10);
    const img = await decodeImage(png(4000, 10, 2, 8, rgb));
    expect(img).toMatchObject({ width: 4000, height: 10 });
    expect(maxDiff(img.data, rgb)).toBe(0);
  });
});

describe('decodeImage: formats', () => {
  const w = 40;
  const h = 30;
  const rgb = gradient(w, h);

  it('JPEG', async () => {
    const img = await decodeImage(await rawSharp(rgb, w, h, 3).jpeg({ quality: 95 }).toBuffer());
    expect(img).toMatchObject({ width: w, height: h, format: 'jpeg' });
    expect(meanDiff(img.data, rgb)).toBeLessThan(6);
  });

  it('WebP lossless round-trips exactly; lossy stays close', async () => {
    const lossless = await decodeImage(await rawSharp(rgb, w, h, 3).webp({ lossless: true }).toBuffer());
    expect(lossless).toMatchObject({ width: w, height: h, format: 'webp' });
    expect(maxDiff(lossless.data, rgb)).toBe(0);
    const lossy = await decodeImage(await rawSharp(rgb, w, h, 3).webp({ quality: 90 }).toBuffer());
    expect(meanDiff(lossy.data, rgb)).toBeLessThan(4);
  });

  it('WebP with alpha drops the alpha', async () => {
    const rgba = new Uint8Array(w * h * 4);
    for (let p = 0; p < w * h; p++) rgba.set([rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2], p % 2 ? 255 : 0], p * 4);
    const img = await decodeImage(await rawSharp(rgba, w, h, 4).webp({ lossless: true, exact: true }).toBuffer());
    expect(maxDiff(img.data, rgb)).toBe(0);
  });

  it('GIF (few colours) round-trips exactly, and only the first frame is decoded', async () => {
    const colours = [
      [255, 0, 0],
      [0, 128, 255],
      [250, 250, 240],
      [20, 20, 20],
    ];
    const frame = (shift: number) => {
      const f = new Uint8Array(w * h * 3);
      for (let p = 0; p < w * h; p++) f.set(colours[(Math.floor((p % w) / 5) + Math.floor(p / w / 6) + shift) % 4], p * 3);
      return f;
    };
    const frames = Buffer.concat([frame(0), frame(1), frame(2)]);
    const gif = await rawSharp(frames, w, h * 3, 3, h).gif({ dither: 0, colours: 16, keepDuplicateFrames: true }).toBuffer();
    expect((await sharp(gif).metadata()).pages).toBe(3);
    const img = await decodeImage(gif);
    expect(img).toMatchObject({ width: w, height: h, format: 'gif' });
    expect(maxDiff(img.data, frame(0))).toBe(0);
  });

  it('GIF transparent pixels take the colour of the transparent palette entry, as in Pillow', async () => {
    const rgba = Uint8Array.from([255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 255, 200, 100, 50, 0]);
    const gif = Buffer.from(await rawSharp(rgba, 4, 1, 4).gif({ dither: 0 }).toBuffer());
    // Expect a global colour table right after the 13-byte header and one graphic control
    // extension naming the transparent index; paint that palette entry magenta.
    expect(gif[10] & 0x80).toBe(0x80);
    const gce = gif.indexOf(Buffer.from([0x21, 0xf9, 0x04]));
    expect(gif[gce + 3] & 1).toBe(1);
    const t = gif[gce + 6];
    gif.set([255, 0, 255], 13 + 3 * t);
    const img = await decodeImage(gif);
    expect(Array.from(img.data)).toEqual([255, 0, 0, 255, 0, 255, 0, 0, 255, 255, 0, 255]);
  });

  it('TIFF round-trips exactly; only the first page of a multi-page TIFF is decoded', async () => {
    const single = await decodeImage(await rawSharp(rgb, w, h, 3).tiff({ compression: 'lzw' }).toBuffer());
    expect(single).toMatchObject({ width: w, height: h, format: 'tiff' });
    expect(maxDiff(single.data, rgb)).toBe(0);
    const second = gradient(w, h).reverse();
    const multi = await rawSharp(Buffer.concat([rgb, second]), w, h * 2, 3, h).tiff({ compression: 'deflate' }).toBuffer();
    expect((await sharp(multi).metadata()).pages).toBe(2);
    const first = await decodeImage(multi);
    expect(first).toMatchObject({ width: w, height: h });
    expect(maxDiff(first.data, rgb)).toBe(0);
  });

  it('AVIF decodes (lossy, so close rather than exact)', async () => {
    const img = await decodeImage(await rawSharp(rgb, w, h, 3).avif({ quality: 90, chromaSubsampling: '4:4:4' }).toBuffer());
    expect(img).toMatchObject({ width: w, height: h, format: 'avif' });
    expect(meanDiff(img.data, rgb)).toBeLessThan(4);
  });

  it('HEIC (HEVC) fails with IMAGE_UNSUPPORTED and says what to do', async () => {
    const p = await file('IMG_0001.HEIC', heicContainer(4032, 3024));
    const err = await expectCode(decodeImage(p), 'IMAGE_UNSUPPORTED', /IMG_0001\.HEIC.*HEIC.*HEVC/);
    expect(err.message).toMatch(/JPEG/);
  });

  it('SVG is refused as unsupported (Pillow cannot open it either)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>');
    await expectCode(decodeImage(svg, { name: 'logo.svg' }), 'IMAGE_UNSUPPORTED', /logo\.svg.*SVG/);
  });

  it('reads from a path and from bytes alike', async () => {
    const bytes = await rawSharp(rgb, w, h, 3).png().toBuffer();
    const p = await file('same.png', bytes);
    const a = await decodeImage(p);
    const b = await decodeImage(new Uint8Array(bytes));
    expect(maxDiff(a.data, b.data)).toBe(0);
    expect(maxDiff(a.data, rgb)).toBe(0);
  });
});

describe('decodeImage: EXIF orientation', () => {
  // 3×2 blocks of 16 px, all different, so every flip and rotation is visible.
  const B = 16;
  const COLS = 3;
  const ROWS = 2;
  const W = B * COLS;
  const H = B * ROWS;
  const colours = [
    [230, 25, 25],
    [25, 200, 25],
    [30, 30, 230],
    [240, 220, 30],
    [20, 20, 20],
    [240, 240, 240],
  ];
  const stored = new Uint8Array(W * H * 3);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) stored.set(colours[Math.floor(y / B) * COLS + Math.floor(x / B)], (y * W + x) * 3);

  /** Where a viewer takes display pixel (x, y) from in the stored image, per EXIF orientation. */
  function storedCoord(o: number, x: number, y: number): [number, number] {
    switch (o) {
      case 1: return [x, y];
      case 2: return [W - 1 - x, y];
      case 3: return [W - 1 - x, H - 1 - y];
      case 4: return [x, H - 1 - y];
      case 5: return [y, x];
      case 6: return [y, H - 1 - x];
      case 7: return [W - 1 - y, H - 1 - x];
      case 8: return [W - 1 - y, x];
      default: throw new Error(`orientation ${o}`);
    }
  }

  async function jpegWithOrientation(o: number): Promise<Buffer> {
    return rawSharp(stored, W, H, 3).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).withMetadata({ orientation: o }).toBuffer();
  }

  function checkBlocks(img: DecodedImage, o: number): void {
    const swap = o >= 5;
    expect([img.width, img.height]).toEqual(swap ? [H, W] : [W, H]);
    // Sample the centre of each display block: JPEG blurs only at block edges.
    for (let by = 0; by < img.height / B; by++) {
      for (let bx = 0; bx < img.width / B; bx++) {
        const x = bx * B + B / 2;
        const y = by * B + B / 2;
        const [sx, sy] = storedCoord(o, x, y);
        const want = stored.subarray((sy * W + sx) * 3, (sy * W + sx) * 3 + 3);
        const got = img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3);
        expect(maxDiff(got, want), `orientation ${o}, display block (${bx},${by})`).toBeLessThanOrEqual(6);
      }
    }
  }

  it.each([1, 2, 3, 4, 5, 6, 7, 8])('orientation %i: pixels land where a viewer shows them', async (o) => {
    const bytes = await jpegWithOrientation(o);
    expect((await sharp(bytes).metadata()).orientation).toBe(o);
    const img = await decodeImage(bytes);
    expect(img.orientation).toBe(o);
    checkBlocks(img, o);
  });

  it.each([3, 6, 8])('orientation %i with applyExifOrientation: false keeps the stored layout (official behaviour)', async (o) => {
    const img = await decodeImage(await jpegWithOrientation(o), { applyExifOrientation: false });
    expect(img.orientation).toBe(o);
    checkBlocks(img, 1);
  });
});

describe('decodeImage: hostile and broken input', () => {
  const w = 64;
  const h = 48;
  const rgb = noise(w * h * 3, 21);

  it('a missing file is FILE_NOT_FOUND', async () => {
    await expectCode(decodeImage(join(dir, 'no-such-photo.jpg')), 'FILE_NOT_FOUND', /no-such-photo\.jpg/);
  });

  it('a folder is IMAGE_UNREADABLE', async () => {
    await expectCode(decodeImage(dir), 'IMAGE_UNREADABLE', /folder/);
  });

  it('an empty file is IMAGE_UNREADABLE', async () => {
    await expectCode(decodeImage(await file('empty.jpg', new Uint8Array(0))), 'IMAGE_UNREADABLE', /empty\.jpg.*empty/);
    await expectCode(decodeImage(new Uint8Array(0)), 'IMAGE_UNREADABLE', /empty/);
  });

  it('a truncated JPEG is IMAGE_UNREADABLE, not a grey-filled picture', async () => {
    const jpg = await rawSharp(rgb, w, h, 3).jpeg({ quality: 90 }).toBuffer();
    for (const frac of [0.3, 0.6, 0.95]) {
      const p = await file(`cut-${frac}.jpg`, jpg.subarray(0, Math.floor(jpg.length * frac)));
      await expectCode(decodeImage(p), 'IMAGE_UNREADABLE', /cut-.*\.jpg.*truncated/);
    }
    const progressive = await rawSharp(rgb, w, h, 3).jpeg({ quality: 90, progressive: true }).toBuffer();
    await expectCode(decodeImage(progressive.subarray(0, Math.floor(progressive.length * 0.6))), 'IMAGE_UNREADABLE');
  });

  it('a truncated PNG is IMAGE_UNREADABLE', async () => {
    const full = png(w, h, 2, 8, rgb);
    for (const frac of [0.5, 0.9]) {
      await expectCode(decodeImage(await file('cut.png', full.subarray(0, Math.floor(full.length * frac)))), 'IMAGE_UNREADABLE', /cut\.png/);
    }
    // Cut inside the header: the size cannot even be read.
    await expectCode(decodeImage(full.subarray(0, 20), { name: 'head.png' }), 'IMAGE_UNREADABLE', /head\.png/);
  });

  it('a PNG with corrupt pixel data is IMAGE_UNREADABLE', async () => {
    const bytes = png(w, h, 2, 8, rgb);
    const idat = bytes.indexOf('IDAT');
    const bad = Buffer.from(bytes);
    for (let i = idat + 20; i < idat + 60; i++) bad[i] ^= 0x5a;
    await expectCode(decodeImage(bad, { name: 'flipped.png' }), 'IMAGE_UNREADABLE', /flipped\.png/);
  });

  it('random bytes and a text file are IMAGE_UNSUPPORTED (not an image)', async () => {
    await expectCode(decodeImage(await file('noise.jpg', noise(5000, 99))), 'IMAGE_UNSUPPORTED', /noise\.jpg.*not an image/);
    await expectCode(decodeImage(await file('notes.png', Buffer.from('Shopping list:\n- eggs\n- milk\n'.repeat(50)))), 'IMAGE_UNSUPPORTED', /notes\.png/);
  });

  it('an image over maxPixels is IMAGE_TOO_LARGE, judged from its header', async () => {
    const bytes = png(w, h, 2, 8, rgb);
    await expectCode(decodeImage(bytes, { maxPixels: w * h - 1, name: 'big.png' }), 'IMAGE_TOO_LARGE', /big\.png is 64×48/);
    await expect(decodeImage(bytes, { maxPixels: w * h })).resolves.toMatchObject({ width: w, height: h });
  });

  it('a file over maxBytes is IMAGE_TOO_LARGE before it is read', async () => {
    const bytes = png(w, h, 2, 8, rgb);
    const p = await file('heavy.png', bytes);
    await expectCode(decodeImage(p, { maxBytes: bytes.length - 1 }), 'IMAGE_TOO_LARGE', /heavy\.png/);
    await expectCode(decodeImage(bytes, { maxBytes: 100 }), 'IMAGE_TOO_LARGE');
  });

  it('a JPEG header claiming 65000×65000 is IMAGE_TOO_LARGE', async () => {
    const jpg = Buffer.from(await rawSharp(rgb, w, h, 3).jpeg().toBuffer());
    const sof = jpg.indexOf(Buffer.from([0xff, 0xc0]));
    expect(sof).toBeGreaterThan(0);
    jpg.writeUInt16BE(65000, sof + 5);
    jpg.writeUInt16BE(65000, sof + 7);
    await expectCode(decodeImage(jpg, { name: 'liar.jpg' }), 'IMAGE_TOO_LARGE', /liar\.jpg is 65000×65000/);
  });

  it('a 30000×30000 PNG decompression bomb is refused without decoding it', async () => {
    const bomb = await pngBomb(30000, 30000);
    expect(bomb.length).toBeLessThan(1_000_000); // ~110 kB on disk, 900 megapixels inside
    const p = await file('bomb.png', bomb);
    global.gc?.();
    const before = process.memoryUsage().rss;
    const err = await expectCode(decodeImage(p), 'IMAGE_TOO_LARGE', /bomb\.png is 30000×30000 pixels \(900\.0 MP\), over the 100\.0 MP limit/);
    expect(err.details).toMatchObject({ width: 30000, height: 30000 });
    // Decoding would need ≥ 900 MB (gray) or 2.7 GB (RGB); the header check needs next to nothing.
    expect(process.memoryUsage().rss - before).toBeLessThan(500 * 1024 * 1024);
  });
});
