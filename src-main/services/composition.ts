/**
 * The composition root, wiring only: `createServices({ dataDir, … })` opens the history store and
 * image store, the settings, the engine service, the chat service, the describe service, the models
 * service and the exporter on one data folder, and wires their events to one {@link EventBus}. It runs in plain Node: the Electron app
 * (`src-main/app`), the web test harness (`test/harness`) and integration tests all call it, and
 * differ only in the dialogs, the settings storage and the transport that carries IPC.
 *
 * Data folder layout: `owlery.sqlite` (+ `backups/`), `images/`, `models/`, `downloads/`,
 * `cache/`, `settings.json`, `recent-folders.json` (the Photos screen's
 * folders), `logs/` (`main.log` and `engine.log`, src-main/logging/logger.ts; the
 * network log `network.jsonl`, see `network.ts`), and `owlery.lock` while services run on it (one
 * instance per folder, `data-lock.ts`). At start, what killed processes left there is removed
 * (`stale-partials.ts`) and the history's integrity is checked in the background
 * (`store/health.ts`).
 *
 * Network: the only requests the services make are model downloads the user started, through the
 * {@link NetworkGate} (refused in offline mode, each request logged). Offline mode turns itself back
 * on once such a download has installed its model.
 * @see docs/adr/0001-processes.md
 */
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DEFAULT_IMAGE_BASE } from '../../src-shared/ipc/index.ts';
import type { AppInfo } from '../../src-shared/ipc/index.ts';
import { MAX_DROPPED_IMAGE_BYTES } from '../../src-shared/limits.ts';
import { ChatService } from '../chat/chat-service.ts';
import { DescribeService } from '../describe/describe-service.ts';
import type { ChatServiceOptions } from '../chat/chat-service.ts';
import { EngineHost, likelyWebGpuAdapter } from '../engine/index.ts';
import type { EngineSpawner } from '../engine/index.ts';
import { exportBackend } from '../export/index.ts';
import type { ExportBackend, PrintToPdf } from '../export/index.ts';
import { ModelsService, packageDir } from '../models-service/models-service.ts';
import type { ModelsServiceOptions } from '../models-service/models-service.ts';
import { JsonFileSettingsStorage } from '../settings/json-file-storage.ts';
import { SettingsService } from '../settings/settings-service.ts';
import type { SettingsStorage } from '../settings/storage.ts';
import { toStoredImage } from '../store/image-records.ts';
import { ImageStore } from '../store/images.ts';
import type { Store } from '../store/store.ts';
import { openHistory, replaceDamagedHistory, type CorruptChoice, type CorruptDatabaseInfo } from '../store/recovery.ts';
import { HistoryHealth, type DamagedHistoryInfo } from '../store/health.ts';
import { acquireDataLock } from './data-lock.ts';
import { removeStalePartials } from './stale-partials.ts';
import { CANCELLING_DIALOGS } from './dialogs.ts';
import type { Dialogs } from './dialogs.ts';
import { createLogger } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';
import { EngineService, clearPrepacked, engineLoadOptions } from './engine-service.ts';
import { EventBus } from './events.ts';
import { describeJobEvent } from './describe-view.ts';
import { FolderGrants } from './folders.ts';
import { NetworkGate, NetworkLog } from './network.ts';
import { OpenedPhotos } from './opened-photos.ts';

/** Names of the GPU execution providers, for the models service's recommendation. */
const GPU_PROVIDER_NAMES: Record<string, string> = { cuda: 'NVIDIA CUDA', dml: 'DirectML', coreml: 'Core ML', webgpu: 'WebGPU' };

/** Options of {@link createServices}. */
export interface ServicesOptions {
  /** The app's data folder (created if missing). */
  dataDir: string;
  /**
   * Asked when the history database is damaged: restore the last backup, start empty (the damaged
   * file is kept aside), or quit (the default: the DB_CORRUPT error is thrown).
   */
  onCorruptDatabase?: (info: CorruptDatabaseInfo) => CorruptChoice;
  /**
   * Told when the integrity check (after start, or after a request met damage) finds the history
   * damaged, with the conversations that cannot be read; answer with `recoverHistory` or by quitting.
   */
  onDamagedHistory?: (info: DamagedHistoryInfo) => void;
  /** When the integrity check runs after start (default 2000 ms). */
  healthCheckDelayMs?: number;
  /** File dialogs (default: every dialog is cancelled). */
  dialogs?: Dialogs;
  /** Where settings live (default: `<dataDir>/settings.json` as plain JSON). */
  settingsStorage?: SettingsStorage;
  /** Base of image URLs handed to the renderer (default `owlery-image://`). */
  imageBase?: string;
  /** Name, version, platform and runtime versions for `app:info`. */
  app?: Partial<Omit<AppInfo, 'imageBase'>>;
  /** Hub endpoint for model pulls (default: the public Hugging Face Hub). */
  hubEndpoint?: string;
  /** Largest image accepted from the renderer, in bytes (default: the IPC limit, 50 MiB). */
  maxImageBytes?: number;
  /** Load the active model in the background at start (default true). */
  autoLoadModel?: boolean;
  /** The engine worker entry (default: the engine host's own, from sources). */
  engineWorkerUrl?: URL;
  /** Starts the engine process (default: `child_process.fork`; the app passes a `utilityProcess` spawner). */
  engineSpawner?: EngineSpawner;
  /** Exporter (default: `src-main/export` over the store). */
  exporter?: ExportBackend;
  /** Prints export HTML to PDF (the app passes a hidden window's `printToPDF`); without it PDF export fails with `EXPORT_FAILED`. */
  printToPdf?: PrintToPdf;
  /** Chat service tuning (batching and save intervals) for tests. */
  chat?: Pick<ChatServiceOptions, 'deltaIntervalMs' | 'saveIntervalMs' | 'maxQueued'>;
  /** The main log (default: `<dataDir>/logs/main.log`). */
  log?: Logger;
  /**
   * The graphics card the models service recommends forms for (default: the one the engine ran a
   * model on, else the operating system's best adapter). Tests pass a machine of their own.
   */
  gpu?: ModelsServiceOptions['gpu'];
}

/** Everything the IPC handlers call. */
export interface Services {
  readonly dataDir: string;
  readonly appInfo: AppInfo;
  readonly store: Store;
  readonly images: ImageStore;
  /** Which model is loaded, on which provider; generation goes through it. */
  readonly engine: EngineService;
  readonly chat: ChatService;
  /** Photo-folder descriptions: describe jobs (sharing the engine with chat, which comes first), search, export. */
  readonly describe: DescribeService;
  readonly settings: SettingsService;
  readonly models: ModelsService;
  readonly folders: FolderGrants;
  readonly dialogs: Dialogs;
  readonly exporter: ExportBackend;
  readonly events: EventBus;
  /** The network gate and log (offline mode, user-started downloads, the window's requests). */
  readonly network: NetworkGate;
  /** Photos the operating system opened with the app, waiting for the window. */
  readonly openedPhotos: OpenedPhotos;
  readonly maxImageBytes: number;
  /** The main process's log (`logs/main.log`); the engine process writes `logs/engine.log`. */
  readonly log: Logger;
  /** The history's integrity checks (`store/health.ts`). */
  readonly health: HistoryHealth;
  /** The start-up clean-up of leftovers (`stale-partials.ts`): the paths removed. */
  readonly startupCleanup: Promise<string[]>;
  /**
   * After damage was found: stops everything (as `close`), then restores the last backup or starts
   * an empty history, the damaged file kept aside. Open new services afterwards (the app restarts).
   */
  recoverHistory(choice: 'restore' | 'fresh'): Promise<{ choice: 'restore' | 'fresh'; movedAside: string[] }>;
  /** Stops everything: cancels chats and tasks, stops the engine, closes the database. */
  close(): Promise<void>;
}

/** Opens every service on `dataDir`; see the module comment. */
export function createServices(opts: ServicesOptions): Services {
  const dataDir = opts.dataDir;
  mkdirSync(dataDir, { recursive: true });
  const logDir = join(dataDir, 'logs');
  const log = opts.log ?? createLogger({ dir: logDir, name: 'main' });
  const events = new EventBus(log);
  const imageBase = opts.imageBase ?? DEFAULT_IMAGE_BASE;
  const appInfo: AppInfo = {
    name: opts.app?.name ?? 'Owlery',
    version: opts.app?.version ?? '0.0.0',
    platform: opts.app?.platform ?? process.platform,
    versions: opts.app?.versions ?? { node: process.versions.node },
    harness: opts.app?.harness ?? false,
    imageBase,
  };

  const lock = acquireDataLock(dataDir);
  let settings: SettingsService;
  let store: Store;
  try {
    settings = new SettingsService(opts.settingsStorage ?? new JsonFileSettingsStorage(dataDir), log);
    ({ store } = openHistory(join(dataDir, 'owlery.sqlite'), opts.onCorruptDatabase ?? (() => 'quit')));
  } catch (err) {
    lock.release();
    throw err;
  }
  const startupCleanup = removeStalePartials(dataDir).catch(() => []);
  const health = new HistoryHealth({ file: store.file, onDamaged: opts.onDamagedHistory, delayMs: opts.healthCheckDelayMs });
  health.start();
  const images = new ImageStore(store, dataDir);
  const network = new NetworkGate({
    isOffline: () => settings.get().offlineMode,
    log: new NetworkLog({ file: join(logDir, 'network.jsonl'), log }),
  });
  const modelsDir = join(dataDir, 'models');
  const engine = new EngineService({
    host: new EngineHost(opts.engineWorkerUrl, { spawn: opts.engineSpawner, logDir }),
    modelDir: (id) => packageDir(modelsDir, id),
    loadOptions: () => engineLoadOptions(settings.get(), dataDir),
    activeModel: () => settings.get().activeModelId,
    onStatus: (status) => events.emit('engine:status', status),
    log,
  });
  const chat = new ChatService({ store, images, engine, ...opts.chat });
  const describe = new DescribeService({
    store,
    engine,
    chatBusy: () => chat.queueState.running !== null || chat.queueState.queued > 0,
    log,
  });
  const models = new ModelsService({
    dataDir,
    engine,
    settings,
    hubEndpoint: opts.hubEndpoint,
    network,
    onTask: (task) => {
      events.emit('models:task', task);
      if (task.state === 'failed') log.warn(`model ${task.kind} failed`, { taskId: task.taskId, code: task.error?.code, message: task.error?.message });
      // Offline by default once a model is installed: a finished download turns offline mode back on.
      if (task.kind === 'pull' && task.state === 'done' && !settings.get().offlineMode) settings.set({ offlineMode: true });
    },
    onChange: (ids) => events.emit('models:changed', { ids }),
    // The GPU the engine ran a model on in this session, else the one the operating system reports
    // (with its memory where it says it); a software rasterizer counts as none.
    gpu: opts.gpu ?? (async () => {
      const report = engine.status().provider;
      if (report?.adapter) return report.adapter;
      if (report && report.used !== 'cpu') return { name: GPU_PROVIDER_NAMES[report.used] ?? report.used };
      return (await likelyWebGpuAdapter()) ?? null;
    }),
  });
  const folders = new FolderGrants(imageBase, join(dataDir, 'recent-folders.json'));
  const openedPhotos = new OpenedPhotos({
    put: (path, o) => images.put(path, o),
    toStoredImage: (record, name) => toStoredImage(record, name, imageBase),
    notify: (count) => events.emit('app:photos-opened', { count }),
    onError: (path, err) => log.warn('could not open a photo the system passed to Owlery', { file: basename(path) }, err),
  });

  const unsubscribers = [
    chat.subscribe((event) => {
      events.emit('chat:event', event);
      if (event.type === 'error' && event.error.code === 'DB_CORRUPT') health.noticeCorrupt();
    }),
    settings.onChange((next, changed) => {
      events.emit('settings:changed', { settings: next, changed });
      if (changed.includes('offlineMode')) network.offlineChanged();
      // Choosing a model in settings loads it (models.select sets the same id: no loop). Its error
      // is in the engine status.
      if (changed.includes('activeModelId') && next.activeModelId && next.activeModelId !== engine.modelId && !engine.busy) {
        models.select(next.activeModelId).catch(() => {});
        return;
      }
      // A new provider, thread count or faster-start choice takes effect by reloading the model,
      // when one is loaded and idle. Turning faster start off deletes its copy once the engine no
      // longer maps it: after that reload, or at once when no model is loaded (otherwise the next
      // start deletes it). Errors: in the engine status; a copy not deleted is deleted next start.
      const dropCopy = changed.includes('fasterStart') && !next.fasterStart;
      if (changed.includes('executionProvider') || changed.includes('threads') || changed.includes('fasterStart')) {
        engine.reload().then(
          (reloaded) => (dropCopy && (reloaded || !engine.modelId) ? clearPrepacked(dataDir) : undefined),
          () => {},
        ).catch(() => {});
      }
    }),
  ];

  // A faster-start copy left behind (turned off while an answer was running, or before a crash).
  if (!settings.get().fasterStart) clearPrepacked(dataDir).catch(() => {});
  // The active model loads in the background; a failure is reported through the engine status.
  if ((opts.autoLoadModel ?? true) && settings.get().activeModelId) engine.ensureModel().catch(() => {});
  // Describe jobs that were running when the app stopped continue where they stopped; their
  // events reach the window with paths turned into names and folder/entry ids (describe-view.ts).
  unsubscribers.push(describe.subscribe((e) => events.emit('describe:event', describeJobEvent(folders, describe, e))));
  describe.resumeInterrupted();

  let closed: Promise<void> | null = null;
  const shutDown = (): Promise<void> => {
    closed ??= (async () => {
      await health.dispose();
      for (const u of unsubscribers) u();
      await describe.dispose().catch(() => {});
      await chat.dispose().catch(() => {});
      await models.dispose().catch(() => {});
      await engine.dispose().catch(() => {});
      await openedPhotos.settled();
      await network.log.flush();
      await startupCleanup;
      store.close();
    })();
    return closed;
  };
  return {
    dataDir,
    appInfo,
    store,
    images,
    engine,
    chat,
    describe,
    settings,
    models,
    folders,
    dialogs: opts.dialogs ?? CANCELLING_DIALOGS,
    exporter: opts.exporter ?? exportBackend({ store, images, appVersion: appInfo.version }, opts.printToPdf),
    events,
    network,
    openedPhotos,
    maxImageBytes: opts.maxImageBytes ?? MAX_DROPPED_IMAGE_BYTES,
    log,
    health,
    startupCleanup,
    async recoverHistory(choice) {
      await shutDown();
      try {
        return replaceDamagedHistory(store.file, choice);
      } finally {
        lock.release();
      }
    },
    async close() {
      await shutDown();
      lock.release();
    },
  };
}
