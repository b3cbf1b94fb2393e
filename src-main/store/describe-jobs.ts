/**
 * Describe jobs in the history database (schema v4): a job, its photos in order, and where each
 * photo stands. A photo stays `pending` until it is finished (described, skipped or failed), and
 * finishing it is one write, so a job stopped at any moment — pause, quit, crash, kill — continues
 * at its first pending photo and never redoes a finished one. The describe service
 * (src-main/describe) runs the jobs; this part only keeps them.
 *
 * Reached as `store.describeJobs`; every method turns SQLite failures into `OwleryError`s.
 */
import type Database from 'better-sqlite3';
import type { DescribeItemError, DescribeItemState, DescribeJobId, DescribeJobSpec, DescribeJobState } from '../../src-shared/describe.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { StatementCache } from './descriptions.ts';
import { classified } from './errors.ts';

/** A job's row. */
export interface DescribeJobRecord {
  id: DescribeJobId;
  state: DescribeJobState;
  spec: DescribeJobSpec;
  promptVersion: string;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
}

/** How many photos of a job are in each state, and how long the described ones took. */
export interface DescribeItemCounts {
  total: number;
  pending: number;
  described: number;
  skipped: number;
  failed: number;
  /** Sum of the described photos' times, in ms. */
  describedMs: number;
}

/** How a photo of a job ended. */
export interface FinishedItem {
  state: Exclude<DescribeItemState, 'pending'>;
  sha256: string | null;
  descriptionId: number | null;
  error: { code: ErrorCode; message: string } | null;
  sidecarError: { code: ErrorCode; message: string } | null;
  ms: number | null;
}

interface JobRow {
  id: number;
  state: DescribeJobState;
  spec_json: string;
  prompt_version: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

function toJob(r: JobRow): DescribeJobRecord {
  return {
    id: r.id,
    state: r.state,
    spec: JSON.parse(r.spec_json) as DescribeJobSpec,
    promptVersion: r.prompt_version,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    finishedAt: r.finished_at,
  };
}

/** See the module comment. */
export class DescribeJobStore {
  private readonly sql: StatementCache;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly now: () => number,
  ) {
    this.sql = new StatementCache(db);
  }

  /** Creates a job with its photos (in the given order), in one transaction. */
  create(spec: DescribeJobSpec, promptVersion: string, paths: readonly string[], state: DescribeJobState = 'queued'): DescribeJobRecord {
    return this.guard(() => this.db.transaction(() => {
      const { id } = this.sql.get('insertJob').get({ state, spec: JSON.stringify(spec), promptVersion, now: this.now() }) as { id: number };
      const insert = this.sql.get('insertItem');
      paths.forEach((p, i) => insert.run(id, i, p));
      return this.get(id);
    }).immediate());
  }

  /** A job by id. Throws `NOT_FOUND`. */
  get(id: DescribeJobId): DescribeJobRecord {
    return this.guard(() => {
      const r = this.sql.get('getJob').get(id) as JobRow | undefined;
      if (!r) throw new OwleryError('NOT_FOUND', `There is no describe job ${id}.`);
      return toJob(r);
    });
  }

  /** The newest jobs first. */
  list(limit = 50): DescribeJobRecord[] {
    return this.guard(() => (this.sql.get('listJobs').all(Math.max(1, Math.floor(limit))) as JobRow[]).map(toJob));
  }

  /** Jobs in a state, oldest first. */
  inState(state: DescribeJobState): DescribeJobRecord[] {
    return this.guard(() => (this.sql.get('jobsInState').all(state) as JobRow[]).map(toJob));
  }

  /** Sets a job's state (`done` and `cancelled` record when it ended). */
  setState(id: DescribeJobId, state: DescribeJobState): DescribeJobRecord {
    return this.guard(() => {
      const info = this.sql.get('setJobState').run({ id, state, now: this.now() });
      if (info.changes === 0) throw new OwleryError('NOT_FOUND', `There is no describe job ${id}.`);
      return this.get(id);
    });
  }

  /** Deletes a job and its photo list (the descriptions stay). */
  delete(id: DescribeJobId): void {
    this.guard(() => this.sql.get('deleteJob').run(id));
  }

  /** Counts per state. */
  counts(id: DescribeJobId): DescribeItemCounts {
    return this.guard(() => {
      const c: DescribeItemCounts = { total: 0, pending: 0, described: 0, skipped: 0, failed: 0, describedMs: 0 };
      for (const r of this.sql.get('itemCounts').all(id) as { state: DescribeItemState; n: number; ms: number }[]) {
        c[r.state] = r.n;
        c.total += r.n;
        if (r.state === 'described') c.describedMs = r.ms;
      }
      return c;
    });
  }

  /** The first photo still pending, if any. */
  nextPending(id: DescribeJobId): { position: number; path: string } | undefined {
    return this.guard(() => this.sql.get('nextPending').get(id) as { position: number; path: string } | undefined);
  }

  /** Records how a pending photo ended. Returns false when it was not pending (already finished). */
  finishItem(jobId: DescribeJobId, position: number, item: FinishedItem): boolean {
    return this.guard(() => this.sql.get('finishItem').run({
      jobId,
      position,
      state: item.state,
      sha256: item.sha256,
      descriptionId: item.descriptionId,
      errorCode: item.error?.code ?? null,
      errorMessage: item.error?.message ?? null,
      sidecarErrorCode: item.sidecarError?.code ?? null,
      sidecarErrorMessage: item.sidecarError?.message ?? null,
      ms: item.ms === null ? null : Math.round(item.ms),
      now: this.now(),
    }).changes === 1);
  }

  /** The photos that failed or whose sidecar was not written, in job order. */
  errors(id: DescribeJobId, limit = 1000): DescribeItemError[] {
    return this.guard(() => {
      const rows = this.sql.get('itemErrors').all(id, Math.max(1, Math.floor(limit))) as {
        path: string; error_code: ErrorCode | null; error_message: string | null; sidecar_error_code: ErrorCode | null; sidecar_error_message: string | null;
      }[];
      return rows.map((r): DescribeItemError => (r.error_code
        ? { path: r.path, stage: 'describe', error: { code: r.error_code, message: r.error_message ?? '' } }
        : { path: r.path, stage: 'sidecar', error: { code: r.sidecar_error_code!, message: r.sidecar_error_message ?? '' } }));
    });
  }

  /** Runs `fn` in one write transaction. */
  transaction<T>(fn: () => T): T {
    return this.guard(() => this.db.transaction(fn).immediate());
  }

  private guard<T>(fn: () => T): T {
    return classified(this.file, fn);
  }
}
