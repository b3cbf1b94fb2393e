/**
 * `decoder.onnx` made for GPU execution providers (the `gpu` and `gpu-int4` presets,
 * docs/engine-contract.md "GPU decoder"). Same model as decoder-graph.ts, other contract:
 *
 * - **No int64, no data-dependent shapes.** Attention is `com.microsoft::GroupQueryAttention`
 *   (RoPE inside, from cos/sin tables of the whole context window; causal mask and positions from
 *   the two small int32 inputs `seqlens_k` and `total_sequence_length`), so the graph has no
 *   NonZero/Range/Shape prep subgraph and never reads the shape of the past on the device.
 * - **MAM routing once per call, not per layer.** The caller splits the merged sequence at modality
 *   boundaries, so every call is all text or all image rows, and says which with the bool scalar
 *   `is_image`. One `If` picks the layer stack: the `text` branch is a plain LLaMA (multiway
 *   branch 0 norms and k/v), the `image` branch uses branch 1; both read the same weights (outer
 *   scope initializers, stored once). A text-only step runs no branch-1 work at all.
 * - **Fused forms onnxruntime's GPU providers have:** SimplifiedLayerNormalization and
 *   SkipSimplifiedLayerNormalization (the residual add fused into the next norm); q, k and v of the
 *   text branch in one packed projection (`[q | k0 | v0]`; the image branch reuses it for q and
 *   adds one `[k1 | v1]` projection); gate and up kept apart with SiLU written as Sigmoid·Mul,
 *   the pattern onnxruntime's WebGPU MatMulNBits MLP fusion looks for.
 * - **KV cache in GQA's layout** `[B, kvHeads, S, headDim]`, fed as `past_key.i`/`past_value.i`
 *   and returned whole as `present_key.i`/`present_value.i` (the caller keeps them on the device).
 *   Rows of the past beyond `seqlens_k + 1 − T` are ignored, so keeping a prefix is free.
 * - **Activations in the weights' float type**: float32 for a float32 LLM (the exact variant the
 *   fidelity suite checks), float16 otherwise (KV cache, norms' inputs and outputs, logits).
 *   Quantized linears are MatMulNBits with scales in that type.
 *
 * Only the positions from `logits_start` on go through the final norm and `lm_head`: the last one
 * for a prefill or a decode step, the last few to verify draft tokens (prompt-lookup decoding).
 */
import { GraphBuilder } from '../onnx/graph.ts';
import type { Value } from '../onnx/graph.ts';
import { DataType, attr } from '../onnx/proto.ts';
import type { Attr, GraphSpec, NodeSpec, ValueInfoSpec } from '../onnx/proto.ts';
import { MS_DOMAIN, requireTensor, transpose2d } from '../onnx/weights.ts';
import type { WeightReader } from '../onnx/weights.ts';
import { quantizeBlockwise, blockQuantShapes } from '../quant/blockwise.ts';
import type { BlockQuantized } from '../quant/blockwise.ts';
import { float32ToFloat16 } from '../quant/fp16.ts';
import type { LinearFormat } from '../quant/plan.ts';
import type { Owl2Config } from './config.ts';
import { ropeInvFreq } from './decoder-graph.ts';

/** Weight formats of the GPU decoder. */
export interface GpuDecoderGraphOptions {
  /** q/o/gate/up/down and both MAM branches of k/v. */
  linear: LinearFormat;
  /** The output projection. */
  lmHead: LinearFormat;
}

/** Graph input/output names of the GPU `decoder.onnx`. */
export const GPU_DECODER_IO = {
  /** [B, T, H] in the activation type. */
  inputsEmbeds: 'inputs_embeds',
  /** bool scalar: every row of this call is an image row (MAM branch 1), else every row is text. */
  isImage: 'is_image',
  /** int32 [B]: valid positions after this call − 1 (past + T − 1). */
  seqlensK: 'seqlens_k',
  /** int32 scalar: valid positions after this call (past + T). */
  totalSequenceLength: 'total_sequence_length',
  /** [B, kvHeads, P', headDim], P' ≥ the valid past P = seqlens_k + 1 − T; rows ≥ P are ignored. */
  pastKey: (i: number): string => `past_key.${i}`,
  pastValue: (i: number): string => `past_value.${i}`,
  /** int32 [1]: the first of this call's positions whose logits are wanted (T − 1 for the last only). */
  logitsStart: 'logits_start',
  /** [B, T − logits_start, vocab] in the activation type. */
  logits: 'logits',
  /** [B, kvHeads, max(P', P + T), headDim]: the past's rows then the new ones at P…P+T−1. */
  presentKey: (i: number): string => `present_key.${i}`,
  presentValue: (i: number): string => `present_value.${i}`,
} as const;

/** The activation (and KV cache) type of the GPU decoder for an LLM linear format. */
function gpuActivationType(linear: LinearFormat): 'float32' | 'float16' {
  return linear.kind === 'float' && linear.weightType === 'fp32' ? 'float32' : 'float16';
}

type Float = typeof DataType.FLOAT | typeof DataType.FLOAT16;

/** A node with caller-chosen output names ('' = an omitted optional output). */
function pushNode(nodes: NodeSpec[], op: string, inputs: readonly string[], outputs: readonly string[], attributes?: Record<string, Attr>, domain?: string): void {
  nodes.push({ opType: op, inputs, outputs, name: `${outputs.find(Boolean)}/${op}`, attributes, domain });
}

/**
 * Declares the weight of several PyTorch Linears `[out_i, in]` packed along their outputs
 * (`[Σ out_i, in]`, i.e. one projection whose output is `[y_0 | y_1 | …]`), in format `fmt` with
 * float values of type `float`. Returns a function that applies it to an input.
 */
function packedLinear(
  g: GraphBuilder, r: WeightReader, keys: readonly string[], outs: readonly number[], K: number, fmt: LinearFormat, float: Float, name: string,
): (sub: GraphBuilder, x: Value) => Value {
  keys.forEach((k, i) => requireTensor(r, k, [outs[i], K]));
  const N = outs.reduce((a, b) => a + b, 0);
  const rows = async (): Promise<Float32Array> => {
    if (keys.length === 1) return r.readFloat32(keys[0]);
    const all = new Float32Array(N * K);
    let at = 0;
    for (const k of keys) {
      const w = await r.readFloat32(k);
      all.set(w, at);
      at += w.length;
    }
    return all;
  };
  const floatBytes = (a: Float32Array): Uint8Array => {
    const t = float === DataType.FLOAT16 ? float32ToFloat16(a) : a;
    return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
  };
  if (fmt.kind === 'float') {
    const wType: Float = fmt.weightType === 'fp16' ? DataType.FLOAT16 : DataType.FLOAT;
    const w = g.weight(name, wType, [K, N], async () => {
      const t = transpose2d(await rows(), N, K);
      const a = wType === DataType.FLOAT16 ? float32ToFloat16(t) : t;
      return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    });
    if (wType === float) return (sub, x) => sub.matmul(x, w);
    return (sub, x) => sub.cast(sub.matmul(sub.cast(x, wType), w), float);
  }
  const params = { bits: fmt.bits, blockSize: fmt.blockSize, zeroPoints: fmt.zeroPoints };
  const shapes = blockQuantShapes(N, K, params);
  let pending: Promise<BlockQuantized> | undefined;
  let taken = 0;
  const parts = shapes.zeroPoints ? 3 : 2;
  const quantized = (): Promise<BlockQuantized> => {
    pending ??= rows().then((w) => quantizeBlockwise(w, N, K, params, name));
    const p = pending;
    if (++taken === parts) pending = undefined;
    return p;
  };
  const data = g.weight(`${name}.qdata`, DataType.UINT8, shapes.data, async () => (await quantized()).data);
  const scales = g.weight(`${name}.scales`, float, shapes.scales, async () => floatBytes((await quantized()).scales));
  const zp = shapes.zeroPoints ? g.weight(`${name}.zero_points`, DataType.UINT8, shapes.zeroPoints, async () => (await quantized()).zeroPointData!) : undefined;
  const attributes = { K: attr.int(K), N: attr.int(N), bits: attr.int(fmt.bits), block_size: attr.int(fmt.blockSize), accuracy_level: attr.int(fmt.accuracyLevel) };
  return (sub, x) => sub.node('MatMulNBits', zp ? [x, data, scales, zp] : [x, data, scales], attributes, MS_DOMAIN);
}

/** Float vectors (norm weights, biases) concatenated into one weight in the activation type. */
function vectorWeight(g: GraphBuilder, r: WeightReader, keys: readonly string[], sizes: readonly number[], float: Float, name: string): Value {
  keys.forEach((k, i) => requireTensor(r, k, [sizes[i]]));
  const total = sizes.reduce((a, b) => a + b, 0);
  return g.weight(name, float, [total], async () => {
    const all = new Float32Array(total);
    let at = 0;
    for (let i = 0; i < keys.length; i++) {
      all.set(await r.readFloat32(keys[i]), at);
      at += sizes[i];
    }
    const a = float === DataType.FLOAT16 ? float32ToFloat16(all) : all;
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  });
}

/** Builds the GPU `decoder.onnx`. Every weight is lazy (streamed when the model is written). */
export function buildGpuDecoderGraph(cfg: Owl2Config, r: WeightReader, opts: GpuDecoderGraphOptions): GraphBuilder {
  const c = cfg.llm;
  const H = c.hiddenSize;
  const nh = c.numHeads;
  const kvh = c.numKvHeads;
  const hd = c.headDim;
  const qOut = nh * hd;
  const kvOut = kvh * hd;
  const float: Float = gpuActivationType(opts.linear) === 'float32' ? DataType.FLOAT : DataType.FLOAT16;
  const bias = c.attentionBias;
  const eps = attr.float(c.rmsNormEps);
  const g = new GraphBuilder('owl2_decoder_gpu');
  const IO = GPU_DECODER_IO;

  // --- inputs ---------------------------------------------------------------------------------
  const embeds = g.input(IO.inputsEmbeds, float, ['batch', 'seq', H]);
  const isImage = g.input(IO.isImage, DataType.BOOL, []);
  g.input(IO.seqlensK, DataType.INT32, ['batch']);
  g.input(IO.totalSequenceLength, DataType.INT32, []);
  g.input(IO.logitsStart, DataType.INT32, [1]);
  for (let i = 0; i < c.numLayers; i++) {
    g.input(IO.pastKey(i), float, ['batch', kvh, 'past_seq', hd]);
    g.input(IO.pastValue(i), float, ['batch', kvh, 'past_seq', hd]);
  }

  // --- weights (declared once, in the main graph; both branches read them) ---------------------
  // RoPE tables for every position of the window: cos/sin(pos · inv_freq), the product rounded to
  // float32 as HF computes it, [maxPositions, headDim / 2].
  const invFreq = ropeInvFreq(hd, c.ropeTheta);
  const table = (fn: (x: number) => number) => () => {
    const t = new Float32Array(c.maxPositions * (hd / 2));
    for (let p = 0; p < c.maxPositions; p++) for (let j = 0; j < hd / 2; j++) t[p * (hd / 2) + j] = fn(Math.fround(p * invFreq[j]));
    const a = float === DataType.FLOAT16 ? float32ToFloat16(t) : t;
    return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  };
  const cos = g.weight('rope.cos_cache', float, [c.maxPositions, hd / 2], table(Math.cos));
  const sin = g.weight('rope.sin_cache', float, [c.maxPositions, hd / 2], table(Math.sin));

  interface LayerWeights {
    norm: [Value, Value][]; // [input_layernorm, post_attention_layernorm] per branch
    qkv0: ReturnType<typeof packedLinear>;
    kv1: ReturnType<typeof packedLinear>;
    qkvBias?: [Value, Value]; // per branch: [q | k_b | v_b]
    o: ReturnType<typeof packedLinear>;
    oBias?: Value;
    gate: ReturnType<typeof packedLinear>;
    up: ReturnType<typeof packedLinear>;
    down: ReturnType<typeof packedLinear>;
  }
  const fmt = opts.linear;
  const layers: LayerWeights[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const a = `${p}.self_attn`;
    const w: LayerWeights = {
      norm: [0, 1].map((m) => [
        vectorWeight(g, r, [`${p}.input_layernorm.multiway.${m}.weight`], [H], float, `${p}.input_layernorm.multiway.${m}.weight`),
        vectorWeight(g, r, [`${p}.post_attention_layernorm.multiway.${m}.weight`], [H], float, `${p}.post_attention_layernorm.multiway.${m}.weight`),
      ] as [Value, Value]),
      qkv0: packedLinear(g, r, [`${a}.q_proj.weight`, `${a}.k_proj.multiway.0.weight`, `${a}.v_proj.multiway.0.weight`], [qOut, kvOut, kvOut], H, fmt, float, `${a}.qkv.multiway.0`),
      kv1: packedLinear(g, r, [`${a}.k_proj.multiway.1.weight`, `${a}.v_proj.multiway.1.weight`], [kvOut, kvOut], H, fmt, float, `${a}.kv.multiway.1`),
      o: packedLinear(g, r, [`${a}.o_proj.weight`], [H], qOut, fmt, float, `${a}.o_proj`),
      gate: packedLinear(g, r, [`${p}.mlp.gate_proj.weight`], [c.intermediateSize], H, fmt, float, `${p}.mlp.gate_proj`),
      up: packedLinear(g, r, [`${p}.mlp.up_proj.weight`], [c.intermediateSize], H, fmt, float, `${p}.mlp.up_proj`),
      down: packedLinear(g, r, [`${p}.mlp.down_proj.weight`], [H], c.intermediateSize, fmt, float, `${p}.mlp.down_proj`),
    };
    if (bias) {
      w.qkvBias = [0, 1].map((m) => vectorWeight(g, r, [`${a}.q_proj.bias`, `${a}.k_proj.multiway.${m}.bias`, `${a}.v_proj.multiway.${m}.bias`], [qOut, kvOut, kvOut], float, `${a}.qkv.multiway.${m}.bias`)) as [Value, Value];
      w.oBias = vectorWeight(g, r, [`${a}.o_proj.bias`], [H], float, `${a}.o_proj.bias`);
    }
    layers.push(w);
  }
  const finalNorm = vectorWeight(g, r, ['model.norm.weight'], [H], float, 'model.norm.weight');
  const headKey = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const lmHead = packedLinear(g, r, [headKey], [c.vocabSize], H, opts.lmHead, float, 'lm_head.weight');

  // --- the two layer stacks ---------------------------------------------------------------------
  const kvDims = (n: string) => ['batch', kvh, n, hd];
  /** One branch: every layer with multiway branch `m`; outputs the last residual pair and the presents. */
  const branch = (m: 0 | 1): GraphSpec => {
    const tag = m === 0 ? 'text' : 'image';
    const sb = new GraphBuilder(`owl2_decoder_${tag}`);
    const outs: ValueInfoSpec[] = [];
    sb.scope(tag, () => {
      let residual: Value = embeds;
      let pending: Value | undefined; // the last block's output, not yet added to `residual`
      const norm = (weight: Value, at: string): Value => {
        const y = `${tag}/${at}/norm`;
        if (pending === undefined) {
          pushNode(sb.nodes, 'SimplifiedLayerNormalization', [residual, weight], [y], { axis: attr.int(-1), epsilon: eps, stash_type: attr.int(1) });
        } else {
          const sum = `${tag}/${at}/residual`;
          pushNode(sb.nodes, 'SkipSimplifiedLayerNormalization', [pending, residual, weight], [y, '', '', sum], { epsilon: eps }, MS_DOMAIN);
          residual = sum;
          pending = undefined;
        }
        return y;
      };
      for (let i = 0; i < c.numLayers; i++) {
        const L = layers[i];
        const [wIn, wPost] = L.norm[m];
        const h = norm(wIn, `layers.${i}/in`);
        let qkv = L.qkv0(sb, h);
        if (m === 1) qkv = sb.concat([sb.slice(qkv, [0], [qOut], [2]), L.kv1(sb, h)], 2);
        if (L.qkvBias) qkv = sb.add(qkv, L.qkvBias[m]);
        const attn = `${tag}/layers.${i}/attn`;
        pushNode(sb.nodes, 'GroupQueryAttention',
          [qkv, '', '', IO.pastKey(i), IO.pastValue(i), IO.seqlensK, IO.totalSequenceLength, cos, sin],
          [attn, `${tag}/${IO.presentKey(i)}`, `${tag}/${IO.presentValue(i)}`],
          { num_heads: attr.int(nh), kv_num_heads: attr.int(kvh), do_rotary: attr.int(1), rotary_interleaved: attr.int(0), scale: attr.float(1 / Math.sqrt(hd)) }, MS_DOMAIN);
        outs.push({ name: `${tag}/${IO.presentKey(i)}`, elemType: float, dims: kvDims('total_seq') }, { name: `${tag}/${IO.presentValue(i)}`, elemType: float, dims: kvDims('total_seq') });
        let o = L.o(sb, attn);
        if (L.oBias) o = sb.add(o, L.oBias);
        pending = o;
        const post = norm(wPost, `layers.${i}/post`);
        const gate = L.gate(sb, post);
        const act = sb.mul(sb.mul(gate, sb.sigmoid(gate)), L.up(sb, post));
        pending = L.down(sb, act);
      }
      // The residual stream and the last block's output, for the shared head.
      pushNode(sb.nodes, 'Identity', [pending!], [`${tag}/pending`]);
      pushNode(sb.nodes, 'Identity', [residual], [`${tag}/residual`]);
    });
    const outputs: ValueInfoSpec[] = [
      { name: `${tag}/pending`, elemType: float, dims: ['batch', 'seq', H] },
      { name: `${tag}/residual`, elemType: float, dims: ['batch', 'seq', H] },
      ...outs,
    ];
    return subgraph(sb, outputs);
  };
  const text = branch(0);
  const image = branch(1);
  const ifOutputs = ['hidden_pending', 'hidden_residual'];
  for (let i = 0; i < c.numLayers; i++) ifOutputs.push(IO.presentKey(i), IO.presentValue(i));
  pushNode(g.nodes, 'If', [isImage], ifOutputs, { then_branch: attr.graph(image), else_branch: attr.graph(text) });

  // --- shared head: final norm (with the last residual add) and lm_head from logits_start on ----
  const tail = (v: Value): Value => g.node('Slice', [v, IO.logitsStart, g.constI32([2 ** 31 - 1]), g.constI32([1])]);
  const normed = 'final_norm';
  pushNode(g.nodes, 'SkipSimplifiedLayerNormalization', [tail('hidden_pending'), tail('hidden_residual'), finalNorm], [normed], { epsilon: eps }, MS_DOMAIN);
  g.output(lmHead(g, normed), IO.logits, float, ['batch', 'logits_seq', c.vocabSize]);
  for (let i = 0; i < c.numLayers; i++) {
    g.outputs.push({ name: IO.presentKey(i), elemType: float, dims: kvDims('total_seq') }, { name: IO.presentValue(i), elemType: float, dims: kvDims('total_seq') });
  }
  return g;
}

/** A branch builder as an `If` subgraph: its nodes, its inline constants, the given outputs. */
function subgraph(sb: GraphBuilder, outputs: ValueInfoSpec[]): GraphSpec {
  if (sb.weights.length) throw new Error(`${sb.name}: a branch must not declare weights`);
  return { name: sb.name, nodes: sb.nodes, initializers: sb.constants, inputs: [], outputs };
}

/** A run of positions of one modality, `[start, end)`. */
interface ModalityRun {
  start: number;
  end: number;
  image: boolean;
}

/**
 * The merged sequence's runs of equal modality (text rows 0, image rows 1), at most `maxRun`
 * positions each: the GPU decoder takes one modality per call.
 */
export function modalityRuns(modality: ArrayLike<number | bigint>, maxRun = Number.POSITIVE_INFINITY): ModalityRun[] {
  const runs: ModalityRun[] = [];
  let start = 0;
  for (let i = 1; i <= modality.length; i++) {
    const image = Number(modality[start]) === 1;
    if (i === modality.length || (Number(modality[i]) === 1) !== image || i - start >= maxRun) {
      runs.push({ start, end: i, image });
      start = i;
    }
  }
  return runs;
}

/** A small input of one GPU decoder call, as plain data (the caller wraps it in its runtime's tensor). */
interface GpuDecoderFeed {
  name: string;
  type: 'bool' | 'int32';
  data: Uint8Array | Int32Array;
  dims: number[];
}

/**
 * The host-computed inputs of a call over `T` positions of one modality after `past` valid ones
 * (batch 1), asking for the logits of the last `logits` positions.
 */
export function gpuDecoderStepFeeds(past: number, T: number, image: boolean, logits = 1): GpuDecoderFeed[] {
  return [
    { name: GPU_DECODER_IO.logitsStart, type: 'int32', data: Int32Array.of(T - Math.min(logits, T)), dims: [1] },
    { name: GPU_DECODER_IO.isImage, type: 'bool', data: Uint8Array.of(image ? 1 : 0), dims: [] },
    { name: GPU_DECODER_IO.seqlensK, type: 'int32', data: Int32Array.of(past + T - 1), dims: [1] },
    { name: GPU_DECODER_IO.totalSequenceLength, type: 'int32', data: Int32Array.of(past + T), dims: [] },
  ];
}
