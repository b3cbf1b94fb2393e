/**
 * Element types of checkpoint tensors: sizes and exact conversions to and from float32.
 *
 * F16 → F32 and BF16 → F32 are exact (every half/bfloat value is a float32 value). F32 → F16 and
 * F32 → BF16 round to nearest, ties to even, as PyTorch's `.half()` / `.bfloat16()` do.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { CheckpointDType } from './types.ts';

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<CheckpointDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** True when `s` names a dtype this project reads. */
export function isCheckpointDType(s: unknown): s is CheckpointDType {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Number of elements of a tensor of this shape (1 for a scalar). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

let f16Table: Float32Array | undefined;

/** Lookup table: float16 bit pattern → float32 value (exact, subnormals, ±inf and NaN included). */
function halfTable(): Float32Array {
  if (f16Table) return f16Table;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    t[h] = sign * v;
  }
  f16Table = t;
  return t;
}

/** Exact value of one float16 bit pattern. */
export function f16BitsToNumber(h: number): number {
  return halfTable()[h & 0xffff];
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 → float16 bit pattern, round to nearest even (overflow → ±inf, NaN stays NaN). */
export function f32ToF16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal half (or zero): shift the full significand into place, rounding to nearest even.
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let r = mant >>> shift;
    if (rest > half || (rest === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // may carry into the exponent, up to inf: correct
  return sign | r;
}

/** float32 → bfloat16 bit pattern, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(value: number): number {
  f32Scratch[0] = value;
  const x = u32Scratch[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Copies `raw` into a fresh, aligned buffer when its offset does not suit `bytes`-wide elements. */
function aligned(raw: Uint8Array, bytes: number): Uint8Array {
  if (raw.byteOffset % bytes === 0) return raw;
  return raw.slice();
}

/**
 * Converts raw little-endian tensor bytes to float32. F16/BF16 are exact; F64 and integers are rounded
 * to the nearest float32, as a cast does.
 */
export function rawToFloat32(raw: Uint8Array, dtype: CheckpointDType): Float32Array {
  const size = DTYPE_SIZE[dtype];
  if (raw.byteLength % size !== 0) {
    throw new OwleryError('CHECKPOINT_INVALID', `tensor byte length ${raw.byteLength} is not a multiple of the ${dtype} size ${size}`);
  }
  const n = raw.byteLength / size;
  const src = aligned(raw, size);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(n);
      out.set(new Float32Array(src.buffer, src.byteOffset, n));
      return out;
    }
    case 'F16': {
      const t = halfTable();
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[h[i]];
      return out;
    }
    case 'BF16': {
      const h = new Uint16Array(src.buffer, src.byteOffset, n);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = h[i] << 16;
      return out;
    }
    case 'F64': return Float32Array.from(new Float64Array(src.buffer, src.byteOffset, n));
    case 'I64': {
      const v = new BigInt64Array(src.buffer, src.byteOffset, n);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(v[i]);
      return out;
    }
    case 'I32': return Float32Array.from(new Int32Array(src.buffer, src.byteOffset, n));
    case 'I16': return Float32Array.from(new Int16Array(src.buffer, src.byteOffset, n));
    case 'I8': return Float32Array.from(new Int8Array(src.buffer, src.byteOffset, n));
    case 'U8': return Float32Array.from(src);
    case 'BOOL': return Float32Array.from(src, (b) => (b ? 1 : 0));
  }
}

/** Encodes float32 values as little-endian bytes of a floating dtype (F32, F16, BF16). */
export function float32ToRaw(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
  const out = new Uint16Array(values.length);
  const conv = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

/** Rounds float32 values through a dtype and back (identity for F32). */
export function roundThrough(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Float32Array {
  if (dtype === 'F32') return Float32Array.from(values);
  return rawToFloat32(float32ToRaw(values, dtype), dtype);
}
