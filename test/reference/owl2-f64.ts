/**
 * An independent float64 reference implementation of mPLUG-Owl2, for tests.
 *
 * Written from docs/mplug-owl2.md and the official PyTorch code (X-PLUG/mPLUG-Owl, `mPLUG-Owl2/`),
 * not from the project's ONNX graph builders, so that it can check them. Everything is plain
 * `Float64Array` math with simple loops: no ONNX, no batching, no KV cache. It is slow on real
 * models and meant for tiny seeded checkpoints.
 *
 * Layout conventions: every activation is a row-major `[rows, dim]` `Float64Array`; every linear
 * weight is PyTorch's `[out, in]` row-major; token rows are in sequence order.
 */
import { openCheckpoint, readConfig } from '../../models/checkpoint/index.ts';
import type { OpenCheckpointOptions } from '../../models/checkpoint/index.ts';
import { TORCH_LAYERNORM_EPS } from '../../models/owl2/config.ts';
import type { Owl2Config } from '../../models/owl2/config.ts';

/** The placeholder id that `tokenizer_image_token` puts where each `<|image|>` stood. */
export const IMAGE_TOKEN_ID = -200;

/** Result of {@link Owl2Reference.forward}. */
export interface Owl2ForwardResult {
  /** Output of each decoder layer, `[T, H]` each (before the final RMSNorm). */
  hidden: Float64Array[];
  /** Output of the final RMSNorm (`model.norm`), `[T, H]`. */
  finalNorm: Float64Array;
  /** `lm_head` applied to the last row of `finalNorm`, `[vocab]`. */
  lastLogits: Float64Array;
}

/** Result of {@link Owl2Reference.buildInputs}. */
export interface Owl2Inputs {
  /** Decoder input embeddings, `[T, H]` over the expanded sequence. */
  embeds: Float64Array;
  /** Modality per expanded row: 0 = text, 1 = image (each image's Q+1 rows, vit_eos included). */
  modality: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

/** `y = x Wᵀ + b` with `x` [rows, inDim], `w` [outDim, inDim], optional `b` [outDim]. */
function linear(x: Float64Array, rows: number, inDim: number, w: Float64Array, outDim: number, b?: Float64Array): Float64Array {
  if (x.length !== rows * inDim) throw new Error(`linear: input has ${x.length} values, expected ${rows}×${inDim}`);
  if (w.length !== outDim * inDim) throw new Error(`linear: weight has ${w.length} values, expected ${outDim}×${inDim}`);
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    const xo = r * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = o * inDim;
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; i++) s += x[xo + i] * w[wo + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

/** LayerNorm over the last axis (biased variance, as PyTorch). */
function layerNorm(x: Float64Array, rows: number, dim: number, w: Float64Array, b: Float64Array, eps: number): Float64Array {
  const y = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[o + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[o + i] - mean) ** 2;
    v /= dim;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < dim; i++) y[o + i] = (x[o + i] - mean) * inv * w[i] + b[i];
  }
  return y;
}

/** RMSNorm of one row (LLaMA): `w · x / sqrt(mean(x²) + eps)`. Writes into `out` at `off`. */
function rmsNormRow(x: Float64Array, off: number, dim: number, w: Float64Array, eps: number, out: Float64Array): void {
  let ss = 0;
  for (let i = 0; i < dim; i++) ss += x[off + i] * x[off + i];
  const inv = 1 / Math.sqrt(ss / dim + eps);
  for (let i = 0; i < dim; i++) out[off + i] = w[i] * (x[off + i] * inv);
}

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));
const silu = (v: number): number => v * sigmoid(v);
const quickGelu = (v: number): number => v * sigmoid(1.702 * v);

/** In-place softmax of `a[0..n)`. */
function softmaxInPlace(a: Float64Array, n: number): void {
  let m = -Infinity;
  for (let i = 0; i < n; i++) if (a[i] > m) m = a[i];
  let s = 0;
  for (let i = 0; i < n; i++) {
    a[i] = Math.exp(a[i] - m);
    s += a[i];
  }
  for (let i = 0; i < n; i++) a[i] /= s;
}

/**
 * Multi-head scaled dot-product attention on already projected tensors.
 * `q` [tq, heads·hd] with row stride `qStride` and head `h` at column `qCol(h)`; same for k/v.
 * `causal`: query row t sees key rows 0..t (queries and keys share positions).
 * Returns the context `[tq, heads·hd]` (heads concatenated in order).
 */
function attention(args: {
  tq: number; tk: number; heads: number; hd: number;
  q: Float64Array; qStride: number; qCol: (h: number) => number;
  k: Float64Array; kStride: number; kCol: (h: number) => number;
  v: Float64Array; vStride: number; vCol: (h: number) => number;
  causal: boolean;
}): Float64Array {
  const { tq, tk, heads, hd, q, k, v } = args;
  const out = new Float64Array(tq * heads * hd);
  const scores = new Float64Array(tk);
  const scale = 1 / Math.sqrt(hd);
  for (let h = 0; h < heads; h++) {
    const qc = args.qCol(h), kc = args.kCol(h), vc = args.vCol(h);
    for (let t = 0; t < tq; t++) {
      const n = args.causal ? t + 1 : tk;
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let d = 0; d < hd; d++) s += q[t * args.qStride + qc + d] * k[j * args.kStride + kc + d];
        scores[j] = s * scale;
      }
      softmaxInPlace(scores, n);
      for (let d = 0; d < hd; d++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += scores[j] * v[j * args.vStride + vc + d];
        out[t * heads * hd + h * hd + d] = s;
      }
    }
  }
  return out;
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  if (a.length !== b.length) throw new Error(`add: ${a.length} vs ${b.length} values`);
  const y = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) y[i] = a[i] + b[i];
  return y;
}

function concatRows(a: Float64Array, b: Float64Array): Float64Array {
  const y = new Float64Array(a.length + b.length);
  y.set(a, 0);
  y.set(b, a.length);
  return y;
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/**
 * mPLUG-Owl2 (vision encoder, visual abstractor, LLaMA-2 decoder with the Modality-Adaptive
 * Module) in float64. All sizes come from the parsed config; weights are looked up by their
 * official state-dict keys.
 */
export class Owl2Reference {
  /** The parsed model configuration. */
  readonly config: Owl2Config;
  private readonly w: Map<string, Float64Array>;

  /**
   * Builds the reference from a parsed config and a state dict (official key names). Float32
   * tensors are upcast to float64 once, here.
   */
  constructor(config: Owl2Config, weights: Map<string, Float64Array | Float32Array>) {
    this.config = config;
    this.w = new Map();
    for (const [name, t] of weights) this.w.set(name, t instanceof Float64Array ? t : Float64Array.from(t));
    const { vision, abstractor } = config;
    if (abstractor.encoderHiddenSize !== vision.hiddenSize || abstractor.hiddenSize !== vision.hiddenSize) {
      throw new Error('Owl2Reference: abstractor hidden/encoder_hidden sizes must equal the vision hidden size');
    }
  }

  /**
   * Reads `config.json` and every tensor of a checkpoint folder (via `openCheckpoint`; `options`
   * picks the weight file when both formats are present). The rotary `inv_freq` buffers are
   * skipped: RoPE is recomputed from `rope_theta`, as the official model does.
   */
  static async load(checkpointDir: string, options: OpenCheckpointOptions = {}): Promise<Owl2Reference> {
    const { config } = await readConfig(checkpointDir);
    const reader = await openCheckpoint(checkpointDir, options);
    try {
      const weights = new Map<string, Float32Array>();
      for (const name of reader.tensors.keys()) {
        if (name.endsWith('.rotary_emb.inv_freq')) continue;
        weights.set(name, await reader.readFloat32(name));
      }
      return new Owl2Reference(config, weights);
    } finally {
      await reader.close();
    }
  }

  /** A weight by official key, checked for its element count. */
  private get(name: string, size?: number): Float64Array {
    const t = this.w.get(name);
    if (!t) throw new Error(`Owl2Reference: missing weight ${name}`);
    if (size !== undefined && t.length !== size) throw new Error(`Owl2Reference: ${name} has ${t.length} values, expected ${size}`);
    return t;
  }

  private getOptional(name: string): Float64Array | undefined {
    return this.w.get(name);
  }

  // ----- vision encoder ------------------------------------------------------------------------

  /**
   * Vision encoder on one image: `pixelValues` [3, S, S] → `[N+1, Hv]` after `post_layernorm`
   * (cls row first, then patches in raster order).
   */
  visionHidden(pixelValues: Float32Array | Float64Array): Float64Array {
    const { hiddenSize: D, imageSize: S, patchSize: P, numLayers, numHeads, intermediateSize: F, layerNormEps: eps, numTokens: T } = this.config.vision;
    if (pixelValues.length !== 3 * S * S) throw new Error(`visionHidden: expected 3×${S}×${S} pixel values, got ${pixelValues.length}`);
    const pre = 'model.vision_model.';
    const g = S / P;
    // Patch embedding: Conv2d(3→D, kernel = stride = P, no bias), weight [D, 3, P, P].
    const convW = this.get(`${pre}embeddings.patch_embed.weight`, D * 3 * P * P);
    const cls = this.get(`${pre}embeddings.cls_token`, D);
    const pos = this.get(`${pre}embeddings.position_embedding`);
    if (pos.length < T * D) throw new Error('visionHidden: position_embedding is too short');
    let x: Float64Array = new Float64Array(T * D);
    for (let c = 0; c < D; c++) x[c] = cls[c];
    for (let py = 0; py < g; py++) {
      for (let px = 0; px < g; px++) {
        const row = 1 + py * g + px;
        for (let c = 0; c < D; c++) {
          let s = 0;
          for (let ch = 0; ch < 3; ch++) {
            for (let ky = 0; ky < P; ky++) {
              for (let kx = 0; kx < P; kx++) {
                s += convW[((c * 3 + ch) * P + ky) * P + kx] * pixelValues[(ch * S + py * P + ky) * S + px * P + kx];
              }
            }
          }
          x[row * D + c] = s;
        }
      }
    }
    for (let i = 0; i < T * D; i++) x[i] += pos[i];
    x = layerNorm(x, T, D, this.get(`${pre}embeddings.pre_layernorm.weight`, D), this.get(`${pre}embeddings.pre_layernorm.bias`, D), eps);

    const hd = D / numHeads;
    for (let l = 0; l < numLayers; l++) {
      const p = `${pre}encoder.layers.${l}.`;
      const h = layerNorm(x, T, D, this.get(`${p}input_layernorm.weight`, D), this.get(`${p}input_layernorm.bias`, D), eps);
      // Fused QKV laid out per head as [heads, 3, hd]: head h's q/k/v start at h·3·hd + {0,1,2}·hd.
      const qkv = linear(h, T, D, this.get(`${p}self_attn.query_key_value.weight`, 3 * D * D), 3 * D, this.get(`${p}self_attn.query_key_value.bias`, 3 * D));
      const ctx = attention({
        tq: T, tk: T, heads: numHeads, hd,
        q: qkv, qStride: 3 * D, qCol: (hh) => hh * 3 * hd,
        k: qkv, kStride: 3 * D, kCol: (hh) => hh * 3 * hd + hd,
        v: qkv, vStride: 3 * D, vCol: (hh) => hh * 3 * hd + 2 * hd,
        causal: false,
      });
      x = add(x, linear(ctx, T, D, this.get(`${p}self_attn.dense.weight`, D * D), D, this.get(`${p}self_attn.dense.bias`, D)));
      const h2 = layerNorm(x, T, D, this.get(`${p}post_attention_layernorm.weight`, D), this.get(`${p}post_attention_layernorm.bias`, D), eps);
      const f1 = linear(h2, T, D, this.get(`${p}mlp.fc1.weight`, F * D), F, this.get(`${p}mlp.fc1.bias`, F));
      for (let i = 0; i < f1.length; i++) f1[i] = quickGelu(f1[i]);
      x = add(x, linear(f1, T, F, this.get(`${p}mlp.fc2.weight`, D * F), D, this.get(`${p}mlp.fc2.bias`, D)));
    }
    return layerNorm(x, T, D, this.get(`${pre}post_layernorm.weight`, D), this.get(`${pre}post_layernorm.bias`, D), eps);
  }

  // ----- visual abstractor ---------------------------------------------------------------------

  /**
   * Vision encoder + visual abstractor + `visual_fc`, with `vit_eos` appended: one image
   * `[3, S, S]` → `[Q+1, H]` LLM embeddings.
   */
  encodeImage(pixelValues: Float32Array | Float64Array): Float64Array {
    return this.abstract(this.visionHidden(pixelValues));
  }

  /** Visual abstractor on vision-encoder output `[N+1, Hv]` → `[Q+1, H]` (visual_fc, then vit_eos). */
  abstract(imageFeatures: Float64Array): Float64Array {
    const { hiddenSize: D, numLayers, numHeads, intermediateSize: F, numQueries: Q, layerNormEps: ffnEps } = this.config.abstractor;
    const N1 = this.config.vision.numTokens;
    const H = this.config.llm.hiddenSize;
    if (imageFeatures.length !== N1 * D) throw new Error(`abstract: expected ${N1}×${D} image features`);
    const pre = 'model.visual_abstractor.';
    const K = Q + N1;
    const hd = D / numHeads;
    let v: Float64Array = Float64Array.from(this.get(`${pre}query_embeds`, Q * D));
    for (let l = 0; l < numLayers; l++) {
      const p = `${pre}encoder.layers.${l}.crossattention.`;
      const q = layerNorm(v, Q, D, this.get(`${p}norm1.weight`, D), this.get(`${p}norm1.bias`, D), TORCH_LAYERNORM_EPS);
      const kIn = layerNorm(imageFeatures, N1, D, this.get(`${p}normk.weight`, D), this.get(`${p}normk.bias`, D), TORCH_LAYERNORM_EPS);
      const kv = concatRows(q, kIn); // [Q + N + 1, D]
      const qPos = this.get(`${p}attention.q_pos_embed`, Q * D);
      const kPos = this.get(`${p}attention.k_pos_embed`, N1 * D);
      const qkPos = concatRows(qPos, kPos);
      const qProj = linear(add(q, qPos), Q, D, this.get(`${p}attention.query.weight`, D * D), D, this.get(`${p}attention.query.bias`, D));
      const kProj = linear(add(kv, qkPos), K, D, this.get(`${p}attention.key.weight`, D * D), D, this.get(`${p}attention.key.bias`, D));
      const vProj = linear(kv, K, D, this.get(`${p}attention.value.weight`, D * D), D, this.get(`${p}attention.value.bias`, D));
      const ctx = attention({
        tq: Q, tk: K, heads: numHeads, hd,
        q: qProj, qStride: D, qCol: (h) => h * hd,
        k: kProj, kStride: D, kCol: (h) => h * hd,
        v: vProj, vStride: D, vCol: (h) => h * hd,
        causal: false,
      });
      // Residual on the normalised queries, not on the layer input.
      v = add(q, linear(ctx, Q, D, this.get(`${p}output.out_proj.weight`, D * D), D, this.get(`${p}output.out_proj.bias`, D)));
      const n2 = layerNorm(v, Q, D, this.get(`${p}output.norm2.weight`, D), this.get(`${p}output.norm2.bias`, D), TORCH_LAYERNORM_EPS);
      const a = linear(n2, Q, D, this.get(`${p}output.mlp.w1.weight`, F * D), F, this.get(`${p}output.mlp.w1.bias`, F));
      const b = linear(n2, Q, D, this.get(`${p}output.mlp.w3.weight`, F * D), F, this.get(`${p}output.mlp.w3.bias`, F));
      for (let i = 0; i < a.length; i++) a[i] = silu(a[i]) * b[i];
      const ln = layerNorm(a, Q, F, this.get(`${p}output.mlp.ffn_ln.weight`, F), this.get(`${p}output.mlp.ffn_ln.bias`, F), ffnEps);
      v = add(v, linear(ln, Q, F, this.get(`${p}output.mlp.w2.weight`, D * F), D, this.get(`${p}output.mlp.w2.bias`, D)));
    }
    const fc = linear(v, Q, D, this.get(`${pre}visual_fc.weight`, H * D), H, this.get(`${pre}visual_fc.bias`, H));
    return concatRows(fc, this.get(`${pre}vit_eos`, H));
  }

  // ----- language model ------------------------------------------------------------------------

  /** Token embeddings `[ids.length, H]` from `model.embed_tokens`. */
  embed(ids: number[]): Float64Array {
    const { hiddenSize: H, vocabSize: V } = this.config.llm;
    const table = this.get('model.embed_tokens.weight', V * H);
    const out = new Float64Array(ids.length * H);
    ids.forEach((id, r) => {
      if (!Number.isInteger(id) || id < 0 || id >= V) throw new Error(`embed: token id ${id} is out of range`);
      out.set(table.subarray(id * H, (id + 1) * H), r * H);
    });
    return out;
  }

  /**
   * The decoder input for a prompt: text ids are embedded (modality 0) and each `-200`
   * placeholder is replaced by the next image's `Q+1` rows from {@link encodeImage} (modality 1).
   */
  buildInputs(inputIds: number[], images: (Float32Array | Float64Array)[]): Owl2Inputs {
    const H = this.config.llm.hiddenSize;
    const markers = inputIds.filter((id) => id === IMAGE_TOKEN_ID).length;
    if (markers !== images.length) throw new Error(`buildInputs: ${markers} image placeholders but ${images.length} images`);
    const parts: Float64Array[] = [];
    const modality: number[] = [];
    let img = 0;
    let text: number[] = [];
    const flush = (): void => {
      if (text.length) parts.push(this.embed(text));
      for (let i = 0; i < text.length; i++) modality.push(0);
      text = [];
    };
    for (const id of inputIds) {
      if (id === IMAGE_TOKEN_ID) {
        flush();
        const e = this.encodeImage(images[img++]);
        parts.push(e);
        for (let i = 0; i < e.length / H; i++) modality.push(1);
      } else {
        text.push(id);
      }
    }
    flush();
    const embeds = new Float64Array(modality.length * H);
    let off = 0;
    for (const p of parts) {
      embeds.set(p, off);
      off += p.length;
    }
    return { embeds, modality: Uint8Array.from(modality) };
  }

  /**
   * The MAM decoder over the whole sequence (positions 0..T-1, causal, no cache).
   * `inputsEmbeds` [T, H]; `modality` [T] with 0 = text, 1 = image.
   */
  forward(inputsEmbeds: Float64Array, modality: Uint8Array): Owl2ForwardResult {
    const c = this.config.llm;
    const H = c.hiddenSize, nh = c.numHeads, nkv = c.numKvHeads, hd = c.headDim, F = c.intermediateSize, eps = c.rmsNormEps;
    const T = modality.length;
    if (inputsEmbeds.length !== T * H) throw new Error(`forward: ${inputsEmbeds.length} embedding values for ${T} tokens of width ${H}`);
    for (const m of modality) if (m !== 0 && m !== 1) throw new Error(`forward: modality must be 0 or 1, got ${m}`);
    const KV = nkv * hd;
    const group = nh / nkv;

    // RoPE tables (HF LLaMA rotate_half): inv_freq[i] = theta^(-2i/hd), angle = pos · inv_freq[i mod hd/2].
    const half = hd / 2;
    const cos = new Float64Array(T * half);
    const sin = new Float64Array(T * half);
    for (let t = 0; t < T; t++) {
      for (let i = 0; i < half; i++) {
        const a = t / c.ropeTheta ** ((2 * i) / hd);
        cos[t * half + i] = Math.cos(a);
        sin[t * half + i] = Math.sin(a);
      }
    }
    const rope = (x: Float64Array, heads: number): void => {
      const stride = heads * hd;
      for (let t = 0; t < T; t++) {
        for (let h = 0; h < heads; h++) {
          const o = t * stride + h * hd;
          for (let i = 0; i < half; i++) {
            const x1 = x[o + i], x2 = x[o + i + half];
            const cs = cos[t * half + i], sn = sin[t * half + i];
            x[o + i] = x1 * cs - x2 * sn;
            x[o + i + half] = x2 * cs + x1 * sn;
          }
        }
      }
    };
    // Per-row choice of a modality-specific RMSNorm.
    const mamNorm = (x: Float64Array, name: string): Float64Array => {
      const w = [this.get(`${name}.multiway.0.weight`, H), this.get(`${name}.multiway.1.weight`, H)];
      const y = new Float64Array(x.length);
      for (let t = 0; t < T; t++) rmsNormRow(x, t * H, H, w[modality[t]], eps, y);
      return y;
    };
    // Per-row choice of a modality-specific projection: each row goes through its own branch.
    const mamLinear = (x: Float64Array, name: string, outDim: number): Float64Array => {
      const y = new Float64Array(T * outDim);
      for (let t = 0; t < T; t++) {
        const m = modality[t];
        const row = linear(x.subarray(t * H, (t + 1) * H), 1, H, this.get(`${name}.multiway.${m}.weight`, outDim * H), outDim, this.getOptional(`${name}.multiway.${m}.bias`));
        y.set(row, t * outDim);
      }
      return y;
    };

    let x: Float64Array = Float64Array.from(inputsEmbeds);
    const hidden: Float64Array[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      const p = `model.layers.${l}.`;
      const h = mamNorm(x, `${p}input_layernorm`);
      const q = linear(h, T, H, this.get(`${p}self_attn.q_proj.weight`, nh * hd * H), nh * hd, this.getOptional(`${p}self_attn.q_proj.bias`));
      const k = mamLinear(h, `${p}self_attn.k_proj`, KV);
      const v = mamLinear(h, `${p}self_attn.v_proj`, KV);
      rope(q, nh);
      rope(k, nkv);
      const ctx = attention({
        tq: T, tk: T, heads: nh, hd,
        q, qStride: nh * hd, qCol: (hh) => hh * hd,
        k, kStride: KV, kCol: (hh) => Math.floor(hh / group) * hd,
        v, vStride: KV, vCol: (hh) => Math.floor(hh / group) * hd,
        causal: true,
      });
      x = add(x, linear(ctx, T, nh * hd, this.get(`${p}self_attn.o_proj.weight`, H * nh * hd), H, this.getOptional(`${p}self_attn.o_proj.bias`)));
      const h2 = mamNorm(x, `${p}post_attention_layernorm`);
      const gate = linear(h2, T, H, this.get(`${p}mlp.gate_proj.weight`, F * H), F);
      const up = linear(h2, T, H, this.get(`${p}mlp.up_proj.weight`, F * H), F);
      for (let i = 0; i < gate.length; i++) gate[i] = silu(gate[i]) * up[i];
      x = add(x, linear(gate, T, F, this.get(`${p}mlp.down_proj.weight`, H * F), H));
      hidden.push(x);
    }
    const finalNorm = new Float64Array(T * H);
    const nw = this.get('model.norm.weight', H);
    for (let t = 0; t < T; t++) rmsNormRow(x, t * H, H, nw, eps, finalNorm);
    const lastLogits = T > 0 ? this.logits(finalNorm.subarray((T - 1) * H, T * H)) : new Float64Array(0);
    return { hidden, finalNorm, lastLogits };
  }

  /** `lm_head` (or the tied embedding table) on one normalised row `[H]` → `[vocab]`. */
  logits(row: Float64Array): Float64Array {
    const { hiddenSize: H, vocabSize: V, tieWordEmbeddings } = this.config.llm;
    const w = tieWordEmbeddings && !this.w.has('lm_head.weight') ? this.get('model.embed_tokens.weight', V * H) : this.get('lm_head.weight', V * H);
    return linear(row, 1, H, w, V);
  }

  /**
   * Greedy decoding of `steps` tokens without a KV cache: the full sequence is re-run each step;
   * generated tokens are text (modality 0). Does not stop at EOS (the caller can cut).
   */
  greedy(inputIds: number[], images: (Float32Array | Float64Array)[], steps: number): number[] {
    const H = this.config.llm.hiddenSize;
    const { embeds, modality } = this.buildInputs(inputIds, images);
    let e: Float64Array = embeds;
    let m: Uint8Array = modality;
    const out: number[] = [];
    for (let s = 0; s < steps; s++) {
      const { lastLogits } = this.forward(e, m);
      const next = argmax(lastLogits);
      out.push(next);
      const ne = new Float64Array(e.length + H);
      ne.set(e);
      ne.set(this.embed([next]), e.length);
      const nm = new Uint8Array(m.length + 1);
      nm.set(m);
      e = ne;
      m = nm;
    }
    return out;
  }
}

/** Index of the largest value (the first one on ties, like `torch.argmax`). */
export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** 1-D sin-cos embedding of `positions` with `dim` channels: `[sin(p·ω), cos(p·ω)]`, ω_i = 10000^(−i/(dim/2)). */
function sincos1d(dim: number, positions: number[]): Float64Array {
  const half = dim / 2;
  const out = new Float64Array(positions.length * dim);
  positions.forEach((p, r) => {
    for (let i = 0; i < half; i++) {
      const a = p / 10000 ** (i / half);
      out[r * dim + i] = Math.sin(a);
      out[r * dim + half + i] = Math.cos(a);
    }
  });
  return out;
}

/**
 * The abstractor's sin-cos position tables computed from the config (the official
 * `get_1d_sincos_pos_embed_from_grid` / `get_2d_sincos_pos_embed`), in float64:
 * `qPos` [Q, D] over positions 0..Q-1; `kPos` [1 + g², D] with a zero row for the cls token, then
 * the g×g grid in raster order, the first D/2 channels from the column (w) coordinate and the
 * last D/2 from the row (h) coordinate. Checkpoints store these as buffers; this checks them.
 */
export function abstractorPosEmbeds(config: Owl2Config): { qPos: Float64Array; kPos: Float64Array } {
  const { hiddenSize: D, numQueries: Q, gridSize: g } = config.abstractor;
  const qPos = sincos1d(D, Array.from({ length: Q }, (_, i) => i));
  const cols: number[] = [];
  const rows: number[] = [];
  for (let r = 0; r < g; r++) for (let c = 0; c < g; c++) { rows.push(r); cols.push(c); }
  const ew = sincos1d(D / 2, cols);
  const eh = sincos1d(D / 2, rows);
  const kPos = new Float64Array((1 + g * g) * D);
  for (let i = 0; i < g * g; i++) {
    kPos.set(ew.subarray(i * (D / 2), (i + 1) * (D / 2)), (1 + i) * D);
    kPos.set(eh.subarray(i * (D / 2), (i + 1) * (D / 2)), (1 + i) * D + D / 2);
  }
  return { qPos, kPos };
}
