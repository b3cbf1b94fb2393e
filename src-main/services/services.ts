/**
 * The composition root: `createServices({ dataDir, … })` opens the history store and image store,
 * the settings, the engine host, the chat service, the models service and the exporter on one data
 * folder, and wires their events to one {@link EventBus}. It runs in plain Node: the Electron app
 * (`src-main/app`), the web test harness (`test/harness`) and integration tests all call it, and
 * differ only in the dialogs, the settings storage and the transport that carries IPC.
 *
 * Data folder layout: `owlery.sqlite` (+ `backups/`), `images/`, `models/`, `downloads/`,
 * `cache/`, `settings.json`, `logs/network.jsonl` (the network log, see `network.ts`), and
 * `owlery.lock` while services run on it (one instance per folder, `data-lock.ts`). At start,
 * what killed processes left there is removed (`stale-partials.ts`) and the history's integrity is
 * checked in the background (`store/health.ts`).
 *
 * Network: the only requests the services make are model downloads the user started, through the
 * {@link NetworkGate} (refused in offline mode, each request logged). Offline mode turns itself back
 * on once such a download has installed its model.
 * @see docs/adr/0001-processes.md
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ConversationId } from '../../src-shared/domain.ts';
import type { ExportFormat, ImportResult } from '../../src-shared/chat.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { DEFAULT_IMAGE_BASE } from '../../src-shared/ipc/contract.ts';
import type { AppInfo } from '../../src-shared/ipc/contract.ts';
import { samplingFromSettings } from '../../src-shared/settings.ts';
import { ChatService } from '../chat/chat-service.ts';
import type { ChatServiceOptions } from '../chat/chat-service.ts';
import { EngineHost } from '../engine/engine-host.ts';
import type { EngineSpawner } from '../engine/engine-host.ts';
import { exportConversations, importJson } from '../export/index.ts';
import type { PrintToPdf } from '../export/index.ts';
import { ModelsService } from '../models-service/models-service.ts';
import { JsonFileSettingsStorage } from '../settings/json-file-storage.ts';
import { SettingsService } from '../settings/settings-service.ts';
import type { SettingsStorage } from '../settings/storage.ts';
import { ImageStore } from '../store/images.ts';
import type { Store } from '../store/store.ts';
import { openHistory, replaceDamagedHistory, type CorruptChoice, type CorruptDatabaseInfo } from '../store/recovery.ts';
import { HistoryHealth, type DamagedHistoryInfo } from '../store/health.ts';
import { acquireDataLock } from './data-lock.ts';
import { removeStalePartials } from './stale-partials.ts';
import { CANCELLING_DIALOGS } from './dialogs.ts';
import type { Dialogs } from './dialogs.ts';
import { EngineController } from './engine-controller.ts';
import { EventBus } from './events.ts';
import { FolderGrants } from './folders.ts';
import { NetworkGate, NetworkLog } from './network.ts';
import { OpenedPhotos } from './opened-photos.ts';
import { toStoredImage } from '../ipc/handlers/images.ts';

/** Writes exports and reads imports (implemented over `src-main/export`). */
export interface ExportBackend {
  /** Writes conversations (`'all'`: every one not in the trash) to `path`; returns how many, and what was left out. */
  exportTo(path: string, format: ExportFormat, which: ConversationId | 'all'): Promise<{ conversations: number; skipped?: string[] }>;
  /** Imports an exported JSON file. */
  importFrom(path: string): Promise<ImportResult>;
}

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
}

/** Everything the IPC handlers call. */
export interface Services {
  readonly dataDir: string;
  readonly appInfo: AppInfo;
  readonly store: Store;
  readonly images: ImageStore;
  readonly engine: EngineHost;
  readonly engineController: EngineController;
  readonly chat: ChatService;
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
  /** The history's integrity checks (`store/health.ts`). */
  readonly health: HistoryHealth;
  /** The start-up clean-up of leftovers (`stale-partials.ts`): the paths removed. */
  readonly startupCleanup: Promise<string[]>;
  /**
   * After damage was found: stops everything (as `close`), then restores the last backup or starts
   * an empty history, the damaged file kept aside. Open new services afterwards (the app restarts).
   */
  recoverHistory(choice: 'restore' | 'fresh'): Promise<{ choice: 'restore' | 'fresh'; movedAside: string[] }>;
  /** Loads the active model if none is loaded; throws `NO_MODEL` when none is chosen. */
  ensureModel(): Promise<void>;
  /** Stops everything: cancels chats and tasks, stops the engine, closes the database. */
  close(): Promise<void>;
}

/** Opens every service on `dataDir`; see the module comment. */
export function createServices(opts: ServicesOptions): Services {
  const dataDir = opts.dataDir;
  mkdirSync(dataDir, { recursive: true });
  const events = new EventBus();
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
    settings = new SettingsService(opts.settingsStorage ?? new JsonFileSettingsStorage(dataDir));
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
    log: new NetworkLog({ file: join(dataDir, 'logs', 'network.jsonl') }),
  });
  const engine = new EngineHost(opts.engineWorkerUrl, { spawn: opts.engineSpawner });
  const engineController = new EngineController(engine, (status) => events.emit('engine:status', status));
  const chat = new ChatService({ store, images, engine, ...opts.chat });
  const models = new ModelsService({
    dataDir,
    engine: engineController,
    settings,
    hubEndpoint: opts.hubEndpoint,
    network,
    onTask: (task) => {
      events.emit('models:task', task);
      // Offline by default once a model is installed: a finished download turns offline mode back on.
      if (task.kind === 'pull' && task.state === 'done' && !settings.get().offlineMode) settings.set({ offlineMode: true });
    },
    onChange: (ids) => events.emit('models:changed', { ids }),
  });
  const folders = new FolderGrants(imageBase);
  const openedPhotos = new OpenedPhotos({
    put: (path, o) => images.put(path, o),
    toStoredImage: (record, name) => toStoredImage(record, name, imageBase),
    notify: (count) => events.emit('app:photos-opened', { count }),
  });

  const unsubscribers = [
    chat.subscribe((event) => {
      engineController.observeChat(event);
      events.emit('chat:event', event);
      if (event.type === 'error' && event.error.code === 'DB_CORRUPT') health.noticeCorrupt();
    }),
    settings.onChange((next, changed) => {
      events.emit('settings:changed', { settings: next, changed });
      if (changed.includes('offlineMode')) network.offlineChanged();
      // Choosing a model in settings loads it (models.select sets the same id: no loop).
      if (changed.includes('activeModelId') && next.activeModelId && next.activeModelId !== engineController.modelId && !engineController.busy) {
        models.select(next.activeModelId).catch(() => {
          // The status event carries the error.
        });
        return;
      }
      // A new provider, thread count or faster-start choice takes effect by reloading the model,
      // when one is loaded and idle. Turning faster start off deletes its copy once the engine no
      // longer maps it: after that reload, or at once when no model is loaded (otherwise the next
      // start deletes it).
      const id = engineController.modelId;
      const dropCopy = changed.includes('fasterStart') && !next.fasterStart;
      const reload = changed.includes('executionProvider') || changed.includes('threads') || changed.includes('fasterStart');
      if (id && !engineController.busy && reload) {
        engineController.load(id, models.dirOf(id), models.loadOptions()).then(
          () => (dropCopy ? models.clearPrepacked() : undefined),
          () => {
            // The status event carries the error.
          },
        ).catch(() => {
          // Best effort: the next start deletes the copy.
        });
      } else if (!id && dropCopy) {
        models.clearPrepacked().catch(() => {
          // Best effort: the next start deletes the copy.
        });
      }
    }),
  ];

  let loadingActive: Promise<void> | null = null;
  const ensureModel = async (): Promise<void> => {
    if (engineController.modelId && engine.engineInfo) return;
    // After a crash the engine host reloads the last model by itself on the next request.
    if (engineController.status().state === 'crashed') return;
    const active = settings.get().activeModelId;
    if (!active) throw new OwleryError('NO_MODEL', 'No model is chosen yet: import or download one in Settings → Models.');
    loadingActive ??= models.select(active).then(
      () => {
        loadingActive = null;
      },
      (err: unknown) => {
        loadingActive = null;
        throw err;
      },
    );
    await loadingActive;
  };

  // A faster-start copy left behind (turned off while an answer was running, or before a crash).
  if (!settings.get().fasterStart) {
    models.clearPrepacked().catch(() => {
      // Best effort: the next start tries again.
    });
  }
  if ((opts.autoLoadModel ?? true) && settings.get().activeModelId) {
    ensureModel().catch(() => {
      // Reported through the engine status.
    });
  }

  let closed: Promise<void> | null = null;
  const shutDown = (): Promise<void> => {
    closed ??= (async () => {
      await health.dispose();
      for (const u of unsubscribers) u();
      await chat.dispose().catch(() => {});
      await models.dispose().catch(() => {});
      engineController.dispose();
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
    engineController,
    chat,
    settings,
    models,
    folders,
    dialogs: opts.dialogs ?? CANCELLING_DIALOGS,
    exporter: opts.exporter ?? exportBackend({ store, images, appVersion: appInfo.version }, opts.printToPdf),
    events,
    network,
    openedPhotos,
    maxImageBytes: opts.maxImageBytes ?? 50 * 1024 * 1024,
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
    ensureModel,
    async close() {
      await shutDown();
      lock.release();
    },
  };
}

/** The exporter over `src-main/export`. */
export function exportBackend(ctx: { store: Store; images: ImageStore; appVersion: string }, printToPdf?: PrintToPdf): ExportBackend {
  return {
    async exportTo(path, format, which) {
      const summary = await exportConversations(ctx, { format, conversations: which === 'all' ? 'all' : [which], dest: path, printToPdf });
      return { conversations: summary.conversations, skipped: summary.skipped };
    },
    importFrom: (path) => importJson(ctx, path),
  };
}

/** Sampling options and aspect mode for a chat request: settings, then the request's overrides. */
export function generationFor(
  services: Pick<Services, 'settings'>,
  overrides: { temperature?: number; topP?: number; topK?: number; repetitionPenalty?: number; maxNewTokens?: number; seed?: number; aspectMode?: 'resize' | 'pad' | 'crop' } = {},
): { sampling: ReturnType<typeof samplingFromSettings>; aspectMode: 'resize' | 'pad' | 'crop' } {
  const s = services.settings.get();
  const { aspectMode, ...sampling } = overrides;
  const merged = { ...samplingFromSettings(s), ...sampling };
  if (sampling.temperature !== undefined) merged.greedy = sampling.temperature === 0;
  return { sampling: merged, aspectMode: aspectMode ?? s.aspectMode };
}
