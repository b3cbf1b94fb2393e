/**
 * Why a photo cannot be shown or stored, in words a person can act on: the file is empty, is not
 * an image, is cut off (truncated: it may not have finished copying), is too large, uses a
 * compression this build cannot decode, or is otherwise damaged. The image store words its refusals
 * with {@link decodeFailure}; the Photos panel asks {@link diagnoseImageFile} about a file whose
 * thumbnail could not be made.
 */
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';
import { OwleryError } from '../../src-shared/errors.ts';
import type { ImageProblem } from '../../src-shared/ipc/index.ts';
import { MAX_IMAGE_FILE_BYTES, MAX_SOURCE_IMAGE_PIXELS } from '../../src-shared/limits.ts';

/** The formats Owlery stores, for messages. */
export const STORABLE_FORMATS = 'JPEG, PNG, WebP, GIF, TIFF, AVIF or HEIC';

/** Decoder messages of a file that ends too early (libjpeg, libspng, libwebp, libtiff, libvips). */
const TRUNCATED = /premature end|truncat|unexpected end|end of (?:file|stream|input|data)|not enough (?:data|image data)|read error|incomplete|short read/i;
/** Decoder messages of a compression this build of libvips cannot decode (HEVC in HEIC). */
const UNSUPPORTED_CODEC = /hevc|compression format has not been built in|no decoder|unsupported (?:codec|compression)/i;

/** A size in megapixels for messages: `144 MP`, `2.5 MP`. */
export function megapixels(pixels: number): string {
  const mp = pixels / 1e6;
  return `${mp < 10 ? Number(mp.toFixed(1)) : Math.round(mp)} MP`;
}

/**
 * The error for a photo the decoder could not read: `IMAGE_UNSUPPORTED` for a compression this
 * build lacks, `IMAGE_UNREADABLE` saying "cut off" for a truncated file, or "damaged".
 */
export function decodeFailure(err: unknown, name: string): OwleryError {
  const msg = err instanceof Error ? err.message : String(err);
  const first = msg.split('\n')[0];
  if (UNSUPPORTED_CODEC.test(msg)) {
    return new OwleryError('IMAGE_UNSUPPORTED', `${name} uses a compression this build cannot decode; convert it to JPEG or PNG first.`, { name, cause: msg });
  }
  if (TRUNCATED.test(msg)) {
    return new OwleryError('IMAGE_UNREADABLE', `${name} is cut off (truncated): the file ends before the image does. It may not have finished copying.`, {
      name,
      problem: 'truncated',
      cause: msg,
    });
  }
  return new OwleryError('IMAGE_UNREADABLE', `${name} is damaged and cannot be read (${first}).`, { name, cause: msg });
}

/** The words for a photo too large to downscale. */
export function tooLargeToDownscale(name: string, width: number, height: number, why: string): OwleryError {
  return new OwleryError('IMAGE_TOO_LARGE', `${name} is ${width}×${height} pixels (${megapixels(width * height)}), ${why}.`, { name, width, height });
}

/** A WebP (RIFF) file shorter than its header says: cut off (libwebp only calls it a bad header). */
function riffShorterThanDeclared(b: Uint8Array): boolean {
  if (b.length < 12 || String.fromCharCode(...b.subarray(0, 4)) !== 'RIFF' || String.fromCharCode(...b.subarray(8, 12)) !== 'WEBP') return false;
  const declared = (b[4]! | (b[5]! << 8) | (b[6]! << 16) | (b[7]! << 24)) >>> 0;
  return b.length < declared + 8;
}

/** {@link ImageProblem}s by kind: the short words for a thumbnail. */
const SHORT: Record<ImageProblem['kind'], string> = {
  missing: 'File is gone',
  empty: 'Empty file',
  'not-image': 'Not an image',
  truncated: 'File is cut off',
  'too-large': 'Too large',
  unsupported: 'Unsupported format',
  damaged: 'Damaged file',
};

function problem(kind: ImageProblem['kind'], message: string): ImageProblem {
  return { kind, short: SHORT[kind], message };
}

/**
 * Why the image file at `path` cannot be shown, or `null` when it can: checks the file (there,
 * not empty, not over the byte limit), its header (an image format, not over the pixels Owlery
 * downscales) and then decodes it (a small copy), so a truncated or damaged file is told apart.
 */
export async function diagnoseImageFile(path: string, name: string): Promise<ImageProblem | null> {
  const st = await stat(path).catch(() => null);
  if (!st?.isFile()) return problem('missing', `${name} is no longer in the folder.`);
  if (st.size === 0) return problem('empty', `${name} is empty (0 bytes).`);
  if (st.size > MAX_IMAGE_FILE_BYTES) {
    return problem('too-large', `${name} is ${Math.round(st.size / 2 ** 20)} MiB, over the ${Math.round(MAX_IMAGE_FILE_BYTES / 2 ** 20)} MiB limit for photos.`);
  }
  const bytes = await readFile(path);
  if (riffShorterThanDeclared(bytes)) return problem('truncated', decodeFailure(new Error('truncated'), name).message);
  let width = 0;
  let height = 0;
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    width = meta.width ?? 0;
    height = meta.pageHeight ?? meta.height ?? 0;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/unsupported image format/i.test(msg)) return problem('not-image', `${name} is not an image Owlery can read (${STORABLE_FORMATS}).`);
    return problem(TRUNCATED.test(msg) ? 'truncated' : 'damaged', decodeFailure(err, name).message);
  }
  if (width * height > MAX_SOURCE_IMAGE_PIXELS) {
    return problem('too-large', tooLargeToDownscale(name, width, height, `more than the ${megapixels(MAX_SOURCE_IMAGE_PIXELS)} Owlery can downscale`).message);
  }
  try {
    await sharp(bytes, { failOn: 'error', limitInputPixels: MAX_SOURCE_IMAGE_PIXELS, sequentialRead: true }).resize(64, 64, { fit: 'inside' }).raw().toBuffer();
  } catch (err) {
    const e = decodeFailure(err, name);
    const kind = e.code === 'IMAGE_UNSUPPORTED' ? 'unsupported' : (e.details as { problem?: string } | undefined)?.problem === 'truncated' ? 'truncated' : 'damaged';
    return problem(kind, e.message);
  }
  return null;
}
