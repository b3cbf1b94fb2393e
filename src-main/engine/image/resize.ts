/**
 * Pillow-exact 8-bit BICUBIC resampling.
 *
 * The official mPLUG-Owl2 path resizes twice with Pillow (the README's square stretch and the CLIP
 * processor's shortest-edge resize), and the model saw Pillow's exact uint8 output during training
 * and evaluation. This module reproduces Pillow 9.x `ImagingResample` for 8-bit images bit for bit:
 * separable, horizontal pass first, a pass whose size does not change is skipped, the intermediate
 * image is uint8, bicubic with a = -0.5 and support 2·max(in/out, 1) (antialiased when shrinking),
 * weights normalised in double precision and then rounded to fixed point with 22 fractional bits.
 * See `test/fixtures/owl2-public/README.md`, "Reproducing Pillow's bicubic resize".
 */

/** Fractional bits of Pillow's fixed-point weights (`PRECISION_BITS` = 32 − 8 − 2). */
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
// Every accumulator fits in int32 (as in Pillow, whose sums are INT32): |Σ pixel·k| ≤ 255 · Σ|k| < 2^31
// because the bicubic weights sum to 2^22 with negative lobes of at most ~13 %, so int32 math is exact.

/** Per-output-pixel windows and integer weights for one axis of a resize. */
export interface ResampleCoefficients {
  /** Number of output pixels along the axis. */
  outSize: number;
  /** Stride of `weights` per output pixel (the largest possible window). */
  ksize: number;
  /** First input index of each output pixel's window. */
  start: Int32Array;
  /** Window length of each output pixel (0 < length ≤ ksize). */
  length: Int32Array;
  /** Fixed-point weights, `ksize` per output pixel; entries past `length` are 0. */
  weights: Int32Array;
}

/** Pillow's bicubic kernel (a = −0.5), with its exact floating-point evaluation order. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/**
 * Computes the windows and fixed-point weights Pillow uses to resize one axis from `inSize` to
 * `outSize` pixels with BICUBIC (`precompute_coeffs` followed by `normalize_coeffs_8bpc`).
 */
export function bicubicCoefficients(inSize: number, outSize: number): ResampleCoefficients {
  checkSize('input', inSize);
  checkSize('output', outSize);
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const length = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    // C casts to int (truncation toward zero) before clamping.
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const v = bicubic((x + xmin - center + 0.5) * ss);
      w[x] = v;
      sum += v;
    }
    const base = i * ksize;
    for (let x = 0; x < xmax; x++) {
      const v = sum !== 0 ? w[x] / sum : w[x];
      // (int)(±0.5 + v·2^22): rounds half away from zero, then truncates.
      weights[base + x] = v < 0 ? Math.trunc(-0.5 + v * (1 << PRECISION_BITS)) : Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    start[i] = xmin;
    length[i] = xmax;
  }
  return { outSize, ksize, start, length, weights };
}

/** Clamps a fixed-point accumulator to a uint8 value, as Pillow's `clip8` does. */
function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Horizontal pass: every row, width `w` → `c.outSize`. */
function resampleHorizontal(src: Uint8Array, w: number, h: number, channels: number, c: ResampleCoefficients): Uint8Array {
  const outW = c.outSize;
  const out = new Uint8Array(outW * h * channels);
  const { start, length, weights, ksize } = c;
  const inStride = w * channels;
  const outStride = outW * channels;
  if (channels === 3) {
    for (let y = 0; y < h; y++) {
      const rowIn = y * inStride;
      let o = y * outStride;
      for (let x = 0; x < outW; x++) {
        const n = length[x];
        const kb = x * ksize;
        let p = rowIn + start[x] * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let j = 0; j < n; j++, p += 3) {
          const k = weights[kb + j];
          s0 = (s0 + Math.imul(src[p], k)) | 0;
          s1 = (s1 + Math.imul(src[p + 1], k)) | 0;
          s2 = (s2 + Math.imul(src[p + 2], k)) | 0;
        }
        out[o++] = clip8(s0);
        out[o++] = clip8(s1);
        out[o++] = clip8(s2);
      }
    }
    return out;
  }
  for (let y = 0; y < h; y++) {
    const rowIn = y * inStride;
    for (let x = 0; x < outW; x++) {
      const n = length[x];
      const kb = x * ksize;
      const p0 = rowIn + start[x] * channels;
      const o = y * outStride + x * channels;
      for (let ch = 0; ch < channels; ch++) {
        let s = HALF;
        for (let j = 0, p = p0 + ch; j < n; j++, p += channels) s = (s + Math.imul(src[p], weights[kb + j])) | 0;
        out[o + ch] = clip8(s);
      }
    }
  }
  return out;
}

/** Vertical pass: every column, height `h` → `c.outSize`; rows are accumulated whole for locality. */
function resampleVertical(src: Uint8Array, w: number, channels: number, c: ResampleCoefficients): Uint8Array {
  const outH = c.outSize;
  const rowLen = w * channels;
  const out = new Uint8Array(rowLen * outH);
  const acc = new Int32Array(rowLen);
  const { start, length, weights, ksize } = c;
  for (let y = 0; y < outH; y++) {
    const n = length[y];
    const kb = y * ksize;
    const o = y * rowLen;
    const r0 = start[y] * rowLen;
    if (n === 4 || n === 5) {
      // Enlarging (and mild shrinking) windows: sum straight from the source rows.
      const k0 = weights[kb];
      const k1 = weights[kb + 1];
      const k2 = weights[kb + 2];
      const k3 = weights[kb + 3];
      const r1 = r0 + rowLen;
      const r2 = r1 + rowLen;
      const r3 = r2 + rowLen;
      if (n === 4) {
        for (let i = 0; i < rowLen; i++) {
          out[o + i] = clip8((HALF + Math.imul(src[r0 + i], k0) + Math.imul(src[r1 + i], k1) + Math.imul(src[r2 + i], k2) + Math.imul(src[r3 + i], k3)) | 0);
        }
      } else {
        const k4 = weights[kb + 4];
        const r4 = r3 + rowLen;
        for (let i = 0; i < rowLen; i++) {
          out[o + i] = clip8((HALF + Math.imul(src[r0 + i], k0) + Math.imul(src[r1 + i], k1) + Math.imul(src[r2 + i], k2) + Math.imul(src[r3 + i], k3) + Math.imul(src[r4 + i], k4)) | 0);
        }
      }
      continue;
    }
    acc.fill(HALF);
    for (let j = 0; j < n; j++) {
      const k = weights[kb + j];
      if (k === 0) continue;
      const row = r0 + j * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] += Math.imul(src[row + i], k);
    }
    for (let i = 0; i < rowLen; i++) out[o + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * Resizes an 8-bit interleaved image (HWC, `channels` per pixel) exactly as Pillow 9.x
 * `Image.resize((outW, outH), Image.BICUBIC)` does for modes L and RGB.
 *
 * Returns a new array (a copy when the size does not change). Sizes must be positive integers.
 */
export function resizeBicubic(src: Uint8Array, w: number, h: number, channels: number, outW: number, outH: number): Uint8Array {
  checkSize('input width', w);
  checkSize('input height', h);
  checkSize('output width', outW);
  checkSize('output height', outH);
  if (!Number.isInteger(channels) || channels < 1) throw new RangeError(`resizeBicubic: bad channel count ${channels}`);
  if (src.length !== w * h * channels) {
    throw new RangeError(`resizeBicubic: expected ${w}×${h}×${channels} = ${w * h * channels} bytes, got ${src.length}`);
  }
  let img = src;
  if (outW !== w) img = resampleHorizontal(img, w, h, channels, bicubicCoefficients(w, outW));
  if (outH !== h) img = resampleVertical(img, outW, channels, bicubicCoefficients(h, outH));
  return img === src ? src.slice() : img;
}

function checkSize(what: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > 0x7fffff) throw new RangeError(`resizeBicubic: bad ${what} size ${n}`);
}
