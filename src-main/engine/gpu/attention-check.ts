/**
 * A load-time check of the WebGPU provider's multi-token attention kernel.
 *
 * onnxruntime's WebGPU GroupQueryAttention switches to another kernel when a call has 32 or more
 * new positions. On Mesa's lavapipe (the software Vulkan driver our build machines run WebGPU on)
 * that kernel's results are off by ~4e-2 (float32 and float16 alike), while calls of up to 31
 * positions match the CPU to 1e-7. Rather than trusting an adapter by name, the engine runs one
 * GroupQueryAttention over 40 positions on the session's provider and compares it with a float64
 * computation here; when they disagree, the GPU decoder is given at most
 * {@link SAFE_POSITIONS_PER_CALL} positions per call (a prefill then takes more calls, each exact).
 */
import * as ort from 'onnxruntime-node';
import { DataType, attr, encodeModel } from '../../../models/onnx/proto.ts';
import { MS_DOMAIN } from '../../../models/onnx/weights.ts';

/** Positions per call known to be exact on every adapter tried (the kernel switch is at 32). */
export const SAFE_POSITIONS_PER_CALL = 16;

const HEADS = 2;
const HEAD_DIM = 16;
const T = 40;

function attentionModel(): Uint8Array {
  const F = DataType.FLOAT;
  const w = HEADS * HEAD_DIM;
  return encodeModel({
    irVersion: 8,
    opsets: [{ domain: '', version: 17 }, { domain: MS_DOMAIN, version: 1 }],
    producerName: 'owlery-attention-check',
    producerVersion: '1',
    graph: {
      name: 'attention_check',
      nodes: [{
        opType: 'GroupQueryAttention', domain: MS_DOMAIN, inputs: ['q', 'k', 'v', 'past_key', 'past_value', 'seqlens_k', 'total_sequence_length'],
        outputs: ['out', 'present_key', 'present_value'], attributes: { num_heads: attr.int(HEADS), kv_num_heads: attr.int(HEADS) },
      }],
      initializers: [],
      inputs: [
        { name: 'q', elemType: F, dims: [1, T, w] }, { name: 'k', elemType: F, dims: [1, T, w] }, { name: 'v', elemType: F, dims: [1, T, w] },
        { name: 'past_key', elemType: F, dims: [1, HEADS, 0, HEAD_DIM] }, { name: 'past_value', elemType: F, dims: [1, HEADS, 0, HEAD_DIM] },
        { name: 'seqlens_k', elemType: DataType.INT32, dims: [1] }, { name: 'total_sequence_length', elemType: DataType.INT32, dims: [] },
      ],
      outputs: [{ name: 'out', elemType: F, dims: [1, T, w] }],
    },
  });
}

/** Causal attention in float64, [T, heads·headDim] layout. */
function reference(q: Float32Array, k: Float32Array, v: Float32Array): Float64Array {
  const w = HEADS * HEAD_DIM;
  const out = new Float64Array(T * w);
  const scale = 1 / Math.sqrt(HEAD_DIM);
  for (let h = 0; h < HEADS; h++) {
    for (let i = 0; i < T; i++) {
      const s = new Float64Array(i + 1);
      let max = -Infinity;
      for (let j = 0; j <= i; j++) {
        let d = 0;
        for (let c = 0; c < HEAD_DIM; c++) d += q[i * w + h * HEAD_DIM + c] * k[j * w + h * HEAD_DIM + c];
        s[j] = d * scale;
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j <= i; j++) sum += (s[j] = Math.exp(s[j] - max));
      for (let j = 0; j <= i; j++) for (let c = 0; c < HEAD_DIM; c++) out[i * w + h * HEAD_DIM + c] += (s[j] / sum) * v[j * w + h * HEAD_DIM + c];
    }
  }
  return out;
}

/**
 * The most positions one GPU decoder call may have on this provider: unlimited when a 40-position
 * attention matches float64 within 1e-3, else {@link SAFE_POSITIONS_PER_CALL}. Also returns the
 * difference measured, for the engine's report.
 */
export async function multiTokenAttentionCheck(so: ort.InferenceSession.SessionOptions): Promise<{ maxPositionsPerCall: number; maxAbsDiff: number }> {
  let seed = 12345;
  const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1);
  const w = HEADS * HEAD_DIM;
  const [q, k, v] = [rand(T * w), rand(T * w), rand(T * w)];
  const session = await ort.InferenceSession.create(attentionModel(), { ...so, enableProfiling: false, preferredOutputLocation: 'cpu' });
  try {
    const empty = new ort.Tensor('float32', new Float32Array(0), [1, HEADS, 0, HEAD_DIM]);
    const out = await session.run({
      q: new ort.Tensor('float32', q, [1, T, w]), k: new ort.Tensor('float32', k, [1, T, w]), v: new ort.Tensor('float32', v, [1, T, w]),
      past_key: empty, past_value: empty,
      seqlens_k: new ort.Tensor('int32', Int32Array.of(T - 1), [1]), total_sequence_length: new ort.Tensor('int32', Int32Array.of(T), []),
    }, ['out']);
    const got = out.out.data as Float32Array;
    const want = reference(q, k, v);
    let diff = 0;
    for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]) || (Number.isNaN(got[i]) ? Infinity : 0));
    return { maxPositionsPerCall: diff <= 1e-3 ? Number.POSITIVE_INFINITY : SAFE_POSITIONS_PER_CALL, maxAbsDiff: diff };
  } finally {
    await session.release();
  }
}
