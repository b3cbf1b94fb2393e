/**
 * Content-addressed image files under the app's data directory, with their records in the store.
 *
 * A photo is stored once, at `<dataDir>/images/<sha256[0:2]>/<sha256>.<ext>`, whatever its name
 * and however often it is attached, so history survives when the original moves; next to it sits
 * a small EXIF-rotated WebP thumbnail, `<sha256>.thumb.webp`. Files are written to a temporary
 * name, flushed and renamed, so a crash never leaves a half-written image under its final name;
 * the database row is written after the files, so a row always has its file. Rows keep the hash
 * and metadata, never the bytes.
 *
 * A photo over the pixel limit (`MAX_IMAGE_PIXELS`) is downscaled on import (JPEG, PNG, WebP and
 * TIFF stills up to `MAX_SOURCE_IMAGE_PIXELS`, to a `DOWNSCALED_LONG_SIDE` copy in the same
 * format, EXIF rotation applied): the copy is stored like any photo, under its own hash, and
 * `<sha256 of the original>.source` next to it names that copy, so importing the same original
 * again finds it without decoding anything (and the engine's embeddings, keyed by the copy's hash,
 * are reused).
 * @see docs/style.md, H8 (Ollama `app/store/image.go`)
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { isFile, replaceFile } from '../../models/package/files.ts';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import type { Metadata } from 'sharp';
import { OwleryError } from '../../src-shared/errors.ts';
import { DOWNSCALED_LONG_SIDE, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, MAX_SOURCE_IMAGE_PIXELS } from '../../src-shared/limits.ts';
import { toStoreError } from './errors.ts';
import { decodeFailure, megapixels, STORABLE_FORMATS, tooLargeToDownscale } from './image-check.ts';
import type { ImageRecord, Store } from './store.ts';

/** Options for {@link ImageStore}. */
export interface ImageStoreOptions {
  /** Longest side of thumbnails in pixels (default 256). */
  thumbnailSize?: number;
  /** Largest accepted file, in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Largest stored width × height (default 100 megapixels); larger photos are downscaled. */
  maxPixels?: number;
  /** Largest width × height downscaled on import (default 250 megapixels); larger ones are refused. */
  maxSourcePixels?: number;
  /** Clock in ms (default `Date.now`), for garbage collection. */
  now?: () => number;
}

/** Default longest side of a thumbnail. */
export const THUMBNAIL_SIZE = 256;
/** The thumbnail's format. */
export const THUMBNAIL_MIME = 'image/webp';

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** A stored photo's record, and the size of the original when a downscaled copy was stored instead. */
export type PutImage = ImageRecord & { downscaledFrom?: { width: number; height: number } };

/** Formats downscaled on import (their decoders stream or shrink while reading). */
const DOWNSCALABLE = new Set(['jpg', 'png', 'webp', 'tif']);

/** sharp format → mime type and file extension. */
const FORMATS: Record<string, { mime: string; ext: string }> = {
  jpeg: { mime: 'image/jpeg', ext: 'jpg' },
  png: { mime: 'image/png', ext: 'png' },
  webp: { mime: 'image/webp', ext: 'webp' },
  gif: { mime: 'image/gif', ext: 'gif' },
  tiff: { mime: 'image/tiff', ext: 'tif' },
  avif: { mime: 'image/avif', ext: 'avif' },
  heic: { mime: 'image/heic', ext: 'heic' },
};

/** Stores photos by content hash; see the module comment. */
export class ImageStore {
  /** `<dataDir>/images`. */
  readonly root: string;
  private readonly store: Store;
  private readonly thumbSize: number;
  private readonly maxBytes: number;
  private readonly maxPixels: number;
  private readonly maxSourcePixels: number;
  private readonly now: () => number;

  /** Files go under `<dataDir>/images`; records go to `store`. */
  constructor(store: Store, dataDir: string, opts: ImageStoreOptions = {}) {
    this.store = store;
    this.root = join(dataDir, 'images');
    this.thumbSize = Math.max(16, Math.floor(opts.thumbnailSize ?? THUMBNAIL_SIZE));
    this.maxBytes = opts.maxBytes ?? MAX_IMAGE_FILE_BYTES;
    this.maxPixels = opts.maxPixels ?? MAX_IMAGE_PIXELS;
    this.maxSourcePixels = Math.max(this.maxPixels, opts.maxSourcePixels ?? MAX_SOURCE_IMAGE_PIXELS);
    this.now = opts.now ?? Date.now;
  }

  /** Path of a stored image's file. */
  pathOf(image: { sha256: string; ext: string }): string {
    checkSha(image.sha256);
    const ext = Object.values(FORMATS).find((f) => f.ext === image.ext)?.ext;
    if (!ext) throw new OwleryError('INVALID_ARGUMENT', `Unknown image extension ${JSON.stringify(image.ext)}.`);
    return join(this.root, image.sha256.slice(0, 2), `${image.sha256}.${ext}`);
  }

  /** Path of a stored image's thumbnail (it exists once `thumbnail` is set on the record). */
  thumbnailPathOf(sha256: string): string {
    checkSha(sha256);
    return join(this.root, sha256.slice(0, 2), `${sha256}.thumb.webp`);
  }

  /**
   * Stores a photo (bytes, or a file to read) unless the same bytes are already stored, makes its
   * thumbnail, records it, and returns the record. Attach it to a message with its `sha256`. A photo
   * over the pixel limit is downscaled first (see the module comment): the record is the copy's,
   * with `downscaledFrom` saying how large the original was.
   *
   * @throws OwleryError `FILE_NOT_FOUND`, `IMAGE_TOO_LARGE`, `IMAGE_UNSUPPORTED`,
   *   `IMAGE_UNREADABLE`, `DISK_FULL`, `DB_READONLY` (the data folder cannot be written)
   */
  async put(input: Uint8Array | string, opts: { name?: string } = {}): Promise<PutImage> {
    const name = opts.name ?? (typeof input === 'string' ? basename(input) : 'image');
    const bytes = typeof input === 'string' ? await this.readInput(input, name) : input;
    return this.putBytes(bytes, name, true);
  }

  private async putBytes(bytes: Uint8Array, name: string, mayDownscale: boolean): Promise<PutImage> {
    if (bytes.length === 0) throw new OwleryError('IMAGE_UNREADABLE', `${name} is empty (0 bytes).`, { name });
    if (bytes.length > this.maxBytes) {
      throw new OwleryError('IMAGE_TOO_LARGE', `${name} is larger than the ${Math.round(this.maxBytes / 2 ** 20)} MiB limit for images.`, {
        name,
        bytes: bytes.length,
      });
    }
    const sha256 = createHash('sha256').update(bytes).digest('hex');

    const existing = this.store.getImage(sha256);
    if (existing && (await this.hasFiles(existing))) return existing;

    const photo = await probePhoto(bytes, name);
    const { format, width, height, orientation } = photo;
    if (width * height > this.maxPixels) {
      if (!mayDownscale) throw new OwleryError('INTERNAL', `${name}: the downscaled copy is still ${width}×${height} pixels.`, { name });
      return this.putDownscaled(bytes, sha256, name, photo);
    }
    const thumb = await this.makeThumbnail(bytes, name);

    const record = { sha256, ext: format.ext, mime: format.mime, byteSize: bytes.length, width, height, orientation };
    await this.writeFiles(sha256, this.pathOf(record), bytes, thumb.data);
    return this.store.putImageRecord({ ...record, thumbnail: { mime: THUMBNAIL_MIME, width: thumb.width, height: thumb.height } });
  }

  /**
   * Stores a downscaled copy of a photo over the pixel limit (or finds the copy stored for the same
   * original before), and records which copy stands for the original.
   */
  private async putDownscaled(bytes: Uint8Array, sourceSha: string, name: string, photo: ProbedPhoto): Promise<PutImage> {
    const known = await readFile(this.sourcePathOf(sourceSha), 'utf8').then((t) => t.trim(), () => null);
    const copy = known && SHA256_HEX.test(known) ? this.store.getImage(known) : null;
    if (copy && (await this.hasFiles(copy))) return { ...copy, downscaledFrom: photo.shown };
    const smaller = await shrinkPhoto(bytes, name, photo, { maxPixels: this.maxPixels, maxSourcePixels: this.maxSourcePixels });
    const record = await this.putBytes(smaller, name, false);
    await this.writeFile(this.sourcePathOf(sourceSha), new TextEncoder().encode(`${record.sha256}\n`));
    return { ...record, downscaledFrom: photo.shown };
  }

  /** Where the hash of an original's downscaled copy is kept. */
  private sourcePathOf(sourceSha: string): string {
    checkSha(sourceSha);
    return join(this.root, sourceSha.slice(0, 2), `${sourceSha}.source`);
  }

  private async hasFiles(record: ImageRecord): Promise<boolean> {
    return (await isFile(this.pathOf(record))) && !!record.thumbnail && (await isFile(this.thumbnailPathOf(record.sha256)));
  }

  /**
   * Makes missing thumbnails (images stored before schema v3, or whose thumbnail file was lost),
   * up to `limit` images. Returns how many were made; images that cannot be read are skipped.
   */
  async backfillThumbnails(limit = 100): Promise<number> {
    let made = 0;
    for (const image of this.store.imagesWithoutThumbnail(limit)) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(this.pathOf(image));
      } catch {
        continue; // the original is gone; nothing to make a thumbnail from
      }
      let thumb: { data: Buffer; width: number; height: number };
      try {
        thumb = await this.makeThumbnail(bytes, image.sha256);
      } catch {
        continue;
      }
      await this.writeFile(this.thumbnailPathOf(image.sha256), thumb.data);
      this.store.setThumbnail(image.sha256, { mime: THUMBNAIL_MIME, width: thumb.width, height: thumb.height });
      made++;
    }
    return made;
  }

  /**
   * Deletes images no message uses any more (after conversations were purged from the trash),
   * record and files, if stored at least `graceMs` ago (default one hour, so an image being
   * attached right now is never collected). Returns how many were deleted.
   */
  async collectGarbage(opts: { graceMs?: number } = {}): Promise<number> {
    let deleted = 0;
    for (const image of this.store.orphanImages(this.now() - (opts.graceMs ?? 3_600_000))) {
      // The row goes first (only if still unused); a file without a row is harmless, the reverse is not.
      if (!this.store.deleteImageRecord(image.sha256)) continue;
      await rm(this.pathOf(image), { force: true });
      await rm(this.thumbnailPathOf(image.sha256), { force: true });
      deleted++;
    }
    return deleted;
  }

  private async readInput(path: string, name: string): Promise<Uint8Array> {
    try {
      const st = await stat(path);
      if (!st.isFile()) throw new OwleryError('IMAGE_UNREADABLE', `${name} is not a file.`, { name, path });
      if (st.size > this.maxBytes) {
        throw new OwleryError('IMAGE_TOO_LARGE', `${name} is larger than the ${Math.round(this.maxBytes / 2 ** 20)} MiB limit for images.`, {
          name,
          bytes: st.size,
        });
      }
      return await readFile(path);
    } catch (err) {
      if (err instanceof OwleryError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new OwleryError('FILE_NOT_FOUND', `Image file not found: ${path}`, { name, path });
      throw new OwleryError('IMAGE_UNREADABLE', `Could not read ${name}: ${(err as Error).message}`, { name, path, cause: code });
    }
  }

  private async makeThumbnail(bytes: Uint8Array, name: string): Promise<{ data: Buffer; width: number; height: number }> {
    try {
      const { data, info } = await sharp(bytes, { autoOrient: true, pages: 1, page: 0, failOn: 'error', limitInputPixels: this.maxPixels })
        .resize(this.thumbSize, this.thumbSize, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer({ resolveWithObject: true });
      return { data, width: info.width, height: info.height };
    } catch (err) {
      throw decodeFailure(err, name);
    }
  }

  private async writeFiles(sha256: string, path: string, bytes: Uint8Array, thumb: Buffer): Promise<void> {
    await this.writeFile(path, bytes, true);
    await this.writeFile(this.thumbnailPathOf(sha256), thumb);
  }

  /** Writes `data` to `path` through a temporary file, flushed before the rename. */
  private async writeFile(path: string, data: Uint8Array, skipIfSameSize = false): Promise<void> {
    try {
      if (skipIfSameSize) {
        const st = await stat(path).catch(() => null);
        if (st && st.isFile() && st.size === data.length) return; // same hash, same bytes
      }
      await mkdir(join(path, '..'), { recursive: true });
      await replaceFile(path, `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`, data);
    } catch (err) {
      throw toStoreError(err, path, 'the image folder');
    }
  }
}

/** What {@link probePhoto} reads from a photo's header. */
interface ProbedPhoto {
  meta: Metadata;
  format: { mime: string; ext: string };
  /** Stored pixel size (before EXIF rotation) and EXIF orientation (1–8). */
  width: number;
  height: number;
  orientation: number;
  /** The size as shown (after EXIF rotation). */
  shown: { width: number; height: number };
}

/** Reads a photo's header: its format and size (`IMAGE_UNSUPPORTED`, `IMAGE_UNREADABLE`). */
async function probePhoto(bytes: Uint8Array, name: string): Promise<ProbedPhoto> {
  const meta = await readMetadata(bytes, name);
  const format = formatOf(meta);
  if (!format) throw new OwleryError('IMAGE_UNSUPPORTED', `${name} is not an image Owlery can store (${STORABLE_FORMATS}).`, { name, format: meta.format });
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  if (!(width > 0 && height > 0)) throw new OwleryError('IMAGE_UNREADABLE', `${name}: the image header has no valid size.`, { name });
  const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  return { meta, format, width, height, orientation, shown: orientation >= 5 ? { width: height, height: width } : { width, height } };
}

/** The pixel limits of a downscale: photos over `maxPixels` are shrunk, those over `maxSourcePixels` refused. */
export interface DownscaleLimits {
  maxPixels: number;
  maxSourcePixels: number;
}

const DEFAULT_DOWNSCALE_LIMITS: DownscaleLimits = { maxPixels: MAX_IMAGE_PIXELS, maxSourcePixels: MAX_SOURCE_IMAGE_PIXELS };

/**
 * A copy of a photo over the pixel limit, upright, its long side {@link DOWNSCALED_LONG_SIDE} (or
 * less, to stay within `maxPixels`), in its own format (JPEG and WebP at quality 90; PNG for PNG and
 * photos with alpha). `IMAGE_TOO_LARGE` past `maxSourcePixels`, for animations, and for formats
 * whose decoders hold a whole canvas (GIF, HEIC, AVIF).
 */
async function shrinkPhoto(bytes: Uint8Array, name: string, photo: ProbedPhoto, limits: DownscaleLimits): Promise<Uint8Array> {
  const { meta, format } = photo;
  const { width, height } = photo.shown;
  if (width * height > limits.maxSourcePixels) {
    throw tooLargeToDownscale(name, width, height, `more than the ${megapixels(limits.maxSourcePixels)} Owlery can downscale`);
  }
  // An animation (even of one frame) decodes its whole canvas at once: not downscaled.
  const animated = (meta.pages ?? 1) > 1 || meta.delay !== undefined;
  if (!DOWNSCALABLE.has(format.ext) || animated) {
    const kind = DOWNSCALABLE.has(format.ext) ? 'an animated image' : `a ${format.ext.toUpperCase()} image`;
    throw tooLargeToDownscale(name, width, height, `over the ${megapixels(limits.maxPixels)} limit, and Owlery downscales only JPEG, PNG, WebP and TIFF photos, not ${kind}`);
  }
  const scale = Math.min(DOWNSCALED_LONG_SIDE / Math.max(width, height), Math.sqrt(limits.maxPixels / (width * height)));
  const side = Math.max(1, Math.floor(Math.max(width, height) * scale + 1e-6));
  try {
    const img = sharp(bytes, { autoOrient: true, failOn: 'error', sequentialRead: true, limitInputPixels: limits.maxSourcePixels }).resize(side, side, { fit: 'inside' });
    const out = format.ext === 'jpg' ? img.jpeg({ quality: 90 }) : format.ext === 'webp' ? img.webp({ quality: 90 }) : format.ext === 'png' || meta.hasAlpha ? img.png() : img.jpeg({ quality: 90 });
    return new Uint8Array(await out.toBuffer());
  } catch (err) {
    throw decodeFailure(err, name);
  }
}

/**
 * The photo as the model may take it, for code that reads photos without storing them (describe
 * jobs): `null` when it is within the pixel limit, else the same downscaled copy an import would
 * store ({@link shrinkPhoto}) and the original's size.
 */
export async function downscaledForModel(bytes: Uint8Array, name: string, limits: DownscaleLimits = DEFAULT_DOWNSCALE_LIMITS): Promise<{ bytes: Uint8Array; from: { width: number; height: number } } | null> {
  const photo = await probePhoto(bytes, name);
  if (photo.width * photo.height <= limits.maxPixels) return null;
  return { bytes: await shrinkPhoto(bytes, name, photo, limits), from: photo.shown };
}

async function readMetadata(bytes: Uint8Array, name: string): Promise<Metadata> {
  try {
    return await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    if (/unsupported image format/i.test(msg)) {
      throw new OwleryError('IMAGE_UNSUPPORTED', `${name} is not an image Owlery can store (${STORABLE_FORMATS}).`, { name, cause: msg });
    }
    throw new OwleryError('IMAGE_UNREADABLE', `${name} is damaged: its image header cannot be read.`, { name, cause: msg });
  }
}

function formatOf(meta: Metadata): { mime: string; ext: string } | undefined {
  if (meta.format === 'heif') return meta.compression === 'av1' ? FORMATS.avif : FORMATS.heic;
  return meta.format ? FORMATS[meta.format] : undefined;
}

function checkSha(sha256: string): void {
  if (!SHA256_HEX.test(sha256)) throw new OwleryError('INVALID_ARGUMENT', `Not an image hash: ${JSON.stringify(sha256)}.`);
}
