/**
 * The visual abstractor's fixed sin-cos position tables (`attention.q_pos_embed` and
 * `attention.k_pos_embed`), as the official code builds them (MAE's `get_1d_sincos_pos_embed_from_grid`
 * and `get_2d_sincos_pos_embed` in mPLUG-Owl2's `visual_encoder.py`).
 *
 * 1-D, dim D, positions p: ω_i = 1/10000^(i/(D/2)) for i < D/2; row p = [sin(p·ω), cos(p·ω)].
 * 2-D, grid G: first D/2 dims from the column (w) coordinate, last D/2 from the row (h) coordinate,
 * rows in raster order, with an all-zero row in front for the cls token.
 *
 * The official code runs NumPy in float32 (float32 `arange`, float32 ω, float32 products and
 * sin/cos). `precision: 'float32'` (the default) reproduces that step by step, which matters for
 * the 7B sizes (64 queries, a 32×32 grid: the float32 arguments p·ω are off by up to ~4e-6 from the
 * exact ones). `precision: 'float64'` computes exactly and rounds once at the end.
 */

/** Arithmetic used for the tables. */
export type SinCosPrecision = 'float32' | 'float64';

/** Options for the sin-cos tables. */
export interface SinCosOptions {
  /** Default `float32`: what the official NumPy code does. */
  precision?: SinCosPrecision;
}

function omegas(half: number, precision: SinCosPrecision): Float64Array {
  const r = precision === 'float32' ? Math.fround : (x: number): number => x;
  const out = new Float64Array(half);
  for (let i = 0; i < half; i++) {
    const e = r(i / half);
    out[i] = r(1 / r(10000 ** e));
  }
  return out;
}

function checkDim(dim: number, multiple: number, what: string): void {
  if (!Number.isInteger(dim) || dim <= 0 || dim % multiple !== 0) {
    throw new RangeError(`${what}: embedding dim ${dim} must be a positive multiple of ${multiple}`);
  }
}

/** Writes `[sin(p·ω), cos(p·ω)]` for one coordinate into `out[offset .. offset + dim)`. */
function writeRow(out: Float32Array, offset: number, p: number, w: Float64Array, precision: SinCosPrecision): void {
  const half = w.length;
  for (let i = 0; i < half; i++) {
    const arg = precision === 'float32' ? Math.fround(p * w[i]) : p * w[i];
    out[offset + i] = Math.sin(arg);
    out[offset + half + i] = Math.cos(arg);
  }
}

/** 1-D table `[positions, dim]` (row-major) for positions 0 … positions−1: the abstractor's `q_pos_embed`. */
export function sincos1d(dim: number, positions: number, options: SinCosOptions = {}): Float32Array {
  checkDim(dim, 2, 'sincos1d');
  const precision = options.precision ?? 'float32';
  const w = omegas(dim / 2, precision);
  const out = new Float32Array(positions * dim);
  for (let p = 0; p < positions; p++) writeRow(out, p * dim, p, w, precision);
  return out;
}

/**
 * 2-D table for a `gridSize × gridSize` grid, `[1 + gridSize², dim]` with a zero cls row in front
 * (or `[gridSize², dim]` with `clsToken: false`): the abstractor's `k_pos_embed`.
 */
export function sincos2d(dim: number, gridSize: number, options: SinCosOptions & { clsToken?: boolean } = {}): Float32Array {
  checkDim(dim, 4, 'sincos2d');
  const precision = options.precision ?? 'float32';
  const cls = options.clsToken ?? true ? 1 : 0;
  const half = dim / 2;
  const w = omegas(half / 2, precision);
  const out = new Float32Array((cls + gridSize * gridSize) * dim);
  for (let h = 0; h < gridSize; h++) {
    for (let c = 0; c < gridSize; c++) {
      const row = (cls + h * gridSize + c) * dim;
      writeRow(out, row, c, w, precision);
      writeRow(out, row + half, h, w, precision);
    }
  }
  return out;
}

/** Both abstractor tables for a config: `q` is `[numQueries, hiddenSize]`, `k` is `[1 + gridSize², hiddenSize]`. */
export function abstractorPosEmbeds(
  abstractor: { hiddenSize: number; numQueries: number; gridSize: number },
  options: SinCosOptions = {},
): { q: Float32Array; qShape: [number, number]; k: Float32Array; kShape: [number, number] } {
  const { hiddenSize, numQueries, gridSize } = abstractor;
  return {
    q: sincos1d(hiddenSize, numQueries, options),
    qShape: [numQueries, hiddenSize],
    k: sincos2d(hiddenSize, gridSize, options),
    kShape: [1 + gridSize * gridSize, hiddenSize],
  };
}
