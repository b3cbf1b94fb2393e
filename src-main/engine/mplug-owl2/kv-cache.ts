/**
 * The decoder's KV cache on the host, and one decoder run against it: the cache's valid rows go in
 * as zero-copy tensors and the new K/V that come back are appended. The layout is the graph
 * contract's (models/owl2/decoder-graph.ts, docs/engine-contract.md): per layer position-major
 * keys and values, `past_length` masking the rows past the valid ones.
 */
import * as ort from 'onnxruntime-node';
import { DECODER_IO } from '../../../models/owl2/decoder-graph.ts';

/** A decoder input as plain data (the callers wrap it in their runtime's tensor type). */
export interface DecoderFeed {
  name: string;
  type: 'float32' | 'int64';
  data: Float32Array | BigInt64Array;
  dims: number[];
}

/**
 * The KV cache in the layout `decoder.onnx` reads (docs/engine-contract.md), owned by the caller:
 * per layer a key and a value buffer, position-major [C, B, kvHeads, headDim] with capacity
 * C ≥ `length`. `feeds` passes each buffer's first `length` rows as a zero-copy view, so a step
 * reads exactly the valid positions and nothing of the spare capacity; the graph returns only the
 * new tokens' K/V in the same layout and `append` writes them after the valid rows (one copy of the
 * new rows per layer). The capacity grows geometrically (`initialCapacity`, doubling, at most
 * `maxCapacity` unless more is needed); rows past `length` are never touched, so the memory
 * resident is what the conversation uses. Keeping a prefix is `truncate(n)`: no copy.
 */
export class DecoderKvCache {
  /** Valid positions. */
  length = 0;
  /** Positions the buffers hold. */
  capacity = 0;
  keys: Float32Array[];
  values: Float32Array[];
  /** The one ignored row fed while the cache is empty (see `feeds`). */
  private emptyRow: Float32Array | undefined;

  constructor(
    readonly layers: number,
    readonly kvHeads: number,
    readonly headDim: number,
    readonly opts: { batch?: number; initialCapacity?: number; maxCapacity?: number } = {},
  ) {
    this.keys = Array.from({ length: layers }, () => new Float32Array(0));
    this.values = Array.from({ length: layers }, () => new Float32Array(0));
  }

  get batch(): number {
    return this.opts.batch ?? 1;
  }

  /** Floats per position (all batch rows and kv heads). */
  get rowSize(): number {
    return this.batch * this.kvHeads * this.headDim;
  }

  /** Keeps the first `length` positions (prefix reuse); the buffers stay. */
  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`kv cache: cannot keep ${length} of ${this.length} positions`);
    this.length = length;
  }

  /** Makes room for `needed` positions, growing geometrically and keeping the valid ones. */
  reserve(needed: number): void {
    if (needed <= this.capacity) return;
    const max = this.opts.maxCapacity ?? Number.POSITIVE_INFINITY;
    let cap = Math.max(this.capacity, this.opts.initialCapacity ?? 256);
    while (cap < needed) cap *= 2;
    cap = Math.max(needed, Math.min(cap, max));
    const valid = this.length * this.rowSize;
    for (let l = 0; l < this.layers; l++) {
      const k = new Float32Array(cap * this.rowSize);
      const v = new Float32Array(cap * this.rowSize);
      if (valid > 0) {
        k.set(this.keys[l].subarray(0, valid));
        v.set(this.values[l].subarray(0, valid));
      }
      this.keys[l] = k;
      this.values[l] = v;
    }
    this.capacity = cap;
  }

  /**
   * The past inputs of a decoder run: every layer's first `length` rows (zero-copy views) and
   * `past_length`. An empty cache feeds one zero row that `past_length` = 0 masks out (onnxruntime's
   * FusedMatMul cannot take an empty batch-transposed input).
   */
  feeds(): DecoderFeed[] {
    const B = this.batch;
    const S = Math.max(this.length, 1);
    const n = S * this.rowSize;
    const empty = this.length === 0 ? (this.emptyRow ??= new Float32Array(this.rowSize)) : undefined;
    const out: DecoderFeed[] = [];
    for (let l = 0; l < this.layers; l++) {
      const dims = [S, B, this.kvHeads, this.headDim];
      out.push({ name: DECODER_IO.pastKey(l), type: 'float32', data: empty ?? this.keys[l].subarray(0, n), dims });
      out.push({ name: DECODER_IO.pastValue(l), type: 'float32', data: empty ?? this.values[l].subarray(0, n), dims });
    }
    out.push({ name: DECODER_IO.pastLength, type: 'int64', data: BigInt64Array.of(BigInt(this.length)), dims: [1] });
    return out;
  }

  /** Names of the outputs `append` needs. */
  fetches(): string[] {
    const out: string[] = [];
    for (let l = 0; l < this.layers; l++) out.push(DECODER_IO.newKey(l), DECODER_IO.newValue(l));
    return out;
  }

  /** Writes `T` new positions (per layer K and V [T, B, kvHeads, headDim]) after the valid ones. */
  append(newKeys: readonly Float32Array[], newValues: readonly Float32Array[], T: number): void {
    const P = this.length;
    this.reserve(P + T);
    const n = T * this.rowSize;
    for (let l = 0; l < this.layers; l++) {
      const nk = newKeys[l];
      const nv = newValues[l];
      if (nk.length !== n || nv.length !== n) throw new RangeError(`kv cache: layer ${l} got ${nk.length} values for ${T} positions`);
      this.keys[l].set(nk, P * this.rowSize);
      this.values[l].set(nv, P * this.rowSize);
    }
    this.length = P + T;
  }
}

/** One feed as a tensor of its type. */
export function decoderFeedTensor(f: DecoderFeed): ort.Tensor {
  return f.type === 'int64' ? new ort.Tensor('int64', f.data as BigInt64Array, f.dims) : new ort.Tensor('float32', f.data as Float32Array, f.dims);
}

/**
 * One decoder run over the `modality.length` positions after the cache's valid ones (batch 1),
 * appending their K/V to the cache. `extraFetches` (e.g. `hidden.{i}`) are fetched too.
 */
export async function runDecoderStep(
  session: ort.InferenceSession, cache: DecoderKvCache, embeds: Float32Array, modality: BigInt64Array, hiddenSize: number, extraFetches: readonly string[] = [],
): Promise<ort.InferenceSession.ReturnType> {
  const T = modality.length;
  const P = cache.length;
  const feeds: Record<string, ort.Tensor> = {
    [DECODER_IO.inputsEmbeds]: new ort.Tensor('float32', embeds, [1, T, hiddenSize]),
    [DECODER_IO.modality]: new ort.Tensor('int64', modality, [1, T]),
    [DECODER_IO.positionIds]: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(P + i)), [1, T]),
  };
  for (const f of cache.feeds()) feeds[f.name] = decoderFeedTensor(f);
  const out = await session.run(feeds, [DECODER_IO.logits, ...cache.fetches(), ...extraFetches]);
  cache.append(
    Array.from({ length: cache.layers }, (_, i) => out[DECODER_IO.newKey(i)].data as Float32Array),
    Array.from({ length: cache.layers }, (_, i) => out[DECODER_IO.newValue(i)].data as Float32Array),
    T,
  );
  return out;
}
