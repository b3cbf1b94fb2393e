/**
 * The decoding loop, independent of the model: pick a token from the logits (sampler.ts), stop at
 * EOS, at the stop string, at the token budget or when cancelled, stream the text, and ask the
 * model for the next logits. Also the statistics every answer reports.
 */
import type { FinishReason, GenerationStats } from '../../../src-shared/engine.ts';
import type { CancelSignal } from '../protocol.ts';
import { Sampler } from './sampler.ts';
import type { ResolvedSampling } from './sampler.ts';
import type { TextStreamer } from './streamer.ts';

/** Options of {@link generateTokens}. */
export interface DecodeLoopOptions {
  sampling: ResolvedSampling;
  /** Ends the answer without being part of it. */
  eosId: number;
  /** Most tokens to generate. */
  maxNewTokens: number;
  /** Ids the repetition penalty sees (the prompt's text ids); generated ids are appended. */
  history: number[];
  streamer: TextStreamer;
  cancel: CancelSignal;
  /** Called with each generated token and the text it makes visible. */
  onToken: (id: number, text: string) => void;
  /** Keep a copy of the logits each token was chosen from. */
  collectLogits?: boolean;
}

/** What the loop produced. */
export interface DecodeLoopResult {
  outputIds: number[];
  finish: FinishReason;
  /** `performance.now()` when the first token was chosen (0: none was). */
  firstTokenAt: number;
  stepLogits: Float32Array[];
}

/**
 * Generates from the prompt's last logits; `step(id)` runs the model on a chosen token and returns
 * the next logits. Cancellation is checked before each choice and before each model step.
 */
export async function generateTokens(first: Float32Array, step: (id: number) => Promise<Float32Array>, o: DecodeLoopOptions): Promise<DecodeLoopResult> {
  const sampler = new Sampler(o.sampling);
  const outputIds: number[] = [];
  const stepLogits: Float32Array[] = [];
  let logits = first;
  let finish: FinishReason = 'length';
  let firstTokenAt = 0;
  for (;;) {
    if (o.cancel.cancelled) {
      finish = 'cancelled';
      break;
    }
    if (o.collectLogits) stepLogits.push(logits.slice());
    const id = sampler.next(logits, o.history);
    if (!firstTokenAt) firstTokenAt = performance.now();
    if (id === o.eosId) {
      finish = 'eos';
      break;
    }
    outputIds.push(id);
    o.history.push(id);
    const piece = o.streamer.push(id);
    o.onToken(id, piece.text);
    if (piece.stopped) {
      finish = 'eos';
      break;
    }
    if (outputIds.length >= o.maxNewTokens) break;
    if (o.cancel.cancelled) {
      finish = 'cancelled';
      break;
    }
    logits = await step(id);
  }
  return { outputIds, finish, firstTokenAt, stepLogits };
}

/** Where a request's time went (see {@link generationStats}). */
export interface RequestTimes {
  provider: string;
  /** The graphics adapter, in one line (GPU providers). */
  adapter?: string;
  /** What the user should know about the provider (a fallback to the CPU). */
  providerNote?: string;
  /** Prompt-lookup decoding's drafts and calls (GPU decoder). */
  speculation?: GenerationStats['speculation'];
  contextLimit: number;
  promptTokens: number;
  /** Prompt positions reused from the previous request's KV cache. */
  reused: number;
  images: number;
  imagesFromCache: number;
  imageDecodeMs: number;
  imageEncodeMs: number;
  prefillMs: number;
  /** `performance.now()` at the start of the request, at the first token (0: none), at the end. */
  start: number;
  firstTokenAt: number;
  end: number;
  outputTokens: number;
}

/** The statistics reported with an answer. */
export function generationStats(t: RequestTimes): GenerationStats {
  const decodeSteps = Math.max(t.outputTokens - 1, 0);
  const decodeMs = t.firstTokenAt ? t.end - t.firstTokenAt : 0;
  return {
    provider: t.provider,
    ...(t.adapter ? { adapter: t.adapter } : {}),
    ...(t.providerNote ? { providerNote: t.providerNote } : {}),
    promptTokens: t.promptTokens,
    outputTokens: t.outputTokens,
    contextLimit: t.contextLimit,
    imageCount: t.images,
    imagesFromCache: t.imagesFromCache,
    imageDecodeMs: round(t.imageDecodeMs),
    imageEncodeMs: round(t.imageEncodeMs),
    prefillMs: round(t.prefillMs),
    prefillTokensPerSecond: t.prefillMs > 0 ? round(((t.promptTokens - t.reused) * 1000) / t.prefillMs) : 0,
    timeToFirstTokenMs: t.firstTokenAt ? round(t.firstTokenAt - t.start) : 0,
    decodeTokensPerSecond: decodeSteps > 0 && decodeMs > 0 ? round((decodeSteps * 1000) / decodeMs) : 0,
    totalMs: round(t.end - t.start),
    reusedPromptTokens: t.reused,
    ...(t.speculation ? { speculation: { ...t.speculation } } : {}),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
