/**
 * Schema v1: conversations, messages as a tree, content-addressed images and their links to
 * messages.
 *
 * Times are integer milliseconds since the epoch. Conversations are soft-deleted (`deleted_at`)
 * into a trash; the recency index is partial, so trashed rows cost the sidebar nothing.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './types.ts';

/** `PRAGMA application_id` of an Owlery database: "OWLY" in ASCII. */
export const OWLERY_APPLICATION_ID = 0x4f574c59;

/** Migration 1: the initial schema. */
export const migration0001: Migration = {
  version: 1,
  name: '0001-init',
  up(db: Database.Database): void {
    db.pragma(`application_id = ${OWLERY_APPLICATION_ID}`);
    db.exec(`
      CREATE TABLE conversations (
        id          INTEGER PRIMARY KEY,
        title       TEXT    NOT NULL DEFAULT '',
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        model_id    TEXT,
        pinned      INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1)),
        deleted_at  INTEGER
      );
      CREATE INDEX conversations_by_recency
        ON conversations (pinned DESC, updated_at DESC, id DESC) WHERE deleted_at IS NULL;
      CREATE INDEX conversations_in_trash
        ON conversations (deleted_at DESC, id DESC) WHERE deleted_at IS NOT NULL;

      CREATE TABLE messages (
        id               INTEGER PRIMARY KEY,
        conversation_id  INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
        parent_id        INTEGER REFERENCES messages (id) ON DELETE CASCADE,
        role             TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
        text             TEXT    NOT NULL DEFAULT '',
        status           TEXT    NOT NULL DEFAULT 'complete'
                                 CHECK (status IN ('complete', 'partial', 'cancelled', 'error')),
        error            TEXT,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        settings_json    TEXT,
        model_package_id TEXT,
        model_sha256     TEXT
      );
      CREATE INDEX messages_by_conversation ON messages (conversation_id, parent_id, id);
      CREATE INDEX messages_by_parent ON messages (parent_id, id);

      CREATE TABLE images (
        sha256      TEXT    PRIMARY KEY CHECK (length(sha256) = 64),
        ext         TEXT    NOT NULL,
        mime        TEXT    NOT NULL,
        byte_size   INTEGER NOT NULL,
        width       INTEGER NOT NULL,
        height      INTEGER NOT NULL,
        orientation INTEGER NOT NULL DEFAULT 1 CHECK (orientation BETWEEN 1 AND 8),
        created_at  INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE message_images (
        message_id   INTEGER NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
        position     INTEGER NOT NULL,
        image_sha256 TEXT    NOT NULL REFERENCES images (sha256),
        name         TEXT,
        PRIMARY KEY (message_id, position)
      ) WITHOUT ROWID;
      CREATE INDEX message_images_by_image ON message_images (image_sha256);
    `);
  },
};
