/**
 * A small graph-building DSL over ONNX standard operators (opset 17).
 *
 * Values are plain tensor names. Large weights are declared with `weight()` and a lazy `load()`
 * so the writer can stream them to the external data file one at a time; small constants
 * (shapes, scalars) are inlined and deduplicated.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { DataType, attr, dataTypeSize } from './proto.ts';
import type { Attr, DataTypeCode, Dim, NodeSpec, TensorProtoSpec, ValueInfoSpec } from './proto.ts';

/** A tensor in the graph, by name. */
export type Value = string;

/** The ai.onnx opset the builders target (LayerNormalization needs 17). */
export const ONNX_OPSET = 17;
/** IR version matching opset 17. */
export const ONNX_IR_VERSION = 8;

/** A weight whose bytes are produced on demand while the model is written. */
export interface LazyTensor {
  name: string;
  dataType: DataTypeCode;
  dims: readonly number[];
  /** Produces the tensor's little-endian bytes; called exactly once, by the writer. */
  load: () => Promise<Uint8Array> | Uint8Array;
}

/** Byte view of a typed array, without copying. */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Number of elements of a shape. */
export function numel(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

/** Builds one ONNX graph. */
export class GraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly inputs: ValueInfoSpec[] = [];
  readonly outputs: ValueInfoSpec[] = [];
  /** Inline constants (small), written as raw_data in the .onnx. */
  readonly constants: TensorProtoSpec[] = [];
  /** Weights, streamed to the external data file. */
  readonly weights: LazyTensor[] = [];
  private readonly names = new Set<string>();
  private readonly constCache = new Map<string, Value>();
  private counter = 0;
  private prefix = '';

  constructor(readonly name: string) {}

  /** Runs `fn` with node names prefixed by `scope` (readable graphs, e.g. `layers.3/attn`). */
  scope<T>(scope: string, fn: () => T): T {
    const saved = this.prefix;
    this.prefix = saved ? `${saved}/${scope}` : scope;
    try {
      return fn();
    } finally {
      this.prefix = saved;
    }
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`onnx graph ${this.name}: duplicate tensor name ${name}`);
    this.names.add(name);
    return name;
  }

  private fresh(op: string): string {
    let n: string;
    do n = `${this.prefix ? this.prefix + '/' : ''}${op}_${this.counter++}`;
    while (this.names.has(n));
    return this.claim(n);
  }

  /** Declares a graph input. */
  input(name: string, elemType: DataTypeCode, dims: readonly Dim[]): Value {
    this.inputs.push({ name: this.claim(name), elemType, dims });
    return name;
  }

  /** Declares a graph output; `value` is renamed to `name` through an Identity when needed. */
  output(value: Value, name: string, elemType: DataTypeCode, dims: readonly Dim[]): void {
    let v = value;
    if (v !== name) {
      this.nodes.push({ opType: 'Identity', inputs: [v], outputs: [this.claim(name)], name: `${name}/Identity` });
      v = name;
    }
    this.outputs.push({ name: v, elemType, dims });
  }

  /** Declares a weight streamed to the external data file. */
  weight(name: string, dataType: DataTypeCode, dims: readonly number[], load: LazyTensor['load']): Value {
    this.weights.push({ name: this.claim(name), dataType, dims, load });
    return name;
  }

  /** A float32 weight from a lazily produced Float32Array. */
  weightF32(name: string, dims: readonly number[], load: () => Promise<Float32Array> | Float32Array): Value {
    return this.weight(name, DataType.FLOAT, dims, async () => {
      const a = await load();
      if (a.length !== numel(dims)) {
        throw new OwleryError('INTERNAL', `weight ${name}: got ${a.length} values for shape [${dims.join(', ')}]`);
      }
      return bytesOf(a);
    });
  }

  private constant(dataType: DataTypeCode, dims: readonly number[], raw: Uint8Array): Value {
    const key = `${dataType}|${dims.join(',')}|${Buffer.from(raw).toString('base64')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    if (raw.byteLength !== numel(dims) * dataTypeSize(dataType)) throw new Error('onnx constant: size mismatch');
    const name = this.fresh('const');
    this.constants.push({ name, dataType, dims: [...dims], raw });
    this.constCache.set(key, name);
    return name;
  }

  /** An inline float32 constant (keep it small: it lives in the .onnx). */
  constF32(values: ArrayLike<number>, dims: readonly number[] = [values.length]): Value {
    return this.constant(DataType.FLOAT, dims, bytesOf(Float32Array.from(values)));
  }

  /** An inline int64 constant. */
  constI64(values: readonly (number | bigint)[], dims: readonly number[] = [values.length]): Value {
    return this.constant(DataType.INT64, dims, bytesOf(BigInt64Array.from(values, (v) => BigInt(v))));
  }

  /** An inline int32 constant. */
  constI32(values: readonly number[], dims: readonly number[] = [values.length]): Value {
    return this.constant(DataType.INT32, dims, bytesOf(Int32Array.from(values)));
  }

  /** A float32 scalar constant. */
  scalarF32(v: number): Value {
    return this.constF32([v], []);
  }

  /** An int64 scalar constant. */
  scalarI64(v: number): Value {
    return this.constI64([v], []);
  }

  /** Adds a node with `nOutputs` outputs and returns their names. */
  nodeN(opType: string, inputs: readonly Value[], nOutputs: number, attributes?: Record<string, Attr>, domain?: string): Value[] {
    const outs = Array.from({ length: nOutputs }, () => this.fresh(opType));
    this.nodes.push({ opType, inputs, outputs: outs, name: `${outs[0]}/node`, attributes, domain });
    return outs;
  }

  /** Adds a single-output node. */
  node(opType: string, inputs: readonly Value[], attributes?: Record<string, Attr>, domain?: string): Value {
    return this.nodeN(opType, inputs, 1, attributes, domain)[0];
  }

  // --- elementwise ------------------------------------------------------------------------------
  add(a: Value, b: Value): Value { return this.node('Add', [a, b]); }
  sub(a: Value, b: Value): Value { return this.node('Sub', [a, b]); }
  mul(a: Value, b: Value): Value { return this.node('Mul', [a, b]); }
  div(a: Value, b: Value): Value { return this.node('Div', [a, b]); }
  neg(a: Value): Value { return this.node('Neg', [a]); }
  sqrt(a: Value): Value { return this.node('Sqrt', [a]); }
  sigmoid(a: Value): Value { return this.node('Sigmoid', [a]); }
  cos(a: Value): Value { return this.node('Cos', [a]); }
  sin(a: Value): Value { return this.node('Sin', [a]); }
  equal(a: Value, b: Value): Value { return this.node('Equal', [a, b]); }
  lessOrEqual(a: Value, b: Value): Value { return this.node('LessOrEqual', [a, b]); }
  where(cond: Value, a: Value, b: Value): Value { return this.node('Where', [cond, a, b]); }
  cast(a: Value, to: DataTypeCode): Value { return this.node('Cast', [a], { to: attr.int(to) }); }

  /** SiLU: x·sigmoid(x). */
  silu(x: Value): Value { return this.mul(x, this.sigmoid(x)); }

  /** QuickGELU: x·sigmoid(1.702·x). */
  quickGelu(x: Value): Value { return this.mul(x, this.sigmoid(this.mul(x, this.scalarF32(1.702)))); }

  // --- linear algebra ---------------------------------------------------------------------------
  matmul(a: Value, b: Value): Value { return this.node('MatMul', [a, b]); }

  /** `x·W (+ b)` with W already laid out [in, out]. */
  linear(x: Value, weightInOut: Value, bias?: Value): Value {
    const y = this.matmul(x, weightInOut);
    return bias ? this.add(y, bias) : y;
  }

  softmax(x: Value, axis = -1): Value { return this.node('Softmax', [x], { axis: attr.int(axis) }); }

  /** ONNX LayerNormalization over the last axis, float32 statistics. */
  layerNorm(x: Value, scale: Value, bias: Value, eps: number): Value {
    return this.node('LayerNormalization', [x, scale, bias], { axis: attr.int(-1), epsilon: attr.float(eps) });
  }

  /**
   * RMS normalisation over the last axis, without the weight: `x / sqrt(mean(x²) + eps)`,
   * from standard ops (Mul, ReduceMean, Add, Sqrt, Div).
   */
  rmsNormalize(x: Value, eps: number): Value {
    const ms = this.node('ReduceMean', [this.mul(x, x)], { axes: attr.ints([-1]), keepdims: attr.int(1) });
    return this.div(x, this.sqrt(this.add(ms, this.scalarF32(eps))));
  }

  /** RMSNorm with a weight (LLaMA). */
  rmsNorm(x: Value, weight: Value, eps: number): Value {
    return this.mul(this.rmsNormalize(x, eps), weight);
  }

  // --- shapes -----------------------------------------------------------------------------------
  reshape(x: Value, shape: readonly number[] | Value): Value {
    return this.node('Reshape', [x, typeof shape === 'string' ? shape : this.constI64(shape)]);
  }
  transpose(x: Value, perm: readonly number[]): Value { return this.node('Transpose', [x], { perm: attr.ints(perm) }); }
  concat(xs: readonly Value[], axis: number): Value { return this.node('Concat', xs, { axis: attr.int(axis) }); }
  split(x: Value, axis: number, sizes: readonly number[]): Value[] {
    return this.nodeN('Split', [x, this.constI64(sizes)], sizes.length, { axis: attr.int(axis) });
  }
  squeeze(x: Value, axes: readonly number[]): Value { return this.node('Squeeze', [x, this.constI64(axes)]); }
  unsqueeze(x: Value, axes: readonly number[]): Value { return this.node('Unsqueeze', [x, this.constI64(axes)]); }
  expand(x: Value, shape: Value): Value { return this.node('Expand', [x, shape]); }
  gather(data: Value, indices: Value, axis = 0): Value { return this.node('Gather', [data, indices], { axis: attr.int(axis) }); }
  /** `Shape(x)[start:end]` as a 1-D int64 tensor. */
  shape(x: Value, start?: number, end?: number): Value {
    const a: Record<string, Attr> = {};
    if (start !== undefined) a.start = attr.int(start);
    if (end !== undefined) a.end = attr.int(end);
    return this.node('Shape', [x], a);
  }
  /** `Shape(x)[axis]` as an int64 scalar. */
  dim(x: Value, axis: number): Value { return this.squeeze(this.shape(x, axis, axis + 1), [0]); }
  slice(x: Value, starts: readonly number[], ends: readonly number[], axes: readonly number[]): Value {
    return this.node('Slice', [x, this.constI64(starts), this.constI64(ends), this.constI64(axes)]);
  }
  range(start: Value, limit: Value, delta: Value): Value { return this.node('Range', [start, limit, delta]); }
  /** GatherND (batch_dims 0): `indices` [N, k] picks N slices of `data`. */
  gatherND(data: Value, indices: Value): Value { return this.node('GatherND', [data, indices]); }

  /**
   * Scaled dot-product attention on [B, heads, Tq, d] × [B, heads, Tk, d] → [B, heads, Tq, d].
   * `scale` multiplies (as in the ViT) or `divisor` divides (as in LLaMA and the abstractor)
   * the scores, mirroring the reference code; `mask` (bool, broadcastable to the scores) keeps
   * the scores where true and sets the rest to the float32 minimum before the softmax.
   */
  attention(q: Value, k: Value, v: Value, opts: { scale?: number; divisor?: number; mask?: Value }): Value {
    let s = this.matmul(q, this.transpose(k, [0, 1, 3, 2]));
    if (opts.divisor !== undefined) s = this.div(s, this.scalarF32(opts.divisor));
    if (opts.scale !== undefined) s = this.mul(s, this.scalarF32(opts.scale));
    if (opts.mask) s = this.where(opts.mask, s, this.scalarF32(-3.4028234663852886e38));
    return this.matmul(this.softmax(s, -1), v);
  }

  /** [B, T, heads·d] → [B, heads, T, d]. */
  splitHeads(x: Value, heads: number, headDim: number): Value {
    return this.transpose(this.reshape(x, [0, 0, heads, headDim]), [0, 2, 1, 3]);
  }

  /** [B, heads, T, d] → [B, T, heads·d]. */
  mergeHeads(x: Value, heads: number, headDim: number): Value {
    return this.reshape(this.transpose(x, [0, 2, 1, 3]), [0, 0, heads * headDim]);
  }
}
