/**
 * `decoder.onnx`: the LLaMA-2 decoder with the Modality-Adaptive Module; reads the caller's KV
 * cache in place and returns only the new tokens' K/V (docs/engine-contract.md).
 *
 * Per layer: RMSNorm routed per token by modality (per-token weight `Where(modality == 1, w1, w0)`),
 * shared q_proj, k_proj/v_proj per modality (each branch runs only on its own rows, as in
 * multiway.py), RoPE with HF's rotate_half convention and cos/sin computed in-graph from
 * `position_ids` and an inv_freq derived from the config (the checkpoint's stored inv_freq is
 * ignored, as the official model does), attention against the caller-owned KV cache (read in
 * place, position-major, rows ≥ `past_length` masked) and the new tokens (causal), float32
 * softmax, o_proj,
 * multiway post-attention RMSNorm, SwiGLU MLP; then the final RMSNorm and lm_head on the last
 * position only. Float32 activations throughout; the linears' weights in the formats of
 * `DecoderGraphOptions` (docs/engine-contract.md); every size from `Owl2Config`.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import type { Value } from '../onnx/graph.ts';
import { DataType, attr } from '../onnx/proto.ts';
import { MS_DOMAIN, checkpointWeight, linearFrom, linearMatMul } from '../onnx/weights.ts';
import type { WeightReader } from '../onnx/weights.ts';
import type { LinearFormat } from '../quant/plan.ts';
import type { Owl2Config } from './config.ts';

/** Weight formats of `decoder.onnx` (default float32 everywhere). */
export interface DecoderGraphOptions {
  /** q/o/gate/up/down and both MAM branches of k/v. */
  linear?: LinearFormat;
  /** The output projection. */
  lmHead?: LinearFormat;
  /**
   * Benchmarks only: k/v use branch 0 for every token and branch 1 is left out (wrong for image
   * tokens). Measures what the MAM routing costs on text-only steps.
   */
  textOnlyKv?: boolean;
}

/** Graph input/output names of `decoder.onnx`. */
export const DECODER_IO = {
  inputsEmbeds: 'inputs_embeds',
  modality: 'modality',
  positionIds: 'position_ids',
  /** Past post-RoPE keys, position-major [S, B, kvHeads, headDim] (S ≥ max(past length, 1) rows). */
  pastKey: (i: number): string => `past_key.${i}`,
  /** Past values [S, B, kvHeads, headDim]. */
  pastValue: (i: number): string => `past_value.${i}`,
  /** int64 [1]: P, the number of valid past positions (rows ≥ P are ignored). */
  pastLength: 'past_length',
  logits: 'logits',
  /** The new tokens' post-RoPE keys [T, B, kvHeads, headDim] (the cache's layout). */
  newKey: (i: number): string => `new_key.${i}`,
  /** The new tokens' values [T, B, kvHeads, headDim]. */
  newValue: (i: number): string => `new_value.${i}`,
  hidden: (i: number): string => `hidden.${i}`,
  finalNorm: 'final_norm',
} as const;

/**
 * RoPE inverse frequencies as HF LLaMA (transformers 4.31) computes them in float32:
 * `1 / base ** (arange(0, dim, 2) / dim)`.
 */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const e = Math.fround((2 * i) / headDim);
    out[i] = Math.fround(1 / Math.fround(theta ** e));
  }
  return out;
}

/** Builds `decoder.onnx`. Every weight is lazy (streamed when the model is written). */
export function buildDecoderGraph(cfg: Owl2Config, r: WeightReader, opts: DecoderGraphOptions = {}): GraphBuilder {
  const fmt = opts.linear;
  const c = cfg.llm;
  const H = c.hiddenSize;
  const nh = c.numHeads;
  const kvh = c.numKvHeads;
  const hd = c.headDim;
  const rep = nh / kvh;
  const bias = c.attentionBias;
  const g = new GraphBuilder('owl2_decoder');

  let x = g.input(DECODER_IO.inputsEmbeds, DataType.FLOAT, ['batch', 'seq', H]);
  const modality = g.input(DECODER_IO.modality, DataType.INT64, ['batch', 'seq']);
  const positionIds = g.input(DECODER_IO.positionIds, DataType.INT64, ['batch', 'seq']);
  const past: { k: Value; v: Value }[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    past.push({
      k: g.input(DECODER_IO.pastKey(i), DataType.FLOAT, ['past_seq', 'batch', kvh, hd]),
      v: g.input(DECODER_IO.pastValue(i), DataType.FLOAT, ['past_seq', 'batch', kvh, hd]),
    });
  }
  const pastLength = g.input(DECODER_IO.pastLength, DataType.INT64, [1]);

  // Shared per step: modality routing, masks, RoPE tables.
  const { isImage, rowsImage, rowsText, back, kvShape, pastMask, newMask, splitSizes, cos, sin } = g.scope('prep', () => {
    const image = g.equal(modality, g.scalarI64(1)); // [B, T]
    const text = g.node('Not', [image]);
    const isImage = g.unsqueeze(image, [2]); // [B, T, 1]
    // (b, t) of the tokens of each modality, [N, 2] (GatherND indices into [B, T, H]).
    const rowsImage = g.transpose(g.node('NonZero', [image]), [1, 0]);
    const rowsText = g.transpose(g.node('NonZero', [text]), [1, 0]);
    // Where each token's row is in Concat(text rows, image rows): the inverse of that order, so one
    // Gather puts the branches' outputs back in token order.
    const order = g.squeeze(g.concat([g.node('NonZero', [g.reshape(text, [-1])]), g.node('NonZero', [g.reshape(image, [-1])])], 1), [0]); // [B·T]
    const back = g.node('ScatterElements', [g.expand(g.scalarI64(0), g.shape(order)), order, g.range(g.scalarI64(0), g.dim(order, 0), g.scalarI64(1))], { axis: attr.int(0) });
    const kvShape = g.concat([g.shape(x, 0, 2), g.constI64([kvh, hd])], 0); // [B, T, kvh, hd]
    const C = g.dim(past[0].k, 0);
    const T = g.dim(x, 1);
    const zero = g.scalarI64(0);
    const one = g.scalarI64(1);
    // Past row j is valid iff j < P (the caller feeds exactly P rows, or one ignored row when P = 0:
    // onnxruntime's FusedMatMul fails on an empty batch-transposed input); every valid past key
    // precedes every new query.
    const pastMask = g.node('Less', [g.range(zero, C, one), pastLength]); // [C]
    const t = g.range(zero, T, one);
    // New key t' visible to new query t iff t' <= t; rows of the grouped query layout (below) are
    // (repeat, t) pairs, hence the Tile.
    const causal = g.lessOrEqual(g.unsqueeze(t, [0]), g.unsqueeze(t, [1])); // [T, T]
    const newMask = rep === 1 ? causal : g.node('Tile', [causal, g.constI64([rep, 1])]); // [rep·T, T]
    const splitSizes = g.concat([g.unsqueeze(C, [0]), g.unsqueeze(T, [0])], 0);
    const pos = g.unsqueeze(g.cast(positionIds, DataType.FLOAT), [2]); // [B, T, 1]
    const freqs = g.mul(pos, g.constF32(ropeInvFreq(hd, c.ropeTheta))); // [B, T, hd/2]
    const emb = g.concat([freqs, freqs], -1);
    return { isImage, rowsImage, rowsText, back, kvShape, pastMask, newMask, splitSizes, cos: g.unsqueeze(g.cos(emb), [1]), sin: g.unsqueeze(g.sin(emb), [1]) }; // [B, 1, T, hd]
  });

  const rope = (t: Value): Value => {
    const [x1, x2] = g.split(t, -1, [hd / 2, hd / 2]);
    const rotated = g.concat([g.neg(x2), x1], -1); // rotate_half
    return g.add(g.mul(t, cos), g.mul(rotated, sin));
  };
  const MIN_F32 = g.scalarF32(-3.4028234663852886e38);
  /**
   * `com.microsoft::FusedMatMul` with `transBatchB`: B [S, b…, M, K] is read as [b…, S, M, K]
   * without a copy, so the position-major cache [S, B, kvh, hd] multiplies as [B, kvh, S, hd].
   */
  const pastMatMul = (a: Value, b: Value, transB: boolean): Value =>
    g.node('FusedMatMul', [a, b], { transB: attr.int(transB ? 1 : 0), transBatchB: attr.int(1), alpha: attr.float(1) }, MS_DOMAIN);
  /**
   * Attention of the new queries over the past (position-major K and V [S, B, kvh, hd] read in
   * place, rows ≥ P masked) and over the new keys (causal), one softmax over both score blocks,
   * then `probs_past·V_past + probs_new·V_new`: K and V are never concatenated or copied. GQA
   * without repeating K/V: the `rep` query heads of one kv head are stacked as rows
   * ([B, kvh, rep·T, hd]).
   */
  const attention = (q: Value, kNew: Value, vNew: Value, pastK: Value, pastV: Value): Value => {
    const qg = rep === 1 ? q : g.reshape(q, [0, kvh, -1, hd]);
    const scale = g.scalarF32(Math.sqrt(hd));
    const sPast = g.where(pastMask, g.div(pastMatMul(qg, pastK, true), scale), MIN_F32); // [B, kvh, rep·T, S]
    const sNew = g.where(newMask, g.div(g.matmul(qg, g.transpose(kNew, [0, 1, 3, 2])), scale), MIN_F32); // [B, kvh, rep·T, T]
    const probs = g.softmax(g.concat([sPast, sNew], -1), -1);
    const [pPast, pNew] = g.nodeN('Split', [probs, splitSizes], 2, { axis: attr.int(-1) });
    const ctx = g.add(pastMatMul(pPast, pastV, false), g.matmul(pNew, vNew)); // [B, kvh, rep·T, hd]
    return rep === 1 ? ctx : g.reshape(ctx, [0, nh, -1, hd]);
  };
  const multiwayNorm = (h: Value, prefix: string): Value => {
    const n = g.rmsNormalize(h, c.rmsNormEps);
    const w0 = checkpointWeight(g, r, `${prefix}.multiway.0.weight`, [H]);
    const w1 = checkpointWeight(g, r, `${prefix}.multiway.1.weight`, [H]);
    // Per-token weight [B, T, H] picked elementwise, then one Mul.
    return g.mul(n, g.where(isImage, w1, w0));
  };
  // k/v projections as in the official multiway.py: each branch runs only on its own rows
  // (GatherND of that modality's rows → Linear → Concat, then one Gather back into token order), so
  // a text-only step runs branch 0 alone (branch 1's MatMul sees zero rows). Returns [B, kvh, T, hd].
  const multiwayLinears = (h: Value, prefix: string, names: readonly string[]): Value[] => {
    const out = kvh * hd;
    const rows1 = opts.textOnlyKv ? '' : g.gatherND(h, rowsImage); // [N1, H]
    const rows0 = opts.textOnlyKv ? '' : g.gatherND(h, rowsText); // [N0, H]
    return names.map((name) => {
      let y: Value;
      if (opts.textOnlyKv) y = linearFrom(g, r, h, `${prefix}.${name}.multiway.0`, out, H, bias, fmt);
      else {
        // Declaration order (branch 1, then 0) matches the earlier graphs, so the data file layout is unchanged.
        const y1 = linearFrom(g, r, rows1, `${prefix}.${name}.multiway.1`, out, H, bias, fmt);
        const y0 = linearFrom(g, r, rows0, `${prefix}.${name}.multiway.0`, out, H, bias, fmt);
        y = g.gather(g.concat([y0, y1], 0), back, 0); // [B·T, out]
      }
      return g.transpose(g.reshape(y, kvShape), [0, 2, 1, 3]);
    });
  };

  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    x = g.scope(`layers.${i}`, () => {
      const h = multiwayNorm(x, `${p}.input_layernorm`);
      const q = rope(g.splitHeads(linearFrom(g, r, h, `${p}.self_attn.q_proj`, nh * hd, H, bias, fmt), nh, hd));
      const [kHeads, v] = multiwayLinears(h, `${p}.self_attn`, ['k_proj', 'v_proj']);
      const k = rope(kHeads);
      // The cache's layout [T, B, kvh, hd], so appending is one contiguous copy per layer.
      g.output(g.transpose(k, [2, 0, 1, 3]), DECODER_IO.newKey(i), DataType.FLOAT, ['seq', 'batch', kvh, hd]);
      g.output(g.transpose(v, [2, 0, 1, 3]), DECODER_IO.newValue(i), DataType.FLOAT, ['seq', 'batch', kvh, hd]);
      const ctx = attention(q, k, v, past[i].k, past[i].v);
      const attnOut = linearFrom(g, r, g.mergeHeads(ctx, nh, hd), `${p}.self_attn.o_proj`, H, nh * hd, bias, fmt);
      const x1 = g.add(x, attnOut);
      const m = multiwayNorm(x1, `${p}.post_attention_layernorm`);
      const gate = g.silu(linearFrom(g, r, m, `${p}.mlp.gate_proj`, c.intermediateSize, H, false, fmt));
      const up = linearFrom(g, r, m, `${p}.mlp.up_proj`, c.intermediateSize, H, false, fmt);
      const x2 = g.add(x1, linearFrom(g, r, g.mul(gate, up), `${p}.mlp.down_proj`, H, c.intermediateSize, false, fmt));
      g.output(x2, DECODER_IO.hidden(i), DataType.FLOAT, ['batch', 'seq', H]);
      return DECODER_IO.hidden(i);
    });
  }

  g.scope('head', () => {
    const normed = g.rmsNorm(x, checkpointWeight(g, r, 'model.norm.weight', [H]), c.rmsNormEps);
    g.output(normed, DECODER_IO.finalNorm, DataType.FLOAT, ['batch', 'seq', H]);
    const last = g.squeeze(g.slice(DECODER_IO.finalNorm, [-1], [Number.MAX_SAFE_INTEGER], [1]), [1]); // [B, H]
    const headKey = c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
    g.output(linearMatMul(g, r, last, headKey, c.vocabSize, H, opts.lmHead, 'lm_head.weight'), DECODER_IO.logits, DataType.FLOAT, ['batch', c.vocabSize]);
  });
  return g;
}
