/**
 * Package verification run by the engine's own runtime (docs/engine-contract.md, "Verification";
 * what is checked and reported is defined in models/verify.ts). The converter gets
 * {@link verifyPackage} injected: models/ never loads onnxruntime.
 *
 * The probe runs through {@link Owl2Model} exactly as a chat does (image embeddings, merged
 * prefill, greedy steps against the KV cache), on the CPU provider.
 */
import { mkdir, rm } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OwleryError } from '../../src-shared/errors.ts';
import { MS_DOMAIN } from '../../models/onnx/weights.ts';
import type { WeightReader } from '../../models/onnx/weights.ts';
import { throwIfAborted, writeOnnxModel } from '../../models/onnx/writer.ts';
import type { Owl2Config } from '../../models/owl2/config.ts';
import type { VerificationAgreement, VerificationReport } from '../../models/package/manifest.ts';
import type { DecoderVariant, QuantizationPlan } from '../../models/quant/plan.ts';
import { PROBE_IMAGE, PROBE_PROMPT, cosine, isQuantized, layerwiseProbes, probeIds, probePixels } from '../../models/verify.ts';
import type { GraphPaths, PackageVerifier, VerifyOptions, VerifyTarget } from '../../models/verify.ts';
import { argmax } from './generation/sampler.ts';
import { Owl2Model } from './mplug-owl2/modeling.ts';
import type { KvCache } from './mplug-owl2/modeling.ts';

/** Greedy probe run over one set of graphs, step by step. */
class ProbeRunner {
  private cache: KvCache | undefined;

  private constructor(private readonly model: Owl2Model) {}

  static async open(paths: GraphPaths, cfg: Owl2Config, threads?: number): Promise<ProbeRunner> {
    const so: ort.InferenceSession.SessionOptions = { executionProviders: ['cpu'], ...(threads ? { intraOpNumThreads: threads } : {}) };
    return new ProbeRunner(await probing(() => Owl2Model.open(paths, cfg, so)));
  }

  release(): Promise<void> {
    return this.model.release();
  }

  imageEmbeds(pixels: Float32Array): Promise<Float32Array> {
    return probing(() => this.model.embedPixels(pixels));
  }

  /** Prefill of the prompt with the image spliced in; returns the next-token logits. */
  async prefill(ids: readonly number[], image: Float32Array): Promise<Float32Array> {
    const inputs = await this.model.buildInputs(ids, [image]);
    this.cache ??= this.model.emptyCache();
    this.cache.truncate(0);
    return probing(() => this.model.decode(inputs.embeds, inputs.modality, this.cache!));
  }

  /** Feeds one text token; returns the next-token logits. */
  step(token: number): Promise<Float32Array> {
    return probing(() => this.model.step(token, this.cache!));
  }
}

/** Runs a step of the probe; a package that fails it is reported as failing verification. */
async function probing<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof OwleryError && err.code === 'PACKAGE_INVALID') throw new OwleryError('PACKAGE_INVALID', `verification: ${err.message}`, err.details);
    throw err;
  }
}

function allFinite(a: Float32Array, what: string): void {
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) throw new OwleryError('PACKAGE_INVALID', `verification: ${what} has a non-finite value at index ${i}`);
  }
}

/**
 * Loads the graphs, runs the probe and, for quantized packages, measures agreement with float32.
 * Throws `PACKAGE_INVALID` when the package cannot run the probe.
 */
export const verifyPackage: PackageVerifier = async (target: VerifyTarget, opts: VerifyOptions = {}): Promise<VerificationReport> => {
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
};

/** Layer-wise agreement: each sampled quantized linear against float32 on probe activations. */
export async function layerwiseAgreement(
  reader: WeightReader, cfg: Owl2Config, plan: QuantizationPlan, dir: string, signal?: AbortSignal, decoder: DecoderVariant = 'cpu',
): Promise<VerificationAgreement> {
  await mkdir(dir, { recursive: true });
  const layers: NonNullable<VerificationAgreement['layers']> = [];
  for (const [n, probe] of layerwiseProbes(reader, cfg, plan, decoder).entries()) {
    throwIfAborted(signal);
    const path = join(dir, `l${n}.onnx`);
    await writeOnnxModel(probe.graph(), path, { extraOpsets: [{ domain: MS_DOMAIN, version: 1 }] });
    const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'] });
    try {
      const out = await s.run({ x: new ort.Tensor('float32', probe.input(), [probe.rows, probe.cols]) });
      const ref = out.y_ref.data as Float32Array;
      const q = out.y_q.data as Float32Array;
      let num = 0;
      let den = 0;
      for (let i = 0; i < ref.length; i++) {
        num += (q[i] - ref[i]) ** 2;
        den += ref[i] ** 2;
      }
      layers.push({ tensor: probe.tensor, precision: probe.precision, cosine: cosine(q, ref), relError: Math.sqrt(num / (den || 1)) });
    } finally {
      await s.release();
      await rm(path, { force: true });
      await rm(`${path}.data`, { force: true });
    }
  }
  return { method: 'layer-wise', layers };
}
