/** The `engine:` domain: where the inference engine stands, now and as it changes. */
import type { LoadPhase, PhaseProgress, ProviderReport } from '../engine.ts';
import type { SerializedError } from '../errors.ts';
import { v } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';

/** Where the engine stands. */
export type EngineState = 'idle' | 'loading' | 'ready' | 'generating' | 'crashed' | 'error';

/** The engine's status, pushed as an event whenever it changes. */
export interface EngineStatus {
  state: EngineState;
  /** The loaded (or loading) model package, if any. */
  modelId: string | null;
  /** Which execution provider runs it, and why others did not. */
  provider: ProviderReport | null;
  /** Why the "faster start" copy was not used although the setting is on (null otherwise). */
  fasterStartSkipped: string | null;
  /** Tokens the loaded model can attend to. */
  contextLimit: number | null;
  /** The last failure (load error or crash); cleared by the next successful load. */
  error: SerializedError | null;
  /** Times the engine process was restarted after a crash since the app started. */
  restarts: number;
  /**
   * While `loading`: what the load is doing (checking the files' checksums, opening the graphs)
   * and how far it is, when known; `null` otherwise.
   */
  load: { phase: LoadPhase; progress: PhaseProgress | null } | null;
  /**
   * Memory the engine process holds (the loaded model and its runtime), in bytes, measured after
   * the last load or answer; `null` when no model is loaded.
   */
  memoryBytes: number | null;
}

/** `window.owlery.engine`. */
export const engineApi = defineDomain({
  /** The engine's status now (then follow `onStatus`). */
  status: invoke(v.none()).returns<EngineStatus>(),
  /** Engine status changes, crashes and restarts, with the provider report. */
  onStatus: event('engine:status').carries<EngineStatus>(),
  /** Loads the active model now (`NO_MODEL` when none is chosen); resolves once it is ready. */
  load: invoke(v.none()).returns<EngineStatus>(),
  /** Releases the loaded model's memory (`ENGINE_BUSY` while an answer is written); the next question loads it again. */
  unload: invoke(v.none()).returns<EngineStatus>(),
});
