/**
 * The engine's protocol: what callers ask of the engine (load options, generate requests), what
 * it answers (load info, results), and the typed messages between the engine host (the caller's
 * process) and the engine process that carry them.
 *
 * Requests carry an id; the engine process answers with exactly one `result` or `error` per id,
 * and streams `event`s for generation requests (`GenerationEvent`) and loads (`LoadEvent`: the
 * same phase shape, with progress). A `cancel` request is handled as soon as it
 * arrives (the decode loop yields to the event loop between steps) and sets the target's cancel
 * flag.
 */
import type { SerializedError } from '../../src-shared/errors.ts';
import type { AspectMode, ExecutionProviderName, GenerationEvent, LoadEvent, ProviderReport, SamplingOptions } from '../../src-shared/engine.ts';

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
   * Longest run of positions per decoder call (default `DEFAULT_PREFILL_CHUNK`); a longer prompt
   * is prefilled in chunks. Each call's new K/V come back as fresh buffers (onnxruntime-node copies
   * every output), so the chunk bounds that transient memory.
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
   * Prompt-lookup decoding with the GPU decoder graph (generation/prompt-lookup.ts): draft tokens
   * per decoder call, 0 to turn it off. Default `DEFAULT_LOOKAHEAD` on WebGPU, where a call over a
   * few positions costs about what one does; off elsewhere.
   */
  lookahead?: number;
}

/**
 * An image given to the engine: a file path, the file's bytes, or a stored photo (its file and
 * the sha256 of its bytes, which the store already knows: the engine then uses it as the
 * embeddings-cache key and reads the file only when the cache has no embeddings for it).
 */
export type ImageInput = string | Uint8Array | { path: string; sha256: string };

/**
 * One turn of a chat, as the engine renders it with the `mplug_owl2` template: the user's text
 * (with `<|image|>` markers where its photos go, or none: then they go first) and how many photos
 * it carries, or an answer.
 */
export interface ChatMessage {
  role: 'user' | 'assistant';
  content: string;
  /** Photos of this turn (user turns only). */
  images?: number;
}

/** What both kinds of request share. */
interface GenerateOptions {
  /** The photos, in the order of their markers in the prompt (for `turns`: turn by turn). */
  images?: ImageInput[];
  sampling?: SamplingOptions;
  aspect?: AspectMode;
  /** Keep the raw logits each generated token was chosen from (float32 [steps, vocab]). */
  collectLogits?: boolean;
  /**
   * Save the photos' embeddings in the on-disk cache (default true). Describe jobs pass false: a
   * photo library's embeddings (~1 MB each on the 7B) would fill the disk for photos seen once;
   * the memory cache still serves the photo's second request.
   */
  persistImageEmbeddings?: boolean;
}

/**
 * A request made of chat turns (alternating user/assistant, ending with the user's question): the
 * engine renders them, and when the prompt would leave no room for an answer in the context window
 * it leaves out the oldest question/answer pairs (and their photos) until it does — the question
 * itself is always kept.
 */
export interface TurnsRequest {
  turns: ChatMessage[];
  prompt?: never;
  /** Per-chat instructions, put at the start of the first user turn kept (mplug-owl2/prompt.ts). */
  instructions?: string;
  /**
   * The turns end with an answer that stopped early, after its question: the prompt leaves that
   * answer open and the model continues it; the result's text is only what it adds.
   */
  continueAnswer?: boolean;
}

/** A request with a `prompt` already rendered with the template, used as is. */
export interface PromptRequest {
  prompt: string;
  turns?: never;
  instructions?: never;
  continueAnswer?: never;
}

/** One request: chat turns the engine renders and fits, or a rendered prompt. */
export type GenerateRequest = GenerateOptions & (TurnsRequest | PromptRequest);

/** Lets the caller stop a generation between two decode steps. */
export interface CancelSignal {
  readonly cancelled: boolean;
}

/** The final result of a request. */
export type GenerateResult = Extract<GenerationEvent, { type: 'done' }> & {
  promptIds: number[];
  /** Question/answer pairs left out of the prompt to fit the context window (`turns` requests). */
  droppedPairs: number;
  stepLogits?: Float32Array;
};

/** What a loaded engine tells the host about itself. */
export interface EngineInfo {
  dir: string;
  packageId: string;
  provider: ProviderReport;
  /** Why the faster-start copy was not used although asked for (null: used, or not asked for). */
  fasterStartSkipped: string | null;
  contextLimit: number;
  imageTokens: number;
  hiddenSize: number;
  vocabSize: number;
  imageSize: number;
}

export type WorkerRequest =
  | { type: 'load'; id: number; dir: string; options: EngineLoadOptions }
  | { type: 'generate'; id: number; request: GenerateRequest }
  | { type: 'cancel'; id: number; target: number }
  | { type: 'tokenize'; id: number; text: string }
  | { type: 'preprocess'; id: number; image: ImageInput; aspect: AspectMode }
  | { type: 'embed-image'; id: number; image: ImageInput; aspect: AspectMode }
  | { type: 'unload'; id: number }
  | { type: 'memory'; id: number };

/** Result payloads per request type. */
export interface WorkerResults {
  load: EngineInfo;
  generate: GenerateResult;
  tokenize: number[];
  preprocess: Float32Array;
  'embed-image': Float32Array;
  unload: null;
  cancel: null;
  /** The engine process's resident memory, in bytes. */
  memory: number;
}

export type WorkerResponse =
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'event'; id: number; event: GenerationEvent | LoadEvent };
