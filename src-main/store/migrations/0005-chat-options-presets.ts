/**
 * Schema v5: per-chat instructions and generation settings, named presets, who set a title, a
 * cover photo per conversation, and what an imported conversation was.
 *
 * - `conversations.instructions`, `temperature`, `max_new_tokens`: the chat's own instructions
 *   (put into the prompt, src-main/engine/mplug-owl2/prompt.ts) and settings; `NULL` settings
 *   follow the app's.
 * - `conversations.title_set_by_user`: 1 once the user renamed it; until then the title follows an
 *   edited first message. Existing conversations get 1: whether they were renamed is not known, and
 *   keeping a title is the safe side.
 * - `conversations.cover_sha256`: the first photo attached in the conversation (the sidebar's
 *   thumbnail), kept when a message is added, so listing costs nothing extra. Backfilled here.
 * - `conversations.import_key`: for conversations imported from a JSON export, a hash of the id
 *   they had in the file and their content; importing the same conversation again is noticed.
 * - `presets`: named sets of instructions, temperature and answer length.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './types.ts';

/** Migration 5: chat options, presets, title ownership, cover photos, import keys. */
export const migration0005: Migration = {
  version: 5,
  name: '0005-chat-options-presets',
  up(db: Database.Database): void {
    db.exec(`
      ALTER TABLE conversations ADD COLUMN title_set_by_user INTEGER NOT NULL DEFAULT 0 CHECK (title_set_by_user IN (0, 1));
      UPDATE conversations SET title_set_by_user = 1;
      ALTER TABLE conversations ADD COLUMN instructions TEXT NOT NULL DEFAULT '';
      ALTER TABLE conversations ADD COLUMN temperature REAL;
      ALTER TABLE conversations ADD COLUMN max_new_tokens INTEGER;
      ALTER TABLE conversations ADD COLUMN cover_sha256 TEXT;
      UPDATE conversations SET cover_sha256 = (
        SELECT mi.image_sha256 FROM messages m JOIN message_images mi ON mi.message_id = m.id
        WHERE m.conversation_id = conversations.id ORDER BY m.id, mi.position LIMIT 1);
      ALTER TABLE conversations ADD COLUMN import_key TEXT;
      CREATE INDEX conversations_by_import_key ON conversations (import_key) WHERE import_key IS NOT NULL;

      CREATE TABLE presets (
        id             INTEGER PRIMARY KEY,
        name           TEXT    NOT NULL UNIQUE COLLATE NOCASE,
        instructions   TEXT    NOT NULL DEFAULT '',
        temperature    REAL,
        max_new_tokens INTEGER,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
      );
    `);
  },
};
