/**
 * The session-level half of the network policy: every request Chromium is about to make for a
 * session (the window's, and the main process's `net` module, which uses the default session) is
 * put to the services' {@link NetworkGate}. Requests that stay on the machine (`app://`,
 * `owlery-image://`, `file:`, `data:`, `blob:`) pass unlogged; every http(s)/ws(s) request is
 * blocked and logged (the Vite dev server excepted, in development). No URL filter is given, so no
 * scheme or port can slip past a pattern.
 *
 * The Content Security Policy already stops the page from requesting remote URLs; this is the
 * second wall, and the one that also covers Chromium-initiated requests and any future session.
 * Model downloads do not pass here: they use Node's fetch in main, through the gate's grants.
 * @see src-main/services/network.ts, docs/security.md
 */
import type { Session } from 'electron';
import type { NetworkGate } from '../services/network.ts';

/** Sends `session`'s network requests through `gate`; `devOrigin` is the dev server (unpackaged only). */
export function guardSessionNetwork(session: Session, gate: NetworkGate, opts: { devOrigin: string | null }): void {
  session.webRequest.onBeforeRequest((details, callback) => {
    const allowed = gate.sessionRequest(
      { url: details.url, method: details.method, fromWindow: details.webContentsId !== undefined },
      { devOrigin: opts.devOrigin },
    );
    callback({ cancel: !allowed });
  });
}
