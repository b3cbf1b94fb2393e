import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImageStore } from '../../../src-main/store/images.ts';
import { Store } from '../../../src-main/store/store.ts';
import { FIXTURES, owleryErrorOf, owleryErrorOfAsync, tempDir } from './helpers.ts';

let tmp: ReturnType<typeof tempDir>;
let store: Store;
let images: ImageStore;

beforeEach(() => {
  tmp = tempDir();
  store = Store.open(join(tmp.dir, 'history.sqlite')).store;
  images = new ImageStore(store, tmp.dir);
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

/** A PNG of the given size: left half red, right half blue. */
async function png(width: number, height: number, seed = 0): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      raw[i] = x < width / 2 ? 220 : 40;
      raw[i + 1] = seed;
      raw[i + 2] = x < width / 2 ? 40 : 220;
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Every file under the image folder, relative to it. */
function files(): string[] {
  if (!existsSync(images.root)) return [];
  return readdirSync(images.root, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name).slice(images.root.length + 1))
    .sort();
}

describe('ImageStore', () => {
  it('stores bytes content-addressed with metadata and a thumbnail, never in the row', async () => {
    const bytes = await png(1000, 600);
    const sha = sha256(bytes);
    const rec = await images.put(bytes, { name: 'beach.png' });
    expect(rec).toMatchObject({
      sha256: sha,
      ext: 'png',
      mime: 'image/png',
      byteSize: bytes.length,
      width: 1000,
      height: 600,
      orientation: 1,
      displayWidth: 1000,
      displayHeight: 600,
      thumbnail: { mime: 'image/webp', width: 256, height: 154 },
    });
    expect(files()).toEqual([`${sha.slice(0, 2)}/${sha}.png`, `${sha.slice(0, 2)}/${sha}.thumb.webp`]);
    expect(readFileSync(images.pathOf(rec)).equals(bytes)).toBe(true);
    const thumb = await sharp(images.thumbnailPathOf(sha)).metadata();
    expect([thumb.format, thumb.width, thumb.height]).toEqual(['webp', 256, 154]);
    // Rows hold the hash and metadata only: no blobs, nothing long.
    const row = store.db.prepare('SELECT * FROM images WHERE sha256 = ?').get(sha) as Record<string, unknown>;
    for (const value of Object.values(row)) {
      expect(value instanceof Uint8Array).toBe(false);
      if (typeof value === 'string') expect(value.length).toBeLessThanOrEqual(64);
    }
  });

  it('de-duplicates by hash: the same bytes are stored once, however they arrive', async () => {
    const bytes = await png(40, 30);
    const a = await images.put(bytes, { name: 'a.png' });
    const path = join(tmp.dir, 'copy-of-a.png');
    writeFileSync(path, bytes);
    const mtime = statSync(images.pathOf(a)).mtimeMs;
    const b = await images.put(path);
    expect(b).toEqual(a);
    expect(statSync(images.pathOf(a)).mtimeMs).toBe(mtime);
    expect(files()).toHaveLength(2);
    expect(store.db.prepare('SELECT count(*) AS n FROM images').get()).toEqual({ n: 1 });
    const other = await images.put(await png(40, 30, 7));
    expect(other.sha256).not.toBe(a.sha256);
    expect(files()).toHaveLength(4);
  });

  it('rewrites a file that went missing', async () => {
    const bytes = await png(20, 20);
    const rec = await images.put(bytes);
    rmSync(images.pathOf(rec));
    rmSync(images.thumbnailPathOf(rec.sha256));
    await images.put(bytes);
    expect(readFileSync(images.pathOf(rec)).equals(bytes)).toBe(true);
    expect(existsSync(images.thumbnailPathOf(rec.sha256))).toBe(true);
  });

  it('makes EXIF-rotated thumbnails and reports display size', async () => {
    const rec = await images.put(join(FIXTURES, 'photo-orientation-6.jpg'));
    expect(rec).toMatchObject({ mime: 'image/jpeg', ext: 'jpg', width: 96, height: 64, orientation: 6, displayWidth: 64, displayHeight: 96 });
    expect(rec.thumbnail).toEqual({ mime: 'image/webp', width: 64, height: 96 });
    // The thumbnail is upright: rotated 90° clockwise, the red left half is now on top.
    const { data, info } = await sharp(images.thumbnailPathOf(rec.sha256)).raw().toBuffer({ resolveWithObject: true });
    const px = (x: number, y: number) => Array.from(data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3));
    expect(px(32, 10)[0]).toBeGreaterThan(150); // red on top
    expect(px(32, 85)[2]).toBeGreaterThan(150); // blue at the bottom

    const big = await sharp(await png(600, 400)).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    expect((await images.put(big)).thumbnail).toEqual({ mime: 'image/webp', width: 171, height: 256 });
  });

  it('rejects what is not a readable image, leaving nothing behind', async () => {
    expect((await owleryErrorOfAsync(() => images.put(Buffer.from('definitely not an image')))).code).toBe('IMAGE_UNSUPPORTED');
    expect((await owleryErrorOfAsync(() => images.put(Buffer.alloc(0)))).code).toBe('IMAGE_UNREADABLE');
    const jpg = readFileSync(join(FIXTURES, 'photo-orientation-6.jpg'));
    expect((await owleryErrorOfAsync(() => images.put(jpg.subarray(0, 400)))).code).toBe('IMAGE_UNREADABLE');
    expect((await owleryErrorOfAsync(() => images.put(join(tmp.dir, 'missing.png')))).code).toBe('FILE_NOT_FOUND');
    const small = new ImageStore(store, tmp.dir, { maxBytes: 100 });
    expect((await owleryErrorOfAsync(() => small.put(jpg))).code).toBe('IMAGE_TOO_LARGE');
    const tiny = new ImageStore(store, tmp.dir, { maxPixels: 1000, maxSourcePixels: 1000 });
    expect((await owleryErrorOfAsync(() => tiny.put(jpg))).code).toBe('IMAGE_TOO_LARGE');
    expect(await images.put(jpg.subarray(0, 400)).catch((e: Error) => e.message)).toMatch(/damaged|cut off/);
    expect(files()).toEqual([]);
    expect(store.db.prepare('SELECT count(*) AS n FROM images').get()).toEqual({ n: 0 });
  });

  it('downscales a photo over the pixel limit, keeping the original\'s hash to find the copy again', async () => {
    const small = new ImageStore(store, tmp.dir, { maxPixels: 40_000, maxSourcePixels: 1_000_000 });
    const bytes = await png(600, 300);
    const rec = await small.put(bytes, { name: 'wide.png' });
    // A PNG again, within the limit, the same shape; the original's size is reported.
    expect(rec).toMatchObject({ ext: 'png', width: 282, height: 141, downscaledFrom: { width: 600, height: 300 } });
    expect(rec.sha256).not.toBe(sha256(bytes));
    const stored = readFileSync(small.pathOf(rec));
    expect(sha256(stored)).toBe(rec.sha256);
    const { data } = await sharp(stored).raw().toBuffer({ resolveWithObject: true });
    expect([data[0], data[2]]).toEqual([220, 40]); // left half still red
    // The original's hash names the copy: importing it again decodes nothing and finds the same record.
    expect(readFileSync(join(small.root, sha256(bytes).slice(0, 2), `${sha256(bytes)}.source`), 'utf8').trim()).toBe(rec.sha256);
    const again = await small.put(bytes, { name: 'wide again.png' });
    expect(again).toMatchObject({ sha256: rec.sha256, downscaledFrom: { width: 600, height: 300 } });
    expect(store.db.prepare('SELECT count(*) AS n FROM images').get()).toEqual({ n: 1 });
    // EXIF rotation is applied to the copy; the size reported is the photo as shown.
    const rotated = readFileSync(join(FIXTURES, 'photo-orientation-6.jpg'));
    const meta = await sharp(rotated).metadata();
    const r = await new ImageStore(store, tmp.dir, { maxPixels: 1000 }).put(rotated);
    expect(r.downscaledFrom).toEqual({ width: meta.height, height: meta.width });
    expect(r).toMatchObject({ ext: 'jpg', orientation: 1 });
    expect(r.height).toBeGreaterThan(r.width);
  });

  it('refuses to downscale past the source limit, and GIF, HEIC, AVIF or animated images over the limit', async () => {
    const small = new ImageStore(store, tmp.dir, { maxPixels: 10_000, maxSourcePixels: 100_000 });
    const bytes = await png(400, 300);
    const err = await owleryErrorOfAsync(() => small.put(bytes));
    expect(err.code).toBe('IMAGE_TOO_LARGE');
    expect(err.message).toBe('image is 400×300 pixels (0.1 MP), more than the 0.1 MP Owlery can downscale.');
    const gif = await sharp(await png(200, 100)).gif().toBuffer();
    const gifErr = await owleryErrorOfAsync(() => small.put(gif, { name: 'big.gif' }));
    expect(gifErr.code).toBe('IMAGE_TOO_LARGE');
    expect(gifErr.message).toMatch(/^big\.gif is 200×100 pixels .* downscales only JPEG, PNG, WebP and TIFF photos, not a GIF image\.$/);
    expect(files()).toEqual([]);
  });

  it('builds paths only from real hashes', () => {
    expect(owleryErrorOf(() => images.pathOf({ sha256: '../../etc/passwd', ext: 'png' })).code).toBe('INVALID_ARGUMENT');
    expect(owleryErrorOf(() => images.pathOf({ sha256: 'ab'.repeat(32), ext: 'sh' })).code).toBe('INVALID_ARGUMENT');
    expect(owleryErrorOf(() => images.thumbnailPathOf('AB'.repeat(32))).code).toBe('INVALID_ARGUMENT');
  });

  it('collects images no message uses any more, keeping shared ones', async () => {
    const shared = await images.put(await png(10, 10, 1));
    const only = await images.put(await png(10, 10, 2));
    const a = store.createConversation();
    store.appendUserMessage({ conversationId: a.id, text: 'two photos', images: [{ sha256: shared.sha256 }, { sha256: only.sha256 }] });
    const b = store.createConversation();
    store.appendUserMessage({ conversationId: b.id, text: 'same photo', images: [{ sha256: shared.sha256 }] });
    expect(await images.collectGarbage({ graceMs: 0 })).toBe(0);

    store.deleteConversation(a.id);
    expect(await images.collectGarbage({ graceMs: 0 })).toBe(0); // in the trash: undo must still find the photos
    store.purgeTrash();
    expect(await images.collectGarbage({ graceMs: 3_600_000 })).toBe(0); // too recent
    expect(await images.collectGarbage({ graceMs: 0 })).toBe(1);
    expect(store.getImage(only.sha256)).toBeUndefined();
    expect(existsSync(images.pathOf(only))).toBe(false);
    expect(existsSync(images.thumbnailPathOf(only.sha256))).toBe(false);
    expect(store.getImage(shared.sha256)).toBeDefined();
    expect(existsSync(images.pathOf(shared))).toBe(true);
  });
});
