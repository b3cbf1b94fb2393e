/**
 * Request fields several IPC domains share: row ids, photo hashes, opaque ids, model ids, page
 * cursors and sizes, file names. Bounds come from `../limits.ts`.
 */
import { MAX_FILE_NAME_CHARS, MAX_INSTRUCTIONS_CHARS, MAX_PAGE_SIZE } from '../limits.ts';
import { MODEL_ID_PATTERN, SETTING_SCHEMAS } from '../settings.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';

/** A SQLite row id (conversation, message). */
export const rowId = v.int({ min: 1, max: Number.MAX_SAFE_INTEGER });
/** A stored photo's hash. */
export const sha256 = v.string({ pattern: /^[0-9a-f]{64}$/, patternName: 'a sha256 (64 lowercase hex digits)' });
/** An id main handed out (request, folder, folder entry, task). */
export const opaqueId = v.string({ pattern: /^[A-Za-z0-9_-]{1,64}$/, patternName: 'an id (1-64 letters, digits, _ or -)' });
/** A model package id. */
export const modelId = v.string({ pattern: MODEL_ID_PATTERN, patternName: 'a model package id' });
/** The previous page's `nextCursor`. */
export const cursor = v.nullable(v.string({ max: 512 }));
/** How many items a page holds. */
export const pageLimit = v.int({ min: 1, max: MAX_PAGE_SIZE });
/** A name shown to the user, never used as a path: no folders, no NUL. */
export const fileName = v.string({ min: 1, max: MAX_FILE_NAME_CHARS, pattern: /^[^/\\\0]+$/, patternName: 'a file name without folders' });

/** A stored photo to attach to a message, by hash, with the name to show. */
export const attachment = v.object({ sha256, name: v.optional(v.nullable(fileName)) });
/** A photo to attach to a message: a stored image (from `images.pick`, `images.import`, …), never a path. */
export type ImageAttachmentRef = Infer<typeof attachment>;

/** A change to a chat's instructions and settings (`null`: follow the app's setting). */
export const chatOptionsPatch = v.object({
  instructions: v.optional(v.string({ max: MAX_INSTRUCTIONS_CHARS })),
  temperature: v.optional(v.nullable(SETTING_SCHEMAS.temperature)),
  maxNewTokens: v.optional(v.nullable(SETTING_SCHEMAS.maxNewTokens)),
});
/** A change to a chat's instructions and settings. */
export type ChatOptionsPatch = Infer<typeof chatOptionsPatch>;
