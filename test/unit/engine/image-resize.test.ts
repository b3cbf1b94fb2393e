// resizeBicubic beyond the fixture's 11 resizes: against a plain float64 bicubic written here
// (which the fixture README measured at most 1 step away from Pillow), plus invariants that any
// exact Pillow emulation has. The bit-exact comparison with Pillow itself is image-fixture.test.ts.
import { describe, expect, it } from 'vitest';
import { bicubicCoefficients, resizeBicubic } from '../../../src-main/engine/image/resize.ts';

/** Keys' cubic convolution kernel with a = −0.5, written in the textbook form. */
function keys(t: number): number {
  const x = Math.abs(t);
  if (x < 1) return 1.5 * x ** 3 - 2.5 * x ** 2 + 1;
  if (x < 2) return -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2;
  return 0;
}

/** One axis in float64 with antialiasing; rounds to uint8 at the end of the pass. */
function refAxis(line: (i: number) => number, inLen: number, outLen: number): number[] {
  const scale = inLen / outLen;
  const fs = Math.max(scale, 1);
  const out: number[] = [];
  for (let i = 0; i < outLen; i++) {
    const centre = (i + 0.5) * scale;
    let num = 0;
    let den = 0;
    for (let j = Math.max(0, Math.floor(centre - 2 * fs) - 1); j < Math.min(inLen, Math.ceil(centre + 2 * fs) + 1); j++) {
      // Pillow's window: [trunc(c − support + ½), trunc(c + support + ½)).
      if (j < Math.max(Math.trunc(centre - 2 * fs + 0.5), 0) || j >= Math.min(Math.trunc(centre + 2 * fs + 0.5), inLen)) continue;
      const wgt = keys((j + 0.5 - centre) / fs);
      num += wgt * line(j);
      den += wgt;
    }
    out.push(Math.min(255, Math.max(0, Math.round(num / den))));
  }
  return out;
}

function refResize(src: Uint8Array, w: number, h: number, c: number, ow: number, oh: number): Uint8Array {
  let cur = src;
  let cw = w;
  if (ow !== w) {
    const tmp = new Uint8Array(ow * h * c);
    for (let y = 0; y < h; y++) {
      for (let k = 0; k < c; k++) {
        const row = refAxis((x) => cur[(y * cw + x) * c + k], w, ow);
        row.forEach((v, x) => (tmp[(y * ow + x) * c + k] = v));
      }
    }
    cur = tmp;
    cw = ow;
  }
  if (oh !== h) {
    const tmp = new Uint8Array(ow * oh * c);
    for (let x = 0; x < ow; x++) {
      for (let k = 0; k < c; k++) {
        const col = refAxis((y) => cur[(y * cw + x) * c + k], h, oh);
        col.forEach((v, y) => (tmp[(y * ow + x) * c + k] = v));
      }
    }
    cur = tmp;
  }
  return cur;
}

function noise(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
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

/** Smooth content with an edge, closer to a photo than noise. */
function picture(w: number, h: number, c: number): Uint8Array {
  const out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let k = 0; k < c; k++) {
        const v = 128 + 90 * Math.sin((x * (k + 1)) / 7 + y / 5) + (x > w / 2 ? 30 : -30);
        out[(y * w + x) * c + k] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return out;
}

describe('resizeBicubic', () => {
  const cases: [number, number, number, number][] = [
    [90, 60, 90, 90], // stretch (vertical only)
    [30, 70, 70, 70], // stretch (horizontal only)
    [90, 90, 42, 42], // shrink
    [61, 47, 13, 29], // odd sizes, mixed directions
    [7, 5, 50, 31], // strong enlargement
    [200, 9, 17, 3], // strong shrink
    [1, 1, 9, 4], // from a single pixel
    [33, 21, 1, 1], // to a single pixel
    [4000, 10, 448, 448], // very wide to square
  ];

  it.each(cases)('%i×%i → %i×%i stays within 1-2 steps of a float64 bicubic', (w, h, ow, oh) => {
    for (const [src, label] of [
      [picture(w, h, 3), 'picture'],
      [noise(w * h * 3, w * 31 + h), 'noise'],
    ] as const) {
      const got = resizeBicubic(src, w, h, 3, ow, oh);
      const want = refResize(src, w, h, 3, ow, oh);
      expect(got.length).toBe(ow * oh * 3);
      let maxd = 0;
      let differing = 0;
      for (let i = 0; i < got.length; i++) {
        const d = Math.abs(got[i] - want[i]);
        maxd = Math.max(maxd, d);
        if (d) differing++;
      }
      // A one-step difference after the first pass can grow by one more in the second when the
      // kernel overshoots on noise; on smooth content the two stay within one step.
      expect(maxd, label).toBeLessThanOrEqual(label === 'picture' ? 1 : 2);
      expect(differing / got.length, label).toBeLessThan(0.02);
    }
  });

  it('keeps a constant image constant at any size', () => {
    for (const [w, h, ow, oh] of cases) {
      for (const v of [0, 1, 77, 254, 255]) {
        const out = resizeBicubic(new Uint8Array(w * h * 3).fill(v), w, h, 3, ow, oh);
        expect(out.every((x) => x === v)).toBe(true);
      }
    }
  });

  it('treats channels independently (the RGB fast path equals the 1-channel path)', () => {
    const [w, h, ow, oh] = [37, 23, 16, 55];
    const rgb = noise(w * h * 3, 5);
    const out = resizeBicubic(rgb, w, h, 3, ow, oh);
    for (let k = 0; k < 3; k++) {
      const plane = rgb.filter((_, i) => i % 3 === k);
      const one = resizeBicubic(plane, w, h, 1, ow, oh);
      expect(out.filter((_, i) => i % 3 === k)).toEqual(one);
    }
    const rgba = new Uint8Array(w * h * 4);
    for (let p = 0; p < w * h; p++) rgba.set([rgb[p * 3], rgb[p * 3 + 1], rgb[p * 3 + 2], 9], p * 4);
    const four = resizeBicubic(rgba, w, h, 4, ow, oh);
    expect(four.filter((_, i) => i % 4 !== 3)).toEqual(out);
  });

  it('returns an equal copy when the size does not change', () => {
    const src = noise(12 * 7 * 3, 8);
    const out = resizeBicubic(src, 12, 7, 3, 12, 7);
    expect(out).toEqual(src);
    expect(out).not.toBe(src);
  });

  it('is separable with the horizontal pass first (uint8 in between)', () => {
    const [w, h, ow, oh] = [40, 30, 17, 45];
    const src = picture(w, h, 3);
    const horizontal = resizeBicubic(src, w, h, 3, ow, h);
    expect(resizeBicubic(horizontal, ow, h, 3, ow, oh)).toEqual(resizeBicubic(src, w, h, 3, ow, oh));
  });

  it('rejects bad sizes and mismatched buffers', () => {
    expect(() => resizeBicubic(new Uint8Array(12), 2, 2, 3, 0, 4)).toThrow(RangeError);
    expect(() => resizeBicubic(new Uint8Array(12), 2, 2, 3, 4.5, 4)).toThrow(RangeError);
    expect(() => resizeBicubic(new Uint8Array(11), 2, 2, 3, 4, 4)).toThrow(/12 bytes, got 11/);
    expect(() => resizeBicubic(new Uint8Array(0), 0, 0, 3, 4, 4)).toThrow(RangeError);
  });
});

describe('bicubicCoefficients', () => {
  it.each([
    [90, 42],
    [4000, 448],
    [3000, 4000],
    [1, 448],
    [448, 1],
  ])('%i → %i: windows inside the input, weights summing to 1 in 22-bit fixed point', (inSize, outSize) => {
    const c = bicubicCoefficients(inSize, outSize);
    const support = 2 * Math.max(inSize / outSize, 1);
    expect(c.ksize).toBe(Math.ceil(support) * 2 + 1);
    for (let i = 0; i < outSize; i++) {
      expect(c.start[i]).toBeGreaterThanOrEqual(0);
      expect(c.length[i]).toBeGreaterThan(0);
      expect(c.length[i]).toBeLessThanOrEqual(c.ksize);
      expect(c.start[i] + c.length[i]).toBeLessThanOrEqual(inSize);
      let sum = 0;
      for (let j = 0; j < c.ksize; j++) {
        if (j >= c.length[i]) expect(c.weights[i * c.ksize + j]).toBe(0);
        sum += c.weights[i * c.ksize + j];
      }
      // Each weight is rounded on its own, so the sum may miss 2^22 by up to half a unit per tap.
      expect(Math.abs(sum - 2 ** 22)).toBeLessThanOrEqual(c.length[i] / 2 + 1);
    }
  });

  it('uses the identity when the size is unchanged', () => {
    const c = bicubicCoefficients(10, 10);
    for (let i = 0; i < 10; i++) {
      for (let j = 0; j < c.length[i]; j++) expect(c.weights[i * c.ksize + j]).toBe(c.start[i] + j === i ? 2 ** 22 : 0);
    }
  });
});
