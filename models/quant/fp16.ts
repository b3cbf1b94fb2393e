/**
 * float32 ⇄ float16 conversion of whole tensors (IEEE 754 binary16, round to nearest even,
 * overflow to ±inf, subnormals kept, NaN kept as a quiet NaN), for fp16 weight packages.
 */
import { f16BitsToNumber, f32ToF16Bits } from '../checkpoint/dtype.ts';

/** float32 values → float16 bit patterns, round to nearest even. */
export function float32ToFloat16(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  const bits = new Uint32Array(src.buffer, src.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const exp = (x >>> 23) & 0xff;
    // Fast path: results that are normal halves (exponent 113..142), the usual case for weights.
    if (exp > 112 && exp < 143) {
      const sign = (x >>> 16) & 0x8000;
      let r = ((exp - 112) << 10) | ((x >>> 13) & 0x3ff);
      const rest = x & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && r & 1)) r++; // a carry into the exponent is correct
      out[i] = sign | r;
    } else {
      out[i] = f32ToF16Bits(src[i]);
    }
  }
  return out;
}

/** float16 bit patterns → float32 values (exact). */
export function float16ToFloat32(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f16BitsToNumber(src[i]);
  return out;
}

/** The float32 value nearest to each element after a round trip through float16. */
export function roundToFloat16(src: Float32Array): Float32Array {
  return float16ToFloat32(float32ToFloat16(src));
}
