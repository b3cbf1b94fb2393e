/**
 * THE IPC contract between the renderer and the main process: one channel map (`domain:verb` →
 * request and response types) and one typed union of events main sends to the renderer.
 *
 * - Every request is a single payload (an object, or nothing); every response crosses as plain
 *   data inside an {@link IpcResult} envelope, so expected failures keep their `ErrorCode`.
 * - The renderer never sees file paths. Photos are stored content-addressed by main and shown
 *   through the `owlery-image:` protocol ({@link imageUrl}, {@link thumbnailUrl}); files outside the
 *   app's data folder are reachable only when the user chose them (open dialog, folder dialog,
 *   drop/paste of bytes).
 * - The same map drives the Electron wiring (`src-main/ipc`, `src-main/preload`) and the web test
 *   harness (`test/harness`); request payloads are validated by the schemas in `./api.ts`.
 *
 * Pure types and constants: no Node, Electron or DOM.
 * @see docs/design.md, "Processes and data flow"; style.md H2, H5, H7
 */
import type {
  Conversation,
  ConversationId,
  ConversationSummary,
  ImageRef,
  MessageId,
  Page,
  SearchResults,
  Thread,
} from '../domain.ts';
import type { ChatEvent, ChatRequestId, ChatStarted, ExportFormat, ImportResult } from '../chat.ts';
import type { ProviderReport } from '../engine.ts';
import type { SerializedError } from '../errors.ts';
import type { SettingKey, Settings, SettingsPatch } from '../settings.ts';

// ───────────────────────────── limits ─────────────────────────────

/** Bounds every request payload is checked against (main refuses larger ones with `INVALID_ARGUMENT`). */
export const IPC_LIMITS = {
  /** A message's text, in UTF-8 bytes. */
  maxTextBytes: 1_000_000,
  /** A search query, in characters. */
  maxQueryChars: 1000,
  /** A conversation title, in characters (the store's limit). */
  maxTitleChars: 500,
  /** Bytes of one dropped or pasted image (main may configure a lower limit). */
  maxImageBytes: 50 * 1024 * 1024,
  /** A dropped file's name, in characters. */
  maxFileNameChars: 255,
  /** Photos attached to one message. */
  maxImagesPerMessage: 16,
  /** Entries a folder listing returns per page. */
  maxPageSize: 500,
  /** Folder entries imported in one call. */
  maxFolderImport: 64,
  /** A hub repository id (`owner/name`), in characters. */
  maxRepoChars: 200,
} as const;

// ───────────────────────────── shared shapes ─────────────────────────────

/** The answer of every invoke: a value, or an expected error as plain data. */
export type IpcResult<T> = { ok: true; value: T } | { ok: false; error: SerializedError };

/** Lowercase hex sha256 of an image's bytes: the only way the renderer names a stored photo. */
export type ImageHash = string;

/** Opaque id of a folder the user chose in the folder dialog (valid while the app runs). */
export type FolderId = string;
/** Opaque id of one file of a chosen folder. */
export type FolderEntryId = string;
/** Opaque id of a long model task (import, pull, verify). */
export type TaskId = string;

/** The custom protocol that serves stored photos and thumbnails to the renderer. */
export const IMAGE_PROTOCOL = 'owlery-image';
/** The custom protocol that serves the built renderer in the packaged app. */
export const APP_PROTOCOL = 'app';
/** The origin of the renderer in the app (`app://owlery`). */
export const APP_ORIGIN = 'app://owlery';

/**
 * Where image URLs start in the app (`owlery-image://`). The web harness, where a browser cannot
 * load custom schemes, serves the same paths over HTTP: use {@link AppInfo.imageBase}.
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

/** A photo ready to attach: stored, hashed, with URLs to show it. */
export interface StoredImage extends ImageRef {
  /** The file name shown to the user (no folders); `null` for pasted images. */
  name: string | null;
  /** {@link imageUrl} of the photo. */
  url: string;
  /** {@link thumbnailUrl} of the photo. */
  thumbnailUrl: string;
}

/** A photo to attach to a message: a stored image, by hash, with the name to show. */
export interface ImageAttachmentRef {
  sha256: ImageHash;
  name?: string | null;
}

/** Generation settings a single request may override (the rest come from settings). */
export interface GenerationOverrides {
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  maxNewTokens?: number;
  seed?: number;
  aspectMode?: 'resize' | 'pad' | 'crop';
}

// ───────────────────────────── app & engine ─────────────────────────────

/** What the About box and diagnostics show. */
export interface AppInfo {
  name: string;
  version: string;
  /** `linux`, `darwin`, `win32`, …; `browser` in the web harness. */
  platform: string;
  /** Runtime versions (`node`, `electron`, `chrome`, `onnxruntime`…) where known. */
  versions: Record<string, string>;
  /** True in the web test harness (file dialogs are scripted there). */
  harness: boolean;
  /** Base of image URLs (`owlery-image://` in the app); pass it to {@link imageUrl} and friends. */
  imageBase: string;
}

/** Where the engine stands. */
export type EngineState = 'idle' | 'loading' | 'ready' | 'generating' | 'crashed' | 'error';

/** The engine's status, pushed as an event whenever it changes. */
export interface EngineStatus {
  state: EngineState;
  /** The loaded (or loading) model package, if any. */
  modelId: string | null;
  /** Which execution provider runs it, and why others did not. */
  provider: ProviderReport | null;
  /** Why the "faster start" copy was not used although the setting is on (null otherwise). */
  fasterStartSkipped: string | null;
  /** Tokens the loaded model can attend to. */
  contextLimit: number | null;
  /** The last failure (load error or crash); cleared by the next successful load. */
  error: SerializedError | null;
  /** Times the engine process was restarted after a crash since the app started. */
  restarts: number;
}

// ───────────────────────────── conversations ─────────────────────────────

/** A listing request: a page of conversations, pinned first then by latest activity. */
export interface ListConversationsRequest {
  /** `trash: true` lists the trash instead (most recently deleted first). */
  trash?: boolean;
  limit?: number;
  /** The previous page's `nextCursor`. */
  cursor?: string | null;
}

// ───────────────────────────── chat ─────────────────────────────

/**
 * Send a user message and stream the answer (`chat:event`s). Photos are stored ones, by hash
 * (from `images:pick`, `images:import` or `images:import-from-folder`): never paths.
 */
export interface ChatSendRequest {
  /** The conversation to write to; omitted or `null` starts a new one titled after the message. */
  conversationId?: ConversationId | null;
  text: string;
  images?: ImageAttachmentRef[];
  /** The message this one follows; omitted: the end of the branch on screen; `null`: a new first message. */
  parentId?: MessageId | null;
  overrides?: GenerationOverrides;
}

/** Answer again: beside the answer `messageId`, or under the user message `messageId` (a new branch). */
export interface ChatRegenerateRequest {
  messageId: MessageId;
  overrides?: GenerationOverrides;
}

/** Edit a user message (a new sibling branch) and answer the edited version. */
export interface ChatEditRequest {
  messageId: MessageId;
  text: string;
  /** Photos of the edited message; omitted keeps the original's. */
  images?: ImageAttachmentRef[];
  overrides?: GenerationOverrides;
}

export type { ChatEvent, ChatRequestId, ChatStarted, ExportFormat, ImportResult };

// ───────────────────────────── images & photos panel ─────────────────────────────

/** A dropped or pasted image's bytes. */
export interface ImportImageRequest {
  /** The file name (folders are stripped); `null` when pasted. */
  name: string | null;
  bytes: Uint8Array;
}

/** A folder the user chose for the photos panel. */
export interface ChosenFolder {
  folderId: FolderId;
  /** The folder's own name (not its path). */
  name: string;
  /** How many image files it holds (not recursive). */
  imageCount: number;
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

// ───────────────────────────── models ─────────────────────────────

/** Weight precision of a model component. */
export type ModelQuantization = 'fp32' | 'fp16' | 'int8' | 'int4';

/** What is known about a package's checksums. */
export interface ModelVerification {
  /** `verified`: every file matched its manifest checksum; `unverified`: not checked yet; `failed`: a file is missing or altered. */
  state: 'verified' | 'unverified' | 'failed';
  /** The failure, naming the file, when `failed`. */
  error: SerializedError | null;
}

/** An installed model package. */
export interface InstalledModel {
  id: string;
  name: string;
  family: string;
  /** Bytes of all the package's files. */
  sizeBytes: number;
  /** Weight precision per component; `null` (like the fields below) when the manifest is unreadable. */
  quantization: { vision: ModelQuantization; llm: ModelQuantization; embed: ModelQuantization } | null;
  /** Where it came from: the checkpoint's weight format. */
  sourceFormat: string | null;
  converterVersion: string | null;
  /** ISO 8601 time of conversion. */
  createdAt: string | null;
  /** Context length of the language model. */
  contextLength: number | null;
  verification: ModelVerification;
  /** True for the package in settings (`activeModelId`). */
  active: boolean;
  /** The execution provider last used to run it in this session, if it was loaded. */
  provider: ProviderReport | null;
}

/** Options of a local checkpoint import (the folder itself comes from a dialog). */
export interface ImportModelRequest {
  /** Package name (default: the folder's name). */
  name?: string;
  /** Weight format to read when the folder holds both. */
  prefer?: 'safetensors' | 'pytorch';
}

/** Download a checkpoint from the model hub and convert it. Refused in offline mode. */
export interface PullModelRequest {
  /** Hub repository, `owner/name`. */
  repo: string;
  /** Branch, tag or commit (default `main`). */
  revision?: string;
  name?: string;
}

/** Kinds of long model tasks. */
export type ModelTaskKind = 'import' | 'pull' | 'verify';

/** A long model task and its progress; sent as `models:task` events and listed by `models:tasks`. */
export interface ModelTask {
  taskId: TaskId;
  kind: ModelTaskKind;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  /** What it is doing now (`downloading`, `hashing-source`, `writing-graphs`, …). */
  phase: string;
  /** Progress in `unit`s within the current phase; `total` is `null` when unknown. */
  done: number;
  total: number | null;
  unit: 'bytes' | 'tensors' | 'files';
  /** A label for the UI: the folder's or repository's name. */
  label: string;
  /** The package it produced or works on, once known. */
  modelId: string | null;
  error: SerializedError | null;
  startedAt: number;
  /** Increments with every event of the task. */
  seq: number;
}

// ───────────────────────────── network ─────────────────────────────

/** Where a request came from: a model download the user started, the window, or the app itself. */
export type NetworkRequestSource = 'model-download' | 'window' | 'app';

/** One request the app made or blocked. Only the origin is kept: never paths, queries or tokens. */
export interface NetworkLogEntry {
  /** Increments with every entry of this session. */
  seq: number;
  /** When it was decided, in ms since the epoch. */
  time: number;
  source: NetworkRequestSource;
  /** HTTP method (`GET`, …). */
  method: string;
  /** `scheme://host[:port]` of the URL. */
  origin: string;
  allowed: boolean;
  /** Why it was allowed or blocked, in plain words. */
  reason: string;
}

/** The network log of this session (newest last) and whether offline mode is on. */
export interface NetworkLogPage {
  offline: boolean;
  entries: NetworkLogEntry[];
  /** Older entries of this session no longer kept in memory (they are in the log file). */
  dropped: number;
}

// ───────────────────────────── export ─────────────────────────────

/** Where an export went (main shows a save dialog; the renderer gets the file's name only). */
export interface ExportResult {
  /** False when the user cancelled the save dialog. */
  saved: boolean;
  /** The file's name (no folders). */
  fileName: string | null;
  conversations: number;
  /** What the export left out (a conversation that cannot be read, a missing photo, a date that cannot be shown), in words. */
  skipped?: string[];
}

/** What `export:import` did: nothing when the user cancelled the open dialog. */
export interface ImportOutcome {
  imported: boolean;
  result: ImportResult | null;
}

// ───────────────────────────── the channel map ─────────────────────────────

/** Shorthand for one channel's request and response types. */
export interface Channel<Req, Res> {
  request: Req;
  response: Res;
}

/**
 * Every invoke channel: `domain:verb` → request payload and response value.
 * `void` requests take no payload. Failures arrive as `{ ok: false, error }` with an `ErrorCode`.
 */
export interface IpcContract {
  /** App name, version, runtime versions. */
  'app:info': Channel<void, AppInfo>;
  /**
   * Photos the operating system opened with Owlery ("Open with Owlery", command line), stored and
   * queued since the last call; taking them clears the queue. Call at start and on `app:photos-opened`.
   */
  'app:take-opened-photos': Channel<void, StoredImage[]>;

  /** The engine's status now (then follow `engine:status` events). */
  'engine:status': Channel<void, EngineStatus>;

  /** A page of conversations (pinned first, then latest activity), or of the trash. */
  'conversations:list': Channel<ListConversationsRequest, Page<ConversationSummary>>;
  /** The thread on screen (or ending at `leafId`) with each message's siblings for branch switching. */
  'conversations:get': Channel<{ id: ConversationId; leafId?: MessageId | null }, Thread>;
  /** Starts an empty conversation. */
  'conversations:create': Channel<{ title?: string; modelId?: string | null }, Conversation>;
  'conversations:rename': Channel<{ id: ConversationId; title: string }, Conversation>;
  'conversations:pin': Channel<{ id: ConversationId; pinned: boolean }, Conversation>;
  /** Moves a conversation to the trash (undo with `conversations:restore`). */
  'conversations:delete': Channel<{ id: ConversationId }, Conversation>;
  'conversations:restore': Channel<{ id: ConversationId }, Conversation>;
  /** Deletes a conversation for good (it must be in the trash). */
  'conversations:purge': Channel<{ id: ConversationId }, null>;
  /** Deletes everything in the trash for good. */
  'conversations:empty-trash': Channel<void, { purged: number }>;
  /** Shows the branch through `messageId` (the "‹ 2 / 3 ›" switcher); returns the new thread. */
  'conversations:select-branch': Channel<{ messageId: MessageId }, Thread>;
  /** Full-text search over titles and messages, with highlighted snippets. */
  'conversations:search': Channel<{ query: string; limit?: number }, SearchResults>;

  /** Writes the user message and starts streaming the answer. */
  'chat:send': Channel<ChatSendRequest, ChatStarted>;
  'chat:regenerate': Channel<ChatRegenerateRequest, ChatStarted>;
  'chat:edit': Channel<ChatEditRequest, ChatStarted>;
  /** Stops a streaming answer; it ends with `done { finish: 'cancelled' }`, text kept. */
  'chat:cancel': Channel<{ requestId: ChatRequestId }, { cancelled: boolean }>;

  /** Opens the system's file dialog and stores the photos chosen ([] when cancelled). */
  'images:pick': Channel<void, StoredImage[]>;
  /** Stores a dropped or pasted photo's bytes. */
  'images:import': Channel<ImportImageRequest, StoredImage>;
  /** A stored photo's record. */
  'images:get': Channel<{ sha256: ImageHash }, StoredImage>;
  /** Opens the folder dialog for the photos panel (`null` when cancelled). */
  'images:pick-folder': Channel<void, ChosenFolder | null>;
  /** A page of the image files of a chosen folder, by name. */
  'images:list-folder': Channel<{ folderId: FolderId; cursor?: string | null; limit?: number }, Page<FolderEntry>>;
  /** Stores chosen files of a chosen folder, ready to attach. */
  'images:import-from-folder': Channel<{ folderId: FolderId; entryIds: FolderEntryId[] }, StoredImage[]>;

  /** Installed model packages. */
  'models:list': Channel<void, InstalledModel[]>;
  /** Opens the folder dialog and converts the checkpoint chosen (`null` when cancelled). */
  'models:import': Channel<ImportModelRequest, { taskId: TaskId } | null>;
  /** Downloads and converts a checkpoint from the hub (`OFFLINE` in offline mode). */
  'models:pull': Channel<PullModelRequest, { taskId: TaskId }>;
  /** Re-checks every checksum of a package (a task: progress as events). */
  'models:verify': Channel<{ id: string }, { taskId: TaskId }>;
  /** Deletes a package (not the active one while it generates). */
  'models:delete': Channel<{ id: string }, null>;
  /** Makes a package the active one and loads it in the engine. */
  'models:select': Channel<{ id: string }, EngineStatus>;
  /** Tasks running or finished in this session. */
  'models:tasks': Channel<void, ModelTask[]>;
  'models:cancel-task': Channel<{ taskId: TaskId }, { cancelled: boolean }>;

  'settings:get': Channel<void, Settings>;
  /** Applies a partial change; returns every setting. */
  'settings:set': Channel<{ patch: SettingsPatch }, Settings>;
  'settings:reset': Channel<void, Settings>;

  /** Every request the app made or blocked in this session (the last `limit`, newest last). */
  'network:log': Channel<{ limit?: number }, NetworkLogPage>;

  /** Exports one conversation (save dialog in main). */
  'export:conversation': Channel<{ id: ConversationId; format: ExportFormat }, ExportResult>;
  /** Exports every conversation not in the trash (save dialog in main). */
  'export:all': Channel<{ format: ExportFormat }, ExportResult>;
  /** Imports an exported JSON file (open dialog in main). */
  'export:import': Channel<void, ImportOutcome>;
}

/** Every invoke channel name. */
export type ChannelName = keyof IpcContract;
/** The request payload of a channel. */
export type RequestOf<C extends ChannelName> = IpcContract[C]['request'];
/** The response value of a channel. */
export type ResponseOf<C extends ChannelName> = IpcContract[C]['response'];

/** Every invoke channel, at run time (kept in sync with {@link IpcContract} by a type check in `./api.ts`). */
export const CHANNELS = [
  'app:info',
  'app:take-opened-photos',
  'engine:status',
  'conversations:list',
  'conversations:get',
  'conversations:create',
  'conversations:rename',
  'conversations:pin',
  'conversations:delete',
  'conversations:restore',
  'conversations:purge',
  'conversations:empty-trash',
  'conversations:select-branch',
  'conversations:search',
  'chat:send',
  'chat:regenerate',
  'chat:edit',
  'chat:cancel',
  'images:pick',
  'images:import',
  'images:get',
  'images:pick-folder',
  'images:list-folder',
  'images:import-from-folder',
  'models:list',
  'models:import',
  'models:pull',
  'models:verify',
  'models:delete',
  'models:select',
  'models:tasks',
  'models:cancel-task',
  'settings:get',
  'settings:set',
  'settings:reset',
  'network:log',
  'export:conversation',
  'export:all',
  'export:import',
] as const satisfies readonly ChannelName[];

// ───────────────────────────── events (main → renderer) ─────────────────────────────

/** Why the conversation list may be stale (the renderer reloads what it shows). */
export interface ConversationsChanged {
  reason: 'created' | 'updated' | 'deleted' | 'restored' | 'purged' | 'imported';
  /** The conversations concerned; empty when many changed (an import). */
  ids: ConversationId[];
}

/** Settings changed (by this window, another window, or main itself). */
export interface SettingsChanged {
  settings: Settings;
  changed: SettingKey[];
}

/** Menu commands and shortcuts main forwards to the renderer (the menu lives in main). */
export type AppCommand = 'new-conversation' | 'search' | 'attach-images' | 'export-conversation' | 'settings' | 'models';
/** Every {@link AppCommand}. */
export const APP_COMMANDS: readonly AppCommand[] = ['new-conversation', 'search', 'attach-images', 'export-conversation', 'settings', 'models'];

/** Every event main sends: event name → payload. */
export interface EventContract {
  /** A menu item or shortcut the renderer acts on. */
  'app:command': { command: AppCommand };
  /** Photos were opened with Owlery: take them with `app:take-opened-photos` (`count` are waiting). */
  'app:photos-opened': { count: number };
  /** Streaming answer events of every request (`phase`, batched `delta`s with `seq`, then `done` or `error`). */
  'chat:event': ChatEvent;
  /** Model task progress (import, pull, verify). */
  'models:task': ModelTask;
  /** The installed model list changed (a package was added, deleted or selected). */
  'models:changed': { ids: string[] };
  'settings:changed': SettingsChanged;
  /** Engine status changes, crashes and restarts, with the provider report. */
  'engine:status': EngineStatus;
  'conversations:changed': ConversationsChanged;
}

/** Every event name. */
export type EventName = keyof EventContract;

/** The typed event union main → renderer. */
export type OwleryEvent = { [K in EventName]: { type: K; payload: EventContract[K] } }[EventName];

/** Every event name, at run time. */
export const EVENTS = [
  'app:command',
  'app:photos-opened',
  'chat:event',
  'models:task',
  'models:changed',
  'settings:changed',
  'engine:status',
  'conversations:changed',
] as const satisfies readonly EventName[];

/** The single Electron IPC channel events travel on (`{ type, payload }` messages). */
export const EVENT_CHANNEL = 'owlery:event';
