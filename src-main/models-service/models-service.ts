/**
 * The models service: installed model packages under `<dataDir>/models/<id>/`, and the long tasks
 * that add or check them (import a local checkpoint, pull one from the hub, verify checksums),
 * with progress events and cancellation. Selecting a package loads it in the engine and makes it
 * the active one in settings.
 *
 * - Before converting, a checkpoint folder chosen in the dialog is read (config and tensor list,
 *   no weights) and its forms are sized for this machine (`forms.ts`); the import converts it into
 *   the form asked for, by default the one recommended, named after the model and the form
 *   (`mPLUG-Owl2 7B · 4-bit`) unless a name is given. A package can be renamed later (its
 *   manifest's `name`; the id stays).
 * - A package folder's name is its id (the converter's `mplug-owl2-<hash>`). Conversions write to
 *   `<models>/.staging-<task>/` and are renamed into place when complete, so the list never shows
 *   half a package; converting a checkpoint that is already installed keeps the installed one.
 * - Pulls download into `<dataDir>/downloads/<repo>@<revision>/` (resumable: a cancelled or failed
 *   pull continues where it stopped), then convert; the download is removed once converted.
 * - Listing never hashes: verification shows `verified` when this session verified the package
 *   or the package's checksum stamp still vouches for every file, else `unverified`.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { openCheckpoint, readConfig } from '../../models/checkpoint/index.ts';
import { checkCheckpointTensors, convertCheckpoint } from '../../models/convert.ts';
import type { ConvertProgress } from '../../models/convert.ts';
import { estimateForms, sizeLabel } from '../../models/forms.ts';
import type { Owl2Config } from '../../models/owl2/config.ts';
import { synthConfigJson } from '../../models/synth/presets.ts';
import { MANIFEST_FILE, VERIFIED_STAMP_FILE, readPackage, replaceFile, validateManifest } from '../../models/package/index.ts';
import type { PackageManifest } from '../../models/package/index.ts';
import { DEFAULT_ENDPOINT, pullCheckpoint } from '../../models/pull/index.ts';
import type { FetchFn, PullProgress } from '../../models/pull/index.ts';
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import { MODEL_PRESETS } from '../../src-shared/ipc/index.ts';
import type {
  ChosenCheckpoint,
  EngineStatus,
  InstalledModel,
  ModelForms,
  ModelPreset,
  ModelTask,
  ModelTaskKind,
  ModelVerification,
  PullModelRequest,
  TaskId,
} from '../../src-shared/ipc/index.ts';
import { MODEL_ID_PATTERN } from '../../src-shared/settings.ts';
import { verifyPackage } from '../engine/index.ts';
import { machineFacts, recommendForm } from './forms.ts';
import type { MachineGpu } from './forms.ts';

/** What the models service needs from the engine (the `EngineService` implements it). */
export interface ModelEngine {
  /** The model loaded now, if any. */
  readonly modelId: string | null;
  /** Loads a package by id (from {@link ModelsService.dirOf}). */
  load(modelId: string): Promise<EngineStatus>;
  providerFor(modelId: string): EngineStatus['provider'];
}

/** What the models service needs from settings. */
export interface ModelSettings {
  get(): { activeModelId: string | null; offlineMode: boolean };
  set(patch: { activeModelId: string | null }): unknown;
}

/** The network gate pulls go through (src-main/services/network.ts implements it). */
export interface ModelDownloads {
  /** Opens a user-started download: throws `OFFLINE` in offline mode; its `fetch` is the only one a pull uses. */
  userDownload(what: { label: string; url: string }): { fetch: FetchFn; signal: AbortSignal; close(): void };
}

/** Options of {@link ModelsService}. */
export interface ModelsServiceOptions {
  /** The app's data folder: packages go to `models/`, downloads to `downloads/`. */
  dataDir: string;
  engine: ModelEngine;
  settings: ModelSettings;
  /** Receives every task update. */
  onTask?: (task: ModelTask) => void;
  /** Called when packages were added, deleted or selected. */
  onChange?: (ids: string[]) => void;
  /** Hub endpoint for pulls (default: the public Hugging Face Hub). */
  hubEndpoint?: string;
  /** The network gate (default: none; pulls then use the global fetch, refused only by the offline setting). */
  network?: ModelDownloads;
  /** Access token for gated repositories (default: `HF_TOKEN` from the environment). */
  hubToken?: string;
  /** Smallest time between two progress events of one task, in ms (default 100; state changes always go out). */
  progressIntervalMs?: number;
  /** Clock (default `Date.now`). */
  now?: () => number;
  /**
   * The graphics card the engine can use, for recommending a form (default: none known). The app
   * passes what the engine reports; a source that knows the card's memory plugs in here.
   */
  gpu?: () => MachineGpu | null | Promise<MachineGpu | null>;
}

/** Options of an import or a pull's conversion. */
export interface ConvertChoice {
  /** Package name (default: the model's name in the form made, e.g. `mPLUG-Owl2 7B · 4-bit`). */
  name?: string;
  /** Weight format to read when the folder holds both. */
  prefer?: 'safetensors' | 'pytorch';
  /** The form to make (default: the one recommended for this machine). */
  preset?: ModelPreset;
}

interface TaskEntry {
  task: ModelTask;
  controller: AbortController;
  lastSent: number;
  done: Promise<void>;
}

function plainError(err: unknown): ModelTask['error'] {
  const { stack: _stack, ...rest } = serializeError(err);
  return rest;
}

/** See the module comment. */
export class ModelsService {
  /** `<dataDir>/models`. */
  readonly modelsDir: string;
  private readonly downloadsDir: string;
  private readonly tasks = new Map<TaskId, TaskEntry>();
  private readonly verification = new Map<string, ModelVerification>();
  /** Checkpoint folders chosen in the dialog and read, by the id the renderer names them with. */
  private readonly chosen = new Map<string, string>();
  private readonly now: () => number;
  private readonly progressIntervalMs: number;

  /** A models service over `<dataDir>/models`. */
  constructor(private readonly opts: ModelsServiceOptions) {
    this.modelsDir = join(opts.dataDir, 'models');
    this.downloadsDir = join(opts.dataDir, 'downloads');
    this.now = opts.now ?? Date.now;
    this.progressIntervalMs = opts.progressIntervalMs ?? 100;
  }

  /** Installed packages, by name. Folders that are not packages are skipped; damaged ones are listed as `failed`. */
  async list(): Promise<InstalledModel[]> {
    let names: string[];
    try {
      names = (await readdir(this.modelsDir, { withFileTypes: true })).filter((d) => d.isDirectory() && MODEL_ID_PATTERN.test(d.name)).map((d) => d.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const out: InstalledModel[] = [];
    for (const id of names) {
      const model = await this.info(id).catch(() => null);
      if (model) out.push(model);
    }
    return out.sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** One installed package. Throws `NOT_FOUND` when there is none with this id. */
  async info(id: string): Promise<InstalledModel> {
    const dir = this.dirOf(id);
    const manifestText = await readFile(join(dir, MANIFEST_FILE), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new OwleryError('NOT_FOUND', `There is no model package ${id}.`, { id });
      throw err;
    });
    const active = this.opts.settings.get().activeModelId === id;
    let manifest: PackageManifest;
    try {
      manifest = validateManifest(JSON.parse(manifestText), `${id}/${MANIFEST_FILE}`);
    } catch (err) {
      return {
        id,
        name: id,
        family: 'unknown',
        sizeBytes: await folderSize(dir),
        quantization: null,
        preset: null,
        sourceFormat: null,
        converterVersion: null,
        createdAt: null,
        contextLength: null,
        verification: { state: 'failed', error: plainError(err) },
        active,
        provider: null,
      };
    }
    return {
      id,
      name: manifest.name,
      family: manifest.family,
      sizeBytes: manifest.files.reduce((n, f) => n + f.size, 0) + Buffer.byteLength(manifestText),
      quantization: { ...manifest.quantization },
      preset: (MODEL_PRESETS as readonly string[]).includes(manifest.preset ?? '') ? (manifest.preset as ModelPreset) : 'custom',
      sourceFormat: manifest.source.format,
      converterVersion: manifest.converterVersion,
      createdAt: manifest.createdAt,
      contextLength: contextLengthOf(manifest),
      verification: this.verification.get(id) ?? (await stampVouches(dir, manifest)),
      active,
      provider: this.opts.engine.providerFor(id),
    };
  }

  /** The folder of a package (id checked against the id pattern: never a path). */
  dirOf(id: string): string {
    return packageDir(this.modelsDir, id);
  }

  /**
   * Makes `id` the active package and loads it in the engine (with the provider and threads from
   * settings). The setting changes only once the load succeeded.
   */
  async select(id: string): Promise<EngineStatus> {
    const dir = this.dirOf(id);
    if (!(await stat(join(dir, MANIFEST_FILE)).catch(() => null))) throw new OwleryError('NOT_FOUND', `There is no model package ${id}.`, { id });
    const s = this.opts.settings.get();
    let status: EngineStatus;
    try {
      status = await this.opts.engine.load(id);
      this.verification.set(id, { state: 'verified', error: null });
    } catch (err) {
      if (err instanceof OwleryError && err.code === 'PACKAGE_INVALID') this.verification.set(id, { state: 'failed', error: plainError(err) });
      throw err;
    }
    if (s.activeModelId !== id) this.opts.settings.set({ activeModelId: id });
    this.opts.onChange?.([id]);
    return status;
  }

  /**
   * Deletes a package. Refused (`ENGINE_BUSY`) for the package the engine has loaded: select
   * another one first. Deleting the active package clears the active setting.
   */
  async delete(id: string): Promise<void> {
    const dir = this.dirOf(id);
    if (!(await stat(dir).catch(() => null))) throw new OwleryError('NOT_FOUND', `There is no model package ${id}.`, { id });
    if (this.opts.engine.modelId === id) {
      throw new OwleryError('ENGINE_BUSY', 'This model is loaded; choose another model before deleting it.', { id });
    }
    for (const t of this.tasks.values()) {
      if (t.task.state === 'running' && t.task.modelId === id) throw new OwleryError('ENGINE_BUSY', 'This model is being verified; cancel that first.', { id });
    }
    // Renamed first, so the list never shows a half-deleted package.
    const trash = join(this.modelsDir, `.deleting-${id}-${randomBytes(4).toString('hex')}`);
    await rename(dir, trash);
    await rm(trash, { recursive: true, force: true });
    this.verification.delete(id);
    if (this.opts.settings.get().activeModelId === id) this.opts.settings.set({ activeModelId: null });
    this.opts.onChange?.([id]);
  }

  /** The forms of the official 7B model on this machine (what a download will make). */
  async forms(): Promise<ModelForms> {
    return this.formsFor(synthConfigJson('7b').config);
  }

  /**
   * Reads a checkpoint folder the user chose (its config and tensor list, no weights): refuses one
   * that is not an mPLUG-Owl2 checkpoint before anything starts, and sizes its forms for this
   * machine. The returned id names the folder to {@link importChosen}.
   */
  async chooseCheckpoint(dir: string): Promise<ChosenCheckpoint> {
    const { config } = await readConfig(dir);
    const reader = await openCheckpoint(dir);
    let forms: ModelForms;
    try {
      checkCheckpointTensors(config, reader);
      forms = await this.formsFor(config, reader);
    } finally {
      await reader.close();
    }
    const checkpointId = randomBytes(9).toString('base64url');
    this.chosen.set(checkpointId, dir);
    // The last few folders chosen are enough (one is converted right after it is chosen).
    for (const old of [...this.chosen.keys()].slice(0, Math.max(0, this.chosen.size - 16))) this.chosen.delete(old);
    return { checkpointId, folderName: basename(dir) || dir, format: reader.format, forms };
  }

  /** Starts converting a folder read with {@link chooseCheckpoint}. Throws `NOT_FOUND` for an unknown id. */
  importChosen(checkpointId: string, options: ConvertChoice = {}): TaskId {
    const dir = this.chosen.get(checkpointId);
    if (!dir) throw new OwleryError('NOT_FOUND', 'That checkpoint folder is no longer chosen; choose it again.', { checkpointId });
    return this.importCheckpoint(dir, options);
  }

  /** Starts converting the checkpoint in `checkpointDir` (a folder the user chose). */
  importCheckpoint(checkpointDir: string, options: ConvertChoice = {}): TaskId {
    return this.start('import', basename(checkpointDir), null, async (entry) => {
      await this.convertInto(entry, checkpointDir, options);
    });
  }

  /**
   * Renames a package: its manifest's `name`, rewritten in place (written to a temporary file,
   * flushed, renamed). The id, the files and their checksums stay.
   */
  async rename(id: string, name: string): Promise<InstalledModel> {
    const clean = name.trim();
    if (!clean) throw new OwleryError('INVALID_ARGUMENT', 'A model needs a name.');
    const file = join(this.dirOf(id), MANIFEST_FILE);
    const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new OwleryError('NOT_FOUND', `There is no model package ${id}.`, { id });
      throw err;
    });
    const manifest = validateManifest(JSON.parse(text), `${id}/${MANIFEST_FILE}`);
    await replaceFile(file, `${file}.${randomBytes(4).toString('hex')}.tmp`, `${JSON.stringify({ ...manifest, name: clean }, null, 2)}\n`);
    this.opts.onChange?.([id]);
    return this.info(id);
  }

  /** Starts downloading a checkpoint from the hub and converting it. Refused in offline mode. */
  pull(req: PullModelRequest): TaskId {
    // The gate refuses (and logs) a pull in offline mode; without one, the setting alone decides.
    const grant = this.opts.network?.userDownload({ label: `the download of ${req.repo}`, url: this.opts.hubEndpoint ?? DEFAULT_ENDPOINT });
    if (!grant && this.opts.settings.get().offlineMode) {
      throw new OwleryError('OFFLINE', 'Offline mode is on: turn it off in Settings to download models.');
    }
    const revision = req.revision ?? 'main';
    const folder = `${req.repo.replace('/', '--')}@${revision.replace(/[^A-Za-z0-9._-]/g, '_')}`;
    return this.start('pull', req.repo, null, async (entry) => {
      const dest = join(this.downloadsDir, folder);
      try {
        await mkdir(dest, { recursive: true });
        await pullCheckpoint(req.repo, dest, {
          endpoint: this.opts.hubEndpoint,
          revision,
          token: this.opts.hubToken ?? process.env.HF_TOKEN,
          signal: grant ? AbortSignal.any([entry.controller.signal, grant.signal]) : entry.controller.signal,
          fetch: grant?.fetch,
          onProgress: (p: PullProgress) => this.progress(entry, `download:${p.phase}`, p.bytesDone, p.bytesTotal || null, 'bytes'),
        });
      } catch (err) {
        // Stopped by the gate (offline mode turned on): say so rather than "cancelled".
        if (grant?.signal.aborted && !entry.controller.signal.aborted) throw grant.signal.reason;
        throw err;
      } finally {
        grant?.close();
      }
      await this.convertInto(entry, dest, { name: req.name, preset: req.preset });
      await rm(dest, { recursive: true, force: true });
    });
  }

  /** Starts re-checking every checksum of a package. */
  verify(id: string): TaskId {
    const dir = this.dirOf(id);
    return this.start('verify', id, id, async (entry) => {
      const manifest = validateManifest(JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8').catch(() => {
        throw new OwleryError('NOT_FOUND', `There is no model package ${id}.`, { id });
      })));
      const total = manifest.files.reduce((n, f) => n + f.size, 0);
      let done = 0;
      try {
        await readPackage(dir, {
          verify: true,
          force: true,
          signal: entry.controller.signal,
          onBytes: (n: number) => this.progress(entry, 'checksumming', (done += n), total, 'bytes'),
        });
      } catch (err) {
        if (err instanceof OwleryError && err.code === 'PACKAGE_INVALID') this.verification.set(id, { state: 'failed', error: plainError(err) });
        throw err;
      }
      this.verification.set(id, { state: 'verified', error: null });
      this.opts.onChange?.([id]);
    });
  }

  /** Tasks of this session, oldest first. */
  listTasks(): ModelTask[] {
    return [...this.tasks.values()].map((t) => ({ ...t.task }));
  }

  /** Cancels a running task (it ends `cancelled`; a pull keeps its partial download for next time). */
  cancel(taskId: TaskId): boolean {
    const t = this.tasks.get(taskId);
    if (!t || t.task.state !== 'running') return false;
    t.controller.abort();
    return true;
  }

  /** Resolves when a task has ended (tests, shutdown). */
  async settled(taskId: TaskId): Promise<ModelTask> {
    const t = this.tasks.get(taskId);
    if (!t) throw new OwleryError('NOT_FOUND', `There is no task ${taskId}.`);
    await t.done;
    return { ...t.task };
  }

  /** Cancels every running task and waits for them to end. */
  async dispose(): Promise<void> {
    for (const t of this.tasks.values()) t.controller.abort();
    await Promise.all([...this.tasks.values()].map((t) => t.done));
  }

  // Internals -------------------------------------------------------------------------------

  private start(kind: ModelTaskKind, label: string, modelId: string | null, body: (entry: TaskEntry) => Promise<void>): TaskId {
    const taskId = randomBytes(9).toString('base64url');
    const entry: TaskEntry = {
      task: { taskId, kind, state: 'running', phase: 'starting', done: 0, total: null, unit: 'bytes', label, modelId, error: null, startedAt: this.now(), seq: 0 },
      controller: new AbortController(),
      lastSent: 0,
      done: Promise.resolve(),
    };
    this.tasks.set(taskId, entry);
    this.send(entry);
    entry.done = (async () => {
      try {
        await body(entry);
        this.finish(entry, { state: 'done', phase: 'done' });
      } catch (err) {
        if (entry.controller.signal.aborted) this.finish(entry, { state: 'cancelled', phase: 'cancelled' });
        else this.finish(entry, { state: 'failed', phase: 'failed', error: plainError(err) });
      }
    })();
    return taskId;
  }

  private finish(entry: TaskEntry, patch: Partial<ModelTask>): void {
    entry.task = { ...entry.task, ...patch };
    this.send(entry);
    // Keep the last 50 finished tasks.
    const finished = [...this.tasks.values()].filter((t) => t.task.state !== 'running');
    for (const t of finished.slice(0, Math.max(0, finished.length - 50))) this.tasks.delete(t.task.taskId);
  }

  private progress(entry: TaskEntry, phase: string, done: number, total: number | null, unit: ModelTask['unit']): void {
    const phaseChanged = entry.task.phase !== phase;
    entry.task = { ...entry.task, phase, done, total, unit };
    const t = this.now();
    if (phaseChanged || t - entry.lastSent >= this.progressIntervalMs || (total !== null && done >= total)) this.send(entry);
  }

  private send(entry: TaskEntry): void {
    entry.lastSent = this.now();
    entry.task = { ...entry.task, seq: entry.task.seq + 1 };
    this.opts.onTask?.({ ...entry.task });
  }

  /** Converts into a staging folder, then renames it to `<models>/<id>` (keeping an installed copy). */
  /** The forms of a model (sized from its config, or from an open checkpoint's tensors) on this machine. */
  private async formsFor(config: Owl2Config, reader?: Parameters<typeof estimateForms>[1]): Promise<ModelForms> {
    await mkdir(this.modelsDir, { recursive: true });
    const gpu = (await this.opts.gpu?.()) ?? null;
    return recommendForm(`mPLUG-Owl2 ${sizeLabel(config)}`, await estimateForms(config, reader), await machineFacts(this.modelsDir, gpu));
  }

  private async convertInto(entry: TaskEntry, checkpointDir: string, options: ConvertChoice): Promise<void> {
    await mkdir(this.modelsDir, { recursive: true });
    const { config } = await readConfig(checkpointDir);
    const preset = options.preset ?? (await this.formsFor(config)).recommended;
    const staging = join(this.modelsDir, `.staging-${entry.task.taskId}`);
    const pkgDir = join(staging, 'package');
    await mkdir(staging, { recursive: true });
    try {
      const manifest = await convertCheckpoint(checkpointDir, pkgDir, {
        verify: { run: verifyPackage },
        signal: entry.controller.signal,
        name: options.name, // the converter names it after the model and the form otherwise
        prefer: options.prefer,
        preset,
        onProgress: (p: ConvertProgress) => {
          if (p.phase === 'writing-graphs') this.progress(entry, p.phase, p.tensorsDone, p.tensorsTotal, 'tensors');
          else this.progress(entry, p.phase, p.bytesDone, p.bytesTotal || null, 'bytes');
        },
      });
      const id = manifest.id;
      entry.task = { ...entry.task, modelId: id };
      const dest = this.dirOf(id);
      if (await stat(join(dest, MANIFEST_FILE)).catch(() => null)) {
        // Same source files, same id: the installed package stays (it may be loaded).
        return;
      }
      await rm(dest, { recursive: true, force: true });
      await rename(pkgDir, dest);
      this.verification.set(id, { state: 'verified', error: null });
      this.opts.onChange?.([id]);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/** The folder of package `id` under `modelsDir` (id checked against the id pattern: never a path). */
export function packageDir(modelsDir: string, id: string): string {
  if (!MODEL_ID_PATTERN.test(id)) throw new OwleryError('INVALID_ARGUMENT', `${JSON.stringify(id)} is not a model package id.`);
  return join(modelsDir, id);
}

function contextLengthOf(m: PackageManifest): number | null {
  const n = m.config.llm?.maxPositions;
  return typeof n === 'number' ? n : null;
}

async function folderSize(dir: string): Promise<number> {
  let total = 0;
  for (const d of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (d.isFile()) total += (await stat(join(dir, d.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** `verified` when the package's checksum stamp still matches every file's size, time and hash. */
async function stampVouches(dir: string, manifest: PackageManifest): Promise<ModelVerification> {
  let stamp: { version?: number; files?: Record<string, { size: number; mtimeMs: number; sha256: string }> };
  try {
    stamp = JSON.parse(await readFile(join(dir, VERIFIED_STAMP_FILE), 'utf8'));
  } catch {
    return { state: 'unverified', error: null };
  }
  if (stamp.version !== 1 || !stamp.files) return { state: 'unverified', error: null };
  for (const f of manifest.files) {
    const s = stamp.files[f.path];
    const st = await stat(join(dir, f.path)).catch(() => null);
    if (!st) {
      return {
        state: 'failed',
        error: { name: 'OwleryError', code: 'PACKAGE_INVALID', message: `${f.path}: listed in ${MANIFEST_FILE} but missing`, details: { file: f.path } },
      };
    }
    if (!s || s.sha256 !== f.sha256 || s.size !== st.size || s.mtimeMs !== st.mtimeMs) return { state: 'unverified', error: null };
  }
  return { state: 'verified', error: null };
}
