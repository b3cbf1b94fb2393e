/**
 * Tracks the engine for the UI: which model is loaded, with which execution provider, whether it
 * is generating, and crashes and restarts. Every change is published as an `engine:status` event.
 *
 * The engine host restarts its process lazily: after a crash the next request starts a fresh
 * process and reloads the last model. So the status goes `crashed` → (next request) `generating`
 * with `restarts` incremented.
 */
import type { ChatEvent } from '../../src-shared/chat.ts';
import type { ProviderReport } from '../../src-shared/engine.ts';
import { serializeError } from '../../src-shared/errors.ts';
import type { EngineStatus } from '../../src-shared/ipc/index.ts';
import type { EngineHost } from '../engine/engine-host.ts';
import type { EngineLoadOptions } from '../engine/owl2-engine.ts';

/** Serialized error without the stack (it stays in main's log). */
function plainError(err: unknown): EngineStatus['error'] {
  const { stack: _stack, ...rest } = serializeError(err);
  return rest;
}

/** See the module comment. */
export class EngineController {
  private current: EngineStatus = { state: 'idle', modelId: null, provider: null, fasterStartSkipped: null, contextLimit: null, error: null, restarts: 0 };
  private loading: Promise<unknown> = Promise.resolve();
  private crashed = false;
  private activeRequests = new Set<string>();
  private readonly providers = new Map<string, ProviderReport>();
  private readonly unsubscribe: () => void;

  /** Watches `engine`; `publish` receives every new status. */
  constructor(
    private readonly engine: EngineHost,
    private readonly publish: (status: EngineStatus) => void,
  ) {
    this.unsubscribe = engine.onDidCrash((err) => {
      this.crashed = true;
      this.activeRequests.clear();
      this.update({ state: 'crashed', error: plainError(err) });
    });
  }

  /** The status now. */
  status(): EngineStatus {
    return { ...this.current };
  }

  /** The model loaded (or last loaded before a crash), if any. */
  get modelId(): string | null {
    return this.current.modelId;
  }

  /** True while an answer is being generated. */
  get busy(): boolean {
    return this.activeRequests.size > 0;
  }

  /** The provider report of the last successful load of `modelId` in this session. */
  providerFor(modelId: string): ProviderReport | null {
    return this.providers.get(modelId) ?? null;
  }

  /**
   * Loads a model package (loads run one at a time, in call order). Resolves with the status;
   * rejects with the load's error (`PACKAGE_INVALID`, `PROVIDER_UNAVAILABLE`, …), which the
   * status also records.
   */
  load(modelId: string, dir: string, options: EngineLoadOptions): Promise<EngineStatus> {
    const run = async (): Promise<EngineStatus> => {
      this.update({ state: 'loading', modelId, error: null });
      try {
        const info = await this.engine.load(dir, options);
        this.crashed = false;
        this.providers.set(modelId, info.provider);
        this.update({ state: 'ready', modelId, provider: info.provider, fasterStartSkipped: info.fasterStartSkipped, contextLimit: info.contextLimit, error: null });
        return this.status();
      } catch (err) {
        this.update({ state: 'error', modelId, provider: null, fasterStartSkipped: null, contextLimit: null, error: plainError(err) });
        throw err;
      }
    };
    const p = this.loading.then(run, run);
    this.loading = p.catch(() => undefined);
    return p;
  }

  /** Follows the chat service's events (generating / ready, restart after a crash). */
  observeChat(event: ChatEvent): void {
    if (event.type === 'phase') {
      if (event.phase === 'queued') return;
      this.activeRequests.add(event.requestId);
      const info = this.engine.engineInfo;
      if (this.crashed && info) {
        this.crashed = false;
        this.update({ state: 'generating', restarts: this.current.restarts + 1, provider: info.provider, error: null });
      } else if (this.current.state !== 'generating') {
        this.update({ state: 'generating', ...(info ? { provider: info.provider, contextLimit: info.contextLimit } : {}) });
      }
      return;
    }
    if (event.type === 'done' || event.type === 'error') {
      this.activeRequests.delete(event.requestId);
      if (this.activeRequests.size > 0) return;
      if (this.crashed) return; // stays `crashed` until the next request restarts the engine
      this.update({ state: this.engine.engineInfo ? 'ready' : this.current.modelId ? 'error' : 'idle' });
    }
  }

  /** Stops watching the engine. */
  dispose(): void {
    this.unsubscribe();
  }

  private update(patch: Partial<EngineStatus>): void {
    this.current = { ...this.current, ...patch };
    this.publish(this.status());
  }
}
