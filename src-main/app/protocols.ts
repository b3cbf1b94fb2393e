/**
 * The two custom protocols: `app://owlery/…` serves the built renderer (with the CSP header), and
 * `owlery-image://…` serves stored photos, thumbnails and chosen-folder thumbnails by hash or
 * opaque id (never by path). Both are registered as standard, secure schemes before the app is ready.
 */
import { readFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { net, protocol } from 'electron';
import { OwleryError } from '../../src-shared/errors.ts';
import { APP_PROTOCOL, IMAGE_PROTOCOL } from '../../src-shared/ipc/index.ts';
import { serveImage } from '../services/image-serving.ts';
import type { Services } from '../services/composition.ts';
import { CONTENT_SECURITY_POLICY } from './csp.ts';
import { mimeOf, resolveRendererFile } from './renderer-files.ts';

/** Registers the schemes' privileges. Must run before `app.whenReady()`. */
export function registerPrivilegedSchemes(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: APP_PROTOCOL, privileges: { standard: true, secure: true, supportFetchAPI: true, codeCache: true } },
    { scheme: IMAGE_PROTOCOL, privileges: { standard: true, secure: true, supportFetchAPI: true, stream: true } },
  ]);
}

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'cross-origin-opener-policy': 'same-origin',
  'referrer-policy': 'no-referrer',
};

function notFound(): Response {
  return new Response('Not found', { status: 404, headers: { 'content-type': 'text/plain' } });
}

/** Serves `rendererDir` on `app://<host>/`. */
export function handleAppProtocol(rendererDir: string, host = 'owlery'): void {
  protocol.handle(APP_PROTOCOL, async (request) => {
    const url = new URL(request.url);
    if (url.hostname !== host || request.method !== 'GET') return notFound();
    const file = resolveRendererFile(rendererDir, url.pathname);
    if (!file) return notFound();
    try {
      const body = await readFile(file);
      return new Response(body, { headers: { 'content-type': mimeOf(file), ...SECURITY_HEADERS } });
    } catch {
      return notFound();
    }
  });
}

/** Serves stored images on `owlery-image://`. */
export function handleImageProtocol(services: Services): void {
  protocol.handle(IMAGE_PROTOCOL, async (request) => {
    const url = new URL(request.url);
    try {
      const image = await serveImage(services, `${url.hostname}${url.pathname}`);
      const headers = { 'content-type': image.mime, 'cache-control': 'private, max-age=31536000, immutable', 'x-content-type-options': 'nosniff' };
      if ('bytes' in image) return new Response(image.bytes, { headers: { ...headers, 'cache-control': 'no-store' } });
      const file = await net.fetch(pathToFileURL(image.path).href);
      return new Response(file.body, { status: file.status, headers });
    } catch (err) {
      if (!(err instanceof OwleryError)) services.log.error('owlery-image: a photo could not be served', err);
      return notFound();
    }
  });
}
