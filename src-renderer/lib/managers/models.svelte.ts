/**
 * State of the Models screen and the first-run screen: installed packages, the engine's status,
 * and the long tasks (import, pull, verify) with their progress, ETA and cancel.
 *
 * One instance per app (see {@link getModelsManager}); tests build their own over a fake client.
 * It listens to `models:task`, `models:changed`, `engine:status` and `settings:changed` events and
 * keeps no copy of anything main does not say.
 * @see docs/style.md H13 (managers in `*.svelte.ts`), H6 (cancellation is not an error)
 */
import { MAX_REPO_CHARS } from '../../../src-shared/limits.ts';
import type { EngineStatus, InstalledModel, ModelForms, ModelPreset, ModelTask, OwleryClient, TaskId } from '../../../src-shared/ipc/index.ts';
import { REQUEST_SCHEMAS } from '../../../src-shared/ipc/index.ts';
import { describeError, describeSerialized, isCancellation } from '../components/models/format.ts';

/** The part of the client the models screens use. */
export type ModelsClient = Pick<OwleryClient, 'models' | 'engine' | 'settings'>;

/** What the user sees of a task's progress. */
export interface TaskProgress {
  /** Percent of the current phase (0–100), `null` when the total is unknown. */
  percent: number | null;
  /** Seconds left in the current phase, `null` until a rate is known. */
  etaSeconds: number | null;
}

/** A task as the screen shows it. */
export interface TaskView extends TaskProgress {
  task: ModelTask;
  /** The phase in words (`Converting weights`). */
  phaseLabel: string;
  /** The task's error in plain words (failed tasks). */
  errorText: string | null;
}

const PHASE_LABELS: Record<string, string> = {
  starting: 'Starting',
  'hashing-source': 'Reading the checkpoint',
  'writing-graphs': 'Converting the weights',
  copying: 'Copying the tokenizer and settings',
  checksumming: 'Checking every file',
  verifying: 'Checking the new model',
  'download:listing': 'Listing the files on the hub',
  'download:downloading': 'Downloading',
  'download:verifying': 'Checking the downloaded files',
  'download:done': 'Download finished',
  done: 'Finished',
  failed: 'Failed',
  cancelled: 'Cancelled',
};

/** The phase of a task in words. */
export function phaseLabel(phase: string): string {
  return PHASE_LABELS[phase] ?? phase.replace(/^download:/, '').replace(/-/g, ' ');
}

/** Task kinds in words (`Import`, `Download`, `Check`). */
export const TASK_KIND_LABELS: Readonly<Record<ModelTask['kind'], string>> = { import: 'Import', pull: 'Download', verify: 'Check' };

/**
 * Normalises what a user typed as a hub repository: trims it and accepts a pasted page address
 * (`https://huggingface.co/owner/name/tree/main`). Returns `owner/name` or the trimmed input.
 */
export function normaliseRepo(input: string): string {
  const t = input.trim();
  const m = /^(?:https?:\/\/)?(?:www\.)?huggingface\.co\/([^/\s?#]+\/[^/\s?#]+)/i.exec(t);
  return m ? m[1]! : t.replace(/\/+$/, '');
}

/**
 * Checks a hub repository id with the shared request schema; returns a message in plain words,
 * or `null` when it is valid.
 */
export function repoError(input: string): string | null {
  const repo = normaliseRepo(input);
  if (repo === '') return 'Enter the repository as owner/name.';
  if (repo.length > MAX_REPO_CHARS) return `A repository id has at most ${MAX_REPO_CHARS} characters.`;
  try {
    REQUEST_SCHEMAS['models:pull'].parse({ repo });
    return null;
  } catch {
    return 'Enter the repository as owner/name, with letters, digits, dots, dashes or underscores (for example MAGAer13/mplug-owl2-llama2-7b).';
  }
}

/**
 * A conversion waiting for the user to choose its form: a checkpoint folder read from the dialog,
 * or a hub repository to download. The chooser shows its forms, the recommended one chosen.
 */
export type PendingChoice =
  | { kind: 'import'; checkpointId: string; label: string; forms: ModelForms }
  | { kind: 'pull'; repo: string; revision?: string; label: string; forms: ModelForms };

interface RateMark {
  phase: string;
  at: number;
  done: number;
}

/** Manages installed models and model tasks; see the module comment. */
export class ModelsManager {
  /** Installed packages, by name. */
  models = $state<InstalledModel[]>([]);
  /** Tasks of this session, oldest first (finished ones stay until dismissed). */
  tasks = $state<ModelTask[]>([]);
  /** The engine's status (which model is loaded, on which provider). */
  engine = $state<EngineStatus | null>(null);
  /** True once the first list arrived. */
  loaded = $state(false);
  /** Offline mode (pulls are refused while it is on). */
  offline = $state(true);
  /** The active package id from settings (it may not be installed). */
  activeId = $state<string | null>(null);
  /** The last failure of a user action, in plain words. */
  error = $state<string | null>(null);
  /** The package being selected, deleted, checked or renamed, and how. */
  pending = $state<{ id: string; action: 'select' | 'delete' | 'verify' | 'rename' } | null>(null);
  /** A conversion waiting for its form to be chosen (see {@link PendingChoice}). */
  choice = $state<PendingChoice | null>(null);

  // Getters, not `$derived` fields: the manager is shared by every screen, and a derived created
  // while a component initialises stops updating once that component is gone.

  /** True when no package is installed (the first-run screen shows). */
  get empty(): boolean {
    return this.loaded && this.models.length === 0;
  }
  /** The active package, if installed. */
  get active(): InstalledModel | null {
    return this.models.find((m) => m.active) ?? null;
  }
  /** Tasks still running. */
  get running(): ModelTask[] {
    return this.tasks.filter((t) => t.state === 'running');
  }

  private readonly marks = new Map<TaskId, RateMark>();
  private readonly dismissed = new Set<TaskId>();
  /** Tasks seen running here, so only tasks that finish now can choose the active model. */
  private readonly watched = new Set<TaskId>();
  private readonly unsubscribers: (() => void)[] = [];
  private refreshing: Promise<void> | null = null;
  private refreshAgain = false;

  /** `now` is the clock for ETAs (ms); tests pass their own. */
  constructor(
    private readonly client: ModelsClient,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Subscribes to events and loads the list, tasks, engine status and offline setting. */
  async start(): Promise<void> {
    if (this.unsubscribers.length === 0) {
      this.unsubscribers.push(
        this.client.models.onTask((task) => this.onTask(task)),
        this.client.models.onChange(() => void this.refresh()),
        this.client.engine.onStatus((status) => {
          this.engine = status;
        }),
        this.client.settings.onChange(({ settings, changed }) => {
          this.offline = settings.offlineMode;
          this.activeId = settings.activeModelId;
          if (changed.includes('activeModelId')) void this.refresh();
        }),
      );
    }
    try {
      const [tasks, engine, settings] = await Promise.all([this.client.models.tasks(), this.client.engine.status(), this.client.settings.get()]);
      for (const t of tasks) this.onTask(t);
      this.engine = engine;
      this.offline = settings.offlineMode;
      this.activeId = settings.activeModelId;
    } catch (err) {
      this.fail(err);
    }
    await this.refresh();
  }

  /** Stops listening to events. */
  dispose(): void {
    for (const u of this.unsubscribers.splice(0)) u();
  }

  /** Reloads the installed list (coalesces calls made while one is in flight). */
  refresh(): Promise<void> {
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        try {
          this.models = await this.client.models.list();
          this.loaded = true;
        } catch (err) {
          this.fail(err);
        }
      } while (this.refreshAgain);
      this.refreshing = null;
    })();
    return this.refreshing;
  }

  /** True while the folder dialog of {@link importFolder} is open, or a download's forms are asked for. */
  importing = $state(false);

  /**
   * Opens the folder dialog; main reads the checkpoint chosen and sizes its forms, which the
   * chooser then shows ({@link choice}). Resolves `true` when a folder was chosen and read.
   */
  async importFolder(): Promise<boolean> {
    this.error = null;
    this.importing = true;
    try {
      const chosen = await this.client.models.chooseCheckpoint();
      if (!chosen) return false;
      this.choice = { kind: 'import', checkpointId: chosen.checkpointId, label: chosen.folderName, forms: chosen.forms };
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    } finally {
      this.importing = false;
    }
  }

  /**
   * Asks which form a download should make: the id is checked first (an invalid id is never sent,
   * the returned message says why), then the forms of the 7B model are shown ({@link choice}).
   */
  async pull(input: string, revision?: string): Promise<{ error: string } | null> {
    this.error = null;
    const invalid = repoError(input);
    if (invalid) return { error: invalid };
    const rev = revision?.trim();
    this.importing = true;
    try {
      const repo = normaliseRepo(input);
      this.choice = { kind: 'pull', repo, ...(rev ? { revision: rev } : {}), label: repo, forms: await this.client.models.forms() };
      return null;
    } catch (err) {
      return { error: describeError(err) };
    } finally {
      this.importing = false;
    }
  }

  /**
   * Starts the conversion waiting in {@link choice}, in the form chosen and with the name given
   * (blank: the model's name in that form). Resolves to the task id, or `null` when main refused
   * ({@link error} says why; the choice stays open to try again).
   */
  async confirmChoice(preset: ModelPreset, name: string): Promise<TaskId | null> {
    const c = this.choice;
    if (!c) return null;
    this.error = null;
    const named = name.trim() ? { name: name.trim() } : {};
    try {
      const { taskId } =
        c.kind === 'import'
          ? await this.client.models.import({ checkpointId: c.checkpointId, preset, ...named })
          : await this.client.models.pull({ repo: c.repo, ...(c.revision ? { revision: c.revision } : {}), preset, ...named });
      this.choice = null;
      return taskId;
    } catch (err) {
      this.fail(err);
      return null;
    }
  }

  /** Closes the chooser without converting anything. */
  cancelChoice(): void {
    this.choice = null;
  }

  /** Renames a package (the name shown everywhere; its id stays). Resolves `true` when it was renamed. */
  async rename(id: string, name: string): Promise<boolean> {
    let ok = false;
    await this.act(id, 'rename', async () => {
      await this.client.models.rename({ id, name });
      ok = true;
    });
    return ok;
  }

  /** Makes a package the active one (it is loaded in the engine). */
  async select(id: string): Promise<void> {
    await this.act(id, 'select', async () => {
      this.engine = await this.client.models.select({ id });
      this.activeId = id;
    });
  }

  /** Deletes a package (the screen asks first). */
  async delete(id: string): Promise<void> {
    await this.act(id, 'delete', () => this.client.models.delete({ id }));
  }

  /** Re-checks every checksum of a package (a task). */
  async verify(id: string): Promise<void> {
    await this.act(id, 'verify', () => this.client.models.verify({ id }));
  }

  /** Cancels a running task (it ends `cancelled`). */
  async cancelTask(taskId: TaskId): Promise<void> {
    try {
      await this.client.models.cancelTask({ taskId });
    } catch (err) {
      this.fail(err);
    }
  }

  /** Hides a finished task. */
  dismissTask(taskId: TaskId): void {
    this.dismissed.add(taskId);
    this.tasks = this.tasks.filter((t) => t.taskId !== taskId);
    this.marks.delete(taskId);
  }

  /** Clears the error banner. */
  clearError(): void {
    this.error = null;
  }

  /** A task with its progress and plain-words texts. */
  view(task: ModelTask): TaskView {
    return { task, ...this.progress(task), phaseLabel: phaseLabel(task.phase), errorText: describeSerialized(task.error) };
  }

  /** Percent and ETA of a task's current phase (the rate is measured since the phase began). */
  progress(task: ModelTask): TaskProgress {
    const percent = task.total && task.total > 0 ? Math.min(100, Math.max(0, (task.done / task.total) * 100)) : null;
    let etaSeconds: number | null = null;
    const mark = this.marks.get(task.taskId);
    if (task.state === 'running' && task.total !== null && mark && mark.phase === task.phase) {
      const elapsed = (this.now() - mark.at) / 1000;
      const rate = (task.done - mark.done) / elapsed;
      if (elapsed >= 1 && rate > 0) etaSeconds = Math.max(0, (task.total - task.done) / rate);
    }
    return { percent, etaSeconds };
  }

  private onTask(task: ModelTask): void {
    if (this.dismissed.has(task.taskId)) return;
    const mark = this.marks.get(task.taskId);
    if (!mark || mark.phase !== task.phase) this.marks.set(task.taskId, { phase: task.phase, at: this.now(), done: task.done });
    const i = this.tasks.findIndex((t) => t.taskId === task.taskId);
    if (i < 0) this.tasks = [...this.tasks, task];
    else if (task.seq >= this.tasks[i]!.seq) this.tasks[i] = task;
    // A finished import or pull may have added a package; a verify changes its verification.
    if (task.state !== 'running') void this.refresh();
    // A model added while none is active becomes the active one (there is nothing to choose from).
    if (task.state === 'running') this.watched.add(task.taskId);
    else if (this.watched.delete(task.taskId) && task.state === 'done' && task.kind !== 'verify' && task.modelId && this.activeId === null) {
      void this.select(task.modelId);
    }
  }

  private async act(id: string, action: 'select' | 'delete' | 'verify' | 'rename', body: () => Promise<unknown>): Promise<void> {
    this.error = null;
    this.pending = { id, action };
    try {
      await body();
      await this.refresh();
    } catch (err) {
      this.fail(err);
    } finally {
      this.pending = null;
    }
  }

  private fail(err: unknown): void {
    if (!isCancellation(err)) this.error = describeError(err);
  }
}

let shared: ModelsManager | null = null;

/** The app's models manager, created (and started) on first use over `client`. */
export function getModelsManager(client: ModelsClient): ModelsManager {
  if (!shared) {
    shared = new ModelsManager(client);
    void shared.start();
  }
  return shared;
}
