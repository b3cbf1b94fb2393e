/**
 * Hardening of every web contents and of the session: no navigation away from the app, no new
 * windows (http(s) links open in the system browser after validation), no `<webview>`, no
 * permissions but clipboard writes from the app's own page.
 * @see style.md H3; Electron's security checklist
 */
import { shell } from 'electron';
import type { Session, WebContents } from 'electron';
import { safeExternalUrl } from './external-url.ts';
import { permissionAllowed } from './permissions.ts';

/** Opens an http(s) link in the system browser, after validating it; anything else is dropped. */
export function openExternalSafely(url: string): void {
  const safe = safeExternalUrl(url);
  if (safe) void shell.openExternal(safe).catch(() => {});
}

/** Applies the navigation and window rules to one web contents. `isAppUrl` says what stays in the app. */
export function hardenWebContents(contents: WebContents, isAppUrl: (url: string) => boolean): void {
  contents.setWindowOpenHandler(({ url }) => {
    openExternalSafely(url);
    return { action: 'deny' };
  });
  const blockNavigation = (event: { preventDefault(): void }, url: string) => {
    if (isAppUrl(url)) return;
    event.preventDefault();
    openExternalSafely(url);
  };
  contents.on('will-navigate', blockNavigation);
  contents.on('will-redirect', blockNavigation);
  contents.on('will-attach-webview', (event) => event.preventDefault());
}

/**
 * Denies every permission request and check except clipboard writes from the app's own page
 * (see `permissions.ts`), every device, and every download.
 */
export function hardenSession(session: Session, isAppUrl: (url: string) => boolean): void {
  session.setPermissionRequestHandler((_contents, permission, callback, details) => callback(permissionAllowed(permission, details.requestingUrl, isAppUrl)));
  session.setPermissionCheckHandler((_contents, permission, requestingOrigin) => permissionAllowed(permission, requestingOrigin, isAppUrl));
  session.setDevicePermissionHandler(() => false);
  session.on('will-download', (event) => event.preventDefault());
}
