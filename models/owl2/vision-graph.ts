/**
 * `vision.onnx`: pixel values → image embeddings for the LLM (docs/engine-contract.md).
 *
 * ViT (patch conv without bias, cls token, position embedding, pre_layernorm, layers with the fused
 * per-head `[heads, 3, head_dim]` query_key_value and QuickGELU MLP, post_layernorm) → visual
 * abstractor (learnable queries; norm1/normk/norm2 with PyTorch's eps 1e-5; keys and values over
 * concat(queries, image tokens); sin-cos positions added to the query and key inputs only; the
 * residual after attention is the normalised queries; SwiGLU MLP with ffn_ln) → visual_fc →
 * vit_eos appended. Float32 activations; the linears' weights in the format of
 * `VisionGraphOptions` (the patch conv, embeddings, norms and biases stay float32). Everything is
 * sized from `Owl2Config`.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import type { Value } from '../onnx/graph.ts';
import { DataType } from '../onnx/proto.ts';
import { checkpointWeight, linearFrom, requireTensor } from '../onnx/weights.ts';
import type { WeightReader } from '../onnx/weights.ts';
import type { LinearFormat } from '../quant/plan.ts';
import { TORCH_LAYERNORM_EPS } from './config.ts';
import type { Owl2Config } from './config.ts';
import { abstractorPosEmbeds } from './sincos.ts';

/** Checkpoint key prefixes of the vision tower. */
export const VISION_PREFIX = 'model.vision_model';
/** Checkpoint key prefix of the visual abstractor. */
export const ABSTRACTOR_PREFIX = 'model.visual_abstractor';

/** Graph input/output names of `vision.onnx`. */
export const VISION_IO = { pixelValues: 'pixel_values', imageEmbeds: 'image_embeds', visionHidden: 'vision_hidden' } as const;

function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i] && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return false;
  return true;
}

/**
 * The abstractor's `concat(q_pos, k_pos)` table of layer `i`, `[Q + N + 1, H]`: the stored
 * buffers when the checkpoint has them (their rounding is part of the reference results), else
 * computed from the config.
 */
async function positionTable(cfg: Owl2Config, r: WeightReader, layer: number): Promise<Float32Array> {
  const a = cfg.abstractor;
  const p = `${ABSTRACTOR_PREFIX}.encoder.layers.${layer}.crossattention.attention`;
  const hasQ = r.tensors.has(`${p}.q_pos_embed`);
  const hasK = r.tensors.has(`${p}.k_pos_embed`);
  let q: Float32Array;
  let k: Float32Array;
  if (hasQ && hasK) {
    requireTensor(r, `${p}.q_pos_embed`, [a.numQueries, a.hiddenSize]);
    requireTensor(r, `${p}.k_pos_embed`, [a.gridSize * a.gridSize + 1, a.hiddenSize]);
    q = await r.readFloat32(`${p}.q_pos_embed`);
    k = await r.readFloat32(`${p}.k_pos_embed`);
  } else if (!hasQ && !hasK) {
    ({ q, k } = abstractorPosEmbeds(a)); // float32 emulation of the official NumPy tables
  } else {
    throw new OwleryError('CHECKPOINT_INVALID', `the checkpoint has only one of ${p}.q_pos_embed and ${p}.k_pos_embed`);
  }
  const out = new Float32Array(q.length + k.length);
  out.set(q, 0);
  out.set(k, q.length);
  return out;
}

/** Weight formats of `vision.onnx` (default float32). */
export interface VisionGraphOptions {
  /** Every Linear of the vision encoder and the abstractor, visual_fc included. */
  linear?: LinearFormat;
}

/** Builds `vision.onnx`. Reads only the small abstractor position tables now; every other weight is lazy. */
export async function buildVisionGraph(cfg: Owl2Config, r: WeightReader, opts: VisionGraphOptions = {}): Promise<GraphBuilder> {
  const fmt = opts.linear;
  const v = cfg.vision;
  const a = cfg.abstractor;
  const H = cfg.llm.hiddenSize;
  const Hv = v.hiddenSize;
  const Ha = a.hiddenSize;
  const N1 = v.numTokens;
  const grid = v.imageSize / v.patchSize;
  if (Hv % v.numHeads !== 0) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_model.hidden_size is not a multiple of num_attention_heads');
  if (Ha % a.numHeads !== 0) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: visual_abstractor.hidden_size is not a multiple of num_attention_heads');
  if (a.encoderHiddenSize !== Ha || Hv !== Ha) {
    // The official abstractor concatenates the queries with the image tokens, so all three must agree.
    throw new OwleryError('CHECKPOINT_UNSUPPORTED',
      `config.json: visual_abstractor.hidden_size (${Ha}), encoder_hidden_size (${a.encoderHiddenSize}) and visual_model.hidden_size (${Hv}) must be equal`);
  }
  const g = new GraphBuilder('owl2_vision');
  const pixels = g.input(VISION_IO.pixelValues, DataType.FLOAT, ['batch', 3, v.imageSize, v.imageSize]);
  const batch = g.shape(pixels, 0, 1); // [1] int64

  // --- ViT embeddings -------------------------------------------------------------------------
  const vp = VISION_PREFIX;
  let x: Value = g.scope('vision/embeddings', () => {
    const conv = g.node('Conv', [pixels, checkpointWeight(g, r, `${vp}.embeddings.patch_embed.weight`, [Hv, 3, v.patchSize, v.patchSize])], {
      kernel_shape: { type: 'ints', value: [v.patchSize, v.patchSize] },
      strides: { type: 'ints', value: [v.patchSize, v.patchSize] },
    });
    const patches = g.transpose(g.reshape(conv, [0, Hv, grid * grid]), [0, 2, 1]); // [B, N, Hv]
    const cls = g.expand(checkpointWeight(g, r, `${vp}.embeddings.cls_token`, [1, 1, Hv]), g.concat([batch, g.constI64([1, 1])], 0));
    const tokens = g.concat([cls, patches], 1);
    const pos = checkpointWeight(g, r, `${vp}.embeddings.position_embedding`, [1, N1, Hv]);
    return layerNormFrom(g, r, g.add(tokens, pos), `${vp}.embeddings.pre_layernorm`, Hv, v.layerNormEps);
  });

  // --- ViT layers ----------------------------------------------------------------------------------
  const nh = v.numHeads;
  const hd = Hv / nh;
  for (let i = 0; i < v.numLayers; i++) {
    const p = `${vp}.encoder.layers.${i}`;
    x = g.scope(`vision/layers.${i}`, () => {
      const h = layerNormFrom(g, r, x, `${p}.input_layernorm`, Hv, v.layerNormEps);
      const qkv = linearFrom(g, r, h, `${p}.self_attn.query_key_value`, 3 * Hv, Hv, true, fmt);
      // Per-head layout [heads, 3, head_dim]: split the `3` axis, not [q | k | v] blocks.
      const [q, k, val] = g.split(g.reshape(qkv, [0, 0, nh, 3, hd]), 3, [1, 1, 1])
        .map((t) => g.transpose(g.squeeze(t, [3]), [0, 2, 1, 3]));
      const ctx = g.mergeHeads(g.attention(q, k, val, { scale: hd ** -0.5 }), nh, hd);
      const attnOut = linearFrom(g, r, ctx, `${p}.self_attn.dense`, Hv, Hv, true, fmt);
      const x1 = g.add(attnOut, x);
      const m = layerNormFrom(g, r, x1, `${p}.post_attention_layernorm`, Hv, v.layerNormEps);
      const f1 = g.quickGelu(linearFrom(g, r, m, `${p}.mlp.fc1`, v.intermediateSize, Hv, true, fmt));
      return g.add(linearFrom(g, r, f1, `${p}.mlp.fc2`, Hv, v.intermediateSize, true, fmt), x1);
    });
  }
  const visionHidden = g.scope('vision/post', () => layerNormFrom(g, r, x, `${vp}.post_layernorm`, Hv, v.layerNormEps));
  g.output(visionHidden, VISION_IO.visionHidden, DataType.FLOAT, ['batch', N1, Hv]);

  // --- visual abstractor -------------------------------------------------------------------------------
  const ap = ABSTRACTOR_PREFIX;
  const Q = a.numQueries;
  const anh = a.numHeads;
  const ahd = Ha / anh;
  let queries: Value = g.expand(checkpointWeight(g, r, `${ap}.query_embeds`, [1, Q, Ha]), g.concat([batch, g.constI64([1, 1])], 0));
  const tables = new Map<number, { qk: Value; q: Value }>();
  const seen: { data: Float32Array; qk: Value; q: Value }[] = [];
  for (let i = 0; i < a.numLayers; i++) {
    const data = await positionTable(cfg, r, i);
    const hit = seen.find((s) => sameValues(s.data, data));
    if (hit) {
      tables.set(i, hit);
      continue;
    }
    const qk = g.weightF32(`${ap}.encoder.layers.${i}.crossattention.attention.qk_pos_embed`, [Q + N1, Ha], () => data);
    const q = g.slice(qk, [0], [Q], [0]);
    seen.push({ data, qk, q });
    tables.set(i, { qk, q });
  }
  for (let i = 0; i < a.numLayers; i++) {
    const p = `${ap}.encoder.layers.${i}.crossattention`;
    const pos = tables.get(i)!;
    queries = g.scope(`abstractor/layers.${i}`, () => {
      const qn = layerNormFrom(g, r, queries, `${p}.norm1`, Ha, TORCH_LAYERNORM_EPS);
      const kn = layerNormFrom(g, r, visionHidden, `${p}.normk`, Ha, TORCH_LAYERNORM_EPS);
      const kv = g.concat([qn, kn], 1); // [B, Q + N + 1, Ha]
      const qh = g.splitHeads(linearFrom(g, r, g.add(qn, pos.q), `${p}.attention.query`, Ha, Ha, true, fmt), anh, ahd);
      const kh = g.splitHeads(linearFrom(g, r, g.add(kv, pos.qk), `${p}.attention.key`, Ha, Ha, true, fmt), anh, ahd);
      const vh = g.splitHeads(linearFrom(g, r, kv, `${p}.attention.value`, Ha, Ha, true, fmt), anh, ahd);
      const ctx = g.mergeHeads(g.attention(qh, kh, vh, { divisor: Math.sqrt(ahd) }), anh, ahd);
      const y = g.add(qn, linearFrom(g, r, ctx, `${p}.output.out_proj`, Ha, Ha, true, fmt)); // residual on the normalised queries
      const n2 = layerNormFrom(g, r, y, `${p}.output.norm2`, Ha, TORCH_LAYERNORM_EPS);
      const gate = g.silu(linearFrom(g, r, n2, `${p}.output.mlp.w1`, a.intermediateSize, Ha, true, fmt));
      const up = linearFrom(g, r, n2, `${p}.output.mlp.w3`, a.intermediateSize, Ha, true, fmt);
      const f = layerNormFrom(g, r, g.mul(gate, up), `${p}.output.mlp.ffn_ln`, a.intermediateSize, a.layerNormEps);
      return g.add(y, linearFrom(g, r, f, `${p}.output.mlp.w2`, Ha, a.intermediateSize, true, fmt));
    });
  }
  const embeds = g.scope('abstractor/out', () => {
    const fc = linearFrom(g, r, queries, `${ap}.visual_fc`, H, Ha, true, fmt);
    const eos = g.expand(checkpointWeight(g, r, `${ap}.vit_eos`, [1, 1, H]), g.concat([batch, g.constI64([1, 1])], 0));
    return g.concat([fc, eos], 1);
  });
  g.output(embeds, VISION_IO.imageEmbeds, DataType.FLOAT, ['batch', cfg.imageTokens, H]);
  return g;
}

/** LayerNorm with `prefix.weight` / `prefix.bias`. */
function layerNormFrom(g: GraphBuilder, r: WeightReader, x: Value, prefix: string, dim: number, eps: number): Value {
  return g.layerNorm(x, checkpointWeight(g, r, `${prefix}.weight`, [dim]), checkpointWeight(g, r, `${prefix}.bias`, [dim]), eps);
}
