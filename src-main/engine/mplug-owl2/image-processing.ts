/**
 * mPLUG-Owl2 image preprocessing: decoded RGB → CLIP `pixel_values` (CHW float32).
 *
 * Reproduces the official `mm_utils.process_images` with transformers 4.31's `CLIPImageProcessor`
 * and Pillow 9.4, stage by stage, so each stage can be checked against the fidelity fixture
 * (`test/fixtures/owl2-public`):
 *
 * 1. square step (`resize` mode: Pillow bicubic stretch to max(w, h); `pad` mode: `expand2square`
 *    onto int(mean·255); `crop` mode: none) → the processor input;
 * 2. {@link clipResize}: shortest edge to `size` with Pillow bicubic;
 * 3. {@link centerCrop} to `crop_size` (zero padding where the image is smaller, like HF);
 * 4. {@link rescaleNormalize}: `x·rescale_factor` in float64 rounded to float32, then
 *    `(x − mean) / std` in float32, written channels-first.
 *
 * **Bounded cost (deviation from the official code for extreme shapes only):** the square step
 * makes a max(w, h)² image, so a photo with an extreme aspect ratio would cost far more than its own
 * pixels (a 3 KB 16384×24 JPEG: an 805 MB square; a 65535×1525 one, within the decoder's 100 MP
 * limit: 12.9 GB). {@link preprocessImage} therefore first shrinks (Pillow bicubic, aspect kept) a
 * photo whose square would exceed {@link squareBudget}: 4× the photo's pixels, at least 4096², at
 * most 100 MP. Every photo up to 4:1 and 10000 px, and every photo up to 4096 px, takes the exact
 * official path. In `crop` mode the processor's intermediate image is bounded the same way
 * (IMAGE_TOO_LARGE beyond 100 MP: aspect ratios over ~500:1 at 448 px).
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import { MAX_IMAGE_PIXELS } from '../../../src-shared/limits.ts';
import type { RgbImage } from '../image/decode.ts';
import { resizeBicubic } from '../image/resize.ts';

import type { AspectMode } from '../../../src-shared/engine.ts';

export type { AspectMode };

/** The processor's resize target: HF `size`. */
export type ResizeTarget = { shortestEdge: number } | { height: number; width: number };

/** A validated `preprocessor_config.json` (CLIPImageProcessor settings). */
export interface PreprocessorConfig {
  /** `do_resize`. */
  doResize: boolean;
  /** `size`: a number or `{shortest_edge}` resizes the shortest edge; `{height, width}` resizes to exactly that. */
  size: ResizeTarget;
  /** `resample`: always 3 (PIL bicubic), the only filter implemented. */
  resample: 3;
  /** `do_center_crop`. */
  doCenterCrop: boolean;
  /** `crop_size` as height and width. */
  cropSize: { height: number; width: number };
  /** `do_rescale`. */
  doRescale: boolean;
  /** `rescale_factor` (1/255 by default). */
  rescaleFactor: number;
  /** `do_normalize`. */
  doNormalize: boolean;
  /** `image_mean`, one value per RGB channel. */
  imageMean: [number, number, number];
  /** `image_std`, one value per RGB channel. */
  imageStd: [number, number, number];
  /** `do_convert_rgb` (decoded images are always RGB, so it changes nothing). */
  doConvertRgb: boolean;
}

/** CLIP's normalisation constants (`OPENAI_CLIP_MEAN` / `OPENAI_CLIP_STD`), HF's defaults. */
const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];
const MAX_SIDE = 16384;

/**
 * Validates a parsed `preprocessor_config.json` and fills in `CLIPImageProcessor`'s defaults
 * (transformers 4.31: shortest edge 224, crop 224×224, bicubic, rescale 1/255, CLIP mean/std).
 *
 * @throws OwleryError `PACKAGE_INVALID` naming the offending field (wrong type, non-positive size,
 *   `resample` other than 3, mean/std not three finite numbers, zero std, …)
 */
export function parsePreprocessorConfig(json: unknown): PreprocessorConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) invalid('the file must hold a JSON object');
  const o = json as Record<string, unknown>;
  const resample = o.resample ?? 3;
  if (resample !== 3) {
    const names: Record<number, string> = { 0: 'nearest', 1: 'lanczos', 2: 'bilinear', 4: 'box', 5: 'hamming' };
    const label = typeof resample === 'number' && names[resample] ? ` (${names[resample]})` : '';
    invalid(`"resample" must be 3 (bicubic), the filter mPLUG-Owl2 was trained with; got ${JSON.stringify(resample)}${label}`);
  }
  return {
    doResize: flag(o, 'do_resize'),
    size: parseSize(o.size),
    resample: 3,
    doCenterCrop: flag(o, 'do_center_crop'),
    cropSize: parseCropSize(o.crop_size),
    doRescale: flag(o, 'do_rescale'),
    rescaleFactor: o.rescale_factor === undefined ? 1 / 255 : positive(o.rescale_factor, 'rescale_factor'),
    doNormalize: flag(o, 'do_normalize'),
    imageMean: triple(o.image_mean, 'image_mean', CLIP_MEAN, false),
    imageStd: triple(o.image_std, 'image_std', CLIP_STD, true),
    doConvertRgb: flag(o, 'do_convert_rgb'),
  };
}

function invalid(why: string): never {
  throw new OwleryError('PACKAGE_INVALID', `preprocessor_config.json is invalid: ${why}.`);
}

function flag(o: Record<string, unknown>, key: string): boolean {
  const v = o[key];
  if (v === undefined || v === null) return true;
  if (typeof v !== 'boolean') invalid(`"${key}" must be true or false; got ${JSON.stringify(v)}`);
  return v;
}

function side(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_SIDE) {
    invalid(`${what} must be an integer from 1 to ${MAX_SIDE}; got ${JSON.stringify(v)}`);
  }
  return v;
}

function positive(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) invalid(`"${what}" must be a positive number; got ${JSON.stringify(v)}`);
  return v;
}

function parseSize(v: unknown): ResizeTarget {
  if (v === undefined || v === null) return { shortestEdge: 224 };
  if (typeof v === 'number') return { shortestEdge: side(v, '"size"') };
  if (typeof v === 'object' && !Array.isArray(v)) {
    const s = v as Record<string, unknown>;
    if ('shortest_edge' in s) return { shortestEdge: side(s.shortest_edge, '"size.shortest_edge"') };
    if ('height' in s || 'width' in s) return { height: side(s.height, '"size.height"'), width: side(s.width, '"size.width"') };
  }
  invalid(`"size" must be a number, {"shortest_edge": n} or {"height": h, "width": w}; got ${JSON.stringify(v)}`);
}

function parseCropSize(v: unknown): { height: number; width: number } {
  if (v === undefined || v === null) return { height: 224, width: 224 };
  if (typeof v === 'number') {
    const n = side(v, '"crop_size"');
    return { height: n, width: n };
  }
  if (typeof v === 'object' && !Array.isArray(v) && ('height' in v || 'width' in v)) {
    const s = v as Record<string, unknown>;
    return { height: side(s.height, '"crop_size.height"'), width: side(s.width, '"crop_size.width"') };
  }
  invalid(`"crop_size" must be a number or {"height": h, "width": w}; got ${JSON.stringify(v)}`);
}

function triple(v: unknown, key: string, dflt: [number, number, number], nonZero: boolean): [number, number, number] {
  if (v === undefined || v === null) return [...dflt];
  if (typeof v === 'number') v = [v, v, v];
  if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x) && (!nonZero || x !== 0))) {
    invalid(`"${key}" must be three finite numbers${nonZero ? ', none of them 0' : ''}; got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1], v[2]];
}

/** The `pad` background: `int(mean·255)` per channel, as the official `process_images` computes it. */
export function padBackground(cfg: PreprocessorConfig): [number, number, number] {
  return [Math.trunc(cfg.imageMean[0] * 255), Math.trunc(cfg.imageMean[1] * 255), Math.trunc(cfg.imageMean[2] * 255)];
}

/** Most pixels any intermediate image of the preprocessing may hold: the decoder's own limit (300 MB of RGB). */
export const MAX_INTERMEDIATE_PIXELS = MAX_IMAGE_PIXELS;
/** The square step may always reach this many pixels (4096²), whatever the photo's shape. */
const FREE_SQUARE_PIXELS = 4096 * 4096;

/**
 * Most pixels the square step may produce for a `width`×`height` photo: 4× its own pixels (so any
 * photo up to 4:1 is squared as is), at least 4096², at most {@link MAX_INTERMEDIATE_PIXELS}.
 */
export function squareBudget(width: number, height: number): number {
  return Math.min(MAX_INTERMEDIATE_PIXELS, Math.max(FREE_SQUARE_PIXELS, 4 * width * height));
}

/**
 * Shrinks a photo (Pillow bicubic, aspect ratio kept) whose square step would exceed
 * {@link squareBudget}, so that the square fits it; returns other photos unchanged.
 */
export function limitForSquare(img: RgbImage): RgbImage {
  const s = Math.max(img.width, img.height);
  const budget = squareBudget(img.width, img.height);
  if (s * s <= budget) return img;
  const k = Math.floor(Math.sqrt(budget)) / s;
  const width = Math.max(1, Math.round(img.width * k));
  const height = Math.max(1, Math.round(img.height * k));
  return { width, height, data: resizeBicubic(img.data, img.width, img.height, 3, width, height) };
}

/** `resize` mode's square step: Pillow bicubic stretch to max(w, h) × max(w, h) (a copy if already square). */
export function stretchToSquare(img: RgbImage): RgbImage {
  const s = Math.max(img.width, img.height);
  return { width: s, height: s, data: resizeBicubic(img.data, img.width, img.height, 3, s, s) };
}

/**
 * `pad` mode's square step: the official `expand2square`, pasting the image at
 * ((side − w) // 2, (side − h) // 2) on a square of `background` (a copy if already square).
 */
export function expandToSquare(img: RgbImage, background: readonly [number, number, number]): RgbImage {
  const { width: w, height: h } = img;
  const s = Math.max(w, h);
  if (w === h) return { width: w, height: h, data: img.data.slice() };
  const out = new Uint8Array(s * s * 3);
  for (let i = 0; i < out.length; i += 3) {
    out[i] = background[0];
    out[i + 1] = background[1];
    out[i + 2] = background[2];
  }
  const left = Math.floor((s - w) / 2);
  const top = Math.floor((s - h) / 2);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(y * w * 3, (y + 1) * w * 3), ((top + y) * s + left) * 3);
  return { width: s, height: s, data: out };
}

/** The square (or unchanged, for `crop`) image the official code hands to the CLIP processor. */
export function toSquare(img: RgbImage, cfg: PreprocessorConfig, mode: AspectMode): RgbImage {
  switch (mode) {
    case 'resize':
      return stretchToSquare(img);
    case 'pad':
      return expandToSquare(img, padBackground(cfg));
    case 'crop':
      return img;
    default:
      throw new OwleryError('INVALID_ARGUMENT', `Unknown image aspect mode ${JSON.stringify(mode)}; use "resize", "pad" or "crop".`);
  }
}

/**
 * HF `get_resize_output_image_size(image, shortest_edge, default_to_square=False)`: the short side
 * becomes `shortest`, the long side `int(shortest · long / short)` (truncated).
 */
export function shortestEdgeSize(width: number, height: number, shortest: number): { width: number; height: number } {
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  if (short === shortest) return { width, height };
  const newLong = Math.trunc((shortest * long) / short);
  return width <= height ? { width: shortest, height: newLong } : { width: newLong, height: shortest };
}

/** The processor's resize (`do_resize`): Pillow bicubic to the `size` target. */
export function clipResize(img: RgbImage, cfg: PreprocessorConfig): RgbImage {
  if (!cfg.doResize) return img;
  const t = 'shortestEdge' in cfg.size ? shortestEdgeSize(img.width, img.height, cfg.size.shortestEdge) : cfg.size;
  if (t.width * t.height > MAX_INTERMEDIATE_PIXELS) {
    throw new OwleryError(
      'IMAGE_TOO_LARGE',
      `The photo is ${img.width}×${img.height} pixels: its aspect ratio is too extreme to scale its short side to ${Math.min(t.width, t.height)} pixels ` +
        `(that would make a ${t.width}×${t.height} image). Crop the photo, or use the "resize" or "pad" aspect mode.`,
      { width: img.width, height: img.height, target: t },
    );
  }
  return { width: t.width, height: t.height, data: resizeBicubic(img.data, img.width, img.height, 3, t.width, t.height) };
}

/**
 * HF `center_crop`: top = (h − crop_h) // 2, left = (w − crop_w) // 2 (floor division); where the
 * image is smaller than the crop, the missing pixels are zeros.
 */
export function centerCrop(img: RgbImage, cropHeight: number, cropWidth: number): RgbImage {
  const { width: w, height: h } = img;
  if (w === cropWidth && h === cropHeight) return img;
  const top = Math.floor((h - cropHeight) / 2);
  const left = Math.floor((w - cropWidth) / 2);
  const out = new Uint8Array(cropHeight * cropWidth * 3);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(cropWidth, w - left);
  for (let y = 0; y < cropHeight; y++) {
    const sy = y + top;
    if (sy < 0 || sy >= h || x1 <= x0) continue;
    out.set(img.data.subarray((sy * w + left + x0) * 3, (sy * w + left + x1) * 3), (y * cropWidth + x0) * 3);
  }
  return { width: cropWidth, height: cropHeight, data: out };
}

/**
 * HF `rescale` then `normalize`, channels-first: `v = f32(x · rescale_factor)` (float64 product),
 * then `f32(f32(v − mean) / std)` with mean and std as float32, exactly like NumPy in 4.31.
 */
export function rescaleNormalize(img: RgbImage, cfg: PreprocessorConfig): Float32Array {
  const plane = img.width * img.height;
  const out = new Float32Array(plane * 3);
  const f32 = Math.fround;
  for (let c = 0; c < 3; c++) {
    // One lookup table per channel: the result depends only on the uint8 value.
    const lut = new Float32Array(256);
    const mean = f32(cfg.imageMean[c]);
    const std = f32(cfg.imageStd[c]);
    for (let v = 0; v < 256; v++) {
      let x = cfg.doRescale ? f32(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = f32(f32(x - mean) / std);
      lut[v] = x;
    }
    const base = c * plane;
    for (let p = 0, i = c; p < plane; p++, i += 3) out[base + p] = lut[img.data[i]];
  }
  return out;
}

/** The processor's output with its size: CHW float32 `[3, height, width]`. */
export interface PixelValues {
  /** Height of each channel plane. */
  height: number;
  /** Width of each channel plane. */
  width: number;
  /** `3·height·width` values, channel-major (R plane, G plane, B plane). */
  data: Float32Array;
}

/** The whole `CLIPImageProcessor.preprocess` for one image: resize, center crop, rescale, normalise. */
export function clipProcess(img: RgbImage, cfg: PreprocessorConfig): PixelValues {
  let x = clipResize(img, cfg);
  if (cfg.doCenterCrop) x = centerCrop(x, cfg.cropSize.height, cfg.cropSize.width);
  return { height: x.height, width: x.width, data: rescaleNormalize(x, cfg) };
}

/**
 * Turns a decoded photo into the vision encoder's `pixel_values` for one image: CHW float32
 * `[3, crop_h, crop_w]` (with `do_center_crop`, always the case for mPLUG-Owl2's 448×448).
 *
 * `mode` picks the official path: `resize` (the README quick start and every evaluation script:
 * stretch to a square, then the processor), `pad` (`image_aspect_ratio: "pad"`, the web demo:
 * centre on a square of the mean colour, then the processor) or `crop` (processor only: shortest
 * edge to `size`, then the center crop cuts the long sides off).
 *
 * In `resize` and `pad` mode a photo whose square would exceed {@link squareBudget} is shrunk
 * first ({@link limitForSquare}; see the module comment); in `crop` mode an intermediate image over
 * {@link MAX_INTERMEDIATE_PIXELS} is refused with `IMAGE_TOO_LARGE`.
 */
export function preprocessImage(img: RgbImage, cfg: PreprocessorConfig, mode: AspectMode = 'resize'): Float32Array {
  const input = mode === 'resize' || mode === 'pad' ? limitForSquare(img) : img;
  return clipProcess(toSquare(input, cfg, mode), cfg).data;
}
