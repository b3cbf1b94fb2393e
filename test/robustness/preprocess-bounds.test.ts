/**
 * Regression test: a small photo with an extreme aspect ratio must not make the preprocessing
 * allocate its max(w, h)² square. Found by the image fuzzer (test/robustness/image-fuzz.test.ts): a
 * JPEG whose width field was mutated to 16384 (3 KB, 16384×24) took 9 s and 950 MB in `resize` mode
 * and 1.7 GB in `pad` mode; a legal 65535×1525 JPEG would have asked for 12.9 GB per buffer.
 */
import { describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { decodeImage } from '../../src-main/engine/image/decode.ts';
import {
  MAX_INTERMEDIATE_PIXELS,
  limitForSquare,
  parsePreprocessorConfig,
  preprocessImage,
  squareBudget,
} from '../../src-main/engine/mplug-owl2/image-processing.ts';
import type { RgbImage } from '../../src-main/engine/image/decode.ts';
import { OwleryError } from '../../src-shared/errors.ts';

const CLIP_448 = parsePreprocessorConfig({
  crop_size: 448,
  do_center_crop: true,
  do_normalize: true,
  do_resize: true,
  image_mean: [0.48145466, 0.4578275, 0.40821073],
  image_std: [0.26862954, 0.26130258, 0.27577711],
  resample: 3,
  size: 448,
});

function gray(width: number, height: number): RgbImage {
  return { width, height, data: new Uint8Array(width * height * 3).fill(128) };
}

describe('the square step is bounded', () => {
  it('keeps the exact official path for photos up to 4:1 and 10000 px, and for any photo up to 4096 px', () => {
    for (const [w, h] of [[6000, 4000], [8064, 6048], [10000, 2500], [4000, 10], [4096, 1], [1, 4096], [28, 28]]) {
      const img = gray(1, 1);
      img.width = w; // limitForSquare decides from the size alone; no pixels needed when it keeps the photo
      img.height = h;
      expect(limitForSquare(img), `${w}×${h}`).toBe(img);
      expect(Math.max(w, h) ** 2).toBeLessThanOrEqual(squareBudget(w, h));
    }
  });

  it('shrinks a photo whose square would be huge, keeping its aspect ratio, within the budget', () => {
    for (const [w, h] of [[16384, 24], [24, 16383], [65535, 16], [11000, 3000]]) {
      const out = limitForSquare(gray(w, h));
      const s = Math.max(out.width, out.height);
      expect(s * s, `${w}×${h}`).toBeLessThanOrEqual(squareBudget(w, h));
      expect(s * s).toBeLessThanOrEqual(MAX_INTERMEDIATE_PIXELS);
      expect(out.data.length).toBe(out.width * out.height * 3);
      expect(Math.abs(out.width / out.height - w / h) / (w / h)).toBeLessThan(0.2 + 1 / Math.min(out.width, out.height));
    }
  });

  it('a 16384×24 JPEG of 3 KB preprocesses without a 16384² square; crop mode refuses its 305834×448 intermediate', async () => {
    const jpg = await sharp({ create: { width: 16384, height: 24, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    expect(jpg.length).toBeLessThan(10_000);
    const img = await decodeImage(jpg);
    for (const mode of ['resize', 'pad'] as const) {
      const px = preprocessImage(img, CLIP_448, mode);
      expect(px.length, mode).toBe(3 * 448 * 448);
      expect(px.every(Number.isFinite), mode).toBe(true);
    }
    // A uniform photo stays uniform whichever path it took.
    const red = preprocessImage(img, CLIP_448, 'resize').subarray(0, 448 * 448);
    expect(red.reduce((m, x) => Math.max(m, x), -Infinity) - red.reduce((m, x) => Math.min(m, x), Infinity)).toBeLessThan(0.05);
    expect(() => preprocessImage(img, CLIP_448, 'crop')).toThrow(expect.objectContaining({ code: 'IMAGE_TOO_LARGE' }));
  });

  it('crop mode refuses an intermediate image over 100 MP with IMAGE_TOO_LARGE instead of a RangeError', async () => {
    // 300000×1: scaling the short side to 448 would make a 134 400 000×448 image.
    const img = gray(300_000, 1);
    let err: unknown;
    try {
      preprocessImage(img, CLIP_448, 'crop');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OwleryError);
    expect(err).toMatchObject({ code: 'IMAGE_TOO_LARGE', message: expect.stringMatching(/300000×1 pixels.*aspect ratio/) });
    // The square modes shrink it instead.
    expect(preprocessImage(img, CLIP_448, 'resize')).toHaveLength(3 * 448 * 448);
  });
});
