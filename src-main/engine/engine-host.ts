/**
 * The engine host: the caller's side of the engine process.
 *
 * Runs the same under plain Node (CLI, tests, web harness) and in the Electron main process.
 * Inference happens in a separate Node process, so the calling thread never blocks and a native
 * crash in onnxruntime cannot take the app down. (A worker thread was tried first: onnxruntime-node
 * 1.30 segfaults when it runs in a worker thread of a process started with a long command line,
 * e.g. a long prompt as a CLI argument; a process also gives the isolation docs/design.md asks for.)
 * If the process dies (crash, out of memory, killed), every pending request fails with
 * ENGINE_CRASHED and listeners are told; the next call starts a fresh process, which has no model
 * until one is loaded again (the app's `EngineService` does that, src-main/services).
 *
 * How the process is started is pluggable ({@link EngineSpawner}): plain Node forks it
 * ({@link forkEngineProcess}, the default, running the TypeScript sources through the tsx
 * bootstrap); the packaged app passes an Electron `utilityProcess` spawner and the compiled entry
 * `out/engine/engine-worker.js` (see `src-main/app/engine-process.ts`, docs/adr/0001-processes.md).
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OwleryError, deserializeError } from '../../src-shared/errors.ts';
import type { AspectMode, GenerationEvent, LoadEvent } from '../../src-shared/engine.ts';
import type { EngineInfo, EngineLoadOptions, GenerateRequest, ImageInput, WorkerRequest, WorkerResponse, WorkerResults } from './protocol.ts';

/** What the engine process streams for a request. */
type EngineEvent = Extract<WorkerResponse, { type: 'event' }>['event'];

type Pending = {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** Events of a generate request (`GenerationEvent`) or of a load (`LoadEvent`). */
  onEvent?: (e: never) => void;
};

type RequestBody<K extends WorkerRequest['type']> = Omit<Extract<WorkerRequest, { type: K }>, 'id' | 'type'>;

/** Options for loads made through the host. */
export interface HostLoadOptions {
  /** The load's phases with progress (checking files, opening graphs). */
  onEvent?: (e: LoadEvent) => void;
}

/** Options for generate calls made through the host. */
export interface HostGenerateOptions {
  onEvent?: (e: GenerationEvent) => void;
  /** Aborting stops generation between two decode steps; the result then has finish `cancelled`. */
  signal?: AbortSignal;
}

/** Callbacks a spawner wires to the process it starts. */
export interface EngineProcessHandlers {
  /** A message from the engine process. */
  onMessage(message: WorkerResponse): void;
  /** The process is gone (or failed to start); `reason` says how, in words. */
  onExit(reason: string): void;
}

/** A running engine process as the host sees it (a forked Node process, an Electron utility process). */
export interface EngineProcess {
  /** The process id, once it has started. */
  readonly pid: number | undefined;
  /** Sends one request (structured clone: typed arrays cross as such). */
  send(message: WorkerRequest): void;
  /** Stops the process; resolves once it has exited. */
  kill(): Promise<void>;
}

/** How to start the engine process, besides its entry. */
export interface EngineProcessOptions {
  /** Environment variables added to the process's (e.g. `OWLERY_LOG_DIR`). */
  env?: Record<string, string>;
}

/** Starts the engine process from `entry` (a file path). */
export type EngineSpawner = (entry: string, handlers: EngineProcessHandlers, options?: EngineProcessOptions) => EngineProcess;

/** Options of {@link EngineHost}. */
export interface EngineHostOptions {
  /** Starts the process (default {@link forkEngineProcess}: `child_process.fork` with an IPC channel). */
  spawn?: EngineSpawner;
  /** The `logs` folder the engine process writes `engine.log` to (default: none). */
  logDir?: string;
}

/** The default spawner: `child_process.fork` of `entry` with an IPC channel and V8 serialization. */
export function forkEngineProcess(entry: string, handlers: EngineProcessHandlers, options: EngineProcessOptions = {}): EngineProcess {
  const child = fork(entry, [], {
    env: { ...process.env, ...options.env },
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('message', (msg: WorkerResponse) => handlers.onMessage(msg));
  child.on('error', (err) => handlers.onExit(`the engine process failed: ${err.message}`));
  child.on('exit', (code, signal) => handlers.onExit(`the engine process stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`));
  return {
    get pid() {
      return child.pid;
    },
    send: (message) => {
      child.send(message);
    },
    kill: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export class EngineHost {
  private worker: EngineProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly crashListeners = new Set<(err: OwleryError) => void>();
  private loaded: EngineInfo | undefined;
  private disposed = false;

  private readonly spawn: EngineSpawner;
  private readonly logDir: string | undefined;

  /**
   * A host for the engine process started from `workerUrl` (default: the tsx bootstrap next to
   * this file, for running from sources).
   */
  constructor(
    private readonly workerUrl: URL = new URL('./engine-worker-bootstrap.js', import.meta.url),
    options: EngineHostOptions = {},
  ) {
    this.spawn = options.spawn ?? forkEngineProcess;
    this.logDir = options.logDir;
  }

  /** What the loaded model reports (provider, context), while the engine process has one loaded. */
  get info(): EngineInfo | undefined {
    return this.loaded;
  }

  /** Calls `fn` whenever the worker dies unexpectedly. Returns an unsubscribe function. */
  onDidCrash(fn: (err: OwleryError) => void): () => void {
    this.crashListeners.add(fn);
    return () => this.crashListeners.delete(fn);
  }

  /** Loads a model package in the engine process (starting it if needed), replacing the one loaded. */
  async load(dir: string, options: EngineLoadOptions = {}, opts: HostLoadOptions = {}): Promise<EngineInfo> {
    this.loaded = undefined;
    this.loaded = await this.call('load', { dir, options }, opts.onEvent);
    return this.loaded;
  }

  /** Releases the loaded model's sessions (the process stays, ready for the next load). */
  async unload(): Promise<void> {
    if (!this.worker) return;
    this.loaded = undefined;
    await this.call('unload', {});
  }

  /** The engine process's resident memory in bytes (what the loaded model costs, with the runtime); `null` when no process runs. */
  async memory(): Promise<number | null> {
    if (!this.worker) return null;
    return this.call('memory', {});
  }

  /** Generates an answer, streaming events; resolves with the final result. */
  async generate(request: GenerateRequest, opts: HostGenerateOptions = {}): Promise<WorkerResults['generate']> {
    this.requireLoaded();
    const id = this.nextId;
    const abort = () => this.worker?.send({ type: 'cancel', id: this.nextId++, target: id } satisfies WorkerRequest);
    const result = this.call('generate', { request }, opts.onEvent);
    if (opts.signal?.aborted) abort();
    opts.signal?.addEventListener('abort', abort, { once: true });
    try {
      return await result;
    } finally {
      opts.signal?.removeEventListener('abort', abort);
    }
  }

  /** `tokenizer_image_token` ids for a prompt (-200 where each image goes). */
  async tokenize(text: string): Promise<number[]> {
    this.requireLoaded();
    return this.call('tokenize', { text });
  }

  /** Float32 pixel values [3, S, S] for one photo. */
  async preprocess(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    this.requireLoaded();
    return this.call('preprocess', { image, aspect });
  }

  /** Image embeddings [Q+1, H] for one photo. */
  async embedImage(image: ImageInput, aspect: AspectMode = 'resize'): Promise<Float32Array> {
    this.requireLoaded();
    return this.call('embed-image', { image, aspect });
  }

  /** Stops the worker and fails anything still pending. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const w = this.worker;
    this.worker = undefined;
    this.failAll(new OwleryError('CANCELLED', 'the engine was shut down'));
    await w?.kill();
  }

  /** The engine process's pid, if it is running (for fault-injection tests and diagnostics). */
  get enginePid(): number | undefined {
    return this.worker?.pid;
  }

  private requireLoaded(): void {
    if (!this.worker || !this.loaded) throw new OwleryError('PACKAGE_INVALID', 'no model is loaded: load a model package first');
  }

  private start(): EngineProcess {
    if (this.disposed) throw new OwleryError('CANCELLED', 'the engine was shut down');
    // `w` is assigned before any handler can run (spawners report asynchronously).
    let w: EngineProcess | undefined = undefined;
    w = this.spawn(fileURLToPath(this.workerUrl), {
      onMessage: (msg) => this.onMessage(msg),
      onExit: (reason) => this.onDeath(w, reason),
    }, this.logDir ? { env: { OWLERY_LOG_DIR: this.logDir } } : {});
    this.worker = w;
    return w;
  }

  private onDeath(w: EngineProcess | undefined, message: string): void {
    if (!w || this.worker !== w) return;
    this.worker = undefined;
    this.loaded = undefined;
    const err = new OwleryError('ENGINE_CRASHED', `${message}; it will be restarted for the next request`);
    this.failAll(err);
    for (const fn of this.crashListeners) fn(err);
  }

  private failAll(err: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(err);
  }

  private onMessage(msg: WorkerResponse): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.type === 'event') {
      // The engine sends a request only its own kind of event (see the protocol).
      (p.onEvent as ((e: EngineEvent) => void) | undefined)?.(msg.event);
      return;
    }
    this.pending.delete(msg.id);
    if (msg.type === 'result') p.resolve(msg.value);
    else p.reject(deserializeError(msg.error));
  }

  private call<K extends WorkerRequest['type']>(type: K, body: RequestBody<K>, onEvent?: ((e: GenerationEvent) => void) | ((e: LoadEvent) => void)): Promise<WorkerResults[K]> {
    const w = this.worker ?? this.start();
    const id = this.nextId++;
    return new Promise<WorkerResults[K]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, onEvent });
      w.send({ ...body, type, id } as WorkerRequest);
    });
  }
}
