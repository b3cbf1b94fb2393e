/**
 * The app shell's state: which screen is on, the engine's status (and loading or unloading the
 * model), app info, the installed models' names (for the header), the keyboard-shortcut sheet, and
 * the settings the shell applies itself (theme, chat text size, the collapsed sidebar). Settings
 * are read here and followed through `settings:changed`; the settings screen changes most of them,
 * the shell the sidebar's.
 */
import type { AppCommand, AppInfo, EngineStatus, OwleryClient } from '../../../src-shared/ipc/index.ts';
import { DEFAULT_SETTINGS } from '../../../src-shared/settings.ts';
import type { Settings, Theme } from '../../../src-shared/settings.ts';
import { describeError } from '../errors.ts';
import { providerLabel } from '../format.ts';

/** The screens of the main area. */
export type View = 'chat' | 'photos' | 'models' | 'settings' | 'trash';

/** Shell state; create one per window and call {@link AppManager.start}. */
export class AppManager {
  view = $state<View>('chat');
  info = $state<AppInfo | null>(null);
  engine = $state<EngineStatus | null>(null);
  settings = $state<Settings>({ ...DEFAULT_SETTINGS });
  /** Settings have been read once (until then the first-run check must wait). */
  settingsLoaded = $state(false);
  /** The user finished or skipped the first-run screen in this session. */
  firstRunDone = $state(false);
  /** The export dialog is open. */
  exportOpen = $state(false);
  /** The conversations sidebar is shown (only matters in narrow windows). */
  sidebarOpen = $state(false);
  /** The keyboard-shortcut sheet is open. */
  shortcutsOpen = $state(false);
  /** A load or unload of the model asked for here is under way. */
  modelBusy = $state<'load' | 'unload' | null>(null);
  /** Why the last load or unload asked for here failed. */
  modelError = $state<string | null>(null);
  /** A failure to reach the main process at start. */
  startError = $state<string | null>(null);
  /** When the model load under way began here (`performance.now()`), for its elapsed seconds. */
  loadingSince = $state(performance.now());
  /** Installed models' names by id (followed through `models:changed`), for the header. */
  modelNames = $state<Readonly<Record<string, string>>>({});

  readonly #client: OwleryClient;
  readonly #commandHandlers = new Set<(command: AppCommand) => void>();

  constructor(client: OwleryClient) {
    this.#client = client;
  }

  /** The theme in force: `light` or `dark` (resolving `system` with `prefersDark`). */
  resolvedTheme(prefersDark: boolean): Exclude<Theme, 'system'> {
    const t = this.settings.theme;
    return t === 'system' ? (prefersDark ? 'dark' : 'light') : t;
  }

  /** True while no model is chosen and the first-run screen has not been dismissed. */
  get needsFirstRun(): boolean {
    return this.settingsLoaded && !this.firstRunDone && this.settings.activeModelId === null;
  }

  /** Reads app info, engine status and settings, and follows their events; returns a stop function. */
  start(): () => void {
    const offs = [
      this.#client.engine.onStatus((s) => this.#engineStatus(s)),
      this.#client.settings.onChange((e) => (this.settings = e.settings)),
      this.#client.app.onCommand((e) => this.command(e.command)),
      this.#client.models.onChange(() => void this.#loadNames()),
    ];
    void this.#loadNames();
    void Promise.all([this.#client.app.info(), this.#client.engine.status(), this.#client.settings.get()]).then(
      ([info, engine, settings]) => {
        this.info = info;
        if (!this.engine) this.#engineStatus(engine);
        this.settings = settings;
        this.settingsLoaded = true;
      },
      (err: unknown) => {
        this.startError = describeError(err);
        this.settingsLoaded = true;
      },
    );
    return () => offs.forEach((off) => off());
  }

  async #loadNames(): Promise<void> {
    try {
      this.modelNames = Object.fromEntries((await this.#client.models.list()).map((m) => [m.id, m.name]));
    } catch {
      // Names are a nicety: the header shows ids until the list can be read.
    }
  }

  #engineStatus(s: EngineStatus): void {
    if (s.state === 'loading' && this.engine?.state !== 'loading') this.loadingSince = performance.now();
    this.engine = s;
  }

  /** Shows a screen (closing the narrow-window sidebar). */
  navigate(view: View): void {
    this.view = view;
    this.sidebarOpen = false;
  }

  /** Collapses the sidebar to a rail, or expands it (remembered in the settings). */
  async setSidebarCollapsed(collapsed: boolean): Promise<void> {
    this.settings = { ...this.settings, sidebarCollapsed: collapsed };
    try {
      this.settings = await this.#client.settings.set({ patch: { sidebarCollapsed: collapsed } });
    } catch {
      // Not remembered this time; the sidebar still follows the click.
    }
  }

  /** Loads the active model now (the next question would otherwise load it). */
  loadModel(): Promise<void> {
    return this.#modelAction('load', () => this.#client.engine.load());
  }

  /** Releases the model's memory; the next question loads it again. */
  unloadModel(): Promise<void> {
    return this.#modelAction('unload', () => this.#client.engine.unload());
  }

  async #modelAction(kind: 'load' | 'unload', call: () => Promise<EngineStatus>): Promise<void> {
    if (this.modelBusy) return;
    this.modelBusy = kind;
    this.modelError = null;
    try {
      this.engine = await call();
    } catch (err) {
      this.modelError = describeError(err);
    } finally {
      this.modelBusy = null;
    }
  }

  /** Registers what to do on menu commands (and their shortcuts); returns an unregister function. */
  onCommand(handler: (command: AppCommand) => void): () => void {
    this.#commandHandlers.add(handler);
    return () => this.#commandHandlers.delete(handler);
  }

  /** Runs a command from the menu or a shortcut. */
  command(command: AppCommand): void {
    if (command === 'settings') this.navigate('settings');
    else if (command === 'models') this.navigate('models');
    for (const h of this.#commandHandlers) h(command);
  }

  /** A model's name, or its id when the name is not known yet. */
  modelName(id: string): string {
    return this.modelNames[id] ?? id;
  }

  /** A short line about the engine for the header: the model's name, the device, the state. */
  get engineSummary(): string {
    const e = this.engine;
    if (!e) return '';
    const model = e.modelId ? this.modelName(e.modelId) : 'No model';
    const device = e.provider ? ` on ${providerLabel(e.provider.used)}` : '';
    switch (e.state) {
      case 'loading':
        return `Loading ${model}…`;
      case 'crashed':
        return `${model} stopped unexpectedly`;
      case 'error':
        return `${model}: ${e.error?.message ?? 'failed to load'}`;
      case 'idle':
        return e.modelId ? `${model} (not loaded)` : this.settings.activeModelId ? `${this.modelName(this.settings.activeModelId)} (not loaded)` : 'No model chosen';
      default:
        return `${model}${device}`;
    }
  }
}
