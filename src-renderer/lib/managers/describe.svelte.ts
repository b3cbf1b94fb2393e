/**
 * Describing photos in the Photos panel (issue 14; the service is src-main/describe, docs/describe.md):
 * describe jobs started on the open folder or on photos chosen in it, followed live through
 * `describe:event` (state, n of N, photos per minute, time left, the photo being described),
 * paused, resumed and cancelled; the photos a job could not describe; a photo's description with
 * who wrote it how; search over captions and keywords with keyword chips; and a folder's
 * descriptions exported as CSV or JSON through main's save dialog.
 *
 * Folders and photos are the ids of the Photos panel (`images:pick-folder` / `images:list-folder`);
 * main answers with names and ids, never paths.
 */
import type {
  DescribeJobInfo,
  DescribePhotoError,
  DescriptionSearchHit,
  FolderEntryId,
  FolderId,
  KeywordCount,
  OwleryClient,
  PhotoDescriptionInfo,
  SidecarNaming,
} from '../../../src-shared/ipc/index.ts';
import { describeError, isCancellation } from '../components/models/format.ts';

/** The part of the client describing uses. */
export type DescribeClient = Pick<OwleryClient, 'describe'>;

/** Jobs listed (the newest first). */
const JOBS_SHOWN = 10;
/** Keyword chips offered. */
const CHIPS_SHOWN = 24;
/** Search hits shown. */
const HITS_SHOWN = 200;

/** How a job is started. */
export interface StartOptions {
  /** Photos of the folder chosen one by one; absent: the whole folder. */
  entryIds?: FolderEntryId[];
  recursive?: boolean;
  /** Write XMP sidecars named so; `null`: none (the default). */
  sidecars?: SidecarNaming | null;
}

/** Whether a job can still change. */
export function isLive(job: DescribeJobInfo): boolean {
  return job.state === 'queued' || job.state === 'running' || job.state === 'paused';
}

/** See the module comment. */
export class DescribeManager {
  /** The newest jobs first, updated by events. */
  jobs = $state<DescribeJobInfo[]>([]);
  /** Photos of the shown job that were not described, or whose sidecar was not written. */
  errors = $state<DescribePhotoError[]>([]);
  /** Which job {@link errors} are of. */
  errorsOf = $state<number | null>(null);
  /** Words searched for. */
  query = $state('');
  /** Keyword chips chosen: every one must be among a photo's keywords. */
  chips = $state<string[]>([]);
  /** The open folder's most frequent keywords. */
  keywords = $state<KeywordCount[]>([]);
  /** Hits of the last search (`null`: no search). */
  hits = $state<DescriptionSearchHit[] | null>(null);
  /** Hits chosen for a chat, by sha256. */
  chosen = $state.raw<ReadonlySet<string>>(new Set());
  /** True while a search runs. */
  searching = $state(false);
  /** The last failure, in plain words. */
  error = $state<string | null>(null);
  /** What the last export did, in words. */
  exported = $state<string | null>(null);

  // Getters, not `$derived` fields: the manager outlives the screen that first asked for it, and a
  // derived created while a component initialises stops updating once that component is gone.

  /** The job the panel shows: the newest that can still change, else the newest. */
  get current(): DescribeJobInfo | null {
    return this.jobs.find(isLive) ?? this.jobs[0] ?? null;
  }
  /** True while a search box or chip filter is in use. */
  get searchActive(): boolean {
    return this.query.trim() !== '' || this.chips.length > 0;
  }
  /** The chosen hits, in rank order. */
  get chosenHits(): DescriptionSearchHit[] {
    return (this.hits ?? []).filter((h) => this.chosen.has(h.sha256));
  }

  private searchToken = 0;

  constructor(private readonly client: DescribeClient) {}

  /** Follows `describe:event`s and lists the jobs; returns a stop function. */
  start(): () => void {
    const off = this.client.describe.onEvent((e) => {
      if (e.type === 'job') {
        this.upsert(e.job);
        if (this.errorsOf === null) void this.loadErrors(e.job.id);
      } else if (e.error && e.jobId === this.errorsOf) {
        this.errors = [...this.errors, e.error];
      }
    });
    void this.loadJobs();
    return off;
  }

  /** Lists the newest jobs. */
  async loadJobs(): Promise<void> {
    try {
      this.jobs = await this.client.describe.jobs({ limit: JOBS_SHOWN });
      if (this.current) await this.loadErrors(this.current.id);
    } catch (err) {
      this.fail(err);
    }
  }

  /** Starts describing the open folder, or photos chosen in it. */
  async describe(folderId: FolderId, opts: StartOptions = {}): Promise<DescribeJobInfo | null> {
    this.error = null;
    try {
      const job = await this.client.describe.start({ folderId, entryIds: opts.entryIds, recursive: opts.recursive ?? false, sidecars: opts.sidecars ?? null });
      this.upsert(job);
      this.errors = [];
      this.errorsOf = job.id;
      return job;
    } catch (err) {
      this.fail(err);
      return null;
    }
  }

  /** Pauses, resumes or cancels a job. */
  async control(jobId: number, action: 'pause' | 'resume' | 'cancel'): Promise<void> {
    this.error = null;
    try {
      this.upsert(await this.client.describe[action]({ jobId }));
    } catch (err) {
      this.fail(err);
    }
  }

  /** Loads the photos a job could not describe. */
  async loadErrors(jobId: number): Promise<void> {
    try {
      const errors = await this.client.describe.errors({ jobId });
      this.errors = errors;
      this.errorsOf = jobId;
    } catch (err) {
      this.fail(err);
    }
  }

  /** A photo's description with its provenance (`null`: none yet). */
  async description(folderId: FolderId, entryId: FolderEntryId): Promise<PhotoDescriptionInfo | null> {
    try {
      return await this.client.describe.description({ folderId, entryId });
    } catch (err) {
      this.fail(err);
      return null;
    }
  }

  /** Reads the folder's keyword chips. */
  async loadKeywords(folderId: FolderId): Promise<void> {
    try {
      this.keywords = await this.client.describe.keywords({ folderId, limit: CHIPS_SHOWN });
    } catch (err) {
      this.fail(err);
    }
  }

  /** Chooses or drops a keyword chip, then searches again. */
  toggleChip(folderId: FolderId, keyword: string): Promise<void> {
    this.chips = this.chips.includes(keyword) ? this.chips.filter((k) => k !== keyword) : [...this.chips, keyword];
    return this.search(folderId);
  }

  /** Searches the folder's descriptions for {@link query} and the chips (no search: both empty). */
  async search(folderId: FolderId): Promise<void> {
    const token = ++this.searchToken;
    if (!this.searchActive) {
      this.hits = null;
      this.chosen = new Set();
      this.searching = false;
      return;
    }
    this.searching = true;
    try {
      const hits = await this.client.describe.search({ folderId, query: this.query.trim(), keywords: this.chips, limit: HITS_SHOWN });
      if (token !== this.searchToken) return;
      this.hits = hits;
      const found = new Set(hits.map((h) => h.sha256));
      this.chosen = new Set([...this.chosen].filter((s) => found.has(s)));
    } catch (err) {
      if (token === this.searchToken) this.fail(err);
    } finally {
      if (token === this.searchToken) this.searching = false;
    }
  }

  /** Clears the search box and the chips. */
  clearSearch(): void {
    this.query = '';
    this.chips = [];
    this.hits = null;
    this.chosen = new Set();
    this.searchToken++;
    this.searching = false;
  }

  /** Chooses or unchooses a hit for "New chat about these photos". */
  toggleChosen(sha256: string): void {
    const next = new Set(this.chosen);
    if (next.has(sha256)) next.delete(sha256);
    else next.add(sha256);
    this.chosen = next;
  }

  /** Clears the chosen hits. */
  clearChosen(): void {
    this.chosen = new Set();
  }

  /** Saves the folder's descriptions (and its subfolders') as CSV or JSON through the save dialog. */
  async exportFolder(folderId: FolderId, format: 'csv' | 'json'): Promise<void> {
    this.error = null;
    this.exported = null;
    try {
      const r = await this.client.describe.exportFolder({ folderId, format });
      if (r.saved) this.exported = `Saved the descriptions of ${r.count === 1 ? '1 photo' : `${r.count} photos`} to ${r.fileName}.`;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Clears the error message. */
  clearError(): void {
    this.error = null;
  }

  private upsert(job: DescribeJobInfo): void {
    const i = this.jobs.findIndex((j) => j.id === job.id);
    this.jobs = i < 0 ? [job, ...this.jobs].slice(0, JOBS_SHOWN) : this.jobs.map((j) => (j.id === job.id ? job : j));
  }

  private fail(err: unknown): void {
    if (!isCancellation(err)) this.error = describeError(err);
  }
}

let shared: DescribeManager | null = null;

/** The app's describe manager (jobs keep being followed while the panel is closed). */
export function getDescribeManager(client: DescribeClient): DescribeManager {
  if (!shared) {
    shared = new DescribeManager(client);
    shared.start();
  }
  return shared;
}
