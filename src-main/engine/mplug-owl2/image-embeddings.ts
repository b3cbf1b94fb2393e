/**
 * Photos → image embeddings, with a cache: the same bytes under the same preprocessing mode are
 * encoded once (in memory, the last {@link MEMORY_ENTRIES}; on disk when a cache folder is set).
 *
 * The cache key is the sha256 of the photo's bytes and the aspect mode. A stored photo comes with
 * its sha256 (the store computed it when the photo was saved), so a cached photo costs no file read
 * and no hashing; a path or bytes are hashed here.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AspectMode, GenerationEvent } from '../../../src-shared/engine.ts';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { PackageManifest } from '../../../models/package/manifest.ts';
import { decodeImage } from '../image/decode.ts';
import type { ImageInput } from '../protocol.ts';
import { preprocessImage } from './image-processing.ts';
import type { PreprocessorConfig } from './image-processing.ts';
import type { Owl2Model } from './modeling.ts';

/** Embeddings kept in memory. */
const MEMORY_ENTRIES = 32;

/** What encoding a request's photos cost. */
export interface ImageTiming {
  decodeMs: number;
  encodeMs: number;
}

/** A request's photos, encoded. */
export interface EncodedImages {
  embeds: Float32Array[];
  /** Cache keys (sha256-aspect), one per photo: they identify the photo's rows for prefix reuse. */
  keys: string[];
  /** Photos whose embeddings came from a cache. */
  fromCache: number;
  timing: ImageTiming;
}

/** See the module comment. */
export class ImageEmbedder {
  private readonly memory = new Map<string, Float32Array>();
  private diskDir: string | undefined | null = null;

  constructor(
    private readonly model: Owl2Model,
    private readonly preprocessor: PreprocessorConfig,
    private readonly manifest: PackageManifest,
    /** Folder of the on-disk cache (unset: memory only). */
    private readonly cacheDir?: string,
  ) {}

  /** Decodes and preprocesses one photo into float32 pixel values [3, S, S]. */
  async preprocess(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    return this.pixelsOf(await readImageBytes(image), image, aspect);
  }

  /**
   * Embeddings of a request's photos, from the cache where it has them. Reports the
   * `decode-image` and `encode-image` phases (with how many photos need them) before the work, and
   * again with `progress` after each photo; nothing when every photo was cached. New embeddings go
   * to the disk cache unless `persist` is false (memory only).
   */
  async encode(images: readonly ImageInput[], aspect: AspectMode, onEvent: (e: GenerationEvent) => void = () => {}, persist = true): Promise<EncodedImages> {
    const timing: ImageTiming = { decodeMs: 0, encodeMs: 0 };
    const embeds: (Float32Array | undefined)[] = [];
    const keys: string[] = [];
    const misses: { index: number; bytes: Uint8Array }[] = [];
    for (const image of images) {
      let bytes: Uint8Array | undefined;
      let sha256 = typeof image === 'object' && !(image instanceof Uint8Array) ? image.sha256 : undefined;
      if (!sha256) {
        bytes = await readImageBytes(image);
        sha256 = createHash('sha256').update(bytes).digest('hex');
      }
      const key = `${sha256}-${aspect}`;
      const hit = this.memory.get(key) ?? (await this.readDisk(key));
      if (hit) this.remember(key, hit);
      else misses.push({ index: keys.length, bytes: bytes ?? (await readImageBytes(image)) });
      embeds.push(hit);
      keys.push(key);
    }
    if (misses.length > 0) {
      const total = misses.length;
      const phase = (p: 'decode-image' | 'encode-image', done: number): void => onEvent({ type: 'phase', phase: p, images: total, progress: { done, total } });
      phase('decode-image', 0);
      const t0 = performance.now();
      const pixels: Float32Array[] = [];
      for (const m of misses) {
        pixels.push(await this.pixelsOf(m.bytes, images[m.index], aspect));
        if (pixels.length < total) phase('decode-image', pixels.length);
      }
      const t1 = performance.now();
      phase('encode-image', 0);
      for (const [i, m] of misses.entries()) {
        const e = await this.model.embedPixels(pixels[i]);
        embeds[m.index] = e;
        this.remember(keys[m.index], e);
        if (persist) await this.writeDisk(keys[m.index], e);
        if (i + 1 < total) phase('encode-image', i + 1);
      }
      timing.decodeMs = t1 - t0;
      timing.encodeMs = performance.now() - t1;
    }
    return { embeds: embeds as Float32Array[], keys, fromCache: images.length - misses.length, timing };
  }

  private async pixelsOf(bytes: Uint8Array, image: ImageInput, aspect: AspectMode): Promise<Float32Array> {
    return preprocessImage(await decodeImage(bytes, { name: imageName(image) }), this.preprocessor, aspect);
  }

  private remember(key: string, embeds: Float32Array): void {
    this.memory.delete(key);
    this.memory.set(key, embeds);
    if (this.memory.size > MEMORY_ENTRIES) this.memory.delete(this.memory.keys().next().value!);
  }

  /**
   * The on-disk cache folder of this package's vision weights, or undefined without a cache folder.
   * Embeddings depend on the exact vision weights (a quantized package of the same checkpoint
   * gives other numbers), so the folder is named after the vision graph files' checksums.
   */
  private get disk(): string | undefined {
    if (this.diskDir === null) {
      if (!this.cacheDir) this.diskDir = undefined;
      else {
        const vision = this.manifest.graphs.vision;
        const sums = this.manifest.files.filter((f) => f.path === vision.file || f.path === vision.data).map((f) => f.sha256);
        const identity = createHash('sha256').update(`${this.manifest.id}\n${sums.join('\n')}`).digest('hex').slice(0, 32);
        this.diskDir = join(this.cacheDir, identity);
      }
    }
    return this.diskDir;
  }

  /** The on-disk cache is best effort: a missing, short or unreadable file is a miss. */
  private async readDisk(key: string): Promise<Float32Array | undefined> {
    const dir = this.disk;
    if (!dir) return undefined;
    const expected = this.model.config.imageTokens * this.model.config.llm.hiddenSize * 4;
    try {
      const buf = await readFile(join(dir, `${key}.f32`));
      if (buf.byteLength !== expected) return undefined;
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    } catch {
      return undefined;
    }
  }

  private async writeDisk(key: string, embeds: Float32Array): Promise<void> {
    const dir = this.disk;
    if (!dir) return;
    const file = join(dir, `${key}.f32`);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, new Uint8Array(embeds.buffer, embeds.byteOffset, embeds.byteLength));
      await rename(tmp, file);
    } catch {
      // A full or read-only disk only costs a future re-encode.
      await rm(tmp, { force: true }).catch(() => {});
    }
  }
}

function imageName(image: ImageInput): string {
  if (typeof image === 'string') return image;
  return image instanceof Uint8Array ? 'image' : image.path;
}

async function readImageBytes(image: ImageInput): Promise<Uint8Array> {
  if (image instanceof Uint8Array) return image;
  const path = typeof image === 'string' ? image : image.path;
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `image not found: ${path}`);
    if (code === 'EISDIR') throw new OwleryError('IMAGE_UNREADABLE', `${path} is a folder, not an image`);
    throw new OwleryError('IMAGE_UNREADABLE', `cannot read ${path}: ${(err as Error).message}`);
  }
}
