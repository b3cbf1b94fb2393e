/**
 * The `images:` domain: photos from the open dialog, from bytes the renderer read from a drop or
 * paste, and from a folder the user chose (the photos panel). Main stores them content-addressed
 * and hands back hashes and `owlery-image:` URLs, never paths.
 */
import type { MessageImage, Page } from '../domain.ts';
import type { SerializedError } from '../errors.ts';
import { MAX_DROPPED_IMAGE_BYTES, MAX_FOLDER_IMPORT } from '../limits.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';
import { defineDomain, invoke } from './define.ts';
import { cursor, fileName, opaqueId, pageLimit, sha256 } from './fields.ts';

/** Lowercase hex sha256 of an image's bytes: the only way the renderer names a stored photo. */
export type ImageHash = string;
/** Opaque id of a folder the user chose in the folder dialog (valid while the app runs). */
export type FolderId = string;
/** Opaque id of one file of a chosen folder. */
export type FolderEntryId = string;

/** The custom protocol that serves stored photos and thumbnails to the renderer. */
export const IMAGE_PROTOCOL = 'owlery-image';

/**
 * Where image URLs start in the app (`owlery-image://`). The web harness, where a browser cannot
 * load custom schemes, serves the same paths over HTTP: use `AppInfo.imageBase`.
 */
export const DEFAULT_IMAGE_BASE = `${IMAGE_PROTOCOL}://`;

/** URL of a stored photo (full size, original bytes). Pass `AppInfo.imageBase`. */
export function imageUrl(sha256: ImageHash, base: string = DEFAULT_IMAGE_BASE): string {
  return `${base}image/${sha256}`;
}
/** URL of a stored photo's thumbnail (EXIF-rotated WebP); falls back to the photo itself. */
export function thumbnailUrl(sha256: ImageHash, base: string = DEFAULT_IMAGE_BASE): string {
  return `${base}thumb/${sha256}`;
}
/** URL of the thumbnail of one file in a folder the user chose. */
export function folderThumbnailUrl(folderId: FolderId, entryId: FolderEntryId, base: string = DEFAULT_IMAGE_BASE): string {
  return `${base}folder/${folderId}/${entryId}`;
}

/** A photo ready to attach: stored, hashed, named (`null` when pasted), with URLs to show it. */
export interface StoredImage extends MessageImage {
  /** {@link imageUrl} of the photo. */
  url: string;
  /** {@link thumbnailUrl} of the photo. */
  thumbnailUrl: string;
  /**
   * Set when the photo was over the pixel limit and a smaller copy was stored instead: the size of
   * the original (as shown, EXIF rotation applied). Only on the answer to the import that stored it.
   */
  downscaledFrom?: { width: number; height: number };
}

/** Why a photo cannot be shown, in a few words (for a thumbnail) and in a sentence. */
export interface ImageProblem {
  kind: 'missing' | 'empty' | 'not-image' | 'truncated' | 'too-large' | 'unsupported' | 'damaged';
  /** `Empty file`, `File is cut off`, … */
  short: string;
  /** The whole reason, naming the file. */
  message: string;
}

/** What the file dialog gave: the photos stored, and the files refused, each with why (in the order chosen). */
export interface PickedPhotos {
  images: StoredImage[];
  refused: { name: string; error: SerializedError }[];
}

const importRequest = v.object({
  /** The file name (folders are stripped); `null` when pasted. */
  name: v.nullable(fileName),
  bytes: v.bytes({ min: 1, max: MAX_DROPPED_IMAGE_BYTES }),
});
/** A dropped or pasted image's bytes. */
export type ImportImageRequest = Infer<typeof importRequest>;

/** A folder the user chose for the photos panel. */
export interface ChosenFolder {
  folderId: FolderId;
  /** The folder's own name (not its path). */
  name: string;
  /** How many image files it holds (not recursive). */
  imageCount: number;
}

/** A folder the Photos screen remembers (chosen in the folder dialog before). */
export interface RecentFolder {
  /** Opaque id (stable across restarts). */
  recentId: string;
  /** The folder's own name (not its path). */
  name: string;
  /** When it was last opened (ms since the epoch). */
  openedAt: number;
}

/** One image file of a chosen folder. */
export interface FolderEntry {
  entryId: FolderEntryId;
  /** The file name. */
  name: string;
  byteSize: number;
  modifiedAt: number;
  /** {@link folderThumbnailUrl} of the file. */
  thumbnailUrl: string;
}

/** `window.owlery.images`. */
export const imagesApi = defineDomain({
  /** Opens the system's file dialog and stores the photos chosen (none when cancelled); a bad file does not stop the others. */
  pick: invoke(v.none()).returns<PickedPhotos>(),
  /** Stores a dropped or pasted photo's bytes. */
  import: invoke(importRequest).returns<StoredImage>(),
  /** A stored photo's record. */
  get: invoke(v.object({ sha256 })).returns<StoredImage>(),
  /** Opens the folder dialog for the photos panel (`null` when cancelled); the folder is remembered. */
  pickFolder: invoke(v.none()).returns<ChosenFolder | null>(),
  /** The folders chosen before, most recent first. */
  recentFolders: invoke(v.none()).returns<RecentFolder[]>(),
  /** Opens a remembered folder again (a folder that is gone is forgotten: `FILE_NOT_FOUND`). */
  openRecentFolder: invoke(v.object({ recentId: opaqueId })).returns<ChosenFolder>(),
  /** Removes a folder from the recent list. */
  forgetRecentFolder: invoke(v.object({ recentId: opaqueId })).returns<null>(),
  /** A page of the image files of a chosen folder, by name. */
  listFolder: invoke(v.object({ folderId: opaqueId, cursor: v.optional(cursor), limit: v.optional(pageLimit) })).returns<Page<FolderEntry>>(),
  /** Why a file of a chosen folder cannot be shown (its thumbnail failed): `null` when it can. */
  folderEntryProblem: invoke(v.object({ folderId: opaqueId, entryId: opaqueId })).returns<ImageProblem | null>(),
  /** Stores chosen files of a chosen folder, ready to attach. */
  importFromFolder: invoke(v.object({ folderId: opaqueId, entryIds: v.array(opaqueId, { min: 1, max: MAX_FOLDER_IMPORT }) })).returns<StoredImage[]>(),
});
