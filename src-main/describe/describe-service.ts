/**
 * The describe service: jobs that caption and keyword whole photo folders (or a selection) with the
 * loaded model, kept in the history database, sharing the one engine with chat.
 *
 * - A job lists its photos when it starts (`start`) and keeps them as rows (store
 *   `describeJobs`); one job runs at a time, the others wait (`queued`) in order.
 * - Per photo: its sha256 (not re-hashed while its size and time are unchanged); skipped when it
 *   was described already with the same model package (id and manifest sha256), prompt version and
 *   content; else described (describer.ts) and saved with its provenance; then, when the job asks,
 *   its XMP sidecar is written (xmp.ts). A failure is recorded for that photo (or its sidecar) and
 *   the job goes on.
 * - `pause` and `cancel` stop the photo being described at once (it stays pending and is done
 *   again on `resume`); a job running when the app quits or crashes is still `running` in the
 *   database and continues at its first pending photo when the service starts (`resumeInterrupted`).
 * - Chat comes first: before each photo the job waits while chat needs the engine (`chatBusy`),
 *   and a chat request sent during a photo runs before that photo's next request. The engine keeps
 *   its model loaded throughout, and reuses the fixed instruction prefix's KV cache from photo to
 *   photo (prompts.ts).
 * - Events (`subscribe`): the job after every state change and, while it runs, its progress (n of
 *   N, photos per minute, ETA, the current photo) at most every `progressIntervalMs`; every
 *   finished photo.
 *
 * Runs unchanged in plain Node (tests, web harness) and in the Electron main process. The IPC
 * handlers and the Photos panel call the methods below; paths are absolute.
 */
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type {
  DescribeEvent, DescribeItemError, DescribeJob, DescribeJobId, DescribeJobSpec, DescribedPhoto, DescriptionHit, KeywordCount, SidecarNaming,
} from '../../src-shared/describe.ts';
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';
import { SILENT } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';
import { publicDescription } from '../store/descriptions.ts';
import type { DescriptionSearchOptions } from '../store/descriptions.ts';
import type { DescribeItemCounts, DescribeJobRecord, FinishedItem } from '../store/describe-jobs.ts';
import type { Store } from '../store/store.ts';
import { describePhoto, modelIdentity } from './describer.ts';
import type { DescribeEngine } from './describer.ts';
import { descriptionsToCsv, descriptionsToJson, writeExportFile } from './export.ts';
import type { DescriptionExportFormat } from './export.ts';
import { identifyPhoto, listPhotos } from './photos.ts';
import { PROMPT_VERSION } from './prompts.ts';
import { checkSidecarFolders, writeSidecar } from './xmp.ts';

/** What `start` accepts (the renderer's request, once the IPC layer has turned its ids into paths). */
export interface DescribeRequest {
  /** Folders to describe (absolute paths). */
  folders?: string[];
  /** Photos chosen one by one (absolute paths). */
  files?: string[];
  /** Descend into subfolders (default false). */
  recursive?: boolean;
  /** Write XMP sidecars: `true` for `photo.jpg.xmp`, or the naming (default: none). */
  sidecars?: boolean | SidecarNaming;
}

/** Options of {@link DescribeService}. */
export interface DescribeServiceOptions {
  store: Store;
  /** The engine shared with chat (the app's `EngineService`). */
  engine: DescribeEngine & { ensureModel?: () => Promise<void> };
  /** True while chat needs the engine: the job waits before its next photo. */
  chatBusy?: () => boolean;
  /** How often a waiting job checks `chatBusy` again, in ms (default 100). */
  pollMs?: number;
  /** Shortest time between two progress events of the running job, in ms (default 250; state changes are always reported). */
  progressIntervalMs?: number;
  log?: Logger;
}

/** Engine failures that stop the whole job (it is paused), not one photo. */
const JOB_STOPPING: ReadonlySet<ErrorCode> = new Set(['NO_MODEL', 'PACKAGE_INVALID', 'PROVIDER_UNAVAILABLE', 'DB_READONLY', 'DISK_FULL', 'DB_CORRUPT']);

/** See the module comment. */
export class DescribeService {
  private readonly store: Store;
  private readonly engine: DescribeServiceOptions['engine'];
  private readonly chatBusy: () => boolean;
  private readonly pollMs: number;
  private readonly log: Logger;
  private readonly listeners = new Set<(e: DescribeEvent) => void>();
  /** The runner, while it runs. */
  private runner: Promise<void> | null = null;
  /** The job being worked on, the photo being described, and how to stop it. */
  private active: { jobId: DescribeJobId; path: string | null; abort: AbortController } | null = null;
  /** The running job's counts, kept in memory while it runs. */
  private live: { jobId: DescribeJobId; counts: DescribeItemCounts } | null = null;
  private lastProgressAt = -Infinity;
  private readonly progressIntervalMs: number;
  /** Why a job was paused by the service (an engine failure), by job id. */
  private readonly stopped = new Map<DescribeJobId, { code: ErrorCode; message: string }>();
  private disposed = false;

  constructor(opts: DescribeServiceOptions) {
    this.store = opts.store;
    this.engine = opts.engine;
    this.chatBusy = opts.chatBusy ?? (() => false);
    this.pollMs = Math.max(1, opts.pollMs ?? 100);
    this.progressIntervalMs = Math.max(0, opts.progressIntervalMs ?? 250);
    this.log = opts.log ?? SILENT;
  }

  /** Receives every event. Returns an unsubscribe function. */
  subscribe(listener: (e: DescribeEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Starts a job (it waits while another runs). Refused before anything is written:
   * `INVALID_ARGUMENT` (nothing to describe, a relative path, no photos found), `FILE_NOT_FOUND`
   * (a folder is missing), `FORBIDDEN` (sidecars asked for and a folder is not writable),
   * `NO_MODEL` (no model chosen) and the model's load errors.
   */
  async start(request: DescribeRequest): Promise<DescribeJob> {
    this.checkOpen();
    const spec = checkRequest(request);
    await this.engine.ensureModel?.();
    const paths = await listPhotos(spec.folders, spec.files, spec.recursive);
    if (paths.length === 0) {
      throw new OwleryError('INVALID_ARGUMENT', `There are no photos in ${spec.folders.map((f) => basename(f)).join(', ')}${spec.recursive ? ' or its subfolders' : ''}.`);
    }
    if (spec.sidecars) await checkSidecarFolders([...spec.folders, ...spec.files.map((f) => dirname(f))]);
    const job = this.store.describeJobs.create(spec, PROMPT_VERSION, paths);
    this.log.info('describe job started', { jobId: job.id, photos: paths.length, recursive: spec.recursive, sidecars: spec.sidecars?.naming ?? null });
    this.changed(job);
    this.kick();
    return this.toJob(job);
  }

  /** Pauses a queued or running job (the photo being described is done again on resume). */
  pause(id: DescribeJobId): DescribeJob {
    const job = this.store.describeJobs.get(id);
    if (job.state === 'paused') return this.toJob(job);
    if (job.state !== 'queued' && job.state !== 'running') throw new OwleryError('INVALID_ARGUMENT', `Describe job ${id} has ended; it cannot be paused.`);
    return this.halt(id, 'paused');
  }

  /** Resumes a paused job (it waits while another runs). */
  resume(id: DescribeJobId): DescribeJob {
    this.checkOpen();
    const job = this.store.describeJobs.get(id);
    if (job.state === 'queued' || job.state === 'running') return this.toJob(job);
    if (job.state !== 'paused') throw new OwleryError('INVALID_ARGUMENT', `Describe job ${id} has ended; start a new one.`);
    this.stopped.delete(id);
    const queued = this.store.describeJobs.setState(id, 'queued');
    this.changed(queued);
    this.kick();
    return this.toJob(queued);
  }

  /** Cancels a job; photos described so far keep their descriptions. */
  cancel(id: DescribeJobId): DescribeJob {
    const job = this.store.describeJobs.get(id);
    if (job.state === 'done' || job.state === 'cancelled') return this.toJob(job);
    return this.halt(id, 'cancelled');
  }

  /** A job with its progress. Throws `NOT_FOUND`. */
  job(id: DescribeJobId): DescribeJob {
    return this.toJob(this.store.describeJobs.get(id));
  }

  /** The newest jobs first. */
  jobs(limit = 50): DescribeJob[] {
    return this.store.describeJobs.list(limit).map((j) => this.toJob(j));
  }

  /** The photos of a job that failed, or whose sidecar was not written. */
  errors(id: DescribeJobId, limit?: number): DescribeItemError[] {
    this.store.describeJobs.get(id);
    return this.store.describeJobs.errors(id, limit);
  }

  /** Why the service paused a job (the engine could not run), if it did. */
  stopReason(id: DescribeJobId): { code: ErrorCode; message: string } | null {
    return this.stopped.get(id) ?? null;
  }

  /** The current description of the photo at `path` (caption, keywords, provenance), or null. */
  description(path: string): DescribedPhoto | null {
    return this.store.descriptions.currentAt(resolve(path)) ?? null;
  }

  /** Search over captions and keywords (see `DescriptionStore.search`). */
  search(query: string, opts: DescriptionSearchOptions = {}): DescriptionHit[] {
    if (typeof query !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'The search must be text.');
    if (opts.keywords !== undefined && (!Array.isArray(opts.keywords) || opts.keywords.some((k) => typeof k !== 'string'))) {
      throw new OwleryError('INVALID_ARGUMENT', 'Keyword filters must be a list of keywords.');
    }
    if (opts.folder !== undefined && (typeof opts.folder !== 'string' || !isAbsolute(opts.folder))) throw new OwleryError('INVALID_ARGUMENT', 'The folder must be an absolute path.');
    return this.store.descriptions.search(query, opts);
  }

  /** The most frequent keywords, for the filter chips. */
  keywordCounts(opts: { folder?: string; limit?: number } = {}): KeywordCount[] {
    return this.store.descriptions.keywordCounts(opts);
  }

  /** A folder's descriptions as CSV or JSON text. */
  renderExport(folder: string, format: DescriptionExportFormat, opts: { recursive?: boolean } = {}): { text: string; count: number } {
    if (format !== 'csv' && format !== 'json') throw new OwleryError('INVALID_ARGUMENT', `Descriptions export as csv or json, not ${String(format)}.`);
    if (typeof folder !== 'string' || !isAbsolute(folder)) throw new OwleryError('INVALID_ARGUMENT', 'The folder must be an absolute path.');
    const abs = resolve(folder);
    const photos = this.store.descriptions.inFolder(abs, opts);
    return { text: format === 'csv' ? descriptionsToCsv(photos) : descriptionsToJson(abs, photos, Date.now()), count: photos.length };
  }

  /** Writes a folder's descriptions to `file` (atomically). */
  async exportFolder(folder: string, file: string, format: DescriptionExportFormat, opts: { recursive?: boolean } = {}): Promise<{ file: string; count: number }> {
    const { text, count } = this.renderExport(folder, format, opts);
    await writeExportFile(file, text);
    return { file, count };
  }

  /** Continues the jobs that were running when the app last stopped, and the queued ones. Returns how many wait. */
  resumeInterrupted(): number {
    this.checkOpen();
    const waiting = this.store.describeJobs.inState('running').length + this.store.describeJobs.inState('queued').length;
    if (waiting > 0) this.kick();
    return waiting;
  }

  /** Resolves once no job is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.runner) await this.runner;
  }

  /** Stops the running photo and the runner; a running job stays `running`, to continue at the next start. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.active?.abort.abort();
    await this.idle();
  }

  // Internals -------------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.disposed) throw new OwleryError('CANCELLED', 'The describe service has been shut down.');
  }

  /** Sets a job's state to paused or cancelled, stopping its photo if it is the one running. */
  private halt(id: DescribeJobId, state: 'paused' | 'cancelled'): DescribeJob {
    const job = this.store.describeJobs.setState(id, state);
    if (this.active?.jobId === id) this.active.abort.abort();
    this.log.info(`describe job ${state}`, { jobId: id });
    this.changed(job);
    return this.toJob(job);
  }

  private kick(): void {
    if (this.runner || this.disposed) return;
    this.runner = this.run()
      .catch((err: unknown) => this.log.error('the describe runner stopped', err))
      .finally(() => {
        this.runner = null;
      });
  }

  /** Runs jobs until none is left: interrupted (`running`) ones first, then `queued` ones in order. */
  private async run(): Promise<void> {
    while (!this.disposed) {
      const next = this.store.describeJobs.inState('running')[0] ?? this.store.describeJobs.inState('queued')[0];
      if (!next) return;
      const job = next.state === 'running' ? next : this.store.describeJobs.setState(next.id, 'running');
      this.changed(job);
      await this.runJob(job);
    }
  }

  private async runJob(job: DescribeJobRecord): Promise<void> {
    // Counted once, then kept up to date here: a re-run over a large library skips photos in
    // microseconds, and counting every job row per photo would cost more than the photos.
    this.live = { jobId: job.id, counts: this.store.describeJobs.counts(job.id) };
    try {
      await this.runItems(job, this.live.counts);
    } finally {
      this.live = null;
    }
  }

  private async runItems(job: DescribeJobRecord, counts: DescribeItemCounts): Promise<void> {
    for (;;) {
      await this.waitForChat();
      if (this.disposed || this.store.describeJobs.get(job.id).state !== 'running') return;
      const item = this.store.describeJobs.nextPending(job.id);
      if (!item) {
        const done = this.store.describeJobs.setState(job.id, 'done');
        this.log.info('describe job done', { jobId: job.id, ...counts });
        this.changed(done);
        return;
      }
      const abort = new AbortController();
      this.active = { jobId: job.id, path: item.path, abort };
      this.progress(job);
      let finished: FinishedItem | null;
      try {
        finished = await this.describeItem(job, item.path, abort.signal);
      } finally {
        this.active = null;
      }
      if (!finished) continue; // stopped: the photo stays pending
      if (finished.error && JOB_STOPPING.has(finished.error.code)) {
        // The engine or the database cannot work at all: pause instead of failing every photo.
        this.stopped.set(job.id, finished.error);
        this.log.warn('describe job paused: the engine or the database cannot work', { jobId: job.id, code: finished.error.code });
        this.changed(this.store.describeJobs.setState(job.id, 'paused'));
        return;
      }
      if (!this.store.describeJobs.finishItem(job.id, item.position, finished)) continue;
      counts.pending--;
      counts[finished.state]++;
      if (finished.state === 'described') counts.describedMs += Math.round(finished.ms ?? 0);
      const stored = finished.sha256 ? this.store.descriptions.current(finished.sha256) : undefined;
      const description = stored && finished.descriptionId !== null ? publicDescription(stored) : null;
      const error: DescribeItemError | null = finished.error
        ? { path: item.path, stage: 'describe', error: finished.error }
        : finished.sidecarError ? { path: item.path, stage: 'sidecar', error: finished.sidecarError } : null;
      this.emit({ type: 'item', jobId: job.id, path: item.path, state: finished.state, description, error });
      this.progress(job);
    }
  }

  /** One photo: identify, skip or describe, save, sidecar. Null when stopped (pause, cancel, shutdown). */
  private async describeItem(job: DescribeJobRecord, path: string, signal: AbortSignal): Promise<FinishedItem | null> {
    let sha256: string | null = null;
    const t0 = performance.now();
    try {
      const known = this.store.descriptions.photoFile(path);
      const id = await identifyPhoto(path, known);
      sha256 = id.sha256;
      if (id !== known) this.store.descriptions.putPhotoFile({ path, ...id });
      await this.engine.ensureModel?.();
      const info = this.engine.info;
      if (!info) throw new OwleryError('NO_MODEL', 'No model is loaded: choose one on the Models screen.');
      const model = await modelIdentity(info);
      let description = this.store.descriptions.find(sha256, model, job.promptVersion);
      const state: FinishedItem['state'] = description ? 'skipped' : 'described';
      if (!description) {
        const d = await describePhoto(this.engine, path, sha256, signal);
        this.store.descriptions.save({
          sha256, caption: d.caption, keywords: d.keywords, packageId: model.packageId, modelSha256: model.modelSha256,
          promptVersion: job.promptVersion, settings: d.settings, describedAt: Date.now(), ms: d.ms,
        });
        description = this.store.descriptions.find(sha256, model, job.promptVersion)!;
      }
      let sidecarError: FinishedItem['sidecarError'] = null;
      if (job.spec.sidecars) {
        try {
          await writeSidecar(path, job.spec.sidecars.naming, {
            caption: description.caption, keywords: description.keywords, packageId: description.provenance.packageId,
            promptVersion: description.provenance.promptVersion, describedAt: description.provenance.describedAt,
          });
        } catch (err) {
          sidecarError = plain(err);
        }
      }
      return { state, sha256, descriptionId: description.id, error: null, sidecarError, ms: state === 'described' ? performance.now() - t0 : null };
    } catch (err) {
      if (signal.aborted || this.disposed) return null;
      const error = plain(err);
      this.log.warn('a photo could not be described', { jobId: job.id, file: basename(path), code: error.code });
      return { state: 'failed', sha256, descriptionId: null, error, sidecarError: null, ms: null };
    }
  }

  /** Waits while chat needs the engine (or until the service stops). */
  private async waitForChat(): Promise<void> {
    while (!this.disposed && this.chatBusy()) await new Promise((r) => setTimeout(r, this.pollMs));
  }

  private toJob(job: DescribeJobRecord): DescribeJob {
    const c = this.live?.jobId === job.id ? this.live.counts : this.store.describeJobs.counts(job.id);
    const msPerPhoto = c.described > 0 ? c.describedMs / c.described : null;
    return {
      id: job.id,
      state: job.state,
      spec: job.spec,
      promptVersion: job.promptVersion,
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      finishedAt: job.finishedAt,
      progress: {
        total: c.total,
        finished: c.described + c.skipped + c.failed,
        described: c.described,
        skipped: c.skipped,
        failed: c.failed,
        photosPerMinute: msPerPhoto ? 60_000 / msPerPhoto : null,
        etaSeconds: msPerPhoto && job.state !== 'done' && job.state !== 'cancelled' ? Math.round((c.pending * msPerPhoto) / 1000) : null,
        current: this.active?.jobId === job.id ? this.active.path : null,
      },
    };
  }

  /** A job's state changed: always reported. */
  private changed(job: DescribeJobRecord): void {
    this.lastProgressAt = performance.now();
    this.emit({ type: 'job', job: this.toJob(job) });
  }

  /** The running job's progress moved: reported at most every `progressIntervalMs`. */
  private progress(job: DescribeJobRecord): void {
    if (this.listeners.size === 0 || performance.now() - this.lastProgressAt < this.progressIntervalMs) return;
    this.changed(job);
  }

  private emit(event: DescribeEvent): void {
    for (const fn of this.listeners) {
      try {
        fn(event);
      } catch {
        // A failing subscriber must not stop the job or the other subscribers.
      }
    }
  }
}

function plain(err: unknown): { code: ErrorCode; message: string } {
  const { code, message } = serializeError(err);
  return { code, message };
}

/** The request, checked and normalised into a job spec. */
function checkRequest(r: DescribeRequest): DescribeJobSpec {
  if (!r || typeof r !== 'object') throw new OwleryError('INVALID_ARGUMENT', 'Say which folders or photos to describe.');
  const list = (v: unknown, what: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || v.some((p) => typeof p !== 'string' || p === '')) throw new OwleryError('INVALID_ARGUMENT', `${what} must be a list of paths.`);
    for (const p of v as string[]) if (!isAbsolute(p)) throw new OwleryError('INVALID_ARGUMENT', `${what} must be absolute paths, got ${p}.`);
    return (v as string[]).map((p) => resolve(p));
  };
  const folders = list(r.folders, 'Folders');
  const files = list(r.files, 'Photos');
  if (folders.length === 0 && files.length === 0) throw new OwleryError('INVALID_ARGUMENT', 'Say which folders or photos to describe.');
  let sidecars: DescribeJobSpec['sidecars'] = null;
  if (r.sidecars === true) sidecars = { naming: 'photo.jpg.xmp' };
  else if (r.sidecars === 'photo.jpg.xmp' || r.sidecars === 'photo.xmp') sidecars = { naming: r.sidecars };
  else if (r.sidecars !== undefined && r.sidecars !== false) throw new OwleryError('INVALID_ARGUMENT', 'Sidecars are named "photo.jpg.xmp" or "photo.xmp".');
  return { folders, files, recursive: r.recursive === true, sidecars };
}
