/**
 * The mPLUG-Owl2 inference pipeline on onnxruntime-node: photo → pixel values → image embeddings,
 * prompt → token ids with image placeholders → merged embeddings with modality indicators →
 * decoder with a KV cache → sampled tokens, streamed.
 *
 * This class runs wherever it is created; the app and the CLI create it inside the engine worker
 * (`engine-worker.ts`) because onnxruntime-node's `run` blocks the calling thread.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OwleryError } from '../../src-shared/errors.ts';
import type {
  AspectMode,
  ExecutionProviderName,
  FinishReason,
  GenerationEvent,
  GenerationStats,
  ProviderReport,
  SamplingOptions,
} from '../../src-shared/engine.ts';
import type { Owl2Config } from '../../models/owl2/config.ts';
import type { PackageManifest } from '../../models/package/manifest.ts';
import { readPackage } from '../../models/package/read.ts';
import { DECODER_IO, DecoderKvCache } from '../../models/owl2/decoder-graph.ts';
import { runDecoderStep } from '../../models/owl2/decoder-feeds.ts';
import { createDecoderSession } from './prepacked-cache.ts';
import type { DecoderSource } from './prepacked-cache.ts';
import { LlamaTokenizer, IMAGE_TOKEN_INDEX } from './tokenizer/llama-tokenizer.ts';
import { decodeImage } from './image/decode.ts';
import { parsePreprocessorConfig, preprocessImage, type PreprocessorConfig } from './image/preprocess.ts';
import { Sampler, resolveSampling } from './generation/sampler.ts';
import { StopStringStream } from './generation/text-stream.ts';
import { createWithFallback } from './providers.ts';
import { GpuDecoder, GpuKvCache, keptPrefix } from './gpu/gpu-decoder.ts';
import { PromptLookup } from './generation/prompt-lookup.ts';
import { describeAdapter, likelyWebGpuAdapter } from './gpu/adapter.ts';
import { memoryKey, recallProvider, rememberProvider } from './gpu/provider-memory.ts';

/** An image given to the engine: a file path or the file's bytes. */
export type ImageInput = string | Uint8Array;

/** Options for loading a package. */
export interface EngineLoadOptions {
  provider?: ExecutionProviderName;
  /** Intra-op threads; default: onnxruntime's choice. */
  threads?: number;
  /** Check every package file's sha256 (default true; a stamp skips unchanged files). */
  verify?: boolean;
  /**
   * Folder for the on-disk image-embedding cache (per package, keyed by the photo's sha256 and
   * the aspect mode). Without it, embeddings are cached in memory only.
   */
  cacheDir?: string;
  /** Reuse the KV cache of the previous request's common prefix (default true). */
  prefixReuse?: boolean;
  /**
   * Longest run of positions per decoder call (default {@link DEFAULT_PREFILL_CHUNK}); a longer
   * prompt is prefilled in chunks. Each call's new K/V come back as fresh buffers (onnxruntime-node
   * copies every output), so the chunk bounds that transient memory.
   */
  prefillChunk?: number;
  /**
   * Folder of the opt-in faster-start cache (src-main/engine/prepacked-cache.ts): on the CPU
   * provider the decoder loads from its saved packed form, built on the first load. Unset: off.
   */
  prepackedCacheDir?: string;
  /**
   * JSON file where `auto` remembers, per package and adapter, the provider that ran the model or
   * the GPU provider that failed (gpu/provider-memory.ts). Unset: nothing is remembered.
   */
  providerMemoryFile?: string;
  /**
   * Prompt-lookup decoding with the GPU decoder (generation/prompt-lookup.ts): draft tokens per
   * decoder call, 0 to turn it off. Default {@link DEFAULT_LOOKAHEAD} on WebGPU, where a call over
   * a few positions costs about what one does; off elsewhere.
   */
  lookahead?: number;
}

/** Draft tokens per call of prompt-lookup decoding on WebGPU (see {@link EngineLoadOptions.lookahead}). */
export const DEFAULT_LOOKAHEAD = 6;

/**
 * Positions per decoder call when prefilling. On the 7B `cpu` package (2 threads) a 600-token
 * prompt prefills as fast in chunks of 256 as in one call (24.7 vs 24.5 tok/s), while the peak
 * RSS of two prefills drops from 8.6 to 7.6 GB (chunks of 128: 7.0 GB, 22.8 tok/s); see
 * docs/performance.md.
 */
export const DEFAULT_PREFILL_CHUNK = 256;

/** One request: a prompt already rendered with the template, and its images in marker order. */
export interface GenerateRequest {
  prompt: string;
  images?: ImageInput[];
  sampling?: SamplingOptions;
  aspect?: AspectMode;
  /** Keep the raw logits each generated token was chosen from (float32 [steps, vocab]). */
  collectLogits?: boolean;
}

/** Lets the caller stop a generation between two decode steps. */
export interface CancelSignal {
  readonly cancelled: boolean;
}

/** The final result of a request. */
export type GenerateResult = Extract<GenerationEvent, { type: 'done' }> & { promptIds: number[]; stepLogits?: Float32Array };

interface Sessions {
  vision: ort.InferenceSession;
  embed: ort.InferenceSession;
  /** The CPU decoder graph (decoder-graph.ts), or… */
  decoder?: ort.InferenceSession;
  /** …the GPU one (decoder-graph-gpu.ts, `graphs.decoder.variant: "gpu"`), with its KV cache on the device. */
  gpu?: GpuDecoder;
}

const now = (): number => performance.now();

// onnxruntime logs provider failures to stderr itself; they are reported through ProviderReport
// instead. OWLERY_ORT_LOG=verbose|info|warning|error brings its log back for debugging.
ort.env.logLevel = (process.env.OWLERY_ORT_LOG as typeof ort.env.logLevel) ?? 'fatal';

/** The loaded model: sessions, tokenizer, preprocessing settings. */
export class Owl2Engine {
  private readonly imageCache = new Map<string, Float32Array>();
  private static readonly IMAGE_CACHE_ENTRIES = 32;
  /** The token keys and KV cache of the last request, for prefix reuse. */
  private lastSequence: { keys: string[]; cache: KvCache } | undefined;
  /** See {@link diskEmbedsDir}. */
  private embedsDir: string | undefined;

  private constructor(
    readonly dir: string,
    readonly manifest: PackageManifest,
    readonly config: Owl2Config,
    readonly tokenizer: LlamaTokenizer,
    readonly preprocessor: PreprocessorConfig,
    readonly providerReport: ProviderReport,
    private readonly sessions: Sessions,
    private readonly options: EngineLoadOptions,
    /** Where the decoder session came from (the package, or the faster-start cache and why not). */
    readonly decoderSource: DecoderSource,
  ) {}

  /** Loads a model package: validates it, creates the sessions with the chosen provider. */
  static async load(dir: string, opts: EngineLoadOptions = {}): Promise<Owl2Engine> {
    const requested = opts.provider ?? 'auto';
    // Asking the OS about the GPU (a PowerShell query on Windows) overlaps with reading the package.
    const adapterInfo = requested === 'cpu' ? Promise.resolve(undefined) : likelyWebGpuAdapter();
    const pkg = await readPackage(dir, { verify: opts.verify ?? true });
    const manifest = pkg.manifest;
    const tokenizer = await LlamaTokenizer.fromDir(dir);
    const preprocessor = parsePreprocessorConfig(JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')));
    let decoderSource: DecoderSource = { from: 'package' };
    const adapter = await adapterInfo;
    const memoryFile = requested === 'auto' ? opts.providerMemoryFile : undefined;
    const key = memoryKey(manifest.id, adapter);
    const memory = memoryFile ? await recallProvider(memoryFile, key) : undefined;
    const { value: sessions, report } = await createWithFallback(requested, opts.threads, async (so) => {
      const open = (file: string) => ort.InferenceSession.create(file, so);
      const [vision, embed] = [await open(pkg.graphPaths.vision), await open(pkg.graphPaths.embed)];
      if (manifest.graphs.decoder.variant === 'gpu') return { vision, embed, gpu: await GpuDecoder.create(pkg.graphPaths.decoder, so, manifest.config.llm) };
      if (!opts.prepackedCacheDir || so.executionProviders?.[0] !== 'cpu') return { vision, embed, decoder: await open(pkg.graphPaths.decoder) };
      const { session: decoder, source } = await createDecoderSession(manifest, pkg.graphPaths.decoder, opts.prepackedCacheDir, so);
      decoderSource = source;
      return { vision, embed, decoder };
    }, { adapter, memory });
    // A remembered failure stays until the user picks that provider explicitly.
    if (memoryFile && memory?.ok !== false) await rememberProvider(memoryFile, key, { provider: report.used, ok: true });
    return new Owl2Engine(dir, manifest, manifest.config, tokenizer, preprocessor, report, sessions, opts, decoderSource);
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    if (this.lastSequence?.cache instanceof GpuKvCache) this.lastSequence.cache.release();
    this.lastSequence = undefined;
    await Promise.all([this.sessions.vision.release(), this.sessions.embed.release(), this.sessions.decoder?.release(), this.sessions.gpu?.release()]);
  }

  /** Decodes and preprocesses one photo into float32 pixel values [3, S, S]. */
  async preprocess(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    return this.pixelsOf(await readImageBytes(image), image, aspect);
  }

  private async pixelsOf(bytes: Uint8Array, image: ImageInput, aspect: AspectMode): Promise<Float32Array> {
    return preprocessImage(await decodeImage(bytes, { name: imageName(image) }), this.preprocessor, aspect);
  }

  /** Runs the vision graph on pixel values [3, S, S]; returns image embeddings [Q+1, H]. */
  async embedPixels(pixels: Float32Array): Promise<Float32Array> {
    const s = this.config.vision.imageSize;
    const out = await this.sessions.vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, s, s]) }, ['image_embeds']);
    return out.image_embeds.data as Float32Array;
  }

  /**
   * Embeddings of one photo, from the cache when the same bytes were seen with the same
   * preprocessing mode (in memory, then on disk when a cache folder is set). Returns whether the
   * cache answered, and the cache key (sha256 of the bytes and the mode).
   */
  async embedImage(image: ImageInput, aspect: AspectMode = 'resize', timing?: { decodeMs: number; encodeMs: number }): Promise<{ embeds: Float32Array; cached: boolean; key: string }> {
    const bytes = await readImageBytes(image);
    const key = `${createHash('sha256').update(bytes).digest('hex')}-${aspect}`;
    const hit = this.imageCache.get(key) ?? (await this.readDiskEmbeds(key));
    if (hit) {
      this.rememberEmbeds(key, hit);
      return { embeds: hit, cached: true, key };
    }
    const t0 = now();
    const pixels = await this.pixelsOf(bytes, image, aspect);
    const t1 = now();
    const embeds = await this.embedPixels(pixels);
    const t2 = now();
    if (timing) {
      timing.decodeMs += t1 - t0;
      timing.encodeMs += t2 - t1;
    }
    this.rememberEmbeds(key, embeds);
    await this.writeDiskEmbeds(key, embeds);
    return { embeds, cached: false, key };
  }

  private rememberEmbeds(key: string, embeds: Float32Array): void {
    this.imageCache.delete(key);
    this.imageCache.set(key, embeds);
    if (this.imageCache.size > Owl2Engine.IMAGE_CACHE_ENTRIES) this.imageCache.delete(this.imageCache.keys().next().value!);
  }

  /**
   * The on-disk cache folder of this package's vision weights, or undefined without a cache folder.
   * Embeddings depend on the exact vision weights (a quantized package of the same checkpoint
   * gives other numbers), so the folder is named after the vision graph files' checksums.
   */
  private get diskEmbedsDir(): string | undefined {
    if (!this.options.cacheDir) return undefined;
    if (this.embedsDir === undefined) {
      const vision = this.manifest.graphs.vision;
      const sums = this.manifest.files.filter((f) => f.path === vision.file || f.path === vision.data).map((f) => f.sha256);
      const identity = createHash('sha256').update(`${this.manifest.id}\n${sums.join('\n')}`).digest('hex').slice(0, 32);
      this.embedsDir = join(this.options.cacheDir, identity);
    }
    return this.embedsDir;
  }

  private diskEmbedsPath(key: string): string | undefined {
    const dir = this.diskEmbedsDir;
    return dir && join(dir, `${key}.f32`);
  }

  /** The on-disk cache is best effort: a missing, short or unreadable file is a miss. */
  private async readDiskEmbeds(key: string): Promise<Float32Array | undefined> {
    const file = this.diskEmbedsPath(key);
    if (!file) return undefined;
    const expected = this.config.imageTokens * this.config.llm.hiddenSize * 4;
    try {
      const buf = await readFile(file);
      if (buf.byteLength !== expected) return undefined;
      return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
    } catch {
      return undefined;
    }
  }

  private async writeDiskEmbeds(key: string, embeds: Float32Array): Promise<void> {
    const file = this.diskEmbedsPath(key);
    if (!file) return;
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      await mkdir(dirname(file), { recursive: true });
      await writeFile(tmp, new Uint8Array(embeds.buffer, embeds.byteOffset, embeds.byteLength));
      await rename(tmp, file);
    } catch {
      // A full or read-only disk only costs a future re-encode.
      await rm(tmp, { force: true }).catch(() => {});
    }
  }

  /** Token embeddings for ids [T] → [T, H]. */
  async embedTokens(ids: readonly number[]): Promise<Float32Array> {
    const t = new ort.Tensor('int64', BigInt64Array.from(ids, (i) => BigInt(i)), [1, ids.length]);
    const out = await this.sessions.embed.run({ input_ids: t }, ['inputs_embeds']);
    return out.inputs_embeds.data as Float32Array;
  }

  /**
   * Builds the decoder input for a prompt: text embeddings with each image placeholder (-200)
   * replaced by that image's Q+1 embedding rows, and the per-token modality (1 for image rows).
   */
  async buildInputs(promptIds: readonly number[], imageEmbeds: readonly Float32Array[]): Promise<{ embeds: Float32Array; modality: BigInt64Array; length: number }> {
    const H = this.config.llm.hiddenSize;
    const rows = this.config.imageTokens;
    const textIds = promptIds.filter((id) => id !== IMAGE_TOKEN_INDEX);
    const placeholders = promptIds.length - textIds.length;
    if (placeholders !== imageEmbeds.length) {
      throw new OwleryError('INVALID_ARGUMENT', `the prompt has ${placeholders} image marker(s) but ${imageEmbeds.length} image(s) were given`);
    }
    const textEmbeds = textIds.length ? await this.embedTokens(textIds) : new Float32Array(0);
    const length = textIds.length + placeholders * rows;
    const embeds = new Float32Array(length * H);
    const modality = new BigInt64Array(length);
    let pos = 0;
    let textRow = 0;
    let image = 0;
    for (const id of promptIds) {
      if (id === IMAGE_TOKEN_INDEX) {
        embeds.set(imageEmbeds[image++], pos * H);
        modality.fill(1n, pos, pos + rows);
        pos += rows;
      } else {
        embeds.set(textEmbeds.subarray(textRow * H, (textRow + 1) * H), pos * H);
        textRow++;
        pos++;
      }
    }
    return { embeds, modality, length };
  }

  /**
   * Runs the decoder over `modality.length` new positions after the cache's valid ones, in
   * chunks of at most `prefillChunk` positions. The cache's valid rows go in as zero-copy inputs;
   * only the new positions' K/V come back, and are written into the cache (it grows when full).
   * Returns the last position's logits and the same cache.
   */
  async decode(embeds: Float32Array, modality: BigInt64Array, cache: KvCache): Promise<{ logits: Float32Array; cache: KvCache }> {
    const chunk = Math.max(1, this.options.prefillChunk ?? DEFAULT_PREFILL_CHUNK);
    if (this.sessions.gpu) {
      if (!(cache instanceof GpuKvCache)) throw new OwleryError('INTERNAL', 'the GPU decoder needs the cache from emptyCache()');
      return { logits: await this.sessions.gpu.decode(embeds, modality, cache, chunk), cache };
    }
    const H = this.config.llm.hiddenSize;
    let logits: Float32Array | undefined;
    for (let s = 0; s < modality.length || logits === undefined; s += chunk) {
      const e = Math.min(modality.length, s + chunk);
      logits = await this.decodeOnce(embeds.subarray(s * H, e * H), modality.subarray(s, e), cache);
    }
    return { logits, cache };
  }

  /** One decoder run (see {@link decode}); returns the last position's logits. */
  private async decodeOnce(embeds: Float32Array, modality: BigInt64Array, cache: KvCache): Promise<Float32Array> {
    if (!this.sessions.decoder || cache instanceof GpuKvCache) throw new OwleryError('INTERNAL', 'the CPU decoder needs the cache from emptyCache()');
    const out = await runDecoderStep(this.sessions.decoder, cache, embeds, modality, this.config.llm.hiddenSize);
    return out[DECODER_IO.logits].data as Float32Array;
  }

  /** One key per position of the merged sequence: `t<id>` for text, `i<image key>#<row>` for image rows. */
  private sequenceKeys(promptIds: readonly number[], imageKeys: readonly string[]): string[] {
    const keys: string[] = [];
    let image = 0;
    for (const id of promptIds) {
      if (id === IMAGE_TOKEN_INDEX) {
        const k = imageKeys[image++];
        for (let r = 0; r < this.config.imageTokens; r++) keys.push(`i${k}#${r}`);
      } else keys.push(`t${id}`);
    }
    return keys;
  }

  /** The KV cache kept from the last request for prefix reuse (undefined before the first); for status and tests. */
  get keptCache(): KvCache | undefined {
    return this.lastSequence?.cache;
  }

  /** Prompt-lookup decoding over `cache` for one answer, when it is on (GPU decoder; see {@link EngineLoadOptions.lookahead}). */
  private promptLookup(cache: KvCache): PromptLookup | undefined {
    const gpu = this.sessions.gpu;
    const drafts = this.options.lookahead ?? (gpu?.kvLocation === 'gpu-buffer' ? DEFAULT_LOOKAHEAD : 0);
    if (!gpu || !(cache instanceof GpuKvCache) || drafts <= 0) return undefined;
    const limit = this.config.llm.maxPositions;
    return new PromptLookup({
      run: async (ids) => gpu.decode(await this.embedTokens(ids), new BigInt64Array(ids.length), cache, Number.POSITIVE_INFINITY, ids.length),
      length: () => cache.length,
      truncate: (n) => cache.truncate(n),
      maxPositions: () => Math.min(gpu.maxPositionsPerCall, limit - cache.length),
    }, this.config.llm.vocabSize, drafts);
  }

  /** An empty KV cache for this model. */
  emptyCache(): KvCache {
    if (this.sessions.gpu) return this.sessions.gpu.emptyCache();
    const { numLayers, numKvHeads, headDim, maxPositions } = this.config.llm;
    // 2048 positions at once (a photo question and many turns): the buffers stay the system's zero
    // pages until a row is written (32 MB each on the 7B, so glibc maps them fresh instead of
    // clearing heap memory), so this costs address space, not memory, and a prefill does not grow
    // the cache step by step (each growth copied the valid rows and left the old buffers as
    // garbage: ~0.5 GB more peak RSS on the 7B). Longer conversations double it. Not the whole
    // window at once: on Windows that much address space counts as committed memory.
    return new DecoderKvCache(numLayers, numKvHeads, headDim, { initialCapacity: Math.min(maxPositions, 2048), maxCapacity: maxPositions });
  }

  /**
   * Generates an answer for a rendered prompt, streaming events as it goes.
   *
   * Stops at `</s>` (id or spelled out), at `maxNewTokens`, at the end of the context window, or
   * between two steps when `cancel.cancelled` becomes true (finish `cancelled`, partial text kept).
   */
  async generate(req: GenerateRequest, onEvent: (e: GenerationEvent) => void = () => {}, cancel: CancelSignal = { cancelled: false }): Promise<GenerateResult> {
    const tStart = now();
    const sampling = resolveSampling(req.sampling);
    const images = req.images ?? [];
    const promptIds = this.tokenizer.tokenizeWithImages(req.prompt);
    const markers = promptIds.filter((id) => id === IMAGE_TOKEN_INDEX).length;
    if (markers !== images.length) {
      throw new OwleryError('INVALID_ARGUMENT', `the prompt has ${markers} <|image|> marker(s) but ${images.length} image(s) were given`);
    }
    const limit = this.config.llm.maxPositions;
    const promptLength = promptIds.length - markers + markers * this.config.imageTokens;
    if (promptLength >= limit) {
      throw new OwleryError('CONTEXT_OVERFLOW',
        `the conversation is ${promptLength} tokens long, but the model's context window is ${limit} tokens: start a new conversation or shorten the message`,
        { promptTokens: promptLength, contextLimit: limit });
    }
    const timing = { decodeMs: 0, encodeMs: 0 };
    let fromCache = 0;
    const imageEmbeds: Float32Array[] = [];
    const imageKeys: string[] = [];
    if (images.length) onEvent({ type: 'phase', phase: 'decode-image' });
    for (const img of images) {
      const r = await this.embedImage(img, req.aspect ?? 'resize', timing);
      if (r.cached) fromCache++;
      imageEmbeds.push(r.embeds);
      imageKeys.push(r.key);
    }
    if (cancel.cancelled) return this.finish('cancelled', promptIds, [], '', tStart, { promptLength, images: images.length, fromCache, timing, prefillMs: 0, firstTokenAt: 0, reused: 0 }, onEvent);

    onEvent({ type: 'phase', phase: 'prefill' });
    const tPrefill = now();
    const keys = this.sequenceKeys(promptIds, imageKeys);
    // Reuse the previous request's KV cache for the common prefix (a follow-up question, or a
    // regenerated answer); at least the last prompt token is always run to get its logits.
    const previous = this.lastSequence;
    this.lastSequence = undefined;
    let reused = previous && this.options.prefixReuse !== false ? Math.min(commonPrefix(previous.keys, keys), promptLength - 1) : 0;
    // On the GPU, a short common prefix is recomputed rather than kept with the old conversation's rows.
    if (previous?.cache instanceof GpuKvCache) reused = keptPrefix(previous.cache, reused);
    const inputs = await this.buildInputs(promptIds, imageEmbeds);
    const H = this.config.llm.hiddenSize;
    // The previous cache's buffers are kept either way: a reused prefix is only a shorter valid length.
    const past = previous?.cache ?? this.emptyCache();
    past.truncate(reused);
    let { logits, cache } = await this.decode(inputs.embeds.subarray(reused * H), inputs.modality.subarray(reused), past);
    const prefillMs = now() - tPrefill;

    onEvent({ type: 'phase', phase: 'generate' });
    const sampler = new Sampler(sampling);
    const history = promptIds.filter((id) => id >= 0);
    const outputIds: number[] = [];
    const decoder = this.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    const stream = new StopStringStream('</s>');
    const maxNew = Math.min(sampling.maxNewTokens, limit - promptLength);
    let finish: FinishReason = 'length';
    let firstTokenAt = 0;
    const textEmbed = new BigInt64Array(1);
    const stepLogits: Float32Array[] = [];
    const lookahead = this.promptLookup(cache);
    for (;;) {
      if (cancel.cancelled) {
        finish = 'cancelled';
        break;
      }
      if (req.collectLogits) stepLogits.push(logits.slice());
      const id = sampler.next(logits, history);
      if (!firstTokenAt) firstTokenAt = now();
      if (id === this.tokenizer.eosId) {
        finish = 'eos';
        break;
      }
      outputIds.push(id);
      history.push(id);
      const piece = stream.push(decoder.push(id));
      onEvent({ type: 'tokens', ids: [id], text: piece.text });
      if (piece.stopped) {
        finish = 'eos';
        break;
      }
      if (outputIds.length >= maxNew) break;
      if (cancel.cancelled) {
        finish = 'cancelled';
        break;
      }
      if (lookahead) logits = await lookahead.next(id, history);
      else ({ logits, cache } = await this.decode(await this.embedTokens([id]), textEmbed, cache));
      keys.push(`t${id}`);
    }
    this.lastSequence = { keys, cache };
    const tail = stream.push(decoder.flush());
    const rest = tail.text + (tail.stopped ? '' : stream.flush());
    if (rest) onEvent({ type: 'tokens', ids: [], text: rest });
    const result = this.finish(finish, promptIds, outputIds, stream.fullText, tStart,
      { promptLength, images: images.length, fromCache, timing, prefillMs, firstTokenAt, reused, speculation: lookahead?.stats }, onEvent);
    return req.collectLogits ? { ...result, stepLogits: concatFloat32(stepLogits) } : result;
  }

  private finish(
    finish: FinishReason,
    promptIds: number[],
    outputIds: number[],
    text: string,
    tStart: number,
    m: { promptLength: number; images: number; fromCache: number; timing: { decodeMs: number; encodeMs: number }; prefillMs: number; firstTokenAt: number; reused: number; speculation?: GenerationStats['speculation'] },
    onEvent: (e: GenerationEvent) => void,
  ): GenerateResult {
    const end = now();
    const decodeSteps = Math.max(outputIds.length - 1, 0);
    const decodeMs = m.firstTokenAt ? end - m.firstTokenAt : 0;
    const stats: GenerationStats = {
      provider: this.providerReport.used,
      ...(this.providerReport.adapter ? { adapter: describeAdapter(this.providerReport.adapter) } : {}),
      ...(this.providerReport.notes?.length ? { providerNote: this.providerReport.notes.join('; ') } : {}),
      promptTokens: m.promptLength,
      outputTokens: outputIds.length,
      contextLimit: this.config.llm.maxPositions,
      imageCount: m.images,
      imagesFromCache: m.fromCache,
      imageDecodeMs: round(m.timing.decodeMs),
      imageEncodeMs: round(m.timing.encodeMs),
      prefillMs: round(m.prefillMs),
      prefillTokensPerSecond: m.prefillMs > 0 ? round(((m.promptLength - m.reused) * 1000) / m.prefillMs) : 0,
      timeToFirstTokenMs: m.firstTokenAt ? round(m.firstTokenAt - tStart) : 0,
      decodeTokensPerSecond: decodeSteps > 0 && decodeMs > 0 ? round((decodeSteps * 1000) / decodeMs) : 0,
      totalMs: round(end - tStart),
      reusedPromptTokens: m.reused,
      ...(m.speculation ? { speculation: { ...m.speculation } } : {}),
    };
    const done = { type: 'done' as const, finish, outputIds, text, stats };
    onEvent(done);
    return { ...done, promptIds };
  }
}

/**
 * The engine's KV cache: for the CPU decoder, per layer position-major keys and values with spare
 * capacity (models/owl2/decoder-graph.ts); for the GPU decoder, the last presents, kept on the
 * device (gpu/gpu-decoder.ts).
 */
export type KvCache = DecoderKvCache | GpuKvCache;

function commonPrefix(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function concatFloat32(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

function imageName(image: ImageInput): string {
  return typeof image === 'string' ? image : 'image';
}

async function readImageBytes(image: ImageInput): Promise<Uint8Array> {
  if (typeof image !== 'string') return image;
  try {
    return await readFile(image);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new OwleryError('FILE_NOT_FOUND', `image not found: ${image}`);
    if (code === 'EISDIR') throw new OwleryError('IMAGE_UNREADABLE', `${image} is a folder, not an image`);
    throw new OwleryError('IMAGE_UNREADABLE', `cannot read ${image}: ${(err as Error).message}`);
  }
}
