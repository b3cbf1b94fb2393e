/**
 * Handlers of the `describe:` channels: describe jobs over folders the user opened in the Photos
 * panel (or photos chosen in one), a photo's description, search over captions and keywords, and
 * a folder's descriptions exported through the save dialog. The renderer names folders and photos
 * by the ids of `images:pick-folder` / `images:list-folder`; they become paths here, and paths go
 * back as names and ids (`services/describe-view.ts`).
 */
import { basename } from 'node:path';
import type { PhotoDescriptionInfo } from '../../../src-shared/ipc/index.ts';
import type { Services } from '../../services/composition.ts';
import { describedPhotoRef, describeJobInfo, describePhotoError } from '../../services/describe-view.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** Every `describe:` channel. */
export function describeHandlers(services: Services): DomainHandlers<'describe'> {
  const { describe, folders } = services;
  const info = (job: Parameters<typeof describeJobInfo>[1]) => describeJobInfo(folders, job, describe.stopReason(job.id));
  return {
    'describe:start': async (req) => {
      const folder = folders.pathOf(req.folderId);
      const sidecars = req.sidecars ?? false;
      const job = req.entryIds
        ? await describe.start({ files: req.entryIds.map((id) => folders.resolve(req.folderId, id).path), sidecars })
        : await describe.start({ folders: [folder], recursive: req.recursive ?? false, sidecars });
      return info(job);
    },
    'describe:pause': (req) => info(describe.pause(req.jobId)),
    'describe:resume': (req) => info(describe.resume(req.jobId)),
    'describe:cancel': (req) => info(describe.cancel(req.jobId)),
    'describe:jobs': (req) => describe.jobs(req.limit).map(info),
    'describe:errors': (req) => describe.errors(req.jobId, req.limit).map((e) => describePhotoError(folders, e)),
    'describe:description': async (req): Promise<PhotoDescriptionInfo | null> => {
      const described = describe.description(folders.resolve(req.folderId, req.entryId).path);
      if (!described) return null;
      const { path: _path, ...description } = described;
      // The model may have been deleted since; its package id still says which it was.
      const modelName = await services.models.info(description.provenance.packageId).then((m) => m.name, () => null);
      return { ...description, modelName };
    },
    'describe:search': (req) => {
      const folder = folders.pathOf(req.folderId);
      const hits = describe.search(req.query, { keywords: req.keywords, folder, limit: req.limit });
      return hits.flatMap((hit) => {
        // A photo seen in several places: the first place inside the folder searched.
        const photo = hit.paths.map((p) => folders.refer(p, req.folderId)).find((r) => r !== null);
        if (!photo) return [];
        const { paths: _paths, ...rest } = hit;
        return [{ ...rest, photo }];
      });
    },
    'describe:keywords': (req) => describe.keywordCounts({ folder: folders.pathOf(req.folderId), limit: req.limit }),
    'describe:export-folder': async (req) => {
      const folder = folders.pathOf(req.folderId);
      const file = await services.dialogs.chooseSavePath({
        suggestedName: `${basename(folder) || 'photos'} descriptions.${req.format}`,
        format: `descriptions-${req.format}`,
      });
      if (file === null) return { saved: false, fileName: null, count: 0 };
      const { count } = await describe.exportFolder(folder, file, req.format, { recursive: req.recursive ?? true });
      return { saved: true, fileName: basename(file), count };
    },
  };
}

/** Exported for tests: how a path the renderer never sees is named to it. */
export { describedPhotoRef };
