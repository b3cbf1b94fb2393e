/**
 * Post-conversion verification of a model package (docs/engine-contract.md, "Verification"): what
 * it runs and how it is reported. It is run by the engine (src-main/engine/verify.ts, which owns
 * onnxruntime); the converter gets it injected as a {@link PackageVerifier}.
 *
 * The probe is a deterministic synthetic image (smooth colour gradients, rings and a checker
 * patch, generated directly as normalised pixel values) and the fixed prompt `PROBE_PROMPT`
 * (LLaMA-2 token ids, the image spliced in as in the engine). Verification loads the package's
 * three graphs in onnxruntime (CPU), runs the vision graph, a prefill and a few greedy decode steps,
 * and checks shapes and finiteness: a package that fails this is not usable.
 *
 * For quantized packages it also measures agreement with float32:
 * - `end-to-end` (models whose float32 weights fit `referenceMaxBytes`, e.g. the tiny test models):
 *   float32 graphs are written next to the package from the same checkpoint and both pipelines run
 *   on the probe; reported: cosine of the image embeddings (flattened, and the lowest per token),
 *   and, with the decoder teacher-forced on the float32 greedy tokens, the fraction of steps whose
 *   next-token argmax agrees (top-1 agreement) and the mean logits cosine.
 * - `layer-wise` (larger models, where a float32 copy would need tens of GB): a sample of the
 *   quantized linears (first and last layer of each kind, the lm_head, the visual_fc) is built as in
 *   the package and compared with the float32 matmul on seeded probe activations; reported: cosine
 *   and relative error of each output. This measures the weight quantization, not its effect on
 *   the generated text.
 */
import { readFile } from 'node:fs/promises';
import { GraphBuilder } from './onnx/graph.ts';
import { DataType } from './onnx/proto.ts';
import { linearMatMul } from './onnx/weights.ts';
import type { WeightReader } from './onnx/weights.ts';
import type { Owl2Config } from './owl2/config.ts';
import { ABSTRACTOR_PREFIX, VISION_PREFIX } from './owl2/vision-graph.ts';
import type { Quantization, VerificationReport } from './package/manifest.ts';
import { decoderLinearFormat, linearFormat } from './quant/plan.ts';
import type { DecoderVariant, QuantizationPlan } from './quant/plan.ts';

/** The probe prompt (conv_mplug_owl2 template, one image). */
export const PROBE_PROMPT = 'USER: <|image|>Describe this picture in one sentence. ASSISTANT:';
/** Its ids under the LLaMA-2 tokenizer (tokenizer_image_token; −200 = the image). */
export const PROBE_PROMPT_IDS: readonly number[] = [1, 3148, 1001, 29901, 29871, -200, 20355, 915, 445, 7623, 297, 697, 10541, 29889, 319, 1799, 9047, 13566, 29901];
/** What the probe image is, for the manifest. */
export const PROBE_IMAGE = 'synthetic: colour gradients, concentric rings and a checker patch (seedless, deterministic)';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** The probe image as normalised pixel values `[3, S, S]` (CLIP mean/std unless given). */
export function probePixels(size: number, mean: readonly number[] = CLIP_MEAN, std: readonly number[] = CLIP_STD): Float32Array {
  const out = new Float32Array(3 * size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x / size;
      const v = y / size;
      const d = Math.hypot(u - 0.6, v - 0.4);
      const ring = 0.5 + 0.5 * Math.cos(d * 40);
      const checker = u < 0.3 && v > 0.6 ? ((Math.floor(u * 20) + Math.floor(v * 20)) % 2) : 0.5;
      const rgb = [0.7 * u + 0.3 * ring, 0.6 * v + 0.4 * checker, 0.5 * (1 - u) * ring + 0.5 * (1 - v)];
      for (let c = 0; c < 3; c++) out[c * size * size + y * size + x] = (Math.min(1, Math.max(0, rgb[c])) - mean[c]) / std[c];
    }
  }
  return out;
}

/** Paths of the three graphs. */
export interface GraphPaths {
  vision: string;
  embed: string;
  decoder: string;
  /** Which decoder graph `decoder` is (default `cpu`). */
  decoderVariant?: DecoderVariant;
}

/** Cosine similarity of two vectors (float64 accumulation). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>, start = 0, end = a.length): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = start; i < end; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  if (aa === 0 && bb === 0) return 1;
  return ab / Math.sqrt(aa * bb);
}

/** The probe's prompt ids for a vocabulary (ids past its end wrap, for toy vocabularies). */
export function probeIds(vocab: number): number[] {
  return PROBE_PROMPT_IDS.map((i) => (i < 0 ? i : i % vocab));
}

/** Options of `verifyPackage`. */
export interface VerifyOptions {
  /** Decode steps compared (default 8: the prefill's next token and 7 more). */
  decodeSteps?: number;
  /**
   * Float32 comparison for quantized packages: `auto` (default) picks end-to-end when the float32
   * weights fit `referenceMaxBytes`, else layer-wise; `none` skips it.
   */
  compare?: 'auto' | 'end-to-end' | 'layer-wise' | 'none';
  /** Largest float32 reference written for an end-to-end comparison (default 4 GiB). */
  referenceMaxBytes?: number;
  /** onnxruntime intra-op threads (default: its choice). */
  threads?: number;
  signal?: AbortSignal;
  /** Called with a short description of each stage. */
  onStage?: (stage: string) => void;
  /**
   * Largest estimated onnxruntime CPU memory for the probe run (default 75 % of this machine's
   * RAM); above it the probe run is skipped (e.g. a 7B fp16 package, which the CPU provider holds in
   * float32) and only the layer-wise comparison runs.
   */
  maxRuntimeBytes?: number;
}

/** What `verifyPackage` needs besides the package's graphs. */
export interface VerifyTarget {
  /** The package's (or staging folder's) graph files. */
  graphs: GraphPaths;
  config: Owl2Config;
  plan: QuantizationPlan;
  /** Normalisation of the probe image (preprocessor_config.json's image_mean/image_std). */
  imageMean?: readonly number[];
  imageStd?: readonly number[];
  /** For float32 comparisons: the checkpoint the package came from, still open. */
  reader?: WeightReader;
  /**
   * Writes float32 reference graphs into a folder (used for end-to-end comparisons); returns their
   * paths. The converter passes one building them from `reader`.
   */
  writeReference?: (dir: string) => Promise<GraphPaths>;
  /** Size of those float32 weights, to decide between end-to-end and layer-wise. */
  referenceBytes?: number;
  /** Estimated memory onnxruntime's CPU provider needs to hold the package (see `maxRuntimeBytes`). */
  runtimeBytes?: number;
  /** Scratch folder (removed afterwards). */
  workDir: string;
}

/** True when some part of the plan is not float32. */
export function isQuantized(plan: QuantizationPlan): boolean {
  return Object.values(plan).some((p) => p !== 'fp32');
}

/** One sampled linear built twice, float32 and as the package quantizes it, for a layer-wise check. */
export interface LayerwiseProbe {
  /** Checkpoint key of the weight. */
  tensor: string;
  precision: Quantization;
  /** Rows and columns of the input `x`. */
  rows: number;
  cols: number;
  /** The input: seeded probe activations [rows, cols]. */
  input(): Float32Array;
  /** The graph: input `x` [rows, cols], outputs `y_ref` (float32 weight) and `y_q` (quantized). */
  graph(): GraphBuilder;
}

/**
 * The layer-wise probes of a quantized plan: each sampled linear the plan quantizes and the
 * checkpoint holds, the LLM's in the format the `decoder` graph variant writes them.
 */
export function layerwiseProbes(reader: WeightReader, cfg: Owl2Config, plan: QuantizationPlan, decoder: DecoderVariant = 'cpu'): LayerwiseProbe[] {
  const rows = 8;
  const out: LayerwiseProbe[] = [];
  for (const l of sampledLinears(cfg)) {
    const precision = plan[l.part];
    if (precision === 'fp32' || !reader.tensors.has(l.key)) continue;
    const seed = out.length + 1;
    out.push({
      tensor: l.key,
      precision: precision as Quantization,
      rows,
      cols: l.in,
      input: () => probeActivations(rows, l.in, seed),
      graph: () => {
        const g = new GraphBuilder('layerwise');
        const x = g.input('x', DataType.FLOAT, [rows, l.in]);
        g.output(linearMatMul(g, reader, x, l.key, l.out, l.in, linearFormat('fp32'), 'w_ref'), 'y_ref', DataType.FLOAT, [rows, l.out]);
        const fmt = l.part === 'vision' ? linearFormat(precision) : decoderLinearFormat(precision, decoder);
        g.output(linearMatMul(g, reader, x, l.key, l.out, l.in, fmt, 'w_q'), 'y_q', DataType.FLOAT, [rows, l.out]);
        return g;
      },
    });
  }
  return out;
}

/** Verifies a package (the engine's implementation: src-main/engine/verify.ts). */
export type PackageVerifier = (target: VerifyTarget, opts?: VerifyOptions) => Promise<VerificationReport>;

/** One sampled linear: checkpoint key, [out, in], and which plan part quantizes it. */
interface SampledLinear {
  key: string;
  out: number;
  in: number;
  part: keyof QuantizationPlan;
}

/** The linears compared layer-wise: first and last layer of each kind, lm_head, visual_fc. */
export function sampledLinears(cfg: Owl2Config): SampledLinear[] {
  const c = cfg.llm;
  const v = cfg.vision;
  const a = cfg.abstractor;
  const H = c.hiddenSize;
  const out: SampledLinear[] = [];
  for (const i of [...new Set([0, c.numLayers - 1])]) {
    const p = `model.layers.${i}`;
    out.push(
      { key: `${p}.self_attn.q_proj.weight`, out: c.numHeads * c.headDim, in: H, part: 'llm' },
      { key: `${p}.self_attn.k_proj.multiway.0.weight`, out: c.numKvHeads * c.headDim, in: H, part: 'llm' },
      { key: `${p}.self_attn.v_proj.multiway.1.weight`, out: c.numKvHeads * c.headDim, in: H, part: 'llm' },
      { key: `${p}.self_attn.o_proj.weight`, out: H, in: c.numHeads * c.headDim, part: 'llm' },
      { key: `${p}.mlp.gate_proj.weight`, out: c.intermediateSize, in: H, part: 'llm' },
      { key: `${p}.mlp.down_proj.weight`, out: H, in: c.intermediateSize, part: 'llm' },
    );
  }
  out.push({ key: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', out: c.vocabSize, in: H, part: 'lmHead' });
  for (const i of [...new Set([0, v.numLayers - 1])]) {
    const p = `${VISION_PREFIX}.encoder.layers.${i}`;
    out.push(
      { key: `${p}.self_attn.query_key_value.weight`, out: 3 * v.hiddenSize, in: v.hiddenSize, part: 'vision' },
      { key: `${p}.mlp.fc1.weight`, out: v.intermediateSize, in: v.hiddenSize, part: 'vision' },
      { key: `${p}.mlp.fc2.weight`, out: v.hiddenSize, in: v.intermediateSize, part: 'vision' },
    );
  }
  out.push(
    { key: `${ABSTRACTOR_PREFIX}.encoder.layers.0.crossattention.output.mlp.w2.weight`, out: a.hiddenSize, in: a.intermediateSize, part: 'vision' },
    { key: `${ABSTRACTOR_PREFIX}.visual_fc.weight`, out: H, in: a.hiddenSize, part: 'vision' },
  );
  return out;
}

/** Seeded probe activations `[rows, cols]`, roughly normal with a few large channels. */
function probeActivations(rows: number, cols: number, seed: number): Float32Array {
  const out = new Float32Array(rows * cols);
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < out.length; i++) out[i] = (u() + u() + u() + u() - 2) * Math.sqrt(3);
  for (let r = 0; r < rows; r++) for (let c = 7; c < cols; c += 251) out[r * cols + c] *= 20;
  return out;
}

/** image_mean / image_std of a package's preprocessor_config.json, when it has them. */
export async function readImageNorm(path: string): Promise<{ mean?: number[]; std?: number[] }> {
  try {
    const raw = JSON.parse(await readFile(path, 'utf8')) as { image_mean?: unknown; image_std?: unknown };
    const ok = (v: unknown): v is number[] => Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number');
    return { mean: ok(raw.image_mean) ? raw.image_mean : undefined, std: ok(raw.image_std) ? raw.image_std : undefined };
  } catch {
    return {};
  }
}
