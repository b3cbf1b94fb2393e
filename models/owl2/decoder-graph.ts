/**
 * `decoder.onnx`: the LLaMA-2 decoder with the Modality-Adaptive Module, KV cache in and out
 * (docs/engine-contract.md).
 *
 * Per layer: RMSNorm routed per token by modality (`Where(modality == 1, branch 1, branch 0)`),
 * shared q_proj, k_proj/v_proj per modality (both computed, then selected per token), RoPE with
 * HF's rotate_half convention and cos/sin computed in-graph from `position_ids` and an inv_freq
 * derived from the config (the checkpoint's stored inv_freq is ignored, as the official model
 * does), past/present concat, GQA head repeat, causal mask from P and T, float32 softmax, o_proj,
 * multiway post-attention RMSNorm, SwiGLU MLP; then the final RMSNorm and lm_head on the last
 * position only. Float32 activations throughout; the linears' weights in the formats of
 * `DecoderGraphOptions` (docs/engine-contract.md); every size from `Owl2Config`.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import type { Value } from '../onnx/graph.ts';
import { DataType } from '../onnx/proto.ts';
import { checkpointWeight, linearFrom, linearMatMul } from '../onnx/weights.ts';
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
  pastKey: (i: number): string => `past_key.${i}`,
  pastValue: (i: number): string => `past_value.${i}`,
  logits: 'logits',
  presentKey: (i: number): string => `present_key.${i}`,
  presentValue: (i: number): string => `present_value.${i}`,
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
      k: g.input(DECODER_IO.pastKey(i), DataType.FLOAT, ['batch', kvh, 'past', hd]),
      v: g.input(DECODER_IO.pastValue(i), DataType.FLOAT, ['batch', kvh, 'past', hd]),
    });
  }

  // Shared per step: modality routing, causal mask, RoPE tables.
  const { isImage, rowsImage, rowsText, mask, cos, sin } = g.scope('prep', () => {
    const image = g.equal(modality, g.scalarI64(1)); // [B, T]
    const isImage = g.unsqueeze(image, [2]); // [B, T, 1]
    const flat = g.reshape(image, [-1]); // [B·T]
    // Row indices [N, 1] of each modality in the flattened [B·T] tokens (GatherND/ScatterND indices).
    const rowsImage = g.transpose(g.node('NonZero', [flat]), [1, 0]);
    const rowsText = g.transpose(g.node('NonZero', [g.node('Not', [flat])]), [1, 0]);
    const P = g.dim(past[0].k, 2);
    const T = g.dim(x, 1);
    const L = g.add(P, T);
    const one = g.scalarI64(1);
    const keyIdx = g.unsqueeze(g.range(g.scalarI64(0), L, one), [0]); // [1, L]
    const queryIdx = g.unsqueeze(g.range(P, L, one), [1]); // [T, 1]: absolute index P + t
    const mask = g.lessOrEqual(keyIdx, queryIdx); // [T, L]: key j visible to query P + t iff j <= P + t
    const pos = g.unsqueeze(g.cast(positionIds, DataType.FLOAT), [2]); // [B, T, 1]
    const freqs = g.mul(pos, g.constF32(ropeInvFreq(hd, c.ropeTheta))); // [B, T, hd/2]
    const emb = g.concat([freqs, freqs], -1);
    return { isImage, rowsImage, rowsText, mask, cos: g.unsqueeze(g.cos(emb), [1]), sin: g.unsqueeze(g.sin(emb), [1]) }; // [B, 1, T, hd]
  });

  const rope = (t: Value): Value => {
    const [x1, x2] = g.split(t, -1, [hd / 2, hd / 2]);
    const rotated = g.concat([g.neg(x2), x1], -1); // rotate_half
    return g.add(g.mul(t, cos), g.mul(rotated, sin));
  };
  const repeatKv = (t: Value): Value => {
    if (rep === 1) return t;
    // [B, kvh, L, hd] → [B, kvh, rep, L, hd] → [B, nh, L, hd] (each kv head serves `rep` consecutive heads)
    const shape = g.concat([g.shape(t, 0, 2), g.constI64([rep]), g.shape(t, 2, 4)], 0);
    return g.reshape(g.expand(g.unsqueeze(t, [2]), shape), [0, nh, -1, hd]);
  };
  const multiwayNorm = (h: Value, prefix: string): Value => {
    const n = g.rmsNormalize(h, c.rmsNormEps);
    const w0 = checkpointWeight(g, r, `${prefix}.multiway.0.weight`, [H]);
    const w1 = checkpointWeight(g, r, `${prefix}.multiway.1.weight`, [H]);
    // Per-token weight [B, T, H] picked elementwise, then one Mul.
    return g.mul(n, g.where(isImage, w1, w0));
  };
  // k/v projections as in the official multiway.py: each branch runs only on its own rows
  // (GatherND of the rows of that modality → Linear → ScatterND into the output), so a text-only
  // step runs branch 0 alone (branch 1's MatMul sees zero rows).
  const multiwayLinears = (h: Value, prefix: string, outs: readonly { name: string; out: number }[]): Value[] => {
    const flat = g.reshape(h, [-1, H]); // [B·T, H]
    const rows1 = g.gatherND(flat, rowsImage);
    const rows0 = g.gatherND(flat, rowsText);
    return outs.map(({ name, out }) => {
      if (opts.textOnlyKv) return linearFrom(g, r, h, `${prefix}.${name}.multiway.0`, out, H, bias, fmt);
      // Declaration order (branch 1, then 0) matches the earlier graphs, so the data file layout is unchanged.
      const y1 = linearFrom(g, r, rows1, `${prefix}.${name}.multiway.1`, out, H, bias, fmt);
      const y0 = linearFrom(g, r, rows0, `${prefix}.${name}.multiway.0`, out, H, bias, fmt);
      const zeros = g.expand(g.scalarF32(0), g.concat([g.shape(flat, 0, 1), g.constI64([out])], 0)); // [B·T, out]
      const y = g.scatterND(g.scatterND(zeros, rowsText, y0), rowsImage, y1);
      return g.reshape(y, g.concat([g.shape(h, 0, 2), g.constI64([out])], 0));
    });
  };

  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    x = g.scope(`layers.${i}`, () => {
      const h = multiwayNorm(x, `${p}.input_layernorm`);
      const q = rope(g.splitHeads(linearFrom(g, r, h, `${p}.self_attn.q_proj`, nh * hd, H, bias, fmt), nh, hd));
      const [kLin, vLin] = multiwayLinears(h, `${p}.self_attn`, [{ name: 'k_proj', out: kvh * hd }, { name: 'v_proj', out: kvh * hd }]);
      const k = rope(g.splitHeads(kLin, kvh, hd));
      const v = g.splitHeads(vLin, kvh, hd);
      const kAll = g.concat([past[i].k, k], 2);
      const vAll = g.concat([past[i].v, v], 2);
      g.output(kAll, DECODER_IO.presentKey(i), DataType.FLOAT, ['batch', kvh, 'total', hd]);
      g.output(vAll, DECODER_IO.presentValue(i), DataType.FLOAT, ['batch', kvh, 'total', hd]);
      const ctx = g.attention(q, repeatKv(kAll), repeatKv(vAll), { divisor: Math.sqrt(hd), mask });
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
