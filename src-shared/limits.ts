/**
 * Every bound Owlery puts on what users (and the renderer) hand it: message text, photos,
 * titles, searches, listings, imports. One place, so the renderer's hints, the IPC request
 * schemas (`./ipc/`), the services and the stores agree; raising a limit here raises it everywhere.
 *
 * Each limit says who enforces it. Where two layers check the same thing (IPC, then the service
 * that does the work), the IPC bound is the looser first line and the service gives the message
 * users see.
 *
 * Pure constants: no Node, Electron or DOM.
 */

// ───────────────────────────── messages ─────────────────────────────

/** Longest message text the chat service accepts, in UTF-16 code units. */
export const MAX_MESSAGE_CHARS = 100_000;
/**
 * Longest message text a request may carry over IPC, in UTF-8 bytes: a looser first bound than
 * {@link MAX_MESSAGE_CHARS} (which fits in 300,000 bytes), checked before the text is copied on.
 */
export const MAX_MESSAGE_BYTES = 1_000_000;
/** Most photos on one message (chat service, IPC, the composer, photos opened with the app). */
export const MAX_IMAGES_PER_MESSAGE = 16;

// ───────────────────────────── photos ─────────────────────────────

/** Largest photo the renderer may hand over as bytes (dropped or pasted), in bytes: 50 MiB. */
export const MAX_DROPPED_IMAGE_BYTES = 50 * 1024 * 1024;
/** Largest image file the image store and the decoder accept, in bytes: 256 MiB. */
export const MAX_IMAGE_FILE_BYTES = 256 * 1024 * 1024;
/**
 * Most pixels (width × height) of a photo, checked from its header before decoding, and of any
 * intermediate image of the preprocessing: 100 megapixels (a 300 MB RGB buffer).
 */
export const MAX_IMAGE_PIXELS = 100_000_000;
/**
 * Most pixels of a photo the image store downscales on import (see {@link DOWNSCALED_LONG_SIDE}):
 * 250 megapixels, past the largest phone and camera sensors (200 MP). Only JPEG, PNG, WebP and
 * TIFF stills are downscaled, formats whose decoders stream or shrink while reading, so a
 * decompression bomb costs time, not memory; larger photos, and larger GIF, HEIC, AVIF or animated
 * images, are refused as too large.
 */
export const MAX_SOURCE_IMAGE_PIXELS = 250_000_000;
/**
 * Longest side, in pixels, of the copy the image store keeps of a photo over
 * {@link MAX_IMAGE_PIXELS}: 4096, plenty to look at (the model sees 448×448).
 */
export const DOWNSCALED_LONG_SIDE = 4096;
/** Longest file name shown for a photo (no folders), in characters. */
export const MAX_FILE_NAME_CHARS = 255;
/** Files of a chosen folder stored in one `images:import-from-folder` request. */
export const MAX_FOLDER_IMPORT = 64;

// ───────────────────────────── history ─────────────────────────────

/** Longest conversation title, in characters (the store refuses longer ones). */
export const MAX_TITLE_CHARS = 500;
/** Largest page a listing returns (conversations, trash, search hits, folder entries). */
export const MAX_PAGE_SIZE = 500;
/** Longest search request accepted over IPC, in characters (longer ones are refused). */
export const MAX_QUERY_REQUEST_CHARS = 1000;
/** Characters of a search the index uses; the rest is ignored. */
export const MAX_QUERY_CHARS = 500;
/** Words (or phrases) of a search the index uses; the rest are ignored. */
export const MAX_QUERY_TERMS = 16;
/** Longest per-chat instructions (and a preset's), in characters (store, IPC, the chat settings). */
export const MAX_INSTRUCTIONS_CHARS = 8000;
/** Longest preset name, in characters. */
export const MAX_PRESET_NAME_CHARS = 80;
/** Most named presets kept (the store refuses more). */
export const MAX_PRESETS = 100;
/** Folders the Photos screen remembers (most recent first). */
export const MAX_RECENT_FOLDERS = 8;
/** Largest export file the importer reads, in bytes: 512 MiB (2 GiB of JSON is more than a V8 string holds anyway). */
export const MAX_IMPORT_BYTES = 512 * 1024 * 1024;

// ───────────────────────────── models ─────────────────────────────

/** Longest hub repository id (`owner/name`), in characters. */
export const MAX_REPO_CHARS = 200;

// ───────────────────────────── photo descriptions ─────────────────────────────

/** Photos one "Describe selected" may name (a whole folder has no limit: describe the folder). */
export const MAX_DESCRIBE_SELECTION = 10_000;
/** Longest keyword a chip filter may name, in characters. */
export const MAX_KEYWORD_FILTER_CHARS = 100;
/** Keyword chips one description search may combine. */
export const MAX_KEYWORD_FILTERS = 16;
