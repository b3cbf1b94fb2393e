/**
 * The store's SQL, in one place, so tests can check the hot queries' plans (`EXPLAIN QUERY PLAN`)
 * against the same text the store runs.
 */

const CONVERSATION_COLUMNS =
  'id, title, created_at, updated_at, model_id, pinned, deleted_at, active_leaf_id, ' +
  'title_set_by_user, instructions, temperature, max_new_tokens, cover_sha256';
const PRESET_COLUMNS = 'id, name, instructions, temperature, max_new_tokens, created_at, updated_at';
const MESSAGE_COLUMNS =
  'm.id, m.conversation_id, m.parent_id, m.role, m.text, m.status, m.error, m.created_at, m.updated_at, ' +
  'm.settings_json, m.stats_json, m.model_package_id, m.model_sha256';
const IMAGE_COLUMNS =
  'i.sha256, i.ext, i.mime, i.byte_size, i.width, i.height, i.orientation, i.created_at, i.thumb_mime, i.thumb_width, i.thumb_height';

/** SQL text of every statement the store prepares. Named parameters use `@name`. */
export const SQL = {
  // Conversations ---------------------------------------------------------------------------------
  insertConversation:
    'INSERT INTO conversations (title, created_at, updated_at, model_id, title_set_by_user, instructions, temperature, max_new_tokens, import_key) ' +
    'VALUES (@title, @now, @now, @modelId, @titleSetByUser, @instructions, @temperature, @maxNewTokens, @importKey)',
  getConversation: `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE id = ?`,
  /** Sidebar, first page: pinned first, then most recent. Hot. */
  listConversationsFirst:
    `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NULL ` +
    'ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT @limit',
  /** Sidebar, later pages: keyset paging after the cursor row, so deep pages cost the same. Hot. */
  listConversationsAfter:
    `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NULL ` +
    'AND (pinned, updated_at, id) < (@pinned, @updatedAt, @id) ' +
    'ORDER BY pinned DESC, updated_at DESC, id DESC LIMIT @limit',
  listTrashFirst:
    `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NOT NULL ` +
    'ORDER BY deleted_at DESC, id DESC LIMIT @limit',
  listTrashAfter:
    `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE deleted_at IS NOT NULL ` +
    'AND (deleted_at, id) < (@deletedAt, @id) ORDER BY deleted_at DESC, id DESC LIMIT @limit',
  renameConversation: 'UPDATE conversations SET title = @title, title_set_by_user = max(title_set_by_user, @byUser) WHERE id = @id',
  setConversationOptions:
    'UPDATE conversations SET instructions = @instructions, temperature = @temperature, max_new_tokens = @maxNewTokens WHERE id = @id',
  /** The first photo attached becomes the conversation's cover (later ones leave it). */
  setCoverIfNone: 'UPDATE conversations SET cover_sha256 = @sha256 WHERE id = @id AND cover_sha256 IS NULL',
  /** A conversation imported before with this key, not deleted for good (in the trash or not). */
  conversationByImportKey: `SELECT ${CONVERSATION_COLUMNS} FROM conversations WHERE import_key = ? ORDER BY id LIMIT 1`,
  pinConversation: 'UPDATE conversations SET pinned = @pinned WHERE id = @id',
  setConversationModel: 'UPDATE conversations SET model_id = @modelId WHERE id = @id',
  softDeleteConversation: 'UPDATE conversations SET deleted_at = @now WHERE id = @id AND deleted_at IS NULL',
  restoreConversation: 'UPDATE conversations SET deleted_at = NULL WHERE id = @id',
  touchConversation: 'UPDATE conversations SET updated_at = max(updated_at, @now), active_leaf_id = @leaf WHERE id = @id',
  touchConversationTime: 'UPDATE conversations SET updated_at = max(updated_at, @now) WHERE id = @id',
  setActiveLeaf: 'UPDATE conversations SET active_leaf_id = @leaf WHERE id = @id',
  purgeConversation: 'DELETE FROM conversations WHERE id = ? AND deleted_at IS NOT NULL',
  purgeTrashBefore: 'DELETE FROM conversations WHERE deleted_at IS NOT NULL AND deleted_at <= ?',

  // Presets ---------------------------------------------------------------------------------------
  listPresets: `SELECT ${PRESET_COLUMNS} FROM presets ORDER BY name COLLATE NOCASE, id`,
  getPreset: `SELECT ${PRESET_COLUMNS} FROM presets WHERE id = ?`,
  countPresets: 'SELECT count(*) AS n FROM presets',
  insertPreset:
    'INSERT INTO presets (name, instructions, temperature, max_new_tokens, created_at, updated_at) ' +
    'VALUES (@name, @instructions, @temperature, @maxNewTokens, @now, @now)',
  updatePreset:
    'UPDATE presets SET name = @name, instructions = @instructions, temperature = @temperature, max_new_tokens = @maxNewTokens, ' +
    'updated_at = @now WHERE id = @id',
  deletePreset: 'DELETE FROM presets WHERE id = ?',

  // Messages --------------------------------------------------------------------------------------
  insertMessage:
    'INSERT INTO messages (conversation_id, parent_id, role, text, status, created_at, updated_at, settings_json, model_package_id, model_sha256) ' +
    'VALUES (@conversationId, @parentId, @role, @text, @status, @now, @now, @settings, @modelPackageId, @modelSha256)',
  getMessage: `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.id = ?`,
  messageHead: 'SELECT id, conversation_id, parent_id, role, status FROM messages WHERE id = ?',
  /** Opens a finished answer again to continue it (its text stays; the error goes). */
  reopenAnswer:
    "UPDATE messages SET status = 'partial', error = NULL, updated_at = @now WHERE id = @id AND role = 'assistant' AND status <> 'partial'",
  childCount: 'SELECT count(*) AS n FROM messages WHERE parent_id = ?',
  appendText: "UPDATE messages SET text = text || @delta, updated_at = @now WHERE id = @id AND status = 'partial'",
  updateText: "UPDATE messages SET text = @text, updated_at = @now WHERE id = @id AND status = 'partial'",
  finishMessage:
    'UPDATE messages SET status = @status, text = coalesce(@text, text), error = @error, stats_json = @stats, ' +
    'settings_json = coalesce(@settings, settings_json), model_package_id = coalesce(@modelPackageId, model_package_id), ' +
    "model_sha256 = coalesce(@modelSha256, model_sha256), updated_at = @now WHERE id = @id AND status = 'partial'",
  latestRoot: 'SELECT id FROM messages WHERE conversation_id = ? AND parent_id IS NULL ORDER BY id DESC LIMIT 1',
  latestChild: 'SELECT id FROM messages WHERE parent_id = ? ORDER BY id DESC LIMIT 1',
  /** Siblings of a message that has a parent. */
  siblings: `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.parent_id = ? ORDER BY m.id`,
  /** Siblings of a first message (no parent). */
  rootSiblings: `SELECT ${MESSAGE_COLUMNS} FROM messages m WHERE m.conversation_id = ? AND m.parent_id IS NULL ORDER BY m.id`,
  /** The deepest descendant reached by always taking the newest child. */
  newestLeafUnder:
    'WITH RECURSIVE down(id, depth) AS (SELECT @id, 0 UNION ALL ' +
    'SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.id DESC LIMIT 1), depth + 1 ' +
    'FROM down WHERE down.id IS NOT NULL AND depth < 1000000) ' +
    'SELECT id FROM down WHERE id IS NOT NULL ORDER BY depth DESC LIMIT 1',
  /**
   * A thread: the ancestors of @start (root first), @start, then the newest child of each message
   * below it, with each message's sibling ids. Hot.
   */
  thread:
    'WITH RECURSIVE ' +
    'up(id, depth) AS (SELECT @start, 0 UNION ALL ' +
    'SELECT m.parent_id, up.depth - 1 FROM up JOIN messages m ON m.id = up.id WHERE m.parent_id IS NOT NULL), ' +
    'down(id, depth) AS (SELECT (SELECT c.id FROM messages c WHERE c.parent_id = @start ORDER BY c.id DESC LIMIT 1), 1 ' +
    'UNION ALL SELECT (SELECT c.id FROM messages c WHERE c.parent_id = down.id ORDER BY c.id DESC LIMIT 1), down.depth + 1 ' +
    'FROM down WHERE down.id IS NOT NULL), ' +
    'path(id, depth) AS (SELECT id, depth FROM up UNION ALL SELECT id, depth FROM down WHERE id IS NOT NULL) ' +
    `SELECT ${MESSAGE_COLUMNS}, CASE WHEN m.parent_id IS NULL ` +
    'THEN (SELECT group_concat(s.id) FROM messages s WHERE s.conversation_id = m.conversation_id AND s.parent_id IS NULL) ' +
    'ELSE (SELECT group_concat(s.id) FROM messages s WHERE s.parent_id = m.parent_id) END AS sibling_ids ' +
    'FROM path CROSS JOIN messages m ON m.id = path.id WHERE m.conversation_id = @conversationId ORDER BY path.depth',

  // Images ----------------------------------------------------------------------------------------
  insertImage:
    'INSERT INTO images (sha256, ext, mime, byte_size, width, height, orientation, created_at, thumb_mime, thumb_width, thumb_height) ' +
    'VALUES (@sha256, @ext, @mime, @byteSize, @width, @height, @orientation, @now, @thumbMime, @thumbWidth, @thumbHeight) ' +
    'ON CONFLICT (sha256) DO UPDATE SET thumb_mime = coalesce(images.thumb_mime, excluded.thumb_mime), ' +
    'thumb_width = coalesce(images.thumb_width, excluded.thumb_width), thumb_height = coalesce(images.thumb_height, excluded.thumb_height)',
  getImage: `SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.sha256 = ?`,
  setThumbnail: 'UPDATE images SET thumb_mime = @mime, thumb_width = @width, thumb_height = @height WHERE sha256 = @sha256',
  imagesWithoutThumbnail: `SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.thumb_mime IS NULL LIMIT ?`,
  linkImage: 'INSERT INTO message_images (message_id, position, image_sha256, name) VALUES (@messageId, @position, @sha256, @name)',
  /** Images of a set of messages (a JSON array of ids). Hot (part of a thread fetch). */
  imagesOfMessages:
    `SELECT mi.message_id, mi.name, ${IMAGE_COLUMNS} FROM message_images mi JOIN images i ON i.sha256 = mi.image_sha256 ` +
    'WHERE mi.message_id IN (SELECT value FROM json_each(?)) ORDER BY mi.message_id, mi.position',
  orphanImages:
    `SELECT ${IMAGE_COLUMNS} FROM images i WHERE i.created_at <= ? ` +
    'AND NOT EXISTS (SELECT 1 FROM message_images mi WHERE mi.image_sha256 = i.sha256)',
  deleteImage:
    'DELETE FROM images WHERE sha256 = ? AND NOT EXISTS (SELECT 1 FROM message_images mi WHERE mi.image_sha256 = images.sha256)',

  // Search ----------------------------------------------------------------------------------------
  /** Conversation titles matching an FTS5 query, best first. Hot. */
  searchTitles:
    'SELECT c.id, c.title, c.updated_at, highlight(conversations_fts, 0, char(2), char(3)) AS marked, conversations_fts.rank AS rank ' +
    'FROM conversations_fts JOIN conversations c ON c.id = conversations_fts.rowid ' +
    'WHERE conversations_fts MATCH @query AND c.deleted_at IS NULL ORDER BY conversations_fts.rank LIMIT @limit',
  /** How many messages match, counting no further than @cap (cheap: no ranking). */
  countMessageMatches: 'SELECT count(*) AS n FROM (SELECT 1 FROM messages_fts WHERE messages_fts MATCH @query LIMIT @cap)',
  /** Messages matching an FTS5 query, newest first, with a snippet (for queries too common to rank). Hot. */
  searchMessagesRecent:
    'SELECT m.id, m.conversation_id, m.role, c.title, c.updated_at, ' +
    "snippet(messages_fts, 0, char(2), char(3), '…', 24) AS marked, NULL AS rank " +
    'FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN conversations c ON c.id = m.conversation_id ' +
    'WHERE messages_fts MATCH @query AND c.deleted_at IS NULL ORDER BY messages_fts.rowid DESC LIMIT @limit',
  /** Messages matching an FTS5 query, best first (bm25), with a snippet around the match. Hot. */
  searchMessages:
    'SELECT m.id, m.conversation_id, m.role, c.title, c.updated_at, ' +
    "snippet(messages_fts, 0, char(2), char(3), '…', 24) AS marked, messages_fts.rank AS rank " +
    'FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid JOIN conversations c ON c.id = m.conversation_id ' +
    'WHERE messages_fts MATCH @query AND c.deleted_at IS NULL ORDER BY messages_fts.rank LIMIT @limit',
} as const;

/** Name of one statement in {@link SQL}. */
export type SqlName = keyof typeof SQL;
