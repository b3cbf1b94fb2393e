import { describe, expect, it } from 'vitest';
import { f16BitsToNumber, f32ToBf16Bits, f32ToF16Bits, float32ToRaw, rawToFloat32 } from '../../../models/checkpoint/dtype.ts';
import { mulberry32 } from '../../../src-shared/random.ts';

/** Reference half decoding, independent of the table in dtype.ts. */
function halfValue(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/** Reference float32 → half: nearest representable half by search, ties to even mantissa. */
function refHalf(v: number): number {
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // 65504 + half an ulp (16) rounds to even = inf
  let lo = 0;
  let hi = 0x7bff;
  while (lo < hi) { // largest h with value(h) <= a
    const mid = (lo + hi + 1) >> 1;
    if (halfValue(mid) <= a) lo = mid; else hi = mid - 1;
  }
  const below = lo;
  const above = lo + 1;
  const dBelow = a - halfValue(below);
  const dAbove = halfValue(above) - a;
  if (dBelow < dAbove) return sign | below;
  if (dAbove < dBelow) return sign | above;
  return sign | (below & 1 ? above : below);
}

describe('dtype conversions', () => {
  it('F16 → F32 is exact for all 65536 bit patterns and F32 → F16 maps each back to itself', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToNumber(h);
      const ref = halfValue(h);
      if (Number.isNaN(ref)) {
        expect(Number.isNaN(v)).toBe(true);
        expect(Number.isNaN(f16BitsToNumber(f32ToF16Bits(v)))).toBe(true);
      } else {
        expect(Object.is(v, ref) || v === ref).toBe(true);
        expect(f32ToF16Bits(v)).toBe(h);
      }
    }
  });

  it('F32 → F16 rounds to nearest, ties to even, including subnormals, ties and overflow', () => {
    const r = mulberry32(7);
    const cases = [65504, 65519.99, 65520, 1e9, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 0.1, -0.1, 2049, 2051];
    for (let i = 0; i < 20000; i++) cases.push((r() - 0.5) * 2 ** Math.floor(r() * 40 - 28));
    for (const c of cases) {
      const v = Math.fround(c);
      expect(f32ToF16Bits(v), `${v}`).toBe(refHalf(v));
    }
  });

  it('F32 → BF16 rounds to nearest even; BF16 → F32 is exact', () => {
    const r = mulberry32(11);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 20000; i++) {
      u[0] = (r() * 2 ** 32) >>> 0;
      if (Number.isNaN(f[0])) continue;
      const bits = u[0];
      const lo = bits & 0xffff0000;
      const rest = bits & 0xffff;
      const want = (rest > 0x8000 || (rest === 0x8000 && (lo >>> 16) & 1) ? lo + 0x10000 : lo) >>> 16;
      expect(f32ToBf16Bits(f[0])).toBe(want & 0xffff);
    }
    const back = rawToFloat32(float32ToRaw(Float32Array.from([1.5, -3.25, 1e30]), 'BF16'), 'BF16');
    expect(Array.from(back.subarray(0, 2))).toEqual([1.5, -3.25]);
  });

  it('reads unaligned raw bytes', () => {
    const raw = new Uint8Array(9);
    raw.set(new Uint8Array(Float32Array.from([1.25, -7]).buffer), 1);
    expect(Array.from(rawToFloat32(raw.subarray(1), 'F32'))).toEqual([1.25, -7]);
  });
});
