/**
 * The `describe:` domain: describe jobs over photo folders (captions and keywords by the loaded
 * model, optional XMP sidecars), their progress and errors, a photo's description with its
 * provenance, search over captions and keywords, and a folder's descriptions exported to CSV or
 * JSON (issue 14; the service is `src-main/describe`, docs/describe.md).
 *
 * The renderer never sees paths here either: folders and photos are the folder ids and entry ids
 * of `images:pick-folder` / `images:list-folder`, and what main reports (a job's current photo, a
 * photo that failed, a search hit) comes back as a {@link DescribedPhotoRef}: a name, and ids with a
 * thumbnail URL when the photo is inside a folder opened in this session.
 */
import type { DescribeItemState, DescribeJobId, DescribeJobState, DescribeProgress, KeywordCount, PhotoDescription, SidecarNaming } from '../describe.ts';
import type { HighlightedText } from '../domain.ts';
import type { ErrorCode, SerializedError } from '../errors.ts';
import { MAX_DESCRIBE_SELECTION, MAX_KEYWORD_FILTER_CHARS, MAX_KEYWORD_FILTERS, MAX_QUERY_REQUEST_CHARS } from '../limits.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';
import { opaqueId, pageLimit, rowId } from './fields.ts';
import type { FolderEntryId, FolderId } from './images.ts';

export type { DescribeItemState, DescribeJobId, DescribeJobState, KeywordCount, PhotoDescription, SidecarNaming } from '../describe.ts';

/** Every way a sidecar can be named, in the order the dialog offers them. */
export const SIDECAR_NAMINGS: readonly SidecarNaming[] = ['photo.jpg.xmp', 'photo.xmp'];

/** A photo main told the renderer about: its name, and how to show and use it when it can. */
export interface DescribedPhotoRef {
  /**
   * Its name inside the open folder (`trip/IMG_1.jpg` when in a subfolder of it), or the file's
   * own name when it is in no folder opened in this session.
   */
  name: string;
  /** The folder opened in this session that holds it (directly or in a subfolder), or `null`. */
  folderId: FolderId | null;
  /** Its entry id in that folder (thumbnail, `images.importFromFolder`, `describe.description`), or `null`. */
  entryId: FolderEntryId | null;
  /** Its thumbnail, or `null` when it is in no open folder. */
  thumbnailUrl: string | null;
}

/** A job's progress, its current photo as a {@link DescribedPhotoRef}. */
export interface DescribeJobProgress extends Omit<DescribeProgress, 'current'> {
  /** The photo being described now, for the progress thumbnail. */
  current: DescribedPhotoRef | null;
}

/** A describe job as the Photos panel shows it. */
export interface DescribeJobInfo {
  id: DescribeJobId;
  state: DescribeJobState;
  /** The names of the folders it describes (empty for a selection). */
  folderNames: string[];
  /** The folders it describes, where they are open in this session (same order; `null` where not). */
  folderIds: (FolderId | null)[];
  /** Photos chosen one by one ("Describe selected"). */
  selectedPhotos: number;
  /** Subfolders included. */
  recursive: boolean;
  /** How its XMP sidecars are named, or `null` when it writes none. */
  sidecars: SidecarNaming | null;
  promptVersion: string;
  progress: DescribeJobProgress;
  createdAt: number;
  updatedAt: number;
  finishedAt: number | null;
  /** Why Owlery paused the job itself (no model, the model cannot load, the history cannot be written). */
  stopReason: { code: ErrorCode; message: string } | null;
}

/** A photo of a job that was not described, or whose sidecar was not written. */
export interface DescribePhotoError {
  photo: DescribedPhotoRef;
  /** `describe`: no description; `sidecar`: described, but its sidecar was not written. */
  stage: 'describe' | 'sidecar';
  error: Pick<SerializedError, 'code' | 'message'>;
}

/** A photo's description for its detail panel: caption, keywords, and who wrote it how. */
export interface PhotoDescriptionInfo extends PhotoDescription {
  /** The model's name when it is still installed (else the package id says which it was). */
  modelName: string | null;
}

/** One photo found by a description search. */
export interface DescriptionSearchHit {
  /** sha256 of the photo's bytes. */
  sha256: string;
  /** The photo, inside the folder searched. */
  photo: DescribedPhotoRef;
  /** The caption with the matches marked. */
  caption: HighlightedText;
  keywords: string[];
  /** The keywords that matched the query or the chips. */
  matchedKeywords: string[];
  /** bm25 score (lower is better); 0 when only chips filtered. */
  rank: number;
}

/** What `describe.exportFolder` did: nothing when the user cancelled the save dialog. */
export interface DescriptionExportResult {
  saved: boolean;
  /** The file's name (no folders). */
  fileName: string | null;
  /** Photos exported. */
  count: number;
}

/** Events of the describe jobs, as the Photos panel follows them. */
export type DescribeJobEvent =
  | { type: 'job'; job: DescribeJobInfo }
  | {
      type: 'item';
      jobId: DescribeJobId;
      photo: DescribedPhotoRef;
      state: Exclude<DescribeItemState, 'pending'>;
      description: PhotoDescription | null;
      error: DescribePhotoError | null;
    };

const jobId = rowId;
const sidecarNaming = v.enum(SIDECAR_NAMINGS);
const keyword = v.string({ min: 1, max: MAX_KEYWORD_FILTER_CHARS });

const startRequest = v.object({
  /** The open folder to describe (all of it), or whose `entryIds` to describe. */
  folderId: opaqueId,
  /** Photos of the folder chosen one by one; absent: the whole folder. */
  entryIds: v.optional(v.array(opaqueId, { min: 1, max: MAX_DESCRIBE_SELECTION })),
  /** Include subfolders (whole folders only; default false). */
  recursive: v.optional(v.boolean()),
  /** Write XMP sidecars named so (default: none). */
  sidecars: v.optional(v.nullable(sidecarNaming)),
});
/** What to describe. */
export type StartDescribeRequest = Infer<typeof startRequest>;

const searchRequest = v.object({
  /** The open folder searched (its subfolders too). */
  folderId: opaqueId,
  /** Words of captions or keywords (empty: the chips alone choose). */
  query: v.string({ max: MAX_QUERY_REQUEST_CHARS }),
  /** Keyword chips: every one must be among a photo's keywords. */
  keywords: v.optional(v.array(keyword, { max: MAX_KEYWORD_FILTERS })),
  limit: v.optional(pageLimit),
});
/** A description search. */
export type DescriptionSearchRequest = Infer<typeof searchRequest>;

/** `window.owlery.describe`. */
export const describeApi = defineDomain({
  /** Starts a job over an open folder or photos chosen in it (it waits while another runs). */
  start: invoke(startRequest).returns<DescribeJobInfo>(),
  /** Pauses a job (the photo being described is done again on resume). */
  pause: invoke(v.object({ jobId })).returns<DescribeJobInfo>(),
  /** Resumes a paused job. */
  resume: invoke(v.object({ jobId })).returns<DescribeJobInfo>(),
  /** Cancels a job; photos described so far keep their descriptions. */
  cancel: invoke(v.object({ jobId })).returns<DescribeJobInfo>(),
  /** The newest jobs first. */
  jobs: invoke(v.object({ limit: v.optional(pageLimit) })).returns<DescribeJobInfo[]>(),
  /** A job's photos that were not described, or whose sidecar was not written. */
  errors: invoke(v.object({ jobId, limit: v.optional(pageLimit) })).returns<DescribePhotoError[]>(),
  /** A photo's current description with its provenance, or `null` when it has none. */
  description: invoke(v.object({ folderId: opaqueId, entryId: opaqueId })).returns<PhotoDescriptionInfo | null>(),
  /** Search over the captions and keywords of the photos in an open folder and its subfolders, best first. */
  search: invoke(searchRequest).returns<DescriptionSearchHit[]>(),
  /** The most frequent keywords in an open folder and its subfolders (the chips). */
  keywords: invoke(v.object({ folderId: opaqueId, limit: v.optional(pageLimit) })).returns<KeywordCount[]>(),
  /** Saves an open folder's descriptions as CSV or JSON (save dialog in main). */
  exportFolder: invoke(v.object({ folderId: opaqueId, format: v.enum(['csv', 'json'] as const), recursive: v.optional(v.boolean()) })).returns<DescriptionExportResult>(),
  /** Every change of a job (state, progress at most a few times a second) and every finished photo. */
  onEvent: event('describe:event').carries<DescribeJobEvent>(),
});
