/**
 * Chat and export contracts shared by the main process, IPC and the renderer: what a send,
 * regenerate or edit asks for, the events an answer streams, and the versioned JSON export schema.
 *
 * Data only: no Node, Electron or DOM.
 * @see docs/style.md, H5 (typed event union with request ids, batched text, stats at the end)
 * @see docs/export-format.md (the JSON export schema)
 */
import type {
  ChatOptions,
  ConversationId,
  GenerationSettings,
  Message,
  MessageId,
  MessageRole,
  MessageStatus,
  ModelRef,
} from './domain.ts';
import type { AspectMode, FinishReason, GenerationPhase, GenerationStats, PhaseProgress, SamplingOptions } from './engine.ts';
import type { SerializedError } from './errors.ts';
import type { ImageAttachmentRef } from './ipc/fields.ts';

/** Identifies one generation request (unique within a running app). */
export type ChatRequestId = string;

/**
 * A photo attached to a message being sent: already stored (by hash, as the window attaches
 * photos), a file on disk, or bytes (pasted). Files and bytes are copied into the image store
 * before anything is sent.
 */
export type ChatImageInput =
  | ({ kind: 'stored' } & ImageAttachmentRef)
  | { kind: 'file'; path: string; name?: string | null }
  | { kind: 'bytes'; bytes: Uint8Array; name?: string | null };

/** How an answer is to be generated (defaults come from the chat service's options). */
export interface ChatGenerationOptions {
  sampling?: SamplingOptions;
  /** How non-square photos are made square (default `resize`, the official behaviour). */
  aspectMode?: AspectMode;
}

/** Send a new user message (with photos) and answer it. */
export interface SendRequest extends ChatGenerationOptions {
  /** The conversation to write to; omitted or `null` starts a new one (titled after this message). */
  conversationId?: ConversationId | null;
  /**
   * The message this one follows. Omitted: the end of the branch on screen (the active leaf).
   * `null`: a new first message.
   */
  parentId?: MessageId | null;
  text: string;
  images?: ChatImageInput[];
  /** Instructions and settings of the conversation this send starts (ignored for an existing one). */
  chatOptions?: Partial<ChatOptions>;
}

/**
 * Continue an answer that stopped early (Stop, the length limit, a failure): the model goes on
 * from where the answer ends, and what it writes is appended to the same answer. Only the last
 * message of its branch can be continued.
 */
export interface ContinueRequest extends ChatGenerationOptions {
  messageId: MessageId;
}

/**
 * Answer again. `messageId` is an answer (a new answer is added beside it, under the same user
 * message) or a user message (a new answer is added under it). The old answer stays as a branch.
 */
export interface RegenerateRequest extends ChatGenerationOptions {
  messageId: MessageId;
}

/**
 * Edit a user message and answer the edited version: the edit is a new sibling of the original
 * (same parent), so the original and its answers stay as a branch.
 */
export interface EditRequest extends ChatGenerationOptions {
  messageId: MessageId;
  text: string;
  /** The photos of the edited message; omitted keeps the original's. */
  images?: ChatImageInput[];
}

/** What a send, regenerate, edit or continue started; the answer then streams as {@link ChatEvent}s. */
export interface ChatStarted {
  requestId: ChatRequestId;
  conversationId: ConversationId;
  /** The user message being answered (new for send and edit, the existing one for regenerate and continue). */
  userMessageId: MessageId;
  /** The answer, saved with status `partial` until it finishes (for continue: the answer continued). */
  assistantMessageId: MessageId;
  /** Continue: the answer's text before this request (its `delta`s are appended to it). */
  continuedFrom?: string;
}

/** Where a request stands: waiting for the model (`queued`), then the engine's phases. */
export type ChatPhase = 'queued' | GenerationPhase;

/**
 * Events of one request, in order: `phase` changes, `delta`s of answer text (batched, ~40 ms
 * apart; their texts concatenated are the saved answer), then exactly one `done` or `error`.
 *
 * A cancelled answer ends with `done` and finish `cancelled`: cancelling is a normal outcome.
 */
export type ChatEvent =
  | {
      type: 'phase';
      requestId: ChatRequestId;
      phase: ChatPhase;
      /** Photos the phase works on (`decode-image`, `encode-image`). */
      images?: number;
      /**
       * How far the phase has come, when the engine can know (photos done, prompt positions
       * prefilled); the same phase is sent again as it advances.
       */
      progress?: PhaseProgress;
    }
  | {
      type: 'delta';
      requestId: ChatRequestId;
      /** 0, 1, 2, … per request, so a gap can be noticed. */
      seq: number;
      text: string;
    }
  | {
      type: 'done';
      requestId: ChatRequestId;
      finish: FinishReason;
      /** `null` when the request was cancelled before the engine started it. */
      stats: GenerationStats | null;
      /** The answer as saved. */
      message: Message;
    }
  | {
      type: 'error';
      requestId: ChatRequestId;
      error: SerializedError;
      /** The answer as saved (status `error`, the text produced so far), if it could be saved. */
      message: Message | null;
    };

/** The final outcome of a request (the payload of its `done` or `error` event). */
export type ChatOutcome = Extract<ChatEvent, { type: 'done' } | { type: 'error' }>;

/** Formats a conversation can be exported to. */
export type ExportFormat = 'markdown' | 'html' | 'json' | 'pdf';
/** Every {@link ExportFormat}, in menu order. */
export const EXPORT_FORMATS: readonly ExportFormat[] = ['markdown', 'html', 'pdf', 'json'];

/** The `format` field of a JSON export. */
export const EXPORT_FILE_FORMAT = 'owlery-export';
/** The schema version this app writes, and the newest it reads. */
export const EXPORT_FILE_VERSION = 2;

/**
 * A JSON export (schema version 1): conversations with their full message trees, and the photos
 * they use, once each. Documented in docs/export-format.md.
 *
 * The `Exported*` types restate the fields of `Conversation`, `Message` and `ImageRef`
 * (`./domain.ts`) on purpose: they are a frozen file format, so a new field in the app's own types
 * does not change what version 1 files hold.
 */
export interface ExportFile {
  format: typeof EXPORT_FILE_FORMAT;
  version: typeof EXPORT_FILE_VERSION;
  /** When the file was written, ISO 8601 UTC (informational). */
  exportedAt: string;
  /** The app that wrote it (informational). */
  generator: { name: string; version: string };
  conversations: ExportedConversation[];
  /** Every photo the messages use, once each, by hash. */
  images: ExportedImage[];
}

/** One conversation of a JSON export. */
export interface ExportedConversation {
  /** The id it had where it was exported; links messages to it within the file only. */
  id: ConversationId;
  title: string;
  createdAt: number;
  updatedAt: number;
  modelId: string | null;
  pinned: boolean;
  /** When it was moved to the trash, or `null`. */
  deletedAt: number | null;
  /** The end of the branch on screen (a message id of this file), or `null` when empty. */
  activeLeafId: MessageId | null;
  /** The title is the user's and will not follow an edited first message (version 2; absent in 1: false). */
  titleSetByUser?: boolean;
  /** The chat's instructions and its own temperature and answer length (version 2; absent in 1: none). */
  options?: ChatOptions;
  /** Every message of the tree, parents before children (ascending id). */
  messages: ExportedMessage[];
}

/** One message of a JSON export. */
export interface ExportedMessage {
  /** Its id where it was exported; parents refer to it within the file. */
  id: MessageId;
  /** The message it follows (an id within this conversation), or `null` for a first message. */
  parentId: MessageId | null;
  role: MessageRole;
  text: string;
  status: MessageStatus;
  error: string | null;
  createdAt: number;
  updatedAt: number;
  stats: GenerationStats | null;
  settings: GenerationSettings | null;
  model: ModelRef | null;
  /** Attached photos, in order: hashes into {@link ExportFile.images}. */
  images: { sha256: string; name: string | null }[];
}

/** One photo of a JSON export. */
export interface ExportedImage {
  /** sha256 of the bytes, lower-case hex; checked on import. */
  sha256: string;
  mime: string;
  byteSize: number;
  width: number;
  height: number;
  orientation: number;
  /** The file's bytes, base64 (RFC 4648, with padding). */
  data: string;
}

/** What an import did. */
export interface ImportResult {
  /** One entry per imported conversation: its id in the file and its new id here. */
  conversations: { sourceId: ConversationId; id: ConversationId }[];
  /**
   * Conversations of the file not imported because they are already here (the same conversation
   * id and content: imported before, or exported from this history): their id in the file, title,
   * and the conversation here.
   */
  duplicates: { sourceId: ConversationId; title: string; existingId: ConversationId }[];
  /** Messages imported. */
  messages: number;
  /** Photos that were not stored yet and were added. */
  imagesAdded: number;
  /** Photos already stored (same bytes), not stored again. */
  imagesReused: number;
}
