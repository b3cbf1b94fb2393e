/**
 * Declaring checkpoint tensors as lazily streamed ONNX weights, with the layout changes the
 * graphs need (PyTorch Linear `[out, in]` → MatMul `[in, out]`).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { CheckpointReader } from '../checkpoint/types.ts';
import type { GraphBuilder, Value } from './graph.ts';
import { numel } from './graph.ts';

/** What the graph builders need from a checkpoint: the tensor list and float32 reads. */
export type WeightReader = Pick<CheckpointReader, 'tensors' | 'readFloat32'>;

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

/** `x·Wᵀ + b` for a PyTorch Linear `prefix.weight` / `prefix.bias` (bias optional). */
export function linearFrom(
  g: GraphBuilder, r: WeightReader, x: Value, prefix: string, outFeatures: number, inFeatures: number, bias: boolean,
): Value {
  const w = linearWeight(g, r, `${prefix}.weight`, outFeatures, inFeatures);
  const b = bias ? checkpointWeight(g, r, `${prefix}.bias`, [outFeatures]) : undefined;
  return g.linear(x, w, b);
}
