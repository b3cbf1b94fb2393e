/**
 * Engine-facing types shared by the engine, the CLI, the main process and the renderer:
 * generation options, streamed events, statistics and execution-provider reports.
 */

/** Execution providers a user can ask for. `auto` tries what the platform offers, then the CPU. */
export type ExecutionProviderName = 'auto' | 'cpu' | 'cuda' | 'dml' | 'coreml' | 'webgpu';
export const EXECUTION_PROVIDERS: readonly ExecutionProviderName[] = ['auto', 'cpu', 'cuda', 'dml', 'coreml', 'webgpu'];

/** How a non-square photo becomes the model's square input. `resize` is the official default. */
export type AspectMode = 'resize' | 'pad' | 'crop';
export const ASPECT_MODES: readonly AspectMode[] = ['resize', 'pad', 'crop'];

/** Sampling settings for one answer. */
export interface SamplingOptions {
  /** Pick the most likely token every step (ignores temperature, top-k, top-p). */
  greedy?: boolean;
  /** Softmax temperature; 0 means greedy. Default 0.7 (the official demo). */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 disables. */
  topP?: number;
  /** HF-style repetition penalty over the prompt and answer so far; 1 disables. */
  repetitionPenalty?: number;
  /** Seed for reproducible sampling. */
  seed?: number;
  /** Upper bound on generated tokens. Default 512 (the official demo). */
  maxNewTokens?: number;
}

/** Why generation ended. A cancelled answer is a normal outcome, not an error. */
export type FinishReason = 'eos' | 'length' | 'cancelled';

/** Where the time went, reported with every answer. */
export interface GenerationStats {
  provider: string;
  promptTokens: number;
  outputTokens: number;
  contextLimit: number;
  imageCount: number;
  /** Images whose embeddings came from the cache (no vision encode). */
  imagesFromCache: number;
  imageDecodeMs: number;
  imageEncodeMs: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  timeToFirstTokenMs: number;
  decodeTokensPerSecond: number;
  totalMs: number;
  /** Tokens of the prompt whose KV cache was reused from an earlier request. */
  reusedPromptTokens: number;
  /** The graphics adapter a GPU provider runs on, in one line (absent on the CPU). */
  adapter?: string;
  /** Why the model runs where it does, when a user should know (a GPU failure moved it to the CPU). */
  providerNote?: string;
  /** Draft tokens prompt-lookup decoding proposed and how many the model accepted (absent when it was off). */
  speculation?: { drafted: number; accepted: number; calls: number };
}

/** Phases a request goes through, so a user can tell "slow" from "stuck". */
export type GenerationPhase = 'decode-image' | 'encode-image' | 'prefill' | 'generate';

/**
 * Events streamed while one request runs; a failure is the request's error, not an event. The
 * photo phases say how many photos they work on (photos whose embeddings were cached skip them).
 */
export type GenerationEvent =
  | { type: 'phase'; phase: GenerationPhase; images?: number }
  | { type: 'tokens'; ids: number[]; text: string }
  | { type: 'done'; finish: FinishReason; outputIds: number[]; text: string; stats: GenerationStats };

/** One provider the engine tried, and what happened. */
export interface ProviderAttempt {
  provider: Exclude<ExecutionProviderName, 'auto'>;
  ok: boolean;
  error?: string;
}

/** A graphics adapter, as the operating system describes it (src-main/engine/gpu/adapter.ts). */
export interface GpuAdapterInfo {
  name: string;
  /** `nvidia`, `amd`, `intel`, `apple`, `mesa`, … */
  vendor: string;
  driver?: string;
  /** Its own memory (VRAM), or the machine's for a unified-memory GPU; a lower bound on Windows. */
  memoryBytes?: number;
  /** A software rasterizer (lavapipe/llvmpipe, WARP, SwiftShader): `auto` does not pick it. */
  software: boolean;
  /** Where the description came from. */
  source: string;
}

/** Which provider runs the model, and why the others do not. */
export interface ProviderReport {
  requested: ExecutionProviderName;
  used: Exclude<ExecutionProviderName, 'auto'>;
  attempts: ProviderAttempt[];
  /** The adapter a GPU provider runs on (absent on the CPU). */
  adapter?: GpuAdapterInfo;
  /** What a user should know: a software adapter skipped, a GPU failure that moved the model to the CPU. */
  notes?: string[];
}
