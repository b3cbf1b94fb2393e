/**
 * The mPLUG-Owl2 inference pipeline, assembled: a loaded package (sessions, tokenizer,
 * preprocessing settings) and `generate`: request → prompt ids fitted to the context window
 * (processing.ts) → photos → image embeddings, cached (image-embeddings.ts) → merged embeddings
 * with modality indicators → decoder with a KV cache, reusing the previous request's common prefix
 * (modeling.ts) → sampled tokens, streamed (generation/).
 *
 * This class runs wherever it is created; the app and the CLI create it inside the engine process
 * (`engine-worker.ts`) because onnxruntime-node's `run` blocks the calling thread.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { AspectMode, GenerationEvent, LoadEvent, ProviderReport } from '../../../src-shared/engine.ts';
import type { Owl2Config } from '../../../models/owl2/config.ts';
import type { PackageManifest } from '../../../models/package/manifest.ts';
import { readPackage } from '../../../models/package/read.ts';
import { generateTokens, generationStats } from '../generation/generate.ts';
import { resolveSampling } from '../generation/sampler.ts';
import { TextStreamer } from '../generation/streamer.ts';
import { createDecoderSession } from '../prepacked-cache.ts';
import type { DecoderSource } from '../prepacked-cache.ts';
import type { CancelSignal, EngineLoadOptions, GenerateRequest, GenerateResult, ImageInput } from '../protocol.ts';
import { PromptLookup } from '../generation/prompt-lookup.ts';
import { describeAdapter, likelyWebGpuAdapter } from '../gpu/adapter.ts';
import { GpuDecoder, GpuKvCache, keptPrefix } from '../gpu/gpu-decoder.ts';
import { memoryKey, recallProvider, rememberProvider } from '../gpu/provider-memory.ts';
import { createWithFallback } from '../providers.ts';
import { IMAGE_TOKEN_INDEX, LlamaTokenizer } from '../tokenizer/llama-tokenizer.ts';
import { ImageEmbedder } from './image-embeddings.ts';
import { parsePreprocessorConfig } from './image-processing.ts';
import type { PreprocessorConfig } from './image-processing.ts';
import { DEFAULT_PREFILL_CHUNK, Owl2Model } from './modeling.ts';
import type { KvCache, Owl2Sessions } from './modeling.ts';
import { Owl2Processor } from './processing.ts';
import type { EncodedPrompt } from './processing.ts';

/** Draft tokens per call of prompt-lookup decoding on WebGPU (see `EngineLoadOptions.lookahead`). */
export const DEFAULT_LOOKAHEAD = 6;

// onnxruntime logs provider failures to stderr itself; they are reported through ProviderReport
// instead. OWLERY_ORT_LOG=verbose|info|warning|error brings its log back for debugging.
ort.env.logLevel = (process.env.OWLERY_ORT_LOG as typeof ort.env.logLevel) ?? 'fatal';

/** The loaded model: sessions, tokenizer, preprocessing settings. */
export class Owl2Engine {
  /** The token keys and KV cache of the last request, for prefix reuse. */
  private lastSequence: { keys: string[]; cache: KvCache } | undefined;
  readonly processor: Owl2Processor;
  private readonly images: ImageEmbedder;

  private constructor(
    readonly dir: string,
    readonly manifest: PackageManifest,
    readonly tokenizer: LlamaTokenizer,
    readonly preprocessor: PreprocessorConfig,
    readonly providerReport: ProviderReport,
    readonly model: Owl2Model,
    private readonly options: EngineLoadOptions,
    /** Where the decoder session came from (the package, or the faster-start cache and why not). */
    readonly decoderSource: DecoderSource,
  ) {
    this.processor = new Owl2Processor(tokenizer, this.config.imageTokens, this.config.llm.maxPositions);
    this.images = new ImageEmbedder(model, preprocessor, manifest, options.cacheDir);
  }

  get config(): Owl2Config {
    return this.manifest.config;
  }

  /**
   * Loads a model package: validates it, creates the sessions with the chosen provider. Reports
   * `checking-files` (bytes hashed, when a file needs it) and `opening-graphs` (bytes of the graphs
   * opened so far: the decoder is most of it) as it goes, at most every {@link LOAD_EVENT_MS}.
   */
  static async load(dir: string, opts: EngineLoadOptions = {}, onEvent: (e: LoadEvent) => void = () => {}): Promise<Owl2Engine> {
    const requested = opts.provider ?? 'auto';
    // Asking the OS about the GPU (a PowerShell query on Windows) overlaps with reading the package.
    const adapterInfo = requested === 'cpu' ? Promise.resolve(undefined) : likelyWebGpuAdapter();
    let hashTotal = 0;
    let hashed = 0;
    const checking = throttled((done: number) => onEvent({ type: 'phase', phase: 'checking-files', progress: { done, total: hashTotal } }));
    const pkg = await readPackage(dir, {
      verify: opts.verify ?? true,
      onHashStart: (total) => {
        hashTotal = total;
        checking(0, true);
      },
      onBytes: (n) => checking((hashed += n), hashed >= hashTotal),
    });
    const manifest = pkg.manifest;
    const sizeOf = (graph: 'vision' | 'embed' | 'decoder'): number =>
      manifest.files.filter((f) => f.path === manifest.graphs[graph].file || f.path === manifest.graphs[graph].data).reduce((n, f) => n + f.size, 0);
    const graphTotal = sizeOf('vision') + sizeOf('embed') + sizeOf('decoder');
    let opened = 0;
    const opening = (graph?: 'vision' | 'embed' | 'decoder'): void => {
      if (graph) opened += sizeOf(graph);
      onEvent({ type: 'phase', phase: 'opening-graphs', progress: { done: opened, total: graphTotal } });
    };
    const tokenizer = await LlamaTokenizer.fromDir(dir);
    const preprocessor = parsePreprocessorConfig(JSON.parse(await readFile(join(dir, 'preprocessor_config.json'), 'utf8')));
    let decoderSource: DecoderSource = { from: 'package' };
    const adapter = await adapterInfo;
    const memoryFile = requested === 'auto' ? opts.providerMemoryFile : undefined;
    const key = memoryKey(manifest.id, adapter);
    const memory = memoryFile ? await recallProvider(memoryFile, key) : undefined;
    const { value: sessions, report } = await createWithFallback(requested, opts.threads, async (so): Promise<Owl2Sessions> => {
      // Each provider tried starts over.
      opened = 0;
      opening();
      const open = async (graph: 'vision' | 'embed' | 'decoder') => {
        const session = await ort.InferenceSession.create(pkg.graphPaths[graph], so);
        opening(graph);
        return session;
      };
      const [vision, embed] = [await open('vision'), await open('embed')];
      if (manifest.graphs.decoder.variant === 'gpu') {
        const gpu = await GpuDecoder.create(pkg.graphPaths.decoder, so, manifest.config.llm);
        opening('decoder');
        return { vision, embed, gpu };
      }
      if (!opts.prepackedCacheDir || so.executionProviders?.[0] !== 'cpu') return { vision, embed, decoder: await open('decoder') };
      const { session: decoder, source } = await createDecoderSession(manifest, pkg.graphPaths.decoder, opts.prepackedCacheDir, so);
      opening('decoder');
      decoderSource = source;
      return { vision, embed, decoder };
    }, { adapter, memory });
    // A remembered failure stays until the user picks that provider explicitly.
    if (memoryFile && memory?.ok !== false) await rememberProvider(memoryFile, key, { provider: report.used, ok: true });
    const model = new Owl2Model(manifest.config, sessions, opts.prefillChunk ?? DEFAULT_PREFILL_CHUNK);
    return new Owl2Engine(dir, manifest, tokenizer, preprocessor, report, model, opts, decoderSource);
  }

  /** Releases every session. */
  async dispose(): Promise<void> {
    if (this.lastSequence?.cache instanceof GpuKvCache) this.lastSequence.cache.release();
    this.lastSequence = undefined;
    await this.model.release();
  }

  /** The KV cache kept from the last request for prefix reuse (undefined before the first); for status and tests. */
  get keptCache(): KvCache | undefined {
    return this.lastSequence?.cache;
  }

  /** Prompt-lookup decoding over `cache` for one answer, when it is on (GPU decoder; see `EngineLoadOptions.lookahead`). */
  private promptLookup(cache: KvCache): PromptLookup | undefined {
    const gpu = this.model.gpu;
    const drafts = this.options.lookahead ?? (gpu?.kvLocation === 'gpu-buffer' ? DEFAULT_LOOKAHEAD : 0);
    if (!gpu || !(cache instanceof GpuKvCache) || drafts <= 0) return undefined;
    const limit = this.config.llm.maxPositions;
    return new PromptLookup({
      run: async (ids) => gpu.decode(await this.model.embedTokens(ids), new BigInt64Array(ids.length), cache, Number.POSITIVE_INFINITY, ids.length),
      length: () => cache.length,
      truncate: (n) => cache.truncate(n),
      maxPositions: () => Math.min(gpu.maxPositionsPerCall, limit - cache.length),
    }, this.config.llm.vocabSize, drafts);
  }

  /** Decodes and preprocesses one photo into float32 pixel values [3, S, S]. */
  preprocess(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    return this.images.preprocess(image, aspect);
  }

  /** Image embeddings [Q+1, H] of one photo (cached like a request's photos). */
  async embedImage(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    return (await this.images.encode([image], aspect)).embeds[0];
  }

  /** The prompt of a request: fitted to the context window (`turns`) or as given (`prompt`). */
  private encodeRequest(req: GenerateRequest, room: number): EncodedPrompt {
    const images = req.images?.length ?? 0;
    if (req.turns) {
      const fitted = this.processor.fitChat(req.turns, room, { instructions: req.instructions, continueAnswer: req.continueAnswer });
      if (fitted.firstImage + fitted.imageCount !== images) {
        throw new OwleryError('INVALID_ARGUMENT', `the conversation's messages carry ${fitted.firstImage + fitted.imageCount} photo(s) but ${images} were given`);
      }
      return fitted;
    }
    return this.processor.encode(req.prompt, images);
  }

  /**
   * Generates an answer, streaming events as it goes.
   *
   * Stops at `</s>` (id or spelled out), at `maxNewTokens`, at the end of the context window, or
   * between two steps when `cancel.cancelled` becomes true (finish `cancelled`, partial text kept).
   */
  async generate(req: GenerateRequest, onEvent: (e: GenerationEvent) => void = () => {}, cancel: CancelSignal = { cancelled: false }): Promise<GenerateResult> {
    const start = performance.now();
    const sampling = resolveSampling(req.sampling);
    const limit = this.config.llm.maxPositions;
    const prompt = this.encodeRequest(req, Math.min(sampling.maxNewTokens, Math.floor(limit / 4)));
    const promptIds = prompt.ids;
    const promptLength = prompt.positions;
    if (promptLength >= limit) {
      throw new OwleryError('CONTEXT_OVERFLOW',
        `the conversation is ${promptLength} tokens long, but the model's context window is ${limit} tokens: start a new conversation or shorten the message`,
        { promptTokens: promptLength, contextLimit: limit });
    }
    const images = (req.images ?? []).slice(prompt.firstImage);
    const encoded = await this.images.encode(images, req.aspect ?? 'resize', onEvent, req.persistImageEmbeddings ?? true);
    const times = {
      provider: this.providerReport.used,
      adapter: this.providerReport.adapter ? describeAdapter(this.providerReport.adapter) : undefined,
      providerNote: this.providerReport.notes?.length ? this.providerReport.notes.join('; ') : undefined,
      speculation: undefined as PromptLookup['stats'] | undefined,
      contextLimit: limit, promptTokens: promptLength, reused: 0, images: images.length,
      imagesFromCache: encoded.fromCache, imageDecodeMs: encoded.timing.decodeMs, imageEncodeMs: encoded.timing.encodeMs,
      prefillMs: 0, start, firstTokenAt: 0, end: 0, outputTokens: 0,
    };
    const result = (finish: GenerateResult['finish'], outputIds: number[], text: string): GenerateResult => {
      const done = { type: 'done' as const, finish, outputIds, text, stats: generationStats({ ...times, outputTokens: outputIds.length, end: performance.now() }) };
      onEvent(done);
      return { ...done, promptIds, droppedPairs: prompt.droppedPairs };
    };
    if (cancel.cancelled) return result('cancelled', [], '');

    onEvent({ type: 'phase', phase: 'prefill' });
    const tPrefill = performance.now();
    const keys = this.sequenceKeys(promptIds, encoded.keys);
    // Reuse the previous request's KV cache for the common prefix (a follow-up question, or a
    // regenerated answer); at least the last prompt token is always run to get its logits.
    const previous = this.lastSequence;
    this.lastSequence = undefined;
    let reused = previous && this.options.prefixReuse !== false ? Math.min(commonPrefix(previous.keys, keys), promptLength - 1) : 0;
    // On the GPU, a short common prefix is recomputed rather than kept with the old conversation's rows.
    if (previous?.cache instanceof GpuKvCache) reused = keptPrefix(previous.cache, reused);
    const inputs = await this.model.buildInputs(promptIds, encoded.embeds);
    const H = this.config.llm.hiddenSize;
    // The previous cache's buffers are kept either way: a reused prefix is only a shorter valid length.
    const cache = previous?.cache ?? this.model.emptyCache();
    cache.truncate(reused);
    // A prompt longer than one decoder chunk reports each chunk: a long prefill shows how far it is.
    const toRun = promptLength - reused;
    const logits = await this.model.decode(inputs.embeds.subarray(reused * H), inputs.modality.subarray(reused), cache, (done) => {
      if (done < toRun) onEvent({ type: 'phase', phase: 'prefill', progress: { done, total: toRun } });
    });
    times.prefillMs = performance.now() - tPrefill;
    times.reused = reused;

    onEvent({ type: 'phase', phase: 'generate' });
    const decoder = this.tokenizer.createStreamDecoder({ skipSpecialTokens: true });
    // A continued answer goes on mid-text: the decoder must not drop its first word's leading
    // space as it does at the start of an answer, so it first sees a word it does not emit.
    if (req.continueAnswer) for (const id of this.tokenizer.encode('a', { addBos: false })) decoder.push(id);
    const streamer = new TextStreamer(decoder);
    const lookahead = this.promptLookup(cache);
    const history = promptIds.filter((id) => id >= 0);
    const loop = await generateTokens(logits, async (id) => {
      const next = lookahead ? await lookahead.next(id, history) : await this.model.step(id, cache);
      keys.push(`t${id}`);
      return next;
    }, {
      sampling,
      eosId: this.tokenizer.eosId,
      maxNewTokens: Math.min(sampling.maxNewTokens, limit - promptLength),
      history,
      streamer,
      cancel,
      collectLogits: req.collectLogits,
      onToken: (id, text) => onEvent({ type: 'tokens', ids: [id], text }),
    });
    this.lastSequence = { keys, cache };
    const rest = streamer.end();
    if (rest) onEvent({ type: 'tokens', ids: [], text: rest });
    times.firstTokenAt = loop.firstTokenAt;
    times.speculation = lookahead?.stats;
    const done = result(loop.finish, loop.outputIds, streamer.text);
    return req.collectLogits ? { ...done, stepLogits: concatFloat32(loop.stepLogits) } : done;
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
}

/** Smallest time between two load progress events, in ms (the first and the last always go out). */
export const LOAD_EVENT_MS = 100;

/** `fn(done)` at most every {@link LOAD_EVENT_MS}, and always when `force` is set. */
function throttled(fn: (done: number) => void): (done: number, force?: boolean) => void {
  let last = -Infinity;
  return (done, force = false) => {
    const now = performance.now();
    if (!force && now - last < LOAD_EVENT_MS) return;
    last = now;
    fn(done);
  };
}

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
