/**
 * Post-conversion verification of a model package (docs/engine-contract.md, "Verification").
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
import { mkdir, readFile, rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OwleryError } from '../src-shared/errors.ts';
import { GraphBuilder } from './onnx/graph.ts';
import { DataType } from './onnx/proto.ts';
import { MS_DOMAIN, linearMatMul } from './onnx/weights.ts';
import type { WeightReader } from './onnx/weights.ts';
import { throwIfAborted, writeOnnxModel } from './onnx/writer.ts';
import type { Owl2Config } from './owl2/config.ts';
import { DECODER_IO, DecoderKvCache } from './owl2/decoder-graph.ts';
import { GPU_DECODER_IO, gpuDecoderStepFeeds, modalityRuns } from './owl2/decoder-graph-gpu.ts';
import { float16ToFloat32, float32ToFloat16 } from './quant/fp16.ts';
import type { DecoderVariant } from './quant/plan.ts';
import { runDecoderStep } from './owl2/decoder-feeds.ts';
import { ABSTRACTOR_PREFIX, VISION_PREFIX } from './owl2/vision-graph.ts';
import type { Quantization, VerificationAgreement, VerificationReport } from './package/manifest.ts';
import { decoderLinearFormat, linearFormat } from './quant/plan.ts';
import type { Precision, QuantizationPlan } from './quant/plan.ts';

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

/** Greedy probe run over one set of graphs, step by step. */
class ProbeRunner {
  private kv: DecoderKvCache | undefined;
  /** The GPU decoder's KV cache: its last presents (on the CPU here) and their valid length. */
  private gpuKv: { tensors: ort.Tensor[]; length: number } | undefined;
  private gpuDecoder = false;

  private constructor(
    private readonly cfg: Owl2Config,
    private readonly vision: ort.InferenceSession,
    private readonly embed: ort.InferenceSession,
    private readonly decoder: ort.InferenceSession,
  ) {}

  static async open(paths: GraphPaths, cfg: Owl2Config, threads?: number): Promise<ProbeRunner> {
    const so: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], ...(threads ? { intraOpNumThreads: threads } : {}) };
    const opened: ort.InferenceSession[] = [];
    try {
      for (const p of [paths.vision, paths.embed, paths.decoder]) {
        try {
          opened.push(await ort.InferenceSession.create(p, so));
        } catch (err) {
          throw new OwleryError('PACKAGE_INVALID', `verification: onnxruntime cannot load ${p}: ${(err as Error).message.split('\n')[0]}`, { path: p });
        }
      }
    } catch (err) {
      await Promise.all(opened.map((s) => s.release()));
      throw err;
    }
    const runner = new ProbeRunner(cfg, opened[0], opened[1], opened[2]);
    runner.gpuDecoder = paths.decoderVariant === 'gpu';
    return runner;
  }

  async release(): Promise<void> {
    await Promise.all([this.vision.release(), this.embed.release(), this.decoder.release()]);
  }

  async imageEmbeds(pixels: Float32Array): Promise<Float32Array> {
    const s = this.cfg.vision.imageSize;
    const out = await this.vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, s, s]) }, ['image_embeds']);
    const e = out.image_embeds;
    const want = [1, this.cfg.imageTokens, this.cfg.llm.hiddenSize];
    if (e.dims.join() !== want.join()) throw new OwleryError('PACKAGE_INVALID', `verification: vision.onnx gave image_embeds [${e.dims.join(', ')}], expected [${want.join(', ')}]`);
    return e.data as Float32Array;
  }

  private async embedIds(ids: readonly number[]): Promise<Float32Array> {
    const t = new ort.Tensor('int64', BigInt64Array.from(ids, (i) => BigInt(i)), [1, ids.length]);
    return (await this.embed.run({ input_ids: t }, ['inputs_embeds'])).inputs_embeds.data as Float32Array;
  }

  /** Runs the decoder on new tokens; returns the last position's logits. */
  private async decode(embeds: Float32Array, modality: BigInt64Array): Promise<Float32Array> {
    if (this.gpuDecoder) return this.decodeGpu(embeds, modality);
    const c = this.cfg.llm;
    const kv = (this.kv ??= new DecoderKvCache(c.numLayers, c.numKvHeads, c.headDim, { maxCapacity: c.maxPositions }));
    const out = await runDecoderStep(this.decoder, kv, embeds, modality, c.hiddenSize);
    const logits = out[DECODER_IO.logits].data as Float32Array;
    if (logits.length !== c.vocabSize) throw new OwleryError('PACKAGE_INVALID', `verification: decoder.onnx gave ${logits.length} logits, expected ${c.vocabSize}`);
    return logits;
  }

  /** {@link decode} for the GPU decoder graph (decoder-graph-gpu.ts), one call per run of equal modality. */
  private async decodeGpu(embeds: Float32Array, modality: BigInt64Array): Promise<Float32Array> {
    const c = this.cfg.llm;
    const fp16 = (this.decoder.inputMetadata.find((m) => m.name === GPU_DECODER_IO.inputsEmbeds) as { type?: string } | undefined)?.type === 'float16';
    const kv = (this.gpuKv ??= { tensors: [], length: 0 });
    let logits: Float32Array | undefined;
    for (const run of modalityRuns(modality)) {
      const T = run.end - run.start;
      const rows = embeds.subarray(run.start * c.hiddenSize, run.end * c.hiddenSize);
      const feeds: Record<string, ort.Tensor> = {
        [GPU_DECODER_IO.inputsEmbeds]: fp16 ? new ort.Tensor('float16', float32ToFloat16(rows), [1, T, c.hiddenSize]) : new ort.Tensor('float32', rows, [1, T, c.hiddenSize]),
      };
      for (const f of gpuDecoderStepFeeds(kv.length, T, run.image)) feeds[f.name] = new ort.Tensor(f.type, f.data, f.dims);
      const empty = new ort.Tensor(fp16 ? 'float16' : 'float32', fp16 ? new Uint16Array(0) : new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
      for (let i = 0; i < c.numLayers; i++) {
        feeds[GPU_DECODER_IO.pastKey(i)] = kv.tensors[2 * i] ?? empty;
        feeds[GPU_DECODER_IO.pastValue(i)] = kv.tensors[2 * i + 1] ?? empty;
      }
      const out = await this.decoder.run(feeds);
      kv.tensors = Array.from({ length: 2 * c.numLayers }, (_, j) => out[j % 2 ? GPU_DECODER_IO.presentValue(j >> 1) : GPU_DECODER_IO.presentKey(j >> 1)]);
      kv.length += T;
      const data = out[GPU_DECODER_IO.logits].data;
      logits = data instanceof Uint16Array ? float16ToFloat32(data) : (data as Float32Array);
    }
    if (logits?.length !== c.vocabSize) throw new OwleryError('PACKAGE_INVALID', `verification: decoder.onnx gave ${logits?.length ?? 0} logits, expected ${c.vocabSize}`);
    return logits;
  }

  /** Prefill of the prompt with the image spliced in; returns the next-token logits. */
  async prefill(ids: readonly number[], image: Float32Array): Promise<Float32Array> {
    const H = this.cfg.llm.hiddenSize;
    const rows = this.cfg.imageTokens;
    const text = ids.filter((i) => i >= 0);
    const textEmbeds = await this.embedIds(text);
    const length = text.length + (ids.length - text.length) * rows;
    const embeds = new Float32Array(length * H);
    const modality = new BigInt64Array(length);
    let pos = 0;
    let t = 0;
    for (const id of ids) {
      if (id < 0) {
        embeds.set(image, pos * H);
        modality.fill(1n, pos, pos + rows);
        pos += rows;
      } else {
        embeds.set(textEmbeds.subarray(t * H, (t + 1) * H), pos * H);
        t++;
        pos++;
      }
    }
    this.kv?.truncate(0);
    this.gpuKv = undefined;
    return this.decode(embeds, modality);
  }

  /** Feeds one text token; returns the next-token logits. */
  async step(token: number): Promise<Float32Array> {
    return this.decode(await this.embedIds([token]), new BigInt64Array(1));
  }
}

function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
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

function allFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new OwleryError('PACKAGE_INVALID', `verification: ${what} has a non-finite value at index ${i}`);
  }
}

/** The probe's prompt ids for a vocabulary (ids past its end wrap, for toy vocabularies). */
function probeIds(vocab: number): number[] {
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

/**
 * Loads the graphs, runs the probe and, for quantized packages, measures agreement with float32.
 * Throws `PACKAGE_INVALID` when the package cannot run the probe.
 */
export async function verifyPackage(target: VerifyTarget, opts: VerifyOptions = {}): Promise<VerificationReport> {
  const cfg = target.config;
  const steps = Math.max(1, opts.decodeSteps ?? 8);
  const ids = probeIds(cfg.llm.vocabSize);
  const pixels = probePixels(cfg.vision.imageSize, target.imageMean, target.imageStd);
  const timings: Record<string, number> = {};
  const time = async <T>(key: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      timings[key] = Math.round((performance.now() - t0) * 10) / 10;
    }
  };
  const quantized = isQuantized(target.plan);
  let compare = quantized ? (opts.compare ?? 'auto') : 'none';
  if (compare === 'auto') {
    const fits = target.writeReference && (target.referenceBytes ?? Infinity) <= (opts.referenceMaxBytes ?? 4 * 2 ** 30);
    compare = fits ? 'end-to-end' : target.reader ? 'layer-wise' : 'none';
  }
  await mkdir(target.workDir, { recursive: true });
  const maxRuntime = opts.maxRuntimeBytes ?? 0.75 * totalmem();
  if ((target.runtimeBytes ?? 0) > maxRuntime) {
    try {
      const gib = (n: number): string => `${(n / 2 ** 30).toFixed(1)} GiB`;
      const skipped = `the probe run needs about ${gib(target.runtimeBytes!)} of memory on the CPU provider, over the ${gib(maxRuntime)} allowed here`;
      let agreement: VerificationAgreement | undefined;
      if (quantized && target.reader && compare !== 'none') {
        opts.onStage?.('comparing sampled linears with float32');
        agreement = await time('layerwiseMs', () => layerwiseAgreement(target.reader!, cfg, target.plan, join(target.workDir, 'layers'), opts.signal, target.graphs.decoderVariant));
      }
      return {
        ok: true,
        probeSkipped: skipped,
        at: new Date().toISOString(),
        probe: { image: PROBE_IMAGE, prompt: PROBE_PROMPT, promptTokens: ids.length, decodeSteps: 0 },
        tokens: [],
        ...(agreement ? { agreement } : {}),
        timings,
      };
    } finally {
      await rm(target.workDir, { recursive: true, force: true });
    }
  }
  try {
    let probe: { tokens: number[]; agreement?: VerificationAgreement };
    opts.onStage?.('loading the package');
    const runner = await time('loadMs', () => ProbeRunner.open(target.graphs, cfg, opts.threads));
    let reference: ProbeRunner | undefined;
    try {
      if (compare === 'end-to-end') {
        if (!target.writeReference) throw new OwleryError('INVALID_ARGUMENT', 'verification: an end-to-end comparison needs the source checkpoint');
        opts.onStage?.('writing the float32 reference');
        const refPaths = await time('referenceWriteMs', () => target.writeReference!(join(target.workDir, 'reference')));
        reference = await ProbeRunner.open(refPaths, cfg, opts.threads);
      }
      throwIfAborted(opts.signal);
      opts.onStage?.('running the vision graph');
      const image = await time('visionMs', () => runner.imageEmbeds(pixels));
      allFinite(image, 'image_embeds');
      const refImage = reference ? await reference.imageEmbeds(pixels) : undefined;

      opts.onStage?.('running the decoder');
      const tokens: number[] = [];
      const agreeSteps: boolean[] = [];
      const logitCos: number[] = [];
      const t0 = performance.now();
      let logits = await runner.prefill(ids, image);
      let refLogits = reference ? await reference.prefill(ids, refImage!) : undefined;
      timings.prefillMs = Math.round((performance.now() - t0) * 10) / 10;
      const t1 = performance.now();
      for (let s = 0; s < steps; s++) {
        throwIfAborted(opts.signal);
        allFinite(logits, `logits at decode step ${s}`);
        const mine = argmax(logits);
        tokens.push(mine);
        let next = mine;
        if (refLogits) {
          next = argmax(refLogits);
          agreeSteps.push(next === mine);
          logitCos.push(cosine(logits, refLogits));
        }
        if (s === steps - 1) break;
        logits = await runner.step(next);
        if (reference) refLogits = await reference.step(next);
      }
      timings.decodeMs = Math.round((performance.now() - t1) * 10) / 10;

      let agreement: VerificationAgreement | undefined;
      if (reference && refImage) {
        const H = cfg.llm.hiddenSize;
        let minTok = 1;
        for (let t = 0; t < cfg.imageTokens; t++) minTok = Math.min(minTok, cosine(image, refImage, t * H, (t + 1) * H));
        agreement = {
          method: 'end-to-end',
          imageEmbedsCosine: cosine(image, refImage),
          imageEmbedsMinTokenCosine: minTok,
          top1Agreement: agreeSteps.filter(Boolean).length / agreeSteps.length,
          steps: agreeSteps.length,
          logitsCosine: logitCos.reduce((a, b) => a + b, 0) / logitCos.length,
        };
      }
      probe = { tokens, agreement };
    } finally {
      await runner.release();
      await reference?.release();
    }
    // Layer-wise after the sessions are released: a large package and the float32 copies of the
    // sampled weights need not be in memory together.
    let agreement = probe.agreement;
    if (!agreement && compare === 'layer-wise' && target.reader) {
      opts.onStage?.('comparing sampled linears with float32');
      agreement = await time('layerwiseMs', () => layerwiseAgreement(target.reader!, cfg, target.plan, join(target.workDir, 'layers'), opts.signal, target.graphs.decoderVariant));
    }
    return {
      ok: true,
      at: new Date().toISOString(),
      probe: { image: PROBE_IMAGE, prompt: PROBE_PROMPT, promptTokens: ids.length, decodeSteps: steps },
      tokens: probe.tokens,
      ...(agreement ? { agreement } : {}),
      timings,
    };
  } finally {
    await rm(target.workDir, { recursive: true, force: true });
  }
}

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

/** Layer-wise agreement: each sampled quantized linear against float32 on probe activations. */
export async function layerwiseAgreement(
  reader: WeightReader, cfg: Owl2Config, plan: QuantizationPlan, dir: string, signal?: AbortSignal, decoder: DecoderVariant = 'cpu',
): Promise<VerificationAgreement> {
  await mkdir(dir, { recursive: true });
  const layers: NonNullable<VerificationAgreement['layers']> = [];
  const rows = 8;
  let n = 0;
  for (const l of sampledLinears(cfg)) {
    const precision: Precision = plan[l.part];
    if (precision === 'fp32' || !reader.tensors.has(l.key)) continue;
    throwIfAborted(signal);
    const g = new GraphBuilder('layerwise');
    const x = g.input('x', DataType.FLOAT, [rows, l.in]);
    g.output(linearMatMul(g, reader, x, l.key, l.out, l.in, linearFormat('fp32'), 'w_ref'), 'y_ref', DataType.FLOAT, [rows, l.out]);
    const fmt = l.part === 'vision' ? linearFormat(precision) : decoderLinearFormat(precision, decoder);
    g.output(linearMatMul(g, reader, x, l.key, l.out, l.in, fmt, 'w_q'), 'y_q', DataType.FLOAT, [rows, l.out]);
    const path = join(dir, `l${n++}.onnx`);
    await writeOnnxModel(g, path, { extraOpsets: [{ domain: MS_DOMAIN, version: 1 }] });
    const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    try {
      const out = await s.run({ x: new ort.Tensor('float32', probeActivations(rows, l.in, n), [rows, l.in]) });
      const ref = out.y_ref.data as Float32Array;
      const q = out.y_q.data as Float32Array;
      let num = 0;
      let den = 0;
      for (let i = 0; i < ref.length; i++) {
        num += (q[i] - ref[i]) ** 2;
        den += ref[i] ** 2;
      }
      layers.push({ tensor: l.key, precision: precision as Quantization, cosine: cosine(q, ref), relError: Math.sqrt(num / (den || 1)) });
    } finally {
      await s.release();
      await rm(path, { force: true });
      await rm(`${path}.data`, { force: true });
    }
  }
  return { method: 'layer-wise', layers };
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
