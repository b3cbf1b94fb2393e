/**
 * Which frames may call the IPC handlers: the app's own renderer only, loaded from the custom
 * `app://owlery` origin, or (packaged fallback) a `file://` URL inside the built renderer folder.
 * Anything else (a remote page, another custom origin, `app://owlery.evil`, a `file://` outside
 * the renderer, a data: or blob: URL) is refused.
 * @see style.md H2; GitHub Desktop `trusted-ipc-sender.ts`
 */
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { APP_PROTOCOL } from '../../src-shared/ipc/index.ts';

/** Options of {@link createSenderCheck}. */
export interface SenderCheckOptions {
  /** Host of the `app:` origin (default `owlery`, i.e. `app://owlery`). */
  appHost?: string;
  /** The built renderer's folder, to accept `file://` pages inside it (default: none accepted). */
  rendererDir?: string;
  /** Further exact origins to accept (`http://127.0.0.1:5123` for the web harness). */
  origins?: readonly string[];
}

/** Returns a predicate that is true only for URLs of the app's own renderer. */
export function createSenderCheck(opts: SenderCheckOptions = {}): (url: string) => boolean {
  const appHost = opts.appHost ?? 'owlery';
  const rendererDir = opts.rendererDir ? resolve(opts.rendererDir) : null;
  const origins = new Set(opts.origins ?? []);
  return (url: string): boolean => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return false;
    }
    if (u.username || u.password) return false;
    if (u.protocol === `${APP_PROTOCOL}:`) return u.hostname === appHost && u.port === '';
    if (u.protocol === 'file:') {
      if (!rendererDir || u.host !== '') return false;
      let path: string;
      try {
        path = fileURLToPath(u);
      } catch {
        return false;
      }
      const rel = relative(rendererDir, resolve(path));
      return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
    }
    if (u.protocol === 'http:' || u.protocol === 'https:') return origins.has(u.origin);
    return false;
  };
}
