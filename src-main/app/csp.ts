/**
 * The renderer's Content Security Policy, sent as a header with every page the `app:` protocol
 * serves. Scripts and styles only from the app itself, images from the app, `owlery-image:` and
 * `blob:` (previews of pasted photos); no network, no frames, no plugins, no forms.
 * `style-src 'unsafe-inline'` allows style attributes (Svelte transitions set them); scripts
 * never run inline.
 */
import { IMAGE_PROTOCOL } from '../../src-shared/ipc/index.ts';

/** The policy, one directive per entry. */
export const CSP_DIRECTIVES: readonly string[] = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  `img-src 'self' ${IMAGE_PROTOCOL}: blob: data:`,
  "font-src 'self'",
  "connect-src 'self'",
  "media-src 'none'",
  "object-src 'none'",
  "frame-src 'none'",
  "worker-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
];

/** The `Content-Security-Policy` header value. */
export const CONTENT_SECURITY_POLICY = CSP_DIRECTIVES.join('; ');
