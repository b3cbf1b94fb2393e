/**
 * The session-level half of the network policy: every http(s) and ws(s) request Chromium is about
 * to make for a session (the window's, and the main process's `net` module, which uses the default
 * session) is put to the services' {@link NetworkGate}, which blocks and logs it (the Vite dev
 * server excepted, in development). The window's pages and photos come from `app://` and
 * `owlery-image://`, which never reach the network and are not filtered.
 *
 * The Content Security Policy already stops the page from requesting remote URLs; this is the
 * second wall, and the one that also covers Chromium-initiated requests and any future session.
 * Model downloads do not pass here: they use Node's fetch in main, through the gate's grants.
 * @see src-main/services/network.ts, docs/security.md
 */
import type { Session } from 'electron';
import type { NetworkGate } from '../services/network.ts';

/** URL patterns of every request that could leave the machine. */
export const NETWORK_URL_PATTERNS: readonly string[] = ['http://*/*', 'https://*/*', 'ws://*/*', 'wss://*/*'];

/** Sends `session`'s network requests through `gate`; `devOrigin` is the dev server (unpackaged only). */
export function guardSessionNetwork(session: Session, gate: NetworkGate, opts: { devOrigin: string | null }): void {
  session.webRequest.onBeforeRequest({ urls: [...NETWORK_URL_PATTERNS] }, (details, callback) => {
    const allowed = gate.sessionRequest(
      { url: details.url, method: details.method, fromWindow: details.webContentsId !== undefined },
      { devOrigin: opts.devOrigin },
    );
    callback({ cancel: !allowed });
  });
}
