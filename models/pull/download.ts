/**
 * One file over HTTP into `<dest>.part`, resumable: an existing `.part` is continued with
 * `Range: bytes=N-`; failures are retried with exponential backoff (network errors, stalls, short
 * bodies, 408/429/5xx); the result is checked against the expected size and sha256 (or git blob id)
 * and only then renamed to `dest`. Cancellation leaves the `.part` for a later resume. A checksum
 * mismatch deletes the `.part`, so nothing is ever left looking complete.
 */
import { createHash } from 'node:crypto';
import type { Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { PullError, isRetryable } from './errors.ts';
import { causeText, httpError, retryAfterMs } from './hub.ts';
import type { FetchFn } from './hub.ts';

/** Suffix of files being downloaded. */
export const PART_SUFFIX = '.part';

/** What the file must turn out to be. */
export interface ExpectedFile {
  size?: number;
  sha256?: string;
  /** git blob id (sha1), checked when there is no sha256. */
  gitOid?: string;
}

/** Retry policy. */
export interface RetryOptions {
  /** Further attempts after the first (default 5). */
  retries?: number;
  /** First backoff delay in ms, doubled per attempt with ±25 % jitter (default 1000). */
  backoffMs?: number;
  /** Longest backoff delay in ms (default 30000). */
  maxBackoffMs?: number;
  /** Abandon an attempt after this long without a byte (default 60000 ms). */
  idleTimeoutMs?: number;
}

/** A retry about to happen. */
export interface RetryEvent {
  file: string;
  /** 1 for the first retry. */
  attempt: number;
  delayMs: number;
  error: Error;
}

/** Options of `downloadFile`. */
export interface DownloadFileOptions extends RetryOptions {
  url: string;
  dest: string;
  expected: ExpectedFile;
  headers?: Record<string, string>;
  /** Name used in messages (default: the base name of `dest`). */
  name?: string;
  signal?: AbortSignal;
  /** Bytes of this file on disk so far (called as bytes arrive, and once when resuming). */
  onBytes?: (fileBytes: number) => void;
  onRetry?: (e: RetryEvent) => void;
  /** Makes the requests (default: the global `fetch`). */
  fetch?: FetchFn;
}

/** What `downloadFile` did. */
export interface DownloadResult {
  size: number;
  sha256: string;
  /** Bytes that were already in the `.part` when this call started (0: fresh download). */
  resumedFrom: number;
  /** HTTP requests made. */
  requests: number;
}

async function fileSize(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch {
    return undefined;
  }
}

/** sha256 of a file's first `length` bytes (all of it when undefined). */
async function hashFile(path: string, length: number | undefined, signal?: AbortSignal): Promise<{ sha256: Hash; bytes: number }> {
  const h = createHash('sha256');
  let bytes = 0;
  if (length === 0) return { sha256: h, bytes };
  const stream = createReadStream(path, { end: length === undefined ? undefined : length - 1, highWaterMark: 1 << 20, signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    h.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: h, bytes };
}

async function gitBlobSha1(path: string, size: number): Promise<string> {
  const h = createHash('sha1').update(`blob ${size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) h.update(chunk);
  return h.digest('hex');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Backoff before retry `attempt` (1-based): base·2^(attempt−1), capped, ±25 % jitter. */
export function backoffDelay(attempt: number, base: number, max: number): number {
  const d = Math.min(max, base * 2 ** (attempt - 1));
  return Math.round(d * (0.75 + Math.random() * 0.5));
}

function diskFull(name: string, dest: string): PullError {
  return new PullError('disk-full', `${name}: the disk is full while writing ${dest}${PART_SUFFIX}; free some space and pull again (the download resumes)`, { file: name, path: dest });
}

/** Parses `Content-Range: bytes a-b/total`; returns the start offset. */
function rangeStart(header: string | null): number | undefined {
  const m = header ? /^bytes\s+(\d+)-\d+\/(\d+|\*)$/i.exec(header.trim()) : null;
  return m ? Number(m[1]) : undefined;
}

interface AttemptState {
  /** Running sha256 over exactly `bytes` bytes of the .part file. */
  hash?: Hash;
  bytes: number;
}

/**
 * Downloads `url` to `dest` (see the module comment). Throws `PullError` (`cancelled`, `checksum`,
 * `size`, `not-found`, `unauthorized`, `forbidden`, `network`, `http`, `disk-full`).
 */
export async function downloadFile(opts: DownloadFileOptions): Promise<DownloadResult> {
  const name = opts.name ?? basename(opts.dest);
  const part = opts.dest + PART_SUFFIX;
  const { expected, signal } = opts;
  const retries = opts.retries ?? 5;
  const base = opts.backoffMs ?? 1000;
  const maxDelay = opts.maxBackoffMs ?? 30_000;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const cancelled = (): PullError => new PullError('cancelled', `${name}: download cancelled (the partial file ${part} is kept for resuming)`, { file: name });

  let resumedFrom = (await fileSize(part)) ?? 0;
  if (expected.size !== undefined && resumedFrom > expected.size) {
    await rm(part, { force: true });
    resumedFrom = 0;
  }
  const state: AttemptState = { bytes: 0 };
  let requests = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      if (signal?.aborted) throw cancelled();
      await fetchInto(opts, name, part, state, () => requests++, idleMs);
      break;
    } catch (err) {
      if (signal?.aborted) throw cancelled();
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') throw diskFull(name, opts.dest);
      if (err instanceof PullError && err.reason === 'size') await rm(part, { force: true });
      if (!isRetryable(err) || attempt >= retries) {
        if (err instanceof OwleryError) {
          if (attempt > 0 && isRetryable(err)) throw new PullError((err as PullError).reason, `${err.message} (gave up after ${attempt + 1} attempts)`, err.details);
          throw err;
        }
        throw new PullError('network', `${name}: download failed after ${attempt + 1} attempts: ${(err as Error).message}${causeText(err)}`, { file: name });
      }
      const hinted = err instanceof PullError && typeof err.details?.retryAfterMs === 'number' ? err.details.retryAfterMs : undefined;
      const delayMs = hinted ?? backoffDelay(attempt + 1, base, maxDelay);
      opts.onRetry?.({ file: name, attempt: attempt + 1, delayMs, error: err as Error });
      try {
        await sleep(delayMs, signal);
      } catch {
        throw cancelled();
      }
    }
  }

  // Verify, then rename into place.
  const size = state.bytes;
  const sha256 = state.hash!.digest('hex');
  const fail = async (reason: 'size' | 'checksum', msg: string, details: Record<string, unknown>): Promise<never> => {
    await rm(part, { force: true });
    throw new PullError(reason, msg, { file: name, ...details });
  };
  if (expected.size !== undefined && size !== expected.size) {
    await fail('size', `${name}: downloaded ${size} bytes but the endpoint lists ${expected.size}; the partial file was deleted, pull again`, { expected: expected.size, actual: size });
  }
  if (expected.sha256 && sha256 !== expected.sha256) {
    await fail('checksum', `${name}: sha256 mismatch: got ${sha256}, the endpoint's LFS metadata says ${expected.sha256}; the download is corrupt and was deleted`,
      { expected: expected.sha256, actual: sha256 });
  } else if (!expected.sha256 && expected.gitOid) {
    const oid = await gitBlobSha1(part, size);
    if (oid !== expected.gitOid) {
      await fail('checksum', `${name}: git blob id mismatch: got ${oid}, the endpoint lists ${expected.gitOid}; the download is corrupt and was deleted`,
        { expected: expected.gitOid, actual: oid });
    }
  }
  await rename(part, opts.dest);
  return { size, sha256, resumedFrom, requests };
}

/** One HTTP request continuing the `.part` file; resolves when the body is complete. */
async function fetchInto(opts: DownloadFileOptions, name: string, part: string, state: AttemptState, countRequest: () => void, idleMs: number): Promise<void> {
  let offset = (await fileSize(part)) ?? 0;
  const total = opts.expected.size;
  if (total !== undefined && offset > total) {
    await rm(part, { force: true });
    offset = 0;
  }
  // Bring the running hash in line with what is on disk.
  if (!state.hash || state.bytes !== offset) {
    const h = await hashFile(part, offset, opts.signal).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { sha256: createHash('sha256'), bytes: 0 };
      throw err;
    });
    state.hash = h.sha256;
    state.bytes = h.bytes;
    offset = h.bytes;
  }
  opts.onBytes?.(offset);
  if (total !== undefined && offset === total) return; // already complete: verify

  const idle = new AbortController();
  const signal = opts.signal ? AbortSignal.any([opts.signal, idle.signal]) : idle.signal;
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => idle.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  let fh: FileHandle | undefined;
  try {
    arm();
    countRequest();
    const headers = { ...opts.headers, ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(opts.url, { headers, signal, redirect: 'follow' });
    } catch (err) {
      if (idle.signal.aborted && !opts.signal?.aborted) throw new PullError('network', `${name}: the server sent nothing for ${idleMs} ms`, { file: name });
      throw err;
    }
    if (res.status === 416 && offset > 0) {
      // The range starts at or past the end: the part is stale (or complete, which the size check decides).
      await res.body?.cancel().catch(() => undefined);
      if (total === undefined) {
        const m = /\/(\d+)$/.exec(res.headers.get('content-range') ?? '');
        if (m && Number(m[1]) === offset) return;
      }
      await rm(part, { force: true });
      state.hash = undefined;
      throw new PullError('http', `${name}: the server refused to resume at byte ${offset}; starting over`, { file: name, retryable: true });
    }
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw httpError(res.status, res.statusText, name, opts.url, retryAfterMs(res.headers.get('retry-after')));
    }
    if (offset > 0) {
      if (res.status === 206) {
        const start = rangeStart(res.headers.get('content-range'));
        if (start !== offset) {
          await res.body?.cancel().catch(() => undefined);
          await rm(part, { force: true });
          state.hash = undefined;
          throw new PullError('http', `${name}: the server answered the resume request with bytes from ${start ?? '?'} instead of ${offset}; starting over`, { file: name, retryable: true });
        }
      } else {
        // 200: the server ignored the Range header; start over with this response.
        offset = 0;
        state.hash = createHash('sha256');
        state.bytes = 0;
      }
    }
    if (!res.body) throw new PullError('http', `${name}: the response has no body`, { file: name, retryable: true });
    fh = await open(part, offset === 0 ? 'w' : 'r+');
    let pos = offset;
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        arm();
        let written = 0;
        while (written < value.length) {
          const { bytesWritten } = await fh.write(value, written, value.length - written, pos + written);
          written += bytesWritten;
        }
        pos += value.length;
        state.hash.update(value);
        state.bytes = pos;
        opts.onBytes?.(pos);
        if (total !== undefined && pos > total) {
          throw new PullError('size', `${name}: the server sent more than the listed ${total} bytes`, { file: name });
        }
      }
    } catch (err) {
      if (idle.signal.aborted && !opts.signal?.aborted) throw new PullError('network', `${name}: the download stalled (no data for ${idleMs} ms) at byte ${pos}`, { file: name });
      if (err instanceof OwleryError || (err as NodeJS.ErrnoException).code === 'ENOSPC') throw err;
      throw new PullError('network', `${name}: the connection broke at byte ${pos}: ${(err as Error).message}${causeText(err)}`, { file: name });
    }
    await fh.datasync();
    if (total !== undefined && pos < total) {
      throw new PullError('network', `${name}: the connection closed at byte ${pos} of ${total}`, { file: name });
    }
    const len = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(len) && pos - offset < len) {
      throw new PullError('network', `${name}: the connection closed after ${pos - offset} of ${len} bytes`, { file: name });
    }
  } finally {
    clearTimeout(timer);
    await fh?.close();
  }
}
