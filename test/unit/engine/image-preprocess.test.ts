// preprocess.ts: config parsing, the HF CLIPImageProcessor details (output size rounding, center
// crop offsets, expand2square placement) and the three aspect modes on shapes the fixture lacks.
// Exactness against the official code is image-fixture.test.ts.
import { describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { RgbImage } from '../../../src-main/engine/image/decode.ts';
import {
  centerCrop,
  clipProcess,
  clipResize,
  expandToSquare,
  padBackground,
  parsePreprocessorConfig,
  preprocessImage,
  rescaleNormalize,
  shortestEdgeSize,
  stretchToSquare,
  toSquare,
} from '../../../src-main/engine/mplug-owl2/image-processing.ts';
import type { AspectMode, PreprocessorConfig } from '../../../src-main/engine/mplug-owl2/image-processing.ts';

const MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
/** The released checkpoint's settings (448) and the fixture's (42). */
const owl2 = parsePreprocessorConfig({ crop_size: 448, do_center_crop: true, do_normalize: true, do_resize: true, image_mean: MEAN, image_std: STD, resample: 3, size: 448 });
const tiny = parsePreprocessorConfig({ ...rawConfig(), size: 42, crop_size: 42 });

function rawConfig(): Record<string, unknown> {
  return { crop_size: 448, do_center_crop: true, do_convert_rgb: true, do_normalize: true, do_resize: true, image_mean: MEAN, image_std: STD, resample: 3, size: 448 };
}

function image(w: number, h: number, f: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set(f(x, y), (y * w + x) * 3);
  return { width: w, height: h, data };
}

function px(img: RgbImage, x: number, y: number): number[] {
  return Array.from(img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3));
}

/** HF's rescale + normalize for one value, spelled out: float64 product → float32, then float32 math. */
function norm(v: number, c: number): number {
  const f = Math.fround;
  return f(f(f(v * (1 / 255)) - f(MEAN[c])) / f(STD[c]));
}

function expectInvalid(json: unknown, message: RegExp): void {
  let err: unknown;
  try {
    parsePreprocessorConfig(json);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(OwleryError);
  expect((err as OwleryError).code).toBe('PACKAGE_INVALID');
  expect((err as OwleryError).message).toMatch(/preprocessor_config\.json/);
  expect((err as OwleryError).message).toMatch(message);
}

describe('parsePreprocessorConfig', () => {
  it('reads the released mPLUG-Owl2 settings', () => {
    expect(owl2).toEqual({
      doResize: true,
      size: { shortestEdge: 448 },
      resample: 3,
      doCenterCrop: true,
      cropSize: { height: 448, width: 448 },
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: MEAN,
      imageStd: STD,
      doConvertRgb: true,
    } satisfies PreprocessorConfig);
  });

  it('accepts the dict forms of size and crop_size', () => {
    const a = parsePreprocessorConfig({ ...rawConfig(), size: { shortest_edge: 336 }, crop_size: { height: 336, width: 320 } });
    expect(a.size).toEqual({ shortestEdge: 336 });
    expect(a.cropSize).toEqual({ height: 336, width: 320 });
    const b = parsePreprocessorConfig({ ...rawConfig(), size: { height: 300, width: 400 } });
    expect(b.size).toEqual({ height: 300, width: 400 });
  });

  it("fills in CLIPImageProcessor's defaults for missing keys", () => {
    const c = parsePreprocessorConfig({});
    expect(c.size).toEqual({ shortestEdge: 224 });
    expect(c.cropSize).toEqual({ height: 224, width: 224 });
    expect(c.imageMean).toEqual(MEAN);
    expect(c.imageStd).toEqual(STD);
    expect([c.doResize, c.doCenterCrop, c.doRescale, c.doNormalize]).toEqual([true, true, true, true]);
    expect(c.rescaleFactor).toBe(1 / 255);
  });

  it('rejects bad values with PACKAGE_INVALID naming the field', () => {
    expectInvalid(null, /JSON object/);
    expectInvalid([1, 2], /JSON object/);
    expectInvalid({ ...rawConfig(), resample: 2 }, /"resample" must be 3.*bilinear/);
    expectInvalid({ ...rawConfig(), resample: 'bicubic' }, /"resample"/);
    expectInvalid({ ...rawConfig(), size: 0 }, /"size"/);
    expectInvalid({ ...rawConfig(), size: 44.5 }, /"size"/);
    expectInvalid({ ...rawConfig(), size: '448' }, /"size"/);
    expectInvalid({ ...rawConfig(), size: { longest_edge: 448 } }, /"size"/);
    expectInvalid({ ...rawConfig(), size: { height: 448 } }, /"size.width"/);
    expectInvalid({ ...rawConfig(), crop_size: -1 }, /"crop_size"/);
    expectInvalid({ ...rawConfig(), crop_size: { shortest_edge: 448 } }, /"crop_size"/);
    expectInvalid({ ...rawConfig(), image_mean: [0.5, 0.5] }, /"image_mean"/);
    expectInvalid({ ...rawConfig(), image_mean: [0.5, 0.5, Number.NaN] }, /"image_mean"/);
    expectInvalid({ ...rawConfig(), image_std: [0.2, 0, 0.2] }, /"image_std".*none of them 0/);
    expectInvalid({ ...rawConfig(), do_resize: 'yes' }, /"do_resize"/);
    expectInvalid({ ...rawConfig(), rescale_factor: 0 }, /"rescale_factor"/);
  });
});

describe('CLIPImageProcessor details', () => {
  it('computes the resize size like get_resize_output_image_size (int truncation)', () => {
    expect(shortestEdgeSize(4000, 3000, 448)).toEqual({ width: 597, height: 448 }); // 597.33
    expect(shortestEdgeSize(3000, 4000, 448)).toEqual({ width: 448, height: 597 });
    expect(shortestEdgeSize(333, 100, 448)).toEqual({ width: 1491, height: 448 }); // 1491.84
    expect(shortestEdgeSize(4000, 10, 448)).toEqual({ width: 179200, height: 448 });
    expect(shortestEdgeSize(500, 500, 448)).toEqual({ width: 448, height: 448 });
    expect(shortestEdgeSize(448, 1000, 448)).toEqual({ width: 448, height: 1000 }); // already right: untouched
  });

  it('resizes to an exact {height, width} when size is given that way', () => {
    const cfg = parsePreprocessorConfig({ ...rawConfig(), size: { height: 20, width: 30 } });
    const out = clipResize(image(50, 50, () => [1, 2, 3]), cfg);
    expect([out.width, out.height]).toEqual([30, 20]);
  });

  it('center-crops at ((h − ch) // 2, (w − cw) // 2)', () => {
    const src = image(7, 6, (x, y) => [x, y, 0]);
    const out = centerCrop(src, 3, 4);
    expect([out.width, out.height]).toEqual([4, 3]);
    // top = (6 − 3) // 2 = 1, left = (7 − 4) // 2 = 1
    expect(px(out, 0, 0)).toEqual([1, 1, 0]);
    expect(px(out, 3, 2)).toEqual([4, 3, 0]);
  });

  it('pads with zeros when the image is smaller than the crop', () => {
    const src = image(2, 2, () => [9, 9, 9]);
    const out = centerCrop(src, 4, 6);
    expect([out.width, out.height]).toEqual([6, 4]);
    // top = (2 − 4) // 2 = −1, left = (2 − 6) // 2 = −2: the image sits at rows 1-2, columns 2-3.
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 6; x++) expect(px(out, x, y)).toEqual(y >= 1 && y <= 2 && x >= 2 && x <= 3 ? [9, 9, 9] : [0, 0, 0]);
    }
  });

  it('rescales in float64, then normalises in float32', () => {
    const src = image(256, 1, (x) => [x, 255 - x, (x * 37) % 256]);
    const out = rescaleNormalize(src, owl2);
    for (let x = 0; x < 256; x++) {
      expect(out[x]).toBe(norm(x, 0));
      expect(out[256 + x]).toBe(norm(255 - x, 1));
      expect(out[512 + x]).toBe(norm((x * 37) % 256, 2));
    }
  });

  it('honours do_rescale / do_normalize / do_center_crop = false', () => {
    const src = image(3, 2, (x, y) => [x * 10, y * 10, 255]);
    const raw = parsePreprocessorConfig({ ...rawConfig(), do_resize: false, do_center_crop: false, do_normalize: false, do_rescale: false });
    const a = clipProcess(src, raw);
    expect([a.height, a.width]).toEqual([2, 3]);
    expect(Array.from(a.data.subarray(0, 6))).toEqual([0, 10, 20, 0, 10, 20]);
    const scaled = parsePreprocessorConfig({ ...rawConfig(), do_resize: false, do_center_crop: false, do_normalize: false });
    expect(clipProcess(src, scaled).data[12]).toBe(1);
  });
});

describe('square step', () => {
  it('pad background is int(mean·255)', () => {
    expect(padBackground(owl2)).toEqual([122, 116, 104]);
  });

  it('expand2square pastes wide images at (0, (w − h) // 2) and tall ones at ((h − w) // 2, 0)', () => {
    const bg: [number, number, number] = [1, 2, 3];
    const wide = expandToSquare(image(5, 2, () => [200, 200, 200]), bg);
    expect([wide.width, wide.height]).toEqual([5, 5]);
    const rowsWithImage = [0, 1, 2, 3, 4].filter((y) => px(wide, 0, y)[0] === 200);
    expect(rowsWithImage).toEqual([1, 2]); // (5 − 2) // 2 = 1
    const tall = expandToSquare(image(2, 5, () => [200, 200, 200]), bg);
    const colsWithImage = [0, 1, 2, 3, 4].filter((x) => px(tall, x, 0)[0] === 200);
    expect(colsWithImage).toEqual([1, 2]);
    expect(px(tall, 0, 0)).toEqual([1, 2, 3]);
  });

  it('leaves square images as they are in every mode', () => {
    const sq = image(9, 9, (x, y) => [x * 20, y * 20, 7]);
    for (const mode of ['resize', 'pad', 'crop'] as AspectMode[]) expect(toSquare(sq, owl2, mode).data).toEqual(sq.data);
    expect(stretchToSquare(sq).data).not.toBe(sq.data);
  });

  it('rejects an unknown mode with INVALID_ARGUMENT', () => {
    expect(() => toSquare(image(2, 2, () => [0, 0, 0]), owl2, 'fit' as AspectMode)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('preprocessImage', () => {
  it('a 1×1 image becomes a constant [3, 448, 448] in both official modes', () => {
    const dot = image(1, 1, () => [200, 100, 50]);
    for (const mode of ['resize', 'pad', 'crop'] as AspectMode[]) {
      const out = preprocessImage(dot, owl2, mode);
      expect(out.length).toBe(3 * 448 * 448);
      for (let c = 0; c < 3; c++) {
        const plane = out.subarray(c * 448 * 448, (c + 1) * 448 * 448);
        expect(plane.every((v) => v === norm([200, 100, 50][c], c))).toBe(true);
      }
    }
  });

  it('a very wide image (4000×10) works in resize and pad modes', () => {
    const strip = image(4000, 10, (x) => [Math.floor(x / 16) % 256, 255 - (Math.floor(x / 16) % 256), 128]);
    const resized = preprocessImage(strip, owl2, 'resize');
    expect(resized.length).toBe(3 * 448 * 448);
    expect(resized.every(Number.isFinite)).toBe(true);
    // Stretched: every row shows the strip, so top and bottom rows match.
    expect(resized.subarray(0, 448)).toEqual(resized.subarray(447 * 448, 448 * 448));
    const padded = preprocessImage(strip, tiny, 'pad');
    expect(padded.length).toBe(3 * 42 * 42);
    // Padded: the strip is a thin band in the middle; the corners are the mean-colour background.
    for (let c = 0; c < 3; c++) {
      expect(padded[c * 42 * 42]).toBe(norm(padBackground(tiny)[c], c));
      expect(padded[c * 42 * 42 + 42 * 42 - 1]).toBe(norm(padBackground(tiny)[c], c));
    }
  });

  it('crop mode keeps the centre and cuts the long sides off', () => {
    // 84×42 with the fixture's 42 settings: no resize needed, the crop starts at x = 21.
    const src = image(84, 42, (x, y) => [x, y, (x + y) % 256]);
    const out = preprocessImage(src, tiny, 'crop');
    expect(out.length).toBe(3 * 42 * 42);
    for (const [x, y] of [
      [0, 0],
      [41, 41],
      [17, 5],
    ]) {
      expect(out[y * 42 + x]).toBe(norm(x + 21, 0));
      expect(out[42 * 42 + y * 42 + x]).toBe(norm(y, 1));
    }
  });

  it('resize mode equals the processor applied to the stretched square', () => {
    const src = image(60, 25, (x, y) => [(x * 9) % 256, (y * 13) % 256, (x * y) % 256]);
    const square = stretchToSquare(src);
    expect([square.width, square.height]).toEqual([60, 60]);
    expect(preprocessImage(src, tiny, 'resize')).toEqual(clipProcess(square, tiny).data);
    expect(preprocessImage(src, tiny)).toEqual(preprocessImage(src, tiny, 'resize'));
  });
});
