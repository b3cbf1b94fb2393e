/**
 * Which links may leave the app: only plain `http:`/`https:` URLs with a host and no credentials
 * open in the system browser (`shell.openExternal`); everything else (`file:`, `javascript:`,
 * custom schemes that launch other apps, `smb:` shares) is dropped.
 */

/** Longest URL handed to the system browser. */
export const MAX_EXTERNAL_URL_LENGTH = 2048;

/** The URL to open externally, normalised, or `null` when it must not be opened. */
export function safeExternalUrl(raw: string): string | null {
  if (typeof raw !== 'string' || raw.length > MAX_EXTERNAL_URL_LENGTH) return null;
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  if (!u.hostname || u.username || u.password) return null;
  return u.href;
}
