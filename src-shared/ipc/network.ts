/** The `network:` domain: every request the app made or blocked in this session. */
import { v } from '../validate.ts';
import { defineDomain, invoke } from './define.ts';

/** Where a request came from: a model download the user started, the window, or the app itself. */
export type NetworkRequestSource = 'model-download' | 'window' | 'app';

/** One request the app made or blocked. Only the origin is kept: never paths, queries or tokens. */
export interface NetworkLogEntry {
  /** Increments with every entry of this session. */
  seq: number;
  /** When it was decided, in ms since the epoch. */
  time: number;
  source: NetworkRequestSource;
  /** HTTP method (`GET`, …). */
  method: string;
  /** `scheme://host[:port]` of the URL. */
  origin: string;
  allowed: boolean;
  /** Why it was allowed or blocked, in plain words. */
  reason: string;
}

/** The network log of this session (newest last) and whether offline mode is on. */
export interface NetworkLogPage {
  offline: boolean;
  entries: NetworkLogEntry[];
  /** Older entries of this session no longer kept in memory (they are in the log file). */
  dropped: number;
}

/** `window.owlery.network`. */
export const networkApi = defineDomain({
  /** Every request the app made or blocked in this session (the last `limit`, newest last). */
  log: invoke(v.object({ limit: v.optional(v.int({ min: 1, max: 10_000 })) })).returns<NetworkLogPage>(),
});
