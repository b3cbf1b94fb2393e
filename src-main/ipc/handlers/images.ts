/**
 * Handlers of the `images:` channels. Photos come from the open dialog, from bytes the renderer
 * read from a drop or paste, or from a folder the user chose; they are stored content-addressed
 * and handed back as hashes and `owlery-image:` URLs, never as paths.
 */
import { basename } from 'node:path';
import { OwleryError, serializeError } from '../../../src-shared/errors.ts';
import type { ErrorCode } from '../../../src-shared/errors.ts';
import type { PickedPhotos, StoredImage } from '../../../src-shared/ipc/index.ts';
import type { Services } from '../../services/composition.ts';
import { toStoredImage } from '../../store/image-records.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** Errors that refuse one chosen file, not the whole pick. */
const REFUSALS: ReadonlySet<ErrorCode> = new Set(['IMAGE_UNREADABLE', 'IMAGE_TOO_LARGE', 'IMAGE_UNSUPPORTED', 'FILE_NOT_FOUND']);

/** Every `images:` channel. */
export function imageHandlers(services: Services): DomainHandlers<'images'> {
  const { images, store, folders, dialogs } = services;
  const base = services.appInfo.imageBase;
  return {
    'images:pick': async () => {
      const paths = await dialogs.chooseImages();
      const out: PickedPhotos = { images: [], refused: [] };
      for (const path of paths) {
        const name = basename(path);
        try {
          out.images.push(toStoredImage(await images.put(path, { name }), name, base));
        } catch (err) {
          // Expected refusals (not a photo, too large, damaged) are reported per file; a store failure is not.
          if (!(err instanceof OwleryError) || !REFUSALS.has(err.code)) throw err;
          const { stack: _stack, ...error } = serializeError(err);
          out.refused.push({ name, error });
        }
      }
      return out;
    },
    'images:import': async (req) => {
      if (req.bytes.byteLength > services.maxImageBytes) {
        throw new OwleryError('IMAGE_TOO_LARGE', `${req.name ?? 'The image'} is larger than the ${Math.round(services.maxImageBytes / 2 ** 20)} MiB limit.`, {
          bytes: req.bytes.byteLength,
        });
      }
      const record = await images.put(req.bytes, req.name === null ? {} : { name: req.name });
      return toStoredImage(record, req.name, base);
    },
    'images:get': (req) => {
      const record = store.getImage(req.sha256);
      if (!record) throw new OwleryError('NOT_FOUND', 'That photo is not stored.', { sha256: req.sha256 });
      return toStoredImage(record, null, base);
    },
    'images:pick-folder': async () => {
      const path = await dialogs.chooseFolder('photos');
      return path === null ? null : folders.grant(path);
    },
    'images:recent-folders': () => folders.recent(),
    'images:open-recent-folder': (req) => folders.openRecent(req.recentId),
    'images:forget-recent-folder': async (req) => {
      await folders.forget(req.recentId);
      return null;
    },
    'images:list-folder': (req) => folders.list(req.folderId, req.cursor ?? null, req.limit),
    'images:folder-entry-problem': (req) => folders.problem(req.folderId, req.entryId),
    'images:import-from-folder': async (req) => {
      const out: StoredImage[] = [];
      for (const entryId of req.entryIds) {
        const { path, name } = folders.resolve(req.folderId, entryId);
        out.push(toStoredImage(await images.put(path, { name }), name, base));
      }
      return out;
    },
  };
}
