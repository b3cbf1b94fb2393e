/**
 * Which web permissions the app grants: only writing text to the clipboard (copy buttons), and
 * only to the app's own page. Everything else (camera, microphone, notifications, geolocation,
 * clipboard reading, MIDI, HID, serial, …) is denied.
 */

/** Permissions the app's own page gets. */
export const GRANTED_PERMISSIONS: ReadonlySet<string> = new Set(['clipboard-sanitized-write']);

/** True when `permission` may be granted to a page at `url`. */
export function permissionAllowed(permission: string, url: string, isAppUrl: (url: string) => boolean): boolean {
  return GRANTED_PERMISSIONS.has(permission) && isAppUrl(url);
}
