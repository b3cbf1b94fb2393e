/**
 * Image decoding for the vision pipeline: any supported photo → 8-bit RGB, HWC.
 *
 * Mirrors the official `Image.open(f).convert('RGB')` (Pillow 9.4) wherever that is well defined:
 * alpha is dropped (not composited), grayscale becomes R = G = B, palettes are expanded, 16-bit
 * samples keep their high byte, embedded ICC profiles are ignored and CMYK uses Pillow's naive
 * conversion. Unlike the official code it applies the EXIF orientation by default, so the model
 * sees the photo the way a viewer shows it.
 *
 * Untrusted input is the normal case here (any file a user drops in), so the header is read first
 * and the pixel count, byte size and format are checked before a single pixel is decoded.
 */
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import sharp from 'sharp';
import type { Metadata, OutputInfo } from 'sharp';
import { OwleryError } from '../../../src-shared/errors.ts';
import { MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS } from '../../../src-shared/limits.ts';

// Decoded images are used once; libvips' operation cache would only hold on to their memory.
sharp.cache(false);

/** An 8-bit RGB image, rows top to bottom, 3 bytes per pixel (HWC). */
export interface RgbImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** `width·height·3` bytes: R, G, B per pixel, row-major. */
  data: Uint8Array;
}

/** A decoded photo: RGB pixels plus where they came from. */
export interface DecodedImage extends RgbImage {
  /** Container format: `jpeg`, `png`, `webp`, `gif`, `tiff`, `avif` or `heic`. */
  format: string;
  /** EXIF orientation of the file (1-8; 1 when absent), whether or not it was applied. */
  orientation: number;
}

/** Options for {@link decodeImage}. */
export interface DecodeOptions {
  /** Rotate/flip by the EXIF orientation so pixels land where a viewer shows them (default true). */
  applyExifOrientation?: boolean;
  /** Largest accepted width·height, checked from the header before decoding (default 100 megapixels). */
  maxPixels?: number;
  /** Largest accepted encoded size in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Name used in error messages (default: the file's base name, or "image" for bytes). */
  name?: string;
}

/** Longest a single decode may take before it is abandoned as hostile (e.g. a JPEG with thousands of scans). */
const DECODE_TIMEOUT_S = 60;

/** Formats we decode, keyed by sharp's format name. */
const SUPPORTED = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);
const SUPPORTED_LIST = 'JPEG, PNG, WebP, GIF, TIFF, AVIF';

/**
 * Decodes a JPEG, PNG, WebP, GIF (first frame), TIFF (first page), AVIF or HEIC image into 8-bit RGB.
 *
 * Semantics follow the official mPLUG-Owl2 `Image.open(f).convert('RGB')`: alpha is dropped, not
 * composited; grayscale → R = G = B; palette images are expanded; 16-bit samples are reduced to
 * their high byte (as Pillow does for RGB; Pillow clips 16-bit *grayscale* to 255, which we do not
 * copy); embedded ICC profiles are ignored (Pillow does not apply them); CMYK uses Pillow's
 * `cmyk2rgb`; a GIF's transparent pixels get the transparent palette colour.
 *
 * **Deviation from the official code:** the EXIF orientation is applied by default, so a portrait
 * phone photo reaches the model upright; pass `applyExifOrientation: false` for the official
 * behaviour. `orientation` reports the file's tag either way.
 *
 * HEIC needs an HEVC decoder, which sharp's bundled libheif does not include; such files fail with
 * `IMAGE_UNSUPPORTED`. AVIF (AV1 in the same container) works.
 *
 * @param input a file path or the encoded bytes
 * @throws OwleryError `FILE_NOT_FOUND` (no such file), `IMAGE_TOO_LARGE` (over `maxBytes` or
 *   `maxPixels`, checked before decoding), `IMAGE_UNSUPPORTED` (not an image, or a format or codec
 *   we cannot decode), `IMAGE_UNREADABLE` (empty, truncated or corrupt, or unreadable file)
 */
export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const name = opts.name ?? (typeof input === 'string' ? basename(input) : 'image');
  const maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
  const maxBytes = opts.maxBytes ?? MAX_IMAGE_FILE_BYTES;
  const applyOrientation = opts.applyExifOrientation ?? true;
  if (!(maxPixels > 0) || !(maxBytes > 0)) throw new RangeError('decodeImage: maxPixels and maxBytes must be positive');

  const bytes = typeof input === 'string' ? await readLimited(input, name, maxBytes) : input;
  if (bytes.length > maxBytes) {
    throw new OwleryError('IMAGE_TOO_LARGE', `${name} is ${formatBytes(bytes.length)}, over the ${formatBytes(maxBytes)} limit for images.`, { name, bytes: bytes.length, maxBytes });
  }
  if (bytes.length === 0) throw new OwleryError('IMAGE_UNREADABLE', `${name} is empty (0 bytes), so there is no image to read.`, { name });

  const meta = await readHeader(bytes, name);
  const format = formatName(meta);
  if (!SUPPORTED.has(meta.format ?? '')) {
    throw new OwleryError('IMAGE_UNSUPPORTED', `${name} is a ${format.toUpperCase()} file; Owlery reads ${SUPPORTED_LIST} and HEIC images.`, { name, format });
  }
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new OwleryError('IMAGE_UNREADABLE', `${name}: the ${format.toUpperCase()} header has no valid size.`, { name, format });
  if (width * height > maxPixels) {
    throw new OwleryError(
      'IMAGE_TOO_LARGE',
      `${name} is ${width}×${height} pixels (${(width * height / 1e6).toFixed(1)} MP), over the ${(maxPixels / 1e6).toFixed(1)} MP limit for images.`,
      { name, width, height, maxPixels },
    );
  }
  const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  const cmyk = meta.space === 'cmyk';

  let data: Buffer;
  let info: OutputInfo;
  try {
    let pipeline = sharp(bytes, {
      failOn: 'error', // truncated or corrupt pixel data is an error, never a grey fill
      limitInputPixels: Math.max(1, Math.floor(maxPixels)),
      ignoreIcc: true, // Pillow's convert('RGB') does not colour-manage
      autoOrient: applyOrientation,
      pages: 1,
      page: 0,
    });
    // Keep the file's own CMYK values (sharp would otherwise round-trip them through an ICC profile).
    if (cmyk) pipeline = pipeline.pipelineColourspace('cmyk').toColourspace('cmyk');
    ({ data, info } = await pipeline.timeout({ seconds: DECODE_TIMEOUT_S }).raw().toBuffer({ resolveWithObject: true }));
  } catch (err) {
    throw decodeError(err, name, format, meta);
  }
  if (data.length !== info.width * info.height * info.channels) {
    // Raw output is 8-bit unless asked otherwise; anything else is a bug, not a user error.
    throw new Error(`decodeImage: expected 8-bit samples for ${name}, got ${data.length} bytes for ${info.width}×${info.height}×${info.channels}`);
  }
  if (meta.format === 'gif' && info.channels === 4) fillGifTransparent(data, bytes);
  const rgb = cmyk ? cmykToRgb(data, info.width * info.height, info.channels) : toRgb(data, info.width * info.height, info.channels);
  return { width: info.width, height: info.height, data: rgb, format, orientation };
}

/** Reads a file with its size checked first, mapping file-system errors to `OwleryError`s. */
async function readLimited(path: string, name: string, maxBytes: number): Promise<Uint8Array> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw fileError(err, path, name);
  }
  try {
    const st = await fh.stat();
    if (st.isDirectory()) throw new OwleryError('IMAGE_UNREADABLE', `${name} is a folder, not an image file.`, { name, path });
    if (st.size > maxBytes) {
      throw new OwleryError('IMAGE_TOO_LARGE', `${name} is ${formatBytes(st.size)}, over the ${formatBytes(maxBytes)} limit for images.`, { name, path, bytes: st.size, maxBytes });
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < buf.length) {
      const { bytesRead } = await fh.read(buf, off, buf.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    return buf.subarray(0, off);
  } catch (err) {
    if (err instanceof OwleryError) throw err;
    throw fileError(err, path, name);
  } finally {
    await fh.close();
  }
}

function fileError(err: unknown, path: string, name: string): OwleryError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return new OwleryError('FILE_NOT_FOUND', `Image file not found: ${path}`, { name, path });
  if (code === 'EISDIR') return new OwleryError('IMAGE_UNREADABLE', `${name} is a folder, not an image file.`, { name, path });
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : err instanceof Error ? err.message : String(err);
  return new OwleryError('IMAGE_UNREADABLE', `Could not read ${name}: ${why}.`, { name, path, cause: code });
}

/** Reads only the header (format, size, orientation); no pixels are decoded. */
async function readHeader(bytes: Uint8Array, name: string): Promise<Metadata> {
  try {
    return await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    const msg = errorText(err);
    if (/unsupported image format/i.test(msg)) {
      throw new OwleryError('IMAGE_UNSUPPORTED', `${name} is not an image Owlery can read (it reads ${SUPPORTED_LIST} and HEIC).`, { name, cause: msg });
    }
    throw new OwleryError('IMAGE_UNREADABLE', `${name} is damaged: its image header cannot be read (${firstLine(msg)}).`, { name, cause: msg });
  }
}

function decodeError(err: unknown, name: string, format: string, meta: Metadata): OwleryError {
  const msg = errorText(err);
  if (meta.format === 'heif' && (meta.compression === 'hevc' || /hevc|compression format has not been built in/i.test(msg))) {
    return new OwleryError(
      'IMAGE_UNSUPPORTED',
      `${name} is a HEIC photo (HEVC-compressed), which this build cannot decode. Convert it to JPEG or PNG first (on an iPhone: Settings › Camera › Formats › Most Compatible).`,
      { name, format, cause: msg },
    );
  }
  if (/timeout/i.test(msg)) {
    return new OwleryError('IMAGE_UNREADABLE', `${name} took longer than ${DECODE_TIMEOUT_S} s to decode and was abandoned; the file may be damaged or crafted.`, { name, format, cause: msg });
  }
  if (/pixel limit/i.test(msg)) {
    return new OwleryError('IMAGE_TOO_LARGE', `${name} is too large to decode (${firstLine(msg)}).`, { name, format, cause: msg });
  }
  if (/premature end|truncat|unexpected end|read error|end of (file|stream|data)/i.test(msg)) {
    return new OwleryError('IMAGE_UNREADABLE', `${name} is truncated or damaged: the ${format.toUpperCase()} data ends early (${firstLine(msg)}).`, { name, format, cause: msg });
  }
  return new OwleryError('IMAGE_UNREADABLE', `${name} is damaged: its ${format.toUpperCase()} data cannot be decoded (${firstLine(msg)}).`, { name, format, cause: msg });
}

/** Our name for the container: sharp says `heif` for both AVIF and HEIC. */
function formatName(meta: Metadata): string {
  if (meta.format === 'heif') return meta.compression === 'av1' ? 'avif' : 'heic';
  return String(meta.format ?? 'unknown');
}

/** Keeps the first three samples of each pixel (dropping alpha) or replicates gray. */
function toRgb(src: Buffer, pixels: number, channels: number): Uint8Array {
  if (channels === 3 && src.length === pixels * 3) return new Uint8Array(src.buffer, src.byteOffset, src.length);
  const out = new Uint8Array(pixels * 3);
  if (channels >= 3) {
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += channels, o += 3) {
      out[o] = src[i];
      out[o + 1] = src[i + 1];
      out[o + 2] = src[i + 2];
    }
  } else {
    for (let p = 0, i = 0, o = 0; p < pixels; p++, i += channels, o += 3) out[o] = out[o + 1] = out[o + 2] = src[i];
  }
  return out;
}

/**
 * Gives a GIF's transparent pixels the colour of the transparent palette entry, as Pillow does
 * (its first frame is mode P; convert('RGB') maps every index through the palette), where libvips
 * leaves them black. `rgba` is the decoded first frame with alpha; only alpha-0 pixels change.
 */
function fillGifTransparent(rgba: Buffer, gif: Uint8Array): void {
  const colour = gifTransparentColour(gif);
  if (!colour) return;
  for (let i = 0; i < rgba.length; i += 4) {
    if (rgba[i + 3] === 0) {
      rgba[i] = colour[0];
      rgba[i + 1] = colour[1];
      rgba[i + 2] = colour[2];
    }
  }
}

/** The first frame's transparent colour: its graphic-control transparent index in its colour table. */
function gifTransparentColour(b: Uint8Array): [number, number, number] | undefined {
  if (b.length < 13) return undefined;
  let pos = 13;
  let table: Uint8Array | undefined;
  if (b[10] & 0x80) {
    const n = 3 * (2 << (b[10] & 7));
    table = b.subarray(pos, pos + n);
    pos += n;
  }
  let transparent: number | undefined;
  while (pos < b.length) {
    const tag = b[pos];
    if (tag === 0x21) {
      const label = b[pos + 1];
      pos += 2;
      if (label === 0xf9 && b[pos] === 4) transparent = b[pos + 1] & 1 ? b[pos + 4] : undefined;
      while (pos < b.length && b[pos] !== 0) pos += b[pos] + 1; // data sub-blocks
      pos += 1;
    } else if (tag === 0x2c) {
      const packed = b[pos + 9];
      if (packed & 0x80) table = b.subarray(pos + 10, pos + 10 + 3 * (2 << (packed & 7)));
      break;
    } else {
      return undefined;
    }
  }
  if (transparent === undefined || !table || 3 * transparent + 3 > table.length) return undefined;
  return [table[3 * transparent], table[3 * transparent + 1], table[3 * transparent + 2]];
}

/** Pillow's `cmyk2rgb`: R = 255 − K − C·(255 − K)/255 with Pillow's integer rounding, per channel. */
function cmykToRgb(src: Buffer, pixels: number, channels: number): Uint8Array {
  if (channels < 4) return toRgb(src, pixels, channels);
  const out = new Uint8Array(pixels * 3);
  for (let p = 0, i = 0, o = 0; p < pixels; p++, i += channels, o += 3) {
    const nk = 255 - src[i + 3];
    for (let c = 0; c < 3; c++) {
      const t = src[i + c] * nk + 128;
      out[o + c] = nk - (((t >> 8) + t) >> 8); // CLIP8 is a no-op: the result is in 0..255
    }
  }
  return out;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(msg: string): string {
  const lines = msg.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => !/bad seek/.test(l)) ?? lines[0] ?? 'unknown error').replace(/\.$/, '');
}

function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} bytes`;
}
