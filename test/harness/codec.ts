/**
 * The web harness's wire format: JSON, with `Uint8Array`s (image bytes) as `{ "$bytes": base64 }`.
 * Used by the server (Node) and the page client (browser), so it relies on neither `Buffer` nor DOM.
 */

/** A request from the page: one contract channel and its payload. */
export interface WireRequest {
  id: number;
  channel: string;
  payload?: unknown;
}

/** An answer (`id` and `result`) or a pushed event (`event`). */
export type WireMessage = { id: number; result: unknown } | { event: { type: string; payload: unknown } };

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LOOKUP = new Map([...B64].map((c, i) => [c, i]));

/** Base64 (RFC 4648, padded) of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += B64[(n >> 18) & 63]! + B64[(n >> 12) & 63]! + (i + 1 < bytes.length ? B64[(n >> 6) & 63]! : '=') + (i + 2 < bytes.length ? B64[n & 63]! : '=');
  }
  return out;
}

/** Bytes of a padded base64 string; throws on anything else. */
export function fromBase64(s: string): Uint8Array {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new Error('invalid base64');
  const pad = s.endsWith('==') ? 2 : s.endsWith('=') ? 1 : 0;
  const out = new Uint8Array((s.length / 4) * 3 - pad);
  let o = 0;
  for (let i = 0; i < s.length; i += 4) {
    const n = (LOOKUP.get(s[i]!)! << 18) | (LOOKUP.get(s[i + 1]!)! << 12) | ((LOOKUP.get(s[i + 2]!) ?? 0) << 6) | (LOOKUP.get(s[i + 3]!) ?? 0);
    if (o < out.length) out[o++] = (n >> 16) & 255;
    if (o < out.length) out[o++] = (n >> 8) & 255;
    if (o < out.length) out[o++] = n & 255;
  }
  return out;
}

/** JSON text of a value, bytes encoded. */
export function encode(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? { $bytes: toBase64(v) } : v));
}

/** The value of JSON text, bytes decoded. */
export function decode(text: string): unknown {
  return JSON.parse(text, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const o = v as Record<string, unknown>;
      const keys = Object.keys(o);
      if (keys.length === 1 && keys[0] === '$bytes' && typeof o.$bytes === 'string') return fromBase64(o.$bytes);
    }
    return v;
  });
}
