/**
 * The typed message protocol between the engine host (main thread) and the engine worker.
 *
 * Requests carry an id; the worker answers with exactly one `result` or `error` per id, and
 * streams `event`s for generation requests. A `cancel` request is handled as soon as it arrives
 * (the decode loop yields to the event loop between steps) and sets the target's cancel flag.
 */
import type { SerializedError } from '../../src-shared/errors.ts';
import type { AspectMode, GenerationEvent, ProviderReport } from '../../src-shared/engine.ts';
import type { EngineLoadOptions, GenerateRequest, GenerateResult } from './owl2-engine.ts';

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
  | { type: 'preprocess'; id: number; image: string | Uint8Array; aspect: AspectMode }
  | { type: 'embed-image'; id: number; image: string | Uint8Array; aspect: AspectMode }
  | { type: 'unload'; id: number };

/** Result payloads per request type. */
export interface WorkerResults {
  load: EngineInfo;
  generate: GenerateResult;
  tokenize: number[];
  preprocess: Float32Array;
  'embed-image': Float32Array;
  unload: null;
  cancel: null;
}

export type WorkerResponse =
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: SerializedError }
  | { type: 'event'; id: number; event: GenerationEvent };
