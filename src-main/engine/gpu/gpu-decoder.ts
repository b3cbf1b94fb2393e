/**
 * Running the GPU `decoder.onnx` (models/owl2/decoder-graph-gpu.ts) with the KV cache kept on the
 * device: on WebGPU each call's `present_key.i`/`present_value.i` come back as `gpu-buffer` tensors
 * (`preferredOutputLocation`) and go into the next call as `past_*` without a host round trip; only
 * the last position's logits are copied to the host. The previous call's tensors are disposed as
 * soon as the new ones exist, so device memory holds one cache (onnxruntime-node 1.30 ignores
 * pre-allocated outputs, so each call's presents are new buffers: past rows + new rows, copied on
 * the device).
 *
 * The same class runs the graph on the other providers (CPU, CUDA, DirectML) with the cache in host
 * tensors, which is what the CPU fallback of a GPU package and the fidelity tests use.
 *
 * What the engine needs from it: `emptyCache()`, `decode(embeds, modality, cache) → logits`
 * (appending to the cache), `release()`.
 */
import * as ort from 'onnxruntime-node';
import type { LlmConfig } from '../../../models/owl2/config.ts';
import { GPU_DECODER_IO as IO, gpuDecoderStepFeeds, modalityRuns } from '../../../models/owl2/decoder-graph-gpu.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../../models/quant/fp16.ts';
import { multiTokenAttentionCheck } from './attention-check.ts';

type FloatType = 'float32' | 'float16';

/**
 * The GPU decoder's KV cache: the last call's presents (2 per layer, `[1, kvHeads, rows, headDim]`)
 * and the number of valid positions. Rows past `length` are ignored by the decoder, so keeping a
 * prefix costs nothing; the buffers are released when nothing is kept.
 */
export class GpuKvCache {
  /** Valid positions. */
  length = 0;
  /** present_key.0, present_value.0, present_key.1, … of the last call; empty before the first. */
  tensors: ort.Tensor[] = [];

  constructor(readonly layers: number, private readonly empty: ort.Tensor) {}

  /** Rows the buffers hold (≥ `length`). */
  get rows(): number {
    return this.tensors[0]?.dims[2] ?? 0;
  }

  /** Where the cache lives: `gpu-buffer` on WebGPU, `cpu` on the other providers, `empty` before the first call. */
  get location(): ort.Tensor['location'] | 'empty' {
    return this.tensors[0]?.location ?? 'empty';
  }

  /** Keeps the first `length` positions; keeping none releases the buffers. */
  truncate(length: number): void {
    if (length < 0 || length > this.length) throw new RangeError(`kv cache: cannot keep ${length} of ${this.length} positions`);
    if (length === 0) this.release();
    this.length = length;
  }

  /** Releases the device buffers (the cache is empty afterwards). */
  release(): void {
    for (const t of this.tensors) if (t.location === 'gpu-buffer') t.dispose();
    this.tensors = [];
    this.length = 0;
  }

  /** The past inputs of the next call. */
  feeds(): Record<string, ort.Tensor> {
    const f: Record<string, ort.Tensor> = {};
    for (let i = 0; i < this.layers; i++) {
      f[IO.pastKey(i)] = this.tensors[2 * i] ?? this.empty;
      f[IO.pastValue(i)] = this.tensors[2 * i + 1] ?? this.empty;
    }
    return f;
  }

  /** Takes a call's presents (`T` new positions) and disposes the ones they replace. */
  replace(next: ort.Tensor[], T: number): void {
    const keep = new Set(next);
    for (const t of this.tensors) if (t.location === 'gpu-buffer' && !keep.has(t)) t.dispose();
    this.tensors = next;
    this.length += T;
  }
}

/**
 * How much of a previous cache to keep for a request that shares `common` positions with it: all
 * of them when that is at least half of what the buffers hold, else none (the buffers are released
 * and the few shared positions recomputed), so that a new conversation does not go on copying the
 * old one's rows on every step.
 */
export function keptPrefix(cache: GpuKvCache, common: number): number {
  return common * 2 >= cache.rows ? common : 0;
}

/** The GPU decoder session and how to feed it. */
export class GpuDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly llm: LlmConfig,
    /** The graph's activation and KV type. */
    readonly float: FloatType,
    /** Where the presents are asked to stay: `gpu-buffer` on WebGPU, else `cpu`. */
    readonly kvLocation: 'gpu-buffer' | 'cpu',
    /**
     * Most positions per call: unlimited, or fewer where the provider's multi-token attention
     * kernel was found inexact at load (attention-check.ts).
     */
    readonly maxPositionsPerCall: number,
  ) {}

  /**
   * Creates the session with `so` (one provider). On WebGPU the presents stay on the device and the
   * logits come to the host; elsewhere everything comes to the host.
   */
  static async create(path: string, so: ort.InferenceSession.SessionOptions, llm: LlmConfig): Promise<GpuDecoder> {
    const first = so.executionProviders?.[0];
    const provider = typeof first === 'string' ? first : first?.name;
    const onDevice = provider === 'webgpu';
    const locations: Record<string, ort.Tensor.DataLocation> = { [IO.logits]: 'cpu' };
    if (onDevice) {
      for (let i = 0; i < llm.numLayers; i++) {
        locations[IO.presentKey(i)] = 'gpu-buffer';
        locations[IO.presentValue(i)] = 'gpu-buffer';
      }
    }
    const maxPositionsPerCall = onDevice ? (await multiTokenAttentionCheck(so)).maxPositionsPerCall : Number.POSITIVE_INFINITY;
    const session = await ort.InferenceSession.create(path, { ...so, preferredOutputLocation: locations });
    const meta = session.inputMetadata.find((m) => m.name === IO.inputsEmbeds) as { type?: string } | undefined;
    return new GpuDecoder(session, llm, meta?.type === 'float16' ? 'float16' : 'float32', onDevice ? 'gpu-buffer' : 'cpu', maxPositionsPerCall);
  }

  async release(): Promise<void> {
    await this.session.release();
  }

  /** Ends onnxruntime's profiling of this session (when created with `enableProfiling`), writing its file. */
  endProfiling(): void {
    this.session.endProfiling();
  }

  /** An empty cache for this decoder. */
  emptyCache(): GpuKvCache {
    const { numLayers, numKvHeads, headDim } = this.llm;
    const dims = [1, numKvHeads, 0, headDim];
    const empty = this.float === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
    return new GpuKvCache(numLayers, empty);
  }

  /**
   * Runs the decoder over `modality.length` new positions after the cache's valid ones: one call
   * per run of equal modality, at most `maxChunk` positions each. Returns the logits (float32) of
   * the last `logits` positions ([logits, vocab], at most the last call's positions) and appends the
   * new positions to `cache`.
   */
  async decode(embeds: Float32Array, modality: ArrayLike<number | bigint>, cache: GpuKvCache, maxChunk = Number.POSITIVE_INFINITY, logits = 1): Promise<Float32Array> {
    const H = this.llm.hiddenSize;
    let out: Float32Array | undefined;
    const runs = modalityRuns(modality, Math.min(maxChunk, this.maxPositionsPerCall));
    for (const [r, run] of runs.entries()) {
      const T = run.end - run.start;
      const rows = embeds.subarray(run.start * H, run.end * H);
      const feeds: Record<string, ort.Tensor> = {
        [IO.inputsEmbeds]: this.float === 'float16' ? new ort.Tensor('float16', float32ToFloat16(rows), [1, T, H]) : new ort.Tensor('float32', rows, [1, T, H]),
        ...cache.feeds(),
      };
      for (const f of gpuDecoderStepFeeds(cache.length, T, run.image, r === runs.length - 1 ? logits : 1)) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      const result = await this.session.run(feeds);
      const presents: ort.Tensor[] = [];
      for (let i = 0; i < this.llm.numLayers; i++) presents.push(result[IO.presentKey(i)], result[IO.presentValue(i)]);
      cache.replace(presents, T);
      const data = result[IO.logits].data;
      out = data instanceof Uint16Array ? float16ToFloat32(data) : (data as Float32Array);
    }
    if (!out) throw new RangeError('gpu decoder: nothing to decode');
    return out;
  }
}
