/**
 * Block-wise weight quantization in the exact layout of onnxruntime's `com.microsoft::MatMulNBits`
 * (docs/engine-contract.md, "Quantized graphs").
 *
 * A PyTorch Linear weight `W [N = out, K = in]` is quantized along K in blocks of `blockSize`
 * values; each (row, block) has a float32 scale and, in the asymmetric mode, a uint8 zero point:
 *
 * - `data`  uint8 `[N, kBlocks, blobSize]`, kBlocks = ceil(K / blockSize), blobSize = blockSize·bits/8;
 *   4-bit codes are packed two per byte, element 2j in the low nibble and 2j+1 in the high nibble;
 *   8-bit codes are one byte each. Padding past K (last block) holds the zero point (dequantizes to 0).
 * - `scales` float32 `[N, kBlocks]`.
 * - `zeroPoints` uint8 `[N, ceil(kBlocks·bits/8)]`, packed like `data` (4-bit: block 2j low nibble,
 *   2j+1 high nibble); absent in the symmetric mode, where ORT's default zero point 2^(bits−1) applies.
 *
 * Dequantized value: `(code − zeroPoint) · scale`.
 *
 * Asymmetric ("uint8" zero points): the block's range is widened to include 0,
 * `scale = (max − min) / (2^bits − 1)`, `zp = clamp(round(−min / scale))`, codes
 * `clamp(round(w / scale) + zp)`; the error is at most scale/2 per value.
 * Symmetric ("none"): `scale = absmax / (2^(bits−1) − 1)`, codes `round(w / scale) + 2^(bits−1)`
 * (the lowest code is unused so that the range is symmetric); the error is at most scale/2.
 */
import { OwleryError } from '../../src-shared/errors.ts';

/** Weight bits supported by the quantizer (MatMulNBits also has 2, which Owlery does not use). */
export type QuantBits = 4 | 8;
/** `uint8`: asymmetric with packed uint8 zero points; `none`: symmetric, no zero-point input. */
export type ZeroPointMode = 'uint8' | 'none';

/** Parameters of a block-wise quantization. */
export interface BlockQuantParams {
  bits: QuantBits;
  /** Values per block along K: a power of two ≥ 16 (MatMulNBits' rule). */
  blockSize: number;
  zeroPoints: ZeroPointMode;
}

/** A block-quantized `[rows = N, cols = K]` matrix in MatMulNBits layout. */
export interface BlockQuantized extends BlockQuantParams {
  rows: number;
  cols: number;
  kBlocks: number;
  blobSize: number;
  /** uint8 `[rows, kBlocks, blobSize]`. */
  data: Uint8Array;
  /** float32 `[rows, kBlocks]`. */
  scales: Float32Array;
  /** uint8 `[rows, zeroPointBlob]` when `zeroPoints` is `uint8`. */
  zeroPointData?: Uint8Array;
}

/** Shapes of the three MatMulNBits inputs for an `[N, K]` weight. */
export function blockQuantShapes(rows: number, cols: number, p: BlockQuantParams): {
  kBlocks: number; blobSize: number; data: number[]; scales: number[]; zeroPoints: number[] | undefined;
} {
  const kBlocks = Math.ceil(cols / p.blockSize);
  const blobSize = (p.blockSize * p.bits) / 8;
  return {
    kBlocks,
    blobSize,
    data: [rows, kBlocks, blobSize],
    scales: [rows, kBlocks],
    zeroPoints: p.zeroPoints === 'uint8' ? [rows, Math.ceil((kBlocks * p.bits) / 8)] : undefined,
  };
}

/** Checks the parameters against MatMulNBits' rules; throws `INVALID_ARGUMENT`. */
export function checkBlockQuantParams(p: BlockQuantParams): void {
  if (p.bits !== 4 && p.bits !== 8) throw new OwleryError('INVALID_ARGUMENT', `quantization bits must be 4 or 8, got ${String(p.bits)}`);
  if (!Number.isInteger(p.blockSize) || p.blockSize < 16 || (p.blockSize & (p.blockSize - 1)) !== 0) {
    throw new OwleryError('INVALID_ARGUMENT', `quantization block size must be a power of two ≥ 16, got ${p.blockSize}`);
  }
  if (p.zeroPoints !== 'uint8' && p.zeroPoints !== 'none') {
    throw new OwleryError('INVALID_ARGUMENT', `zero-point mode must be "uint8" or "none", got ${String(p.zeroPoints)}`);
  }
}

function setCode(data: Uint8Array, bits: QuantBits, base: number, i: number, code: number): void {
  if (bits === 8) data[base + i] = code;
  else {
    const at = base + (i >> 1);
    data[at] = i & 1 ? (data[at] & 0x0f) | (code << 4) : (data[at] & 0xf0) | code;
  }
}

function getCode(data: Uint8Array, bits: QuantBits, base: number, i: number): number {
  if (bits === 8) return data[base + i];
  const b = data[base + (i >> 1)];
  return i & 1 ? b >> 4 : b & 0x0f;
}

/** The output arrays of a quantization, before any row is written. */
function allocate(w: Float32Array, rows: number, cols: number, p: BlockQuantParams, name: string): BlockQuantized {
  checkBlockQuantParams(p);
  if (w.length !== rows * cols) throw new OwleryError('INTERNAL', `${name}: ${w.length} values for [${rows}, ${cols}]`, { tensor: name });
  const { kBlocks, blobSize, zeroPoints: zpShape } = blockQuantShapes(rows, cols, p);
  return {
    ...p, rows, cols, kBlocks, blobSize,
    data: new Uint8Array(rows * kBlocks * blobSize),
    scales: new Float32Array(rows * kBlocks),
    zeroPointData: zpShape ? new Uint8Array(rows * zpShape[1]) : undefined,
  };
}

/** Quantizes rows `r0` to `r1` (exclusive) of `w` into `q`. */
function quantizeRows(w: Float32Array, q: BlockQuantized, r0: number, r1: number, name: string): void {
  const { bits, blockSize, kBlocks, blobSize, cols, data, scales, zeroPointData } = q;
  const qmax = (1 << bits) - 1;
  const mid = 1 << (bits - 1);
  const zpBlob = zeroPointData ? Math.ceil((kBlocks * bits) / 8) : 0;
  const asym = q.zeroPoints === 'uint8';
  for (let r = r0; r < r1; r++) {
    const row = r * cols;
    for (let b = 0; b < kBlocks; b++) {
      const k0 = b * blockSize;
      const k1 = Math.min(cols, k0 + blockSize);
      let lo = 0;
      let hi = 0;
      for (let k = k0; k < k1; k++) {
        const v = w[row + k];
        if (v < lo) lo = v;
        else if (v > hi) hi = v;
        if (!Number.isFinite(v)) {
          throw new OwleryError('CHECKPOINT_INVALID', `${name}: value ${v} at [${r}, ${k}] cannot be quantized`, { tensor: name });
        }
      }
      let scale: number;
      let zp: number;
      if (asym) {
        scale = Math.fround((hi - lo) / qmax);
        zp = scale === 0 ? 0 : Math.min(qmax, Math.max(0, Math.round(-lo / scale)));
      } else {
        scale = Math.fround(Math.max(-lo, hi) / (mid - 1));
        zp = mid;
      }
      const inv = scale === 0 ? 0 : 1 / scale;
      const base = (r * kBlocks + b) * blobSize;
      const n = k1 - k0;
      const src = row + k0;
      if (bits === 4) {
        for (let i = 0; i < blockSize; i += 2) {
          const c0 = i < n ? Math.min(qmax, Math.max(0, Math.round(w[src + i] * inv) + zp)) : zp;
          const c1 = i + 1 < n ? Math.min(qmax, Math.max(0, Math.round(w[src + i + 1] * inv) + zp)) : zp;
          data[base + (i >> 1)] = c0 | (c1 << 4);
        }
      } else {
        for (let i = 0; i < blockSize; i++) data[base + i] = i < n ? Math.min(qmax, Math.max(0, Math.round(w[src + i] * inv) + zp)) : zp;
      }
      scales[r * kBlocks + b] = scale;
      if (zeroPointData) setCode(zeroPointData, bits, r * zpBlob, b, zp);
    }
  }
}

/**
 * Quantizes a row-major `[rows, cols]` float32 matrix (a PyTorch Linear weight `[out, in]`, i.e.
 * MatMulNBits' `[N, K]`) block-wise along `cols`. `name` appears in error messages.
 */
export function quantizeBlockwise(w: Float32Array, rows: number, cols: number, p: BlockQuantParams, name = 'weight'): BlockQuantized {
  const q = allocate(w, rows, cols, p, name);
  quantizeRows(w, q, 0, rows, name);
  return q;
}

/** Values quantized between two turns of the event loop in {@link quantizeBlockwiseInSlices}. */
const SLICE_VALUES = 1 << 21;

/**
 * {@link quantizeBlockwise} in slices of rows (~2 M values, a few ms each), giving the event loop a
 * turn between slices, so a cancellation (Ctrl-C) is seen while a large weight is quantized:
 * `signal` stops it with `CANCELLED`. Same result as the one-piece version.
 */
export async function quantizeBlockwiseInSlices(w: Float32Array, rows: number, cols: number, p: BlockQuantParams, name = 'weight', signal?: AbortSignal): Promise<BlockQuantized> {
  const q = allocate(w, rows, cols, p, name);
  const step = Math.max(1, Math.floor(SLICE_VALUES / Math.max(1, cols)));
  for (let r = 0; r < rows; r += step) {
    if (r > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) throw new OwleryError('CANCELLED', 'conversion cancelled');
    quantizeRows(w, q, r, Math.min(rows, r + step), name);
  }
  return q;
}

/** The zero point of block `b` of row `r`. */
export function blockZeroPoint(q: BlockQuantized, r: number, b: number): number {
  if (!q.zeroPointData) return 1 << (q.bits - 1);
  const zpBlob = Math.ceil((q.kBlocks * q.bits) / 8);
  return getCode(q.zeroPointData, q.bits, r * zpBlob, b);
}

/** The quantized code of element `[r, k]`. */
export function blockCode(q: BlockQuantized, r: number, k: number): number {
  const b = Math.floor(k / q.blockSize);
  return getCode(q.data, q.bits, (r * q.kBlocks + b) * q.blobSize, k - b * q.blockSize);
}

/**
 * Reference dequantization to a row-major float32 `[rows, cols]` matrix: `(code − zp) · scale`,
 * rounded to float32, reading the packed layout independently of how it was written.
 */
export function dequantizeBlockwise(q: BlockQuantized): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  for (let r = 0; r < q.rows; r++) {
    for (let b = 0; b < q.kBlocks; b++) {
      const scale = q.scales[r * q.kBlocks + b];
      const zp = blockZeroPoint(q, r, b);
      const base = (r * q.kBlocks + b) * q.blobSize;
      const k0 = b * q.blockSize;
      const k1 = Math.min(q.cols, k0 + q.blockSize);
      for (let k = k0; k < k1; k++) out[r * q.cols + k] = (getCode(q.data, q.bits, base, k - k0) - zp) * scale;
    }
  }
  return out;
}
