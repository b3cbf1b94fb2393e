/**
 * The one owner of "which model, loaded or not, on which provider": everything in main that needs
 * the engine asks this service (the chat service generates through it, the models service loads
 * through it, the UI reads its `engine:status`).
 *
 * - Loads run one at a time, in call order; a load's failure is recorded in the status, and its
 *   progress (checking files, opening graphs) is in the status while it runs.
 * - A request with no model loaded loads the active one (settings) first, or fails with `NO_MODEL`.
 * - The engine process is restarted lazily: after a crash the status is `crashed` until the next
 *   request, which starts a fresh process, reloads the model quietly and goes on (`generating`
 *   with `restarts` incremented). A crash during that reload fails that request only.
 * - Settings that change how a model runs (provider, threads, faster start) reload it when it is
 *   idle.
 */
import { join } from 'node:path';
import { rm } from 'node:fs/promises';
import type { ProviderReport } from '../../src-shared/engine.ts';
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import type { EngineStatus } from '../../src-shared/ipc/index.ts';
import type { Settings } from '../../src-shared/settings.ts';
import { EngineHost } from '../engine/index.ts';
import type { EngineInfo, EngineLoadOptions, GenerateRequest, GenerateResult, HostGenerateOptions } from '../engine/index.ts';
import { SILENT } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';

/** Serialized error without the stack (it stays in main's log). */
function plainError(err: unknown): EngineStatus['error'] {
  const { stack: _stack, ...rest } = serializeError(err);
  return rest;
}

/** Options of {@link EngineService}. */
export interface EngineServiceOptions {
  /** The engine process's host (default: a new one, forking the engine from sources). */
  host?: EngineHost;
  /** The folder of a model package, by id. */
  modelDir: (id: string) => string;
  /** How models are loaded now (provider, threads, caches): read at every load. */
  loadOptions: () => EngineLoadOptions;
  /** The model a request loads when none is (default: none: `NO_MODEL`). */
  activeModel?: () => string | null;
  /** Receives every new status. */
  onStatus?: (status: EngineStatus) => void;
  /** Records loads, crashes and restarts (main.log in the app). */
  log?: Logger;
}

/** Engine load options from the app's settings and data folder. */
export function engineLoadOptions(settings: Pick<Settings, 'executionProvider' | 'threads' | 'fasterStart'>, dataDir: string): EngineLoadOptions {
  return {
    provider: settings.executionProvider,
    threads: settings.threads > 0 ? settings.threads : undefined,
    // The engine verifies checksums, skipping files its stamp vouches for.
    verify: true,
    cacheDir: join(dataDir, 'cache', 'embeddings'),
    // Which provider ran each package on this machine, or which GPU provider failed (`auto`).
    providerMemoryFile: join(dataDir, 'cache', 'providers.json'),
    prepackedCacheDir: settings.fasterStart ? prepackedDir(dataDir) : undefined,
  };
}

/** The faster-start cache of a data folder (src-main/engine/prepacked-cache.ts). */
export function prepackedDir(dataDir: string): string {
  return join(dataDir, 'cache', 'prepacked');
}

/** Deletes the faster-start cache (the setting was turned off, and the engine no longer maps it). */
export async function clearPrepacked(dataDir: string): Promise<void> {
  await rm(prepackedDir(dataDir), { recursive: true, force: true });
}

/** See the module comment. */
export class EngineService {
  readonly host: EngineHost;
  private current: EngineStatus = {
    state: 'idle', modelId: null, provider: null, fasterStartSkipped: null, contextLimit: null, error: null, restarts: 0, load: null, memoryBytes: null,
  };
  private loading: Promise<unknown> = Promise.resolve();
  private activating: Promise<void> | null = null;
  private crashed = false;
  private active = 0;
  private readonly providers = new Map<string, ProviderReport>();
  private readonly unsubscribe: () => void;
  private readonly log: Logger;

  constructor(private readonly opts: EngineServiceOptions) {
    this.host = opts.host ?? new EngineHost();
    this.log = opts.log ?? SILENT;
    this.unsubscribe = this.host.onDidCrash((err) => {
      this.log.error('the engine process stopped', err, { modelId: this.modelId });
      this.crashed = true;
      this.active = 0;
      this.update({ state: 'crashed', error: plainError(err) });
    });
  }

  /** The status now. */
  status(): EngineStatus {
    return { ...this.current };
  }

  /** The model loaded (or being loaded, or loaded last before a crash), if any. */
  get modelId(): string | null {
    return this.current.modelId;
  }

  /** What the engine process reports about the model it has loaded now. */
  get info(): EngineInfo | undefined {
    return this.host.info;
  }

  /** True while an answer is being generated. */
  get busy(): boolean {
    return this.active > 0;
  }

  /** The provider report of the last successful load of `modelId` in this session. */
  providerFor(modelId: string): ProviderReport | null {
    return this.providers.get(modelId) ?? null;
  }

  /**
   * Loads a model package (loads run one at a time, in call order). Resolves with the status;
   * rejects with the load's error (`PACKAGE_INVALID`, `PROVIDER_UNAVAILABLE`, …), which the status
   * also records.
   */
  load(modelId: string): Promise<EngineStatus> {
    const run = async (): Promise<EngineStatus> => {
      this.update({ state: 'loading', modelId, error: null, load: null });
      try {
        const info = await this.host.load(this.opts.modelDir(modelId), this.opts.loadOptions(), {
          onEvent: (e) => this.update({ load: { phase: e.phase, progress: e.progress ? { ...e.progress } : null } }),
        });
        this.crashed = false;
        this.providers.set(modelId, info.provider);
        this.log.info('model loaded', { modelId, provider: info.provider.used, fasterStartSkipped: info.fasterStartSkipped });
        const memoryBytes = await this.measureMemory();
        this.update({
          state: 'ready', modelId, provider: info.provider, fasterStartSkipped: info.fasterStartSkipped, contextLimit: info.contextLimit, error: null, load: null, memoryBytes,
        });
        return this.status();
      } catch (err) {
        this.log.error('the model could not be loaded', err, { modelId });
        this.update({ state: 'error', modelId, provider: null, fasterStartSkipped: null, contextLimit: null, error: plainError(err), load: null, memoryBytes: null });
        throw err;
      }
    };
    const p = this.loading.then(run, run);
    this.loading = p.catch(() => undefined);
    return p;
  }

  /** Reloads the model with the load options now in effect (e.g. a new provider), when one is loaded and idle. Returns whether it did. */
  async reload(): Promise<boolean> {
    const id = this.modelId;
    if (!id || this.busy) return false;
    await this.load(id);
    return true;
  }

  /** Releases the model's memory; the next request loads the active model again. */
  async unload(): Promise<void> {
    if (this.busy) throw new OwleryError('ENGINE_BUSY', 'An answer is being written; stop it before unloading the model.');
    await this.loading;
    await this.host.unload();
    this.update({ state: 'idle', modelId: null, provider: null, fasterStartSkipped: null, contextLimit: null, error: null, memoryBytes: null });
  }

  /**
   * Makes sure a model is there for a request: loads the active one when none is loaded (throws
   * `NO_MODEL` when none is chosen). After a crash it does nothing: the request itself restarts
   * the engine.
   */
  async ensureModel(): Promise<void> {
    if (this.crashed || (this.modelId && this.info)) return;
    const active = this.modelId ?? this.opts.activeModel?.() ?? null;
    if (!active) throw new OwleryError('NO_MODEL', 'No model is chosen yet: import or download one on the Models screen.');
    this.activating ??= this.load(active).then(
      () => {
        this.activating = null;
      },
      (err: unknown) => {
        this.activating = null;
        throw err;
      },
    );
    await this.activating;
  }

  /** Generates an answer (restarting the engine and reloading its model after a crash). */
  async generate(request: GenerateRequest, options: HostGenerateOptions = {}): Promise<GenerateResult> {
    await this.ensureModel();
    if (this.crashed) {
      // Quietly: the status goes `crashed` → `generating` (restarts + 1) once the model is back.
      await this.loading;
      const id = this.modelId;
      if (!id) throw new OwleryError('NO_MODEL', 'No model is chosen yet: import or download one on the Models screen.');
      this.log.info('restarting the engine for a request', { modelId: id, restarts: this.current.restarts + 1 });
      await this.host.load(this.opts.modelDir(id), this.opts.loadOptions());
    }
    this.active++;
    const info = this.host.info;
    if (this.crashed && info) {
      this.crashed = false;
      this.update({ state: 'generating', restarts: this.current.restarts + 1, provider: info.provider, error: null });
    } else if (this.current.state !== 'generating') {
      this.update({ state: 'generating', ...(info ? { provider: info.provider, contextLimit: info.contextLimit } : {}) });
    }
    try {
      return await this.host.generate(request, options);
    } finally {
      if (this.active > 0) this.active--;
      // A crash leaves the status `crashed` until the next request restarts the engine.
      if (this.active === 0 && !this.crashed) {
        const memoryBytes = this.host.info ? await this.measureMemory() : null;
        if (this.active === 0 && !this.crashed) this.update({ state: this.host.info ? 'ready' : this.current.modelId ? 'error' : 'idle', memoryBytes });
      }
    }
  }

  /** The engine process's memory now, or `null` when it cannot be measured (no process, a crash). */
  private async measureMemory(): Promise<number | null> {
    try {
      return await this.host.memory();
    } catch {
      return null;
    }
  }

  /** Stops watching the engine and stops its process. */
  async dispose(): Promise<void> {
    this.unsubscribe();
    await this.host.dispose();
  }

  private update(patch: Partial<EngineStatus>): void {
    this.current = { ...this.current, ...patch };
    this.opts.onStatus?.(this.status());
  }
}
