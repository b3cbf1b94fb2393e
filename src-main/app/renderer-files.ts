/**
 * Maps `app://owlery/<path>` requests to files of the built renderer folder, refusing anything
 * outside it; unknown paths without an extension get `index.html` (client-side routes).
 */
import { extname, isAbsolute, join, normalize, relative, resolve } from 'node:path';

/** Content types of the files a Vite build emits. */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.txt': 'text/plain; charset=utf-8',
  '.map': 'application/json',
};

/** The content type of a file name (`application/octet-stream` when unknown). */
export function mimeOf(file: string): string {
  return MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
}

/**
 * The file a URL path names inside `rendererDir`, or `null` when it would leave the folder.
 * `/` and extension-less paths (client routes) resolve to `index.html`.
 */
export function resolveRendererFile(rendererDir: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const root = resolve(rendererDir);
  const rel = normalize(decoded.replace(/^\/+/, ''));
  if (rel === '.' || rel === '' || extname(rel) === '') return join(root, 'index.html');
  const file = resolve(root, rel);
  const back = relative(root, file);
  if (back === '' || back.startsWith('..') || isAbsolute(back)) return null;
  return file;
}
