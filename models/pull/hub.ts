/**
 * The parts of the Hugging Face Hub HTTP API a checkpoint download needs, against any compatible
 * endpoint (the public hub, a mirror, a local server): the file list of a repository revision with
 * sizes and checksums, and the download URL of a file.
 *
 * File list: `GET {endpoint}/api/models/{repo}/tree/{revision}` (entries with `path`, `size`, the
 * git `oid` and, for LFS files, `lfs.oid` = sha256), falling back to
 * `GET {endpoint}/api/models/{repo}[/revision/{revision}]?blobs=true` (`siblings` with
 * `rfilename`, `size`, `blobId` and `lfs.sha256`) for endpoints without the tree API.
 * Download: `GET {endpoint}/{repo}/resolve/{revision}/{file}`, following redirects.
 */
import { PullError } from './errors.ts';

/** The public Hugging Face Hub. */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

/** A file of the repository, with what the endpoint says about it. */
export interface RemoteFile {
  /** Path in the repository (root files only are used: a plain file name). */
  path: string;
  /** Size in bytes, when listed. */
  size?: number;
  /** sha256 of the content (LFS files). */
  sha256?: string;
  /** git blob id (sha1 of `blob <size>\0<content>`), for files stored in git itself. */
  gitOid?: string;
}

/**
 * How requests are made (default: the global `fetch`). The app passes its network gate's fetch,
 * which refuses requests in offline mode and logs every request (src-main/services/network.ts).
 */
export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

/** Where and as whom to ask. */
export interface HubRequestOptions {
  /** Endpoint base URL (default `DEFAULT_ENDPOINT`). */
  endpoint?: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  /** Access token, sent as `Authorization: Bearer` (private or gated repositories). */
  token?: string;
  signal?: AbortSignal;
  /** Makes the requests (default: the global `fetch`). */
  fetch?: FetchFn;
}

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*(\/[A-Za-z0-9][A-Za-z0-9._-]*)?$/;

/** Checks a repository id (`owner/name` or `name`); throws `INVALID_ARGUMENT`. */
export function checkRepoId(repo: string): string {
  if (!REPO_ID.test(repo) || repo.includes('..') || repo.length > 200) {
    throw new PullError('invalid', `"${repo}" is not a repository id (expected owner/name, e.g. MAGAer13/mplug-owl2-llama2-7b)`, { repo });
  }
  return repo;
}

/** The endpoint URL without a trailing slash; throws `INVALID_ARGUMENT` for anything but http(s). */
export function normaliseEndpoint(endpoint: string = DEFAULT_ENDPOINT): string {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new PullError('invalid', `endpoint "${endpoint}" is not a URL`, { endpoint });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PullError('invalid', `endpoint "${endpoint}" must be an http(s) URL`, { endpoint });
  return u.href.replace(/\/+$/, '');
}

/** `{endpoint}/{repo}/resolve/{revision}/{file}`. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${normaliseEndpoint(endpoint)}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** Request headers: user agent and, with a token, authorization. */
export function hubHeaders(token: string | undefined): Record<string, string> {
  return { 'user-agent': 'owlery/0.1 (mplug-owl2 checkpoint pull)', ...(token ? { authorization: `Bearer ${token}` } : {}) };
}

/** Turns an HTTP error status into a `PullError` that says what to do. */
export function httpError(status: number, statusText: string, what: string, url: string, retryAfterMs?: number): PullError {
  const details = { status, url };
  if (status === 401) {
    return new PullError('unauthorized',
      `${what}: 401 Unauthorized from ${url}: the repository does not exist, or it is private or gated and needs an access token (set HF_TOKEN)`, details);
  }
  if (status === 403) {
    return new PullError('forbidden',
      `${what}: 403 Forbidden from ${url}: this token may not read the repository (for a gated model, accept its license on the hub first)`, details);
  }
  if (status === 404) return new PullError('not-found', `${what}: 404 Not Found at ${url}: check the repository id, revision and endpoint`, details);
  const retryable = status === 408 || status === 429 || status >= 500;
  return new PullError('http', `${what}: HTTP ${status} ${statusText} from ${url}`, { ...details, retryable, retryAfterMs });
}

/** `Retry-After` in milliseconds (seconds or an HTTP date), if present and sane. */
export function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const s = Number(header);
  if (Number.isFinite(s) && s >= 0) return Math.min(s * 1000, 600_000);
  const t = Date.parse(header);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.min(t - Date.now(), 600_000));
}

async function getJson(url: string, what: string, opts: HubRequestOptions): Promise<{ body: unknown; link: string | null }> {
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, { headers: { ...hubHeaders(opts.token), accept: 'application/json' }, signal: opts.signal, redirect: 'follow' });
  } catch (err) {
    if (opts.signal?.aborted) throw new PullError('cancelled', `${what}: cancelled`);
    throw new PullError('network', `${what}: could not reach ${url}: ${(err as Error).message}${causeText(err)}`, { url });
  }
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw httpError(res.status, res.statusText, what, url, retryAfterMs(res.headers.get('retry-after')));
  }
  try {
    return { body: await res.json(), link: res.headers.get('link') };
  } catch (err) {
    if (opts.signal?.aborted) throw new PullError('cancelled', `${what}: cancelled`);
    throw new PullError('http', `${what}: ${url} did not answer with JSON (${(err as Error).message})`, { url, retryable: true });
  }
}

/** The `cause` of a fetch failure (undici puts the socket error there), as " (…)". */
export function causeText(err: unknown): string {
  const c = (err as { cause?: { code?: string; message?: string } }).cause;
  return c ? ` (${c.code ?? c.message ?? String(c)})` : '';
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const hex = (v: unknown, len: number): string | undefined => (typeof v === 'string' && new RegExp(`^[0-9a-f]{${len}}$`).test(v) ? v : undefined);
const size = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined);

function fromTree(body: unknown): RemoteFile[] | undefined {
  if (!Array.isArray(body)) return undefined;
  const out: RemoteFile[] = [];
  for (const e of body) {
    if (!isObj(e) || e.type !== 'file' || typeof e.path !== 'string') continue;
    const lfs = isObj(e.lfs) ? e.lfs : undefined;
    out.push({ path: e.path, size: size(e.size), sha256: hex(lfs?.oid, 64), gitOid: lfs ? undefined : hex(e.oid, 40) });
  }
  return out;
}

function fromModelInfo(body: unknown): RemoteFile[] | undefined {
  if (!isObj(body) || !Array.isArray(body.siblings)) return undefined;
  const out: RemoteFile[] = [];
  for (const s of body.siblings) {
    if (!isObj(s) || typeof s.rfilename !== 'string') continue;
    const lfs = isObj(s.lfs) ? s.lfs : undefined;
    out.push({
      path: s.rfilename,
      size: size(lfs?.size) ?? size(s.size),
      sha256: hex(lfs?.sha256, 64),
      gitOid: lfs ? undefined : hex(s.blobId, 40),
    });
  }
  return out;
}

function nextLink(link: string | null): string | undefined {
  if (!link) return undefined;
  const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link);
  return m?.[1];
}

/**
 * Lists the files at the root of `repo` at a revision, with sizes and checksums where the endpoint
 * gives them. Tries the tree API first (following `Link: rel="next"` pages), then model info.
 */
export async function listRepoFiles(repo: string, opts: HubRequestOptions = {}): Promise<RemoteFile[]> {
  checkRepoId(repo);
  const base = normaliseEndpoint(opts.endpoint);
  const rev = encodeURIComponent(opts.revision ?? 'main');
  const what = `listing ${repo}`;
  let treeErr: unknown;
  try {
    const files: RemoteFile[] = [];
    let url: string | undefined = `${base}/api/models/${repo}/tree/${rev}`;
    for (let page = 0; url && page < 100; page++) {
      const { body, link } = await getJson(url, what, opts);
      const got = fromTree(body);
      if (!got) throw new PullError('http', `${what}: ${url} did not answer with a file list`, { url });
      files.push(...got);
      const next = nextLink(link);
      url = next ? new URL(next, url).href : undefined;
    }
    return files;
  } catch (err) {
    if (err instanceof PullError && (err.reason === 'cancelled' || err.reason === 'unauthorized' || err.reason === 'forbidden' || err.reason === 'network')) throw err;
    treeErr = err;
  }
  // Endpoints without the tree API (some mirrors): model info with blobs.
  const infoUrl = opts.revision && opts.revision !== 'main'
    ? `${base}/api/models/${repo}/revision/${rev}?blobs=true`
    : `${base}/api/models/${repo}?blobs=true`;
  try {
    const { body } = await getJson(infoUrl, what, opts);
    const files = fromModelInfo(body);
    if (!files) throw new PullError('http', `${what}: ${infoUrl} did not answer with model info (no "siblings")`, { url: infoUrl });
    return files.filter((f) => !f.path.includes('/'));
  } catch (err) {
    // The tree API's answer is the more telling one when both fail the same way.
    if (treeErr instanceof PullError && err instanceof PullError && err.reason === treeErr.reason) throw treeErr;
    throw err;
  }
}
