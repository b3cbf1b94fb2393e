/**
 * What the `owlery-image:` protocol (app) and `/owlery-image/` route (web harness) serve: stored
 * photos and thumbnails by hash, and thumbnails of files in folders the user chose. Nothing else:
 * a request names a hash or opaque ids, never a path.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { ImageStore } from '../store/images.ts';
import type { Store } from '../store/store.ts';
import type { FolderGrants } from './folders.ts';

/** A response: a file to stream, or bytes. */
export type ImageResponse = { mime: string; path: string } | { mime: string; bytes: Uint8Array };

const SHA256 = /^[0-9a-f]{64}$/;
const OPAQUE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Splits an image URL's path (after the base, e.g. `image/<sha>`, `thumb/<sha>`,
 * `folder/<folderId>/<entryId>`) into checked parts; `null` when it is not one of those shapes.
 */
export function parseImagePath(path: string): { kind: 'image' | 'thumb'; sha256: string } | { kind: 'folder'; folderId: string; entryId: string } | null {
  const parts = path.replace(/^\/+/, '').replace(/\/+$/, '').split('/');
  if ((parts[0] === 'image' || parts[0] === 'thumb') && parts.length === 2 && SHA256.test(parts[1]!)) return { kind: parts[0], sha256: parts[1]! };
  if (parts[0] === 'folder' && parts.length === 3 && OPAQUE.test(parts[1]!) && OPAQUE.test(parts[2]!)) {
    return { kind: 'folder', folderId: parts[1]!, entryId: parts[2]! };
  }
  return null;
}

/** Resolves an image path (see {@link parseImagePath}). Throws `NOT_FOUND` for anything unknown. */
export async function serveImage(deps: { store: Store; images: ImageStore; folders: FolderGrants }, path: string): Promise<ImageResponse> {
  const req = parseImagePath(path);
  if (!req) throw new OwleryError('NOT_FOUND', 'No such image.');
  if (req.kind === 'folder') return deps.folders.thumbnail(req.folderId, req.entryId);
  const record = deps.store.getImage(req.sha256);
  if (!record) throw new OwleryError('NOT_FOUND', 'No such image.');
  if (req.kind === 'thumb' && record.thumbnail) return { mime: record.thumbnail.mime, path: deps.images.thumbnailPathOf(record.sha256) };
  return { mime: record.mime, path: deps.images.pathOf(record) };
}
