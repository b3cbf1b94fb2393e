/**
 * Owlery's network policy, in plain Node: the {@link NetworkGate} every request the app could make
 * goes through, and the {@link NetworkLog} that records each one, allowed or blocked.
 *
 * - The main process makes requests only for a model download the user started (`models:pull`):
 *   the models service asks the gate for a {@link DownloadGrant}, whose `fetch` is the only one the
 *   downloader gets. In offline mode no grant is given (`OFFLINE`), and turning offline mode on
 *   stops the downloads in progress. Each request, and each redirect hop (followed here, not inside
 *   `fetch`, so that every origin contacted is checked and logged), is logged.
 * - The window never needs the network: its pages come from `app://` and photos from
 *   `owlery-image://`. The app asks {@link NetworkGate.sessionRequest} about every http(s)/ws(s)
 *   request Chromium is about to make (`session.webRequest.onBeforeRequest`, src-main/app/network.ts)
 *   and blocks all of them (the Vite dev server excepted, in development only).
 * - No telemetry, crash reporting or update checks exist anywhere in Owlery; nothing else calls out.
 *
 * The log keeps origins only (`https://huggingface.co`), never paths, queries or tokens. It holds
 * the last {@link DEFAULT_LOG_CAPACITY} entries of the session in memory (`network:log`) and appends
 * every entry to a JSON-lines file in the data folder (rotated at {@link DEFAULT_LOG_FILE_BYTES}).
 * @see docs/security.md, "Offline mode and the network log"
 */
import { appendFile, mkdir, rename, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import type { NetworkLogEntry, NetworkLogPage, NetworkRequestSource } from '../../src-shared/ipc/index.ts';
import type { Logger } from '../logging/logger.ts';

/** Entries kept in memory. */
export const DEFAULT_LOG_CAPACITY = 5000;
/** Size at which the log file is rotated (the previous one is kept as `<file>.1`). */
export const DEFAULT_LOG_FILE_BYTES = 1024 * 1024;
/** Redirects followed per request. */
export const MAX_REDIRECTS = 10;

/** Schemes that reach the network; every other scheme (app:, owlery-image:, file:, data:, blob:, …) stays on the machine. */
const NETWORK_SCHEMES = new Set(['http:', 'https:', 'ws:', 'wss:', 'ftp:']);
const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** Options of {@link NetworkLog}. */
export interface NetworkLogOptions {
  /** Entries kept in memory (default {@link DEFAULT_LOG_CAPACITY}). */
  capacity?: number;
  /** JSON-lines file every entry is appended to (default: none). */
  file?: string;
  /** Rotation size of the file (default {@link DEFAULT_LOG_FILE_BYTES}). */
  maxFileBytes?: number;
  /** Where a failure to write the file is reported (default: nowhere). */
  log?: Logger;
  /** Clock (default `Date.now`). */
  now?: () => number;
}

/** `scheme://host[:port]` of a URL (no credentials, path or query); the scheme alone for opaque URLs. */
export function originOf(url: string | URL): string {
  let u: URL;
  try {
    u = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return '(not a URL)';
  }
  return u.origin !== 'null' ? u.origin : u.protocol;
}

/** The record of every request the app made or blocked; see the module comment. */
export class NetworkLog {
  private readonly ring: NetworkLogEntry[] = [];
  private seq = 0;
  private droppedCount = 0;
  private writing: Promise<void> = Promise.resolve();
  private readonly capacity: number;
  private readonly now: () => number;
  private readonly listeners = new Set<(entry: NetworkLogEntry) => void>();

  /** A log; see {@link NetworkLogOptions}. */
  constructor(private readonly opts: NetworkLogOptions = {}) {
    this.capacity = Math.max(1, opts.capacity ?? DEFAULT_LOG_CAPACITY);
    this.now = opts.now ?? Date.now;
  }

  /** Records one decision; returns the entry. */
  record(entry: { source: NetworkRequestSource; method: string; url: string | URL; allowed: boolean; reason: string }): NetworkLogEntry {
    const e: NetworkLogEntry = {
      seq: ++this.seq,
      time: this.now(),
      source: entry.source,
      method: entry.method.toUpperCase(),
      origin: originOf(entry.url),
      allowed: entry.allowed,
      reason: entry.reason,
    };
    this.ring.push(e);
    if (this.ring.length > this.capacity) {
      this.ring.shift();
      this.droppedCount++;
    }
    if (this.opts.file) this.append(this.opts.file, e);
    for (const fn of this.listeners) fn(e);
    return e;
  }

  /** The last `limit` entries (default all kept), oldest first. */
  entries(limit?: number): NetworkLogEntry[] {
    const n = limit === undefined ? this.ring.length : Math.max(0, Math.min(limit, this.ring.length));
    return this.ring.slice(this.ring.length - n).map((e) => ({ ...e }));
  }

  /** Entries of this session no longer kept in memory. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Receives every new entry. Returns an unsubscribe function. */
  onRecord(listener: (entry: NetworkLogEntry) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves once every entry so far is in the file. */
  flush(): Promise<void> {
    return this.writing;
  }

  private append(file: string, e: NetworkLogEntry): void {
    const line = `${JSON.stringify({ ...e, time: new Date(e.time).toISOString() })}\n`;
    const max = this.opts.maxFileBytes ?? DEFAULT_LOG_FILE_BYTES;
    this.writing = this.writing.then(async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        const size = (await stat(file).catch(() => null))?.size ?? 0;
        if (size > 0 && size + line.length > max) await rename(file, `${file}.1`);
        await appendFile(file, line, { mode: 0o600 });
      } catch (err) {
        // The in-memory log still has the entry; a read-only data folder must not break downloads.
        this.opts.log?.warn('could not write the network log', { file: basename(file) }, err);
      }
    });
  }
}

/** How requests are made: the global `fetch` or a stand-in with the same shape. */
export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

/** A user-started download's permission to use the network; see {@link NetworkGate.userDownload}. */
export interface DownloadGrant {
  /** The only way the download reaches the network: checked and logged, redirects followed here. */
  readonly fetch: FetchFn;
  /** Aborted (reason: an `OFFLINE` error) when offline mode is turned on, or when the grant is closed. */
  readonly signal: AbortSignal;
  /** Ends the grant: later requests through it are refused, requests in flight are aborted. */
  close(): void;
}

/** Options of {@link NetworkGate}. */
export interface NetworkGateOptions {
  /** True while offline mode is on (read at every decision). */
  isOffline: () => boolean;
  /** Where decisions are recorded. */
  log: NetworkLog;
  /** The real fetch (default: the global one). */
  fetch?: FetchFn;
}

/** Options of {@link NetworkGate.sessionRequest}. */
export interface SessionRequestOptions {
  /** The Vite dev server's origin, in development only (its http and ws traffic is allowed). */
  devOrigin?: string | null;
}

interface GrantState {
  label: string;
  controller: AbortController;
  closed: boolean;
  /** The latest request (its body may still be streaming), to log where offline mode stopped the download. */
  last: { url: URL; method: string } | null;
}

/** The one place requests are allowed or blocked; see the module comment. */
export class NetworkGate {
  private readonly grants = new Set<GrantState>();
  private readonly baseFetch: FetchFn;

  /** A gate over `opts.log`. */
  constructor(private readonly opts: NetworkGateOptions) {
    this.baseFetch = opts.fetch ?? ((url, init) => fetch(url, init));
  }

  /** True while offline mode is on. */
  get offline(): boolean {
    return this.opts.isOffline();
  }

  /** The log decisions go to. */
  get log(): NetworkLog {
    return this.opts.log;
  }

  /** Downloads holding a grant now. */
  get activeDownloads(): number {
    return this.grants.size;
  }

  /** The log as the `network:log` channel answers it. */
  page(limit?: number): NetworkLogPage {
    return { offline: this.offline, entries: this.opts.log.entries(limit), dropped: this.opts.log.dropped };
  }

  /**
   * Opens a model download the user started (`label` says which, `url` is where it starts). In
   * offline mode it is refused with `OFFLINE`, and the refusal is logged.
   */
  userDownload(what: { label: string; url: string }): DownloadGrant {
    if (this.offline) {
      this.opts.log.record({ source: 'model-download', method: 'GET', url: what.url, allowed: false, reason: `offline mode is on: ${what.label} was refused` });
      throw offlineError('Offline mode is on: turn it off in Settings to download models.');
    }
    const state: GrantState = { label: what.label, controller: new AbortController(), closed: false, last: null };
    this.grants.add(state);
    return {
      fetch: (url, init) => this.gatedFetch(state, url, init),
      signal: state.controller.signal,
      close: () => this.closeGrant(state, new OwleryError('CANCELLED', `${state.label} has ended`)),
    };
  }

  /** Call when offline mode may have changed: turning it on stops every download in progress. */
  offlineChanged(): void {
    if (!this.offline) return;
    for (const state of [...this.grants]) {
      const r = state.last;
      if (r) this.opts.log.record({ source: 'model-download', method: r.method, url: r.url, allowed: false, reason: `offline mode was turned on: ${state.label} was stopped` });
      this.closeGrant(state, offlineError('Offline mode was turned on: the download stopped (what was downloaded is kept for later).'));
    }
  }

  /**
   * Whether a request Chromium is about to make (from a window, or from the app's own `net`
   * module) may go ahead. Non-network schemes always may (they never leave the machine) and are
   * not logged; every network request is blocked, except the dev server's in development.
   */
  sessionRequest(req: { url: string; method: string; fromWindow: boolean }, opts: SessionRequestOptions = {}): boolean {
    let u: URL;
    try {
      u = new URL(req.url);
    } catch {
      return false;
    }
    if (!NETWORK_SCHEMES.has(u.protocol)) return true;
    const source: NetworkRequestSource = req.fromWindow ? 'window' : 'app';
    if (opts.devOrigin && sameServer(u, opts.devOrigin)) {
      this.opts.log.record({ source, method: req.method, url: u, allowed: true, reason: 'development server (unpackaged app only)' });
      return true;
    }
    const reason = this.offline
      ? 'offline mode is on'
      : req.fromWindow
        ? 'the window never uses the network'
        : 'only a model download started by the user may use the network';
    this.opts.log.record({ source, method: req.method, url: u, allowed: false, reason });
    return false;
  }

  private closeGrant(state: GrantState, reason: Error): void {
    if (state.closed) return;
    state.closed = true;
    this.grants.delete(state);
    state.controller.abort(reason);
  }

  /** Why a request through `state` to `url` must not be made, or `null` when it may. */
  private refusal(state: GrantState, url: URL, method: string): { reason: string; error: OwleryError } | null {
    if (this.offline) return { reason: 'offline mode is on', error: offlineError('Offline mode is on: the download was stopped.') };
    if (state.closed) return { reason: `${state.label} has already ended`, error: new OwleryError('FORBIDDEN', 'This download has ended; start it again.') };
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      return { reason: 'a model download uses http(s) only', error: new OwleryError('FORBIDDEN', `A model download may not use ${url.protocol} URLs.`) };
    }
    if (method !== 'GET' && method !== 'HEAD') {
      return { reason: 'a model download only reads (GET, HEAD)', error: new OwleryError('FORBIDDEN', `A model download may not send ${method} requests.`) };
    }
    return null;
  }

  private async gatedFetch(state: GrantState, url: string, init: RequestInit = {}): Promise<Response> {
    const method = (init.method ?? 'GET').toUpperCase();
    let current: URL;
    try {
      current = new URL(url);
    } catch {
      throw new OwleryError('INVALID_ARGUMENT', `${JSON.stringify(url.slice(0, 200))} is not a URL`);
    }
    const headers = new Headers(init.headers);
    const follow = (init.redirect ?? 'follow') === 'follow';
    const signal = init.signal ? AbortSignal.any([init.signal, state.controller.signal]) : state.controller.signal;
    for (let hop = 0; ; hop++) {
      const refused = this.refusal(state, current, method);
      this.opts.log.record({
        source: 'model-download',
        method,
        url: current,
        allowed: !refused,
        reason: refused ? refused.reason : `${state.label}, started by the user${hop > 0 ? ` (redirect ${hop})` : ''}`,
      });
      if (refused) throw refused.error;
      state.last = { url: current, method };
      const res = await this.baseFetch(current.href, { ...init, method, headers, signal, redirect: 'manual' });
      const location = res.headers.get('location');
      if (!follow || !REDIRECTS.has(res.status) || !location) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new OwleryError('NOT_FOUND', `${originOf(url)} redirected more than ${MAX_REDIRECTS} times`);
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new OwleryError('NOT_FOUND', `${originOf(current)} redirected to something that is not a URL`);
      }
      // Credentials never follow a redirect to another origin (as browsers and undici do).
      if (next.origin !== current.origin) {
        headers.delete('authorization');
        headers.delete('cookie');
        headers.delete('proxy-authorization');
      }
      current = next;
    }
  }
}

function offlineError(message: string): OwleryError {
  return new OwleryError('OFFLINE', message);
}

/** True when `u` is on the same host and port as `origin`, over http(s) or the matching ws(s). */
function sameServer(u: URL, origin: string): boolean {
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return false;
  }
  const pair: Record<string, string> = { 'http:': 'ws:', 'https:': 'wss:' };
  const schemeOk = u.protocol === o.protocol || pair[o.protocol] === u.protocol;
  return schemeOk && u.host === o.host;
}
