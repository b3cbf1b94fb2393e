/**
 * Declaring checkpoint tensors as lazily streamed ONNX weights, with the layout changes the
 * graphs need (PyTorch Linear `[out, in]` → MatMul `[in, out]`).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { CheckpointReader } from '../checkpoint/types.ts';
import { blockQuantShapes, quantizeBlockwiseInSlices } from '../quant/blockwise.ts';
import type { BlockQuantized } from '../quant/blockwise.ts';
import { float32ToFloat16 } from '../quant/fp16.ts';
import type { LinearFormat } from '../quant/plan.ts';
import type { GraphBuilder, Value } from './graph.ts';
import { bytesOf, numel } from './graph.ts';
import { DataType, attr } from './proto.ts';

/** What the graph builders need from a checkpoint: the tensor list and float32 reads. */
export type WeightReader = Pick<CheckpointReader, 'tensors' | 'readFloat32'> & Partial<Pick<CheckpointReader, 'signal'>>;

/** Row-major `[rows, cols]` → `[cols, rows]`, blocked for cache friendliness. */
export function transpose2d(src: Float32Array, rows: number, cols: number): Float32Array {
  if (src.length !== rows * cols) throw new Error(`transpose2d: ${src.length} values for [${rows}, ${cols}]`);
  const dst = new Float32Array(src.length);
  const B = 64;
  for (let r0 = 0; r0 < rows; r0 += B) {
    const r1 = Math.min(rows, r0 + B);
    for (let c0 = 0; c0 < cols; c0 += B) {
      const c1 = Math.min(cols, c0 + B);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let c = c0; c < c1; c++) dst[c * rows + r] = src[base + c];
      }
    }
  }
  return dst;
}

/** Checks that `key` exists with `numel(dims)` elements. */
export function requireTensor(r: WeightReader, key: string, dims: readonly number[]): void {
  const info = r.tensors.get(key);
  if (!info) throw new OwleryError('CHECKPOINT_INVALID', `the checkpoint has no tensor "${key}"`, { tensor: key });
  if (numel(info.shape) !== numel(dims)) {
    throw new OwleryError('CHECKPOINT_INVALID',
      `${info.file}: tensor "${key}" has shape [${info.shape.join(', ')}], expected [${dims.join(', ')}]`, { tensor: key });
  }
}

/** A checkpoint tensor as a float32 weight of shape `dims` (same element order). */
export function checkpointWeight(g: GraphBuilder, r: WeightReader, key: string, dims: readonly number[], name = key): Value {
  requireTensor(r, key, dims);
  return g.weightF32(name, dims, () => r.readFloat32(key));
}

/** A PyTorch Linear weight `[out, in]` stored transposed as `[in, out]` for MatMul. */
export function linearWeight(g: GraphBuilder, r: WeightReader, key: string, outFeatures: number, inFeatures: number, name = key): Value {
  requireTensor(r, key, [outFeatures, inFeatures]);
  return g.weightF32(name, [inFeatures, outFeatures], async () => transpose2d(await r.readFloat32(key), outFeatures, inFeatures));
}

/** The ONNX domain of onnxruntime's contrib operators (MatMulNBits). */
export const MS_DOMAIN = 'com.microsoft';

const FLOAT32: LinearFormat = { kind: 'float', weightType: 'fp32' };

/**
 * Shares one expensive load between `parts` consumers (the writer streams the parts of a quantized
 * weight one after another): computed on first use, dropped after the last part took its share.
 */
function sharedLoad<T>(load: () => Promise<T>, parts: number): () => Promise<T> {
  let pending: Promise<T> | undefined;
  let taken = 0;
  return () => {
    pending ??= load();
    const p = pending;
    if (++taken === parts) {
      pending = undefined;
      taken = 0;
    }
    return p;
  };
}

/** Block-quantizes checkpoint tensor `key` (`[rows, cols]`, row-major) as MatMulNBits' B, scales, zero points. */
export function blockQuantizedWeights(
  g: GraphBuilder, r: WeightReader, key: string, rows: number, cols: number, fmt: Extract<LinearFormat, { kind: 'matmulnbits' }> | { bits: 4 | 8; blockSize: number; zeroPoints: 'uint8' | 'none' },
  name = key,
): { data: Value; scales: Value; zeroPoints?: Value } {
  requireTensor(r, key, [rows, cols]);
  const params = { bits: fmt.bits, blockSize: fmt.blockSize, zeroPoints: fmt.zeroPoints };
  const shapes = blockQuantShapes(rows, cols, params);
  const q = sharedLoad<BlockQuantized>(async () => quantizeBlockwiseInSlices(await r.readFloat32(key), rows, cols, params, key, r.signal), shapes.zeroPoints ? 3 : 2);
  const data = g.weight(`${name}.qdata`, DataType.UINT8, shapes.data, async () => (await q()).data);
  const scales = g.weight(`${name}.scales`, DataType.FLOAT, shapes.scales, async () => bytesOf((await q()).scales));
  const zeroPoints = shapes.zeroPoints
    ? g.weight(`${name}.zero_points`, DataType.UINT8, shapes.zeroPoints, async () => (await q()).zeroPointData!)
    : undefined;
  return { data, scales, zeroPoints };
}

/**
 * `x·Wᵀ` for the PyTorch Linear weight `key` (`[out, in]`) stored in format `fmt`:
 * float32 MatMul over `[in, out]`; float16 `[in, out]` with the MatMul in float16 between two Casts;
 * or `com.microsoft::MatMulNBits` over the block-quantized `[out, in]` weight. Input and output are float32.
 */
export function linearMatMul(
  g: GraphBuilder, r: WeightReader, x: Value, key: string, outFeatures: number, inFeatures: number, fmt: LinearFormat = FLOAT32, name = key,
): Value {
  if (fmt.kind === 'float' && fmt.weightType === 'fp32') return g.matmul(x, linearWeight(g, r, key, outFeatures, inFeatures, name));
  if (fmt.kind === 'float') {
    requireTensor(r, key, [outFeatures, inFeatures]);
    const w = g.weight(name, DataType.FLOAT16, [inFeatures, outFeatures],
      async () => bytesOf(float32ToFloat16(transpose2d(await r.readFloat32(key), outFeatures, inFeatures))));
    return g.cast(g.matmul(g.cast(x, DataType.FLOAT16), w), DataType.FLOAT);
  }
  const { data, scales, zeroPoints } = blockQuantizedWeights(g, r, key, outFeatures, inFeatures, fmt, name);
  return g.node('MatMulNBits', zeroPoints ? [x, data, scales, zeroPoints] : [x, data, scales], {
    K: attr.int(inFeatures),
    N: attr.int(outFeatures),
    bits: attr.int(fmt.bits),
    block_size: attr.int(fmt.blockSize),
    accuracy_level: attr.int(fmt.accuracyLevel),
  }, MS_DOMAIN);
}

/**
 * `x·Wᵀ + b` for a PyTorch Linear `prefix.weight` / `prefix.bias` (bias optional, always float32),
 * with the weight in format `fmt` (default float32).
 */
export function linearFrom(
  g: GraphBuilder, r: WeightReader, x: Value, prefix: string, outFeatures: number, inFeatures: number, bias: boolean, fmt: LinearFormat = FLOAT32,
): Value {
  const y = linearMatMul(g, r, x, `${prefix}.weight`, outFeatures, inFeatures, fmt);
  return bias ? g.add(y, checkpointWeight(g, r, `${prefix}.bias`, [outFeatures])) : y;
}
