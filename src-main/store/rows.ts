/**
 * Rows as SQLite returns them (snake_case columns, 0/1 flags, JSON text) and the domain values
 * they become.
 */
import type { GenerationStats } from '../../src-shared/engine.ts';
import type {
  ChatOptions,
  Conversation,
  ConversationSummary,
  GenerationSettings,
  ImageRef,
  Message,
  MessageImage,
  MessageRole,
  MessageStatus,
  Preset,
} from '../../src-shared/domain.ts';

/** One stored image, as the image store records it. */
export interface ImageRecord extends ImageRef {
  /** File extension of the original, without the dot (`jpg`, `png`, …). */
  ext: string;
  createdAt: number;
}

export interface ConversationRow {
  id: number;
  title: string;
  created_at: number;
  updated_at: number;
  model_id: string | null;
  pinned: number;
  deleted_at: number | null;
  active_leaf_id: number | null;
  title_set_by_user: number;
  instructions: string;
  temperature: number | null;
  max_new_tokens: number | null;
  cover_sha256: string | null;
}

export interface PresetRow {
  id: number;
  name: string;
  instructions: string;
  temperature: number | null;
  max_new_tokens: number | null;
  created_at: number;
  updated_at: number;
}

export interface MessageRow {
  id: number;
  conversation_id: number;
  parent_id: number | null;
  role: MessageRole;
  text: string;
  status: MessageStatus;
  error: string | null;
  created_at: number;
  updated_at: number;
  settings_json: string | null;
  stats_json: string | null;
  model_package_id: string | null;
  model_sha256: string | null;
}

/** The few columns of a message that place it in the tree. */
export interface MessageHead {
  id: number;
  conversation_id: number;
  parent_id: number | null;
  role: MessageRole;
  status: MessageStatus;
}

export interface ImageRow {
  sha256: string;
  ext: string;
  mime: string;
  byte_size: number;
  width: number;
  height: number;
  orientation: number;
  created_at: number;
  thumb_mime: string | null;
  thumb_width: number | null;
  thumb_height: number | null;
}

export function toSummary(r: ConversationRow): ConversationSummary {
  return {
    id: r.id,
    title: r.title,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    modelId: r.model_id,
    pinned: r.pinned === 1,
    deletedAt: r.deleted_at,
    coverImage: r.cover_sha256,
  };
}

function toOptions(r: { instructions: string; temperature: number | null; max_new_tokens: number | null }): ChatOptions {
  return { instructions: r.instructions, temperature: r.temperature, maxNewTokens: r.max_new_tokens };
}

export function toConversation(r: ConversationRow): Conversation {
  return { ...toSummary(r), activeLeafId: r.active_leaf_id, titleSetByUser: r.title_set_by_user === 1, options: toOptions(r) };
}

export function toPreset(r: PresetRow): Preset {
  return { id: r.id, name: r.name, ...toOptions(r), createdAt: r.created_at, updatedAt: r.updated_at };
}

export function toMessage(r: MessageRow, images: MessageImage[]): Message {
  return {
    id: r.id,
    conversationId: r.conversation_id,
    parentId: r.parent_id,
    role: r.role,
    text: r.text,
    status: r.status,
    error: r.error,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    stats: parseJson<GenerationStats>(r.stats_json),
    settings: parseJson<GenerationSettings>(r.settings_json),
    model: r.model_package_id !== null && r.model_sha256 !== null ? { packageId: r.model_package_id, sha256: r.model_sha256 } : null,
    images,
  };
}

export function toImageRecord(r: ImageRow): ImageRecord {
  const swap = r.orientation >= 5;
  return {
    sha256: r.sha256,
    ext: r.ext,
    mime: r.mime,
    byteSize: r.byte_size,
    width: r.width,
    height: r.height,
    orientation: r.orientation,
    displayWidth: swap ? r.height : r.width,
    displayHeight: swap ? r.width : r.height,
    thumbnail: r.thumb_mime !== null && r.thumb_width !== null && r.thumb_height !== null
      ? { mime: r.thumb_mime, width: r.thumb_width, height: r.thumb_height }
      : null,
    createdAt: r.created_at,
  };
}

/** A JSON column's value; `null` when empty or unreadable. */
function parseJson<T>(text: string | null): T | null {
  if (text === null) return null;
  try {
    return JSON.parse(text) as T;
  } catch {
    return null;
  }
}

/** A value for a JSON column (`null` for none). */
export function jsonOrNull(value: unknown): string | null {
  return value === undefined || value === null ? null : JSON.stringify(value);
}
