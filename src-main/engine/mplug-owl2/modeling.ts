/**
 * The mPLUG-Owl2 model on onnxruntime: the package's three graphs as sessions, and the steps of
 * the forward pass the engine and package verification share — pixel values → image embeddings
 * (`vision.onnx`: ViT + visual abstractor), token ids → text embeddings (`embed.onnx`), the merge
 * of both with per-position modality indicators (the Modality-Adaptive Module's routing), and
 * decoder runs (`decoder.onnx`: LLaMA-2 with MAM) against a host-side KV cache.
 *
 * Graph inputs and outputs are the package contract's (models/owl2/*-graph.ts,
 * docs/engine-contract.md); every size comes from the package's `Owl2Config`.
 */
import * as ort from 'onnxruntime-node';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { Owl2Config } from '../../../models/owl2/config.ts';
import { DECODER_IO } from '../../../models/owl2/decoder-graph.ts';
import type { DecoderVariant } from '../../../models/quant/plan.ts';
import { GpuDecoder, GpuKvCache } from '../gpu/gpu-decoder.ts';
import { IMAGE_TOKEN_INDEX } from '../tokenizer/llama-tokenizer.ts';
import { DecoderKvCache, runDecoderStep } from './kv-cache.ts';

/**
 * Positions per decoder call when prefilling. On the 7B `cpu` package (2 threads) a 600-token
 * prompt prefills as fast in chunks of 256 as in one call (24.7 vs 24.5 tok/s), while the peak
 * RSS of two prefills drops from 8.6 to 7.6 GB (chunks of 128: 7.0 GB, 22.8 tok/s); see
 * docs/performance.md.
 */
export const DEFAULT_PREFILL_CHUNK = 256;

/**
 * The engine's KV cache: for the CPU decoder graph, per layer position-major keys and values with
 * spare capacity on the host (kv-cache.ts); for the GPU decoder graph, the last presents, kept on
 * the device (gpu/gpu-decoder.ts).
 */
export type KvCache = DecoderKvCache | GpuKvCache;

/** The sessions of a package: the decoder is the CPU graph's session or the GPU graph's runner. */
export type Owl2Sessions = { vision: ort.InferenceSession; embed: ort.InferenceSession } & (
  | { decoder: ort.InferenceSession; gpu?: never }
  | { gpu: GpuDecoder; decoder?: never }
);

/** Paths of a package's (or a staging folder's) three graphs. */
export interface Owl2GraphPaths {
  vision: string;
  embed: string;
  decoder: string;
  /** Which decoder graph `decoder` is (default `cpu`; `graphs.decoder.variant` in the manifest). */
  decoderVariant?: DecoderVariant;
}

/** Decoder input for a prompt: merged embeddings [T, H] and each position's modality (1: image row). */
export interface MergedInputs {
  embeds: Float32Array;
  modality: BigInt64Array;
  length: number;
}

/** See the module comment. */
export class Owl2Model {
  constructor(
    readonly config: Owl2Config,
    private readonly sessions: Owl2Sessions,
    private readonly prefillChunk: number = DEFAULT_PREFILL_CHUNK,
  ) {}

  /**
   * Opens the three graphs with the given session options (e.g. for verifying a package right
   * after conversion). A graph onnxruntime cannot load fails with `PACKAGE_INVALID` naming it;
   * the sessions opened before it are released.
   */
  static async open(paths: Owl2GraphPaths, config: Owl2Config, so: ort.InferenceSession.SessionOptions): Promise<Owl2Model> {
    const opened: { release(): Promise<void> }[] = [];
    const open = async <T extends { release(): Promise<void> }>(p: string, create: () => Promise<T>): Promise<T> => {
      try {
        const s = await create();
        opened.push(s);
        return s;
      } catch (err) {
        throw new OwleryError('PACKAGE_INVALID', `onnxruntime cannot load ${p}: ${(err as Error).message.split('\n')[0]}`, { path: p });
      }
    };
    try {
      const vision = await open(paths.vision, () => ort.InferenceSession.create(paths.vision, so));
      const embed = await open(paths.embed, () => ort.InferenceSession.create(paths.embed, so));
      if (paths.decoderVariant === 'gpu') return new Owl2Model(config, { vision, embed, gpu: await open(paths.decoder, () => GpuDecoder.create(paths.decoder, so, config.llm)) });
      return new Owl2Model(config, { vision, embed, decoder: await open(paths.decoder, () => ort.InferenceSession.create(paths.decoder, so)) });
    } catch (err) {
      await Promise.all(opened.map((s) => s.release()));
      throw err;
    }
  }

  /** Releases every session. */
  async release(): Promise<void> {
    await Promise.all([this.sessions.vision.release(), this.sessions.embed.release(), this.sessions.decoder?.release(), this.sessions.gpu?.release()]);
  }

  /** The GPU decoder graph's runner, when the package has that graph. */
  get gpu(): GpuDecoder | undefined {
    return this.sessions.gpu;
  }

  /** Rows one image takes in the decoder's sequence (the abstractor's queries + 1). */
  get imageTokens(): number {
    return this.config.imageTokens;
  }

  /** Runs the vision graph on pixel values [3, S, S]; returns image embeddings [Q+1, H]. */
  async embedPixels(pixels: Float32Array): Promise<Float32Array> {
    const s = this.config.vision.imageSize;
    const out = await this.sessions.vision.run({ pixel_values: new ort.Tensor('float32', pixels, [1, 3, s, s]) }, ['image_embeds']);
    const e = out.image_embeds;
    const want = [1, this.config.imageTokens, this.config.llm.hiddenSize];
    if (e.dims.join() !== want.join()) throw new OwleryError('PACKAGE_INVALID', `vision.onnx gave image_embeds [${e.dims.join(', ')}], expected [${want.join(', ')}]`);
    return e.data as Float32Array;
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
  async buildInputs(promptIds: readonly number[], imageEmbeds: readonly Float32Array[]): Promise<MergedInputs> {
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
   * Runs the decoder over `modality.length` new positions after the cache's valid ones, in
   * chunks of at most `prefillChunk` positions. The cache's valid rows go in as zero-copy inputs;
   * only the new positions' K/V come back, and are written into the cache (it grows when full).
   * Returns the last position's logits.
   */
  async decode(embeds: Float32Array, modality: BigInt64Array, cache: KvCache): Promise<Float32Array> {
    const chunk = Math.max(1, this.prefillChunk);
    const H = this.config.llm.hiddenSize;
    const V = this.config.llm.vocabSize;
    const { decoder, gpu } = this.sessions;
    let logits: Float32Array | undefined;
    if (gpu) {
      if (!(cache instanceof GpuKvCache)) throw new OwleryError('INTERNAL', 'the GPU decoder needs the cache from emptyCache()');
      logits = await gpu.decode(embeds, modality, cache, chunk);
    } else {
      if (!(cache instanceof DecoderKvCache)) throw new OwleryError('INTERNAL', 'the CPU decoder needs the cache from emptyCache()');
      for (let s = 0; s < modality.length || logits === undefined; s += chunk) {
        const e = Math.min(modality.length, s + chunk);
        const out = await runDecoderStep(decoder!, cache, embeds.subarray(s * H, e * H), modality.subarray(s, e), H);
        logits = out[DECODER_IO.logits].data as Float32Array;
      }
    }
    if (logits.length !== V) throw new OwleryError('PACKAGE_INVALID', `decoder.onnx gave ${logits.length} logits, expected ${V}`);
    return logits;
  }

  /** Embeds and runs one text token after the cache's valid positions; returns the next logits. */
  async step(id: number, cache: KvCache): Promise<Float32Array> {
    return this.decode(await this.embedTokens([id]), TEXT_ROW, cache);
  }
}

/** The modality of one text position (never written to). */
const TEXT_ROW = new BigInt64Array(1);
