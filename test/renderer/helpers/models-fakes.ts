/**
 * A scriptable `window.owlery` for component tests of the Models, Settings, Photos and Export
 * screens: the real `createOwleryApi`/`createOwleryClient` over an in-memory transport whose
 * channels answer with test handlers, records every call, and lets a test push events.
 *
 * Handlers that throw an `OwleryError` answer `{ ok: false, error }` like main does, so the
 * client rejects with the same code the screens see in the app.
 */
import { createOwleryApi, createOwleryClient } from '../../../src-shared/ipc/index.ts';
import type {
  ChannelName,
  EngineStatus,
  EventContract,
  EventName,
  FolderEntry,
  InstalledModel,
  ModelFormChoice,
  ModelForms,
  ModelTask,
  OwleryClient,
  RequestOf,
  ResponseOf,
} from '../../../src-shared/ipc/index.ts';
import { serializeError } from '../../../src-shared/errors.ts';
import { DEFAULT_SETTINGS } from '../../../src-shared/settings.ts';

/** A channel's test answer. */
export type Handler<C extends ChannelName> = (request: RequestOf<C>) => ResponseOf<C> | Promise<ResponseOf<C>>;
/** Test answers by channel. */
export type Handlers = { [C in ChannelName]?: Handler<C> };

/** A fake main process. */
export interface FakeOwlery {
  client: OwleryClient;
  /** Every invoke, in order. */
  calls: { channel: ChannelName; payload: unknown }[];
  /** Payloads sent on one channel. */
  callsTo<C extends ChannelName>(channel: C): RequestOf<C>[];
  /** Replaces or adds handlers. */
  handle(handlers: Handlers): void;
  /** Sends an event to the subscribers. */
  emit<E extends EventName>(event: E, payload: EventContract[E]): void;
}

/** A fake main process answering with `handlers` (channels without one fail with `INTERNAL`). */
export function fakeOwlery(handlers: Handlers = {}): FakeOwlery {
  const table: Handlers = { ...handlers };
  const calls: { channel: ChannelName; payload: unknown }[] = [];
  const listeners = new Map<EventName, Set<(payload: unknown) => void>>();
  const api = createOwleryApi({
    async invoke(channel, payload) {
      calls.push({ channel, payload });
      const handler = table[channel] as ((req: unknown) => unknown) | undefined;
      try {
        if (!handler) throw new Error(`${channel} is not faked in this test`);
        return { ok: true, value: await handler(payload) };
      } catch (err) {
        return { ok: false, error: serializeError(err) };
      }
    },
    subscribe(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => set.delete(listener);
    },
  });
  return {
    client: createOwleryClient(api),
    calls,
    callsTo: <C extends ChannelName>(channel: C) => calls.filter((c) => c.channel === channel).map((c) => c.payload as RequestOf<C>),
    handle: (more) => Object.assign(table, more),
    emit: (event, payload) => {
      for (const l of [...(listeners.get(event) ?? [])]) l(payload);
    },
  };
}

/** An idle engine with no model. */
export function engineStatus(over: Partial<EngineStatus> = {}): EngineStatus {
  return { state: 'idle', modelId: null, provider: null, fasterStartSkipped: null, contextLimit: null, error: null, restarts: 0, load: null, memoryBytes: null, ...over };
}

/** An installed model package. */
export function installedModel(over: Partial<InstalledModel> = {}): InstalledModel {
  return {
    id: 'mplug-owl2-0123456789abcdef',
    name: 'tiny owl',
    family: 'mplug-owl2',
    sizeBytes: 4_200_000_000,
    quantization: { vision: 'fp16', llm: 'int4', embed: 'int8' },
    sourceFormat: 'safetensors',
    converterVersion: '1.0.0',
    createdAt: '2026-01-01T00:00:00Z',
    contextLength: 2048,
    verification: { state: 'verified', error: null },
    active: false,
    provider: null,
    preset: 'cpu',
    ...over,
  };
}

/** The forms of the 7B model on a 16 GB laptop without a GPU, the laptop form recommended. */
export function modelForms(over: Partial<ModelForms> = {}): ModelForms {
  const choice = (preset: ModelFormChoice['preset'], title: string, word: string, disk: number, memory: number, fits: boolean): ModelFormChoice => ({
    preset,
    title,
    summary: `${title} summary`,
    name: `mPLUG-Owl2 7B · ${word}`,
    diskBytes: disk,
    convertBytes: disk,
    memoryBytes: memory,
    gpuMemoryBytes: disk * 1.2,
    runsOn: 'cpu',
    speed: preset === 'cpu' ? 'fast' : 'slow',
    speedText: preset === 'cpu' ? 'Runs on the processor: the fastest form there.' : 'Runs on the processor: several times slower.',
    fits,
    problem: fits ? null : `Needs about ${Math.round(memory / 1e9)} GB of memory; this computer has 16 GB.`,
  });
  return {
    model: 'mPLUG-Owl2 7B',
    machine: { totalMemoryBytes: 16e9, freeDiskBytes: 200e9, gpu: null },
    choices: [
      choice('cpu', 'Laptop', '4-bit', 4.8e9, 7e9, true),
      choice('gpu', 'GPU', '16-bit', 16.4e9, 44.8e9, false),
      choice('reference', 'Full precision', 'full precision', 32.8e9, 44.8e9, false),
    ],
    recommended: 'cpu',
    reason: 'This computer has 16 GB of memory: the laptop form is the one to make.',
    ...over,
  };
}

/** A model task event. */
export function modelTask(over: Partial<ModelTask> = {}): ModelTask {
  return {
    taskId: 'task-1',
    kind: 'import',
    state: 'running',
    phase: 'hashing-source',
    done: 0,
    total: 1_000_000_000,
    unit: 'bytes',
    label: 'checkpoint',
    modelId: null,
    error: null,
    startedAt: 0,
    seq: 1,
    ...over,
  };
}

/** `n` folder entries named `IMG_0001.jpg`… */
export function folderEntries(n: number, from = 0): FolderEntry[] {
  return Array.from({ length: n }, (_, i) => {
    const k = from + i + 1;
    const name = `IMG_${String(k).padStart(4, '0')}.jpg`;
    return { entryId: `e${k}`, name, byteSize: 1000 + k, modifiedAt: 0, thumbnailUrl: `http://127.0.0.1/thumb/${k}` };
  });
}

/** Handlers for the models screens: a list, tasks, engine status and default settings. */
export function modelHandlers(models: InstalledModel[] = [], tasks: ModelTask[] = []): Handlers {
  return {
    'models:list': () => models,
    'models:tasks': () => tasks,
    'engine:status': () => engineStatus(),
    'settings:get': () => ({ ...DEFAULT_SETTINGS }),
  };
}
