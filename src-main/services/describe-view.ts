/**
 * The describe service's jobs, errors and events as the renderer may see them: every path becomes
 * a {@link DescribedPhotoRef} (a name, and folder and entry ids with a thumbnail when the photo is
 * inside a folder the user opened in this session, `FolderGrants.refer`), every folder its name
 * and its folder id. Used by the `describe:` handlers and by the composition root, which forwards
 * the service's events to the window through the event bus.
 */
import { basename } from 'node:path';
import type { DescribeEvent, DescribeItemError, DescribeJob } from '../../src-shared/describe.ts';
import type { ErrorCode } from '../../src-shared/errors.ts';
import type { DescribedPhotoRef, DescribeJobEvent, DescribeJobInfo, DescribePhotoError, FolderId } from '../../src-shared/ipc/index.ts';
import type { FolderGrants } from './folders.ts';

/** The folder grants the mapping reads. */
export type DescribeViewFolders = Pick<FolderGrants, 'refer' | 'folderIdOf'>;

/** A photo by path, as the renderer may know it (see the module comment). */
export function describedPhotoRef(folders: DescribeViewFolders, path: string, folderId?: FolderId): DescribedPhotoRef {
  const ref = folders.refer(path, folderId);
  return ref ?? { name: basename(path), folderId: null, entryId: null, thumbnailUrl: null };
}

/** A job for the renderer; `stopReason` is the service's reason for pausing it, if any. */
export function describeJobInfo(folders: DescribeViewFolders, job: DescribeJob, stopReason: { code: ErrorCode; message: string } | null): DescribeJobInfo {
  const { current, ...counts } = job.progress;
  return {
    id: job.id,
    state: job.state,
    folderNames: job.spec.folders.map((f) => basename(f) || f),
    folderIds: job.spec.folders.map((f) => folders.folderIdOf(f)),
    selectedPhotos: job.spec.files.length,
    recursive: job.spec.recursive,
    sidecars: job.spec.sidecars?.naming ?? null,
    promptVersion: job.promptVersion,
    progress: { ...counts, current: current === null ? null : describedPhotoRef(folders, current) },
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    finishedAt: job.finishedAt,
    stopReason: job.state === 'paused' ? stopReason : null,
  };
}

/** A photo's failure for the renderer. */
export function describePhotoError(folders: DescribeViewFolders, e: DescribeItemError): DescribePhotoError {
  const photo = describedPhotoRef(folders, e.path);
  // The service's messages name the file by its path; the renderer gets the name it knows.
  return { photo, stage: e.stage, error: { code: e.error.code, message: e.error.message.split(e.path).join(photo.name) } };
}

/** A describe service event for the renderer (the `describe:event` payload). */
export function describeJobEvent(
  folders: DescribeViewFolders,
  describe: { stopReason(id: number): { code: ErrorCode; message: string } | null },
  e: DescribeEvent,
): DescribeJobEvent {
  if (e.type === 'job') return { type: 'job', job: describeJobInfo(folders, e.job, describe.stopReason(e.job.id)) };
  return {
    type: 'item',
    jobId: e.jobId,
    photo: describedPhotoRef(folders, e.path),
    state: e.state,
    description: e.description,
    error: e.error ? describePhotoError(folders, e.error) : null,
  };
}
