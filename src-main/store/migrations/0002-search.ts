/**
 * Schema v2: full-text search over message text and conversation titles (FTS5).
 *
 * Both indexes are external-content tables kept in step by triggers, so the text is stored once.
 * The tokenizer is unicode61 with diacritics folded (`cafe` finds `café`) and symbol and mark
 * categories kept as word characters, so emoji are searchable and Indic words are not cut at
 * their vowel signs. Existing rows are indexed by the migration ('rebuild').
 */
import type Database from 'better-sqlite3';
import type { Migration } from './types.ts';

/** Migration 2: FTS5 indexes for search. */
export const migration0002: Migration = {
  version: 2,
  name: '0002-search',
  up(db: Database.Database): void {
    db.exec(`
      CREATE VIRTUAL TABLE messages_fts USING fts5 (
        text,
        content = 'messages',
        content_rowid = 'id',
        tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co So M*'"
      );
      CREATE TRIGGER messages_fts_after_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
      END;
      CREATE TRIGGER messages_fts_after_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
      END;
      CREATE TRIGGER messages_fts_after_update AFTER UPDATE OF text ON messages
        WHEN old.text IS NOT new.text BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
      END;

      CREATE VIRTUAL TABLE conversations_fts USING fts5 (
        title,
        content = 'conversations',
        content_rowid = 'id',
        tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co So M*'"
      );
      CREATE TRIGGER conversations_fts_after_insert AFTER INSERT ON conversations BEGIN
        INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
      END;
      CREATE TRIGGER conversations_fts_after_delete AFTER DELETE ON conversations BEGIN
        INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
      END;
      CREATE TRIGGER conversations_fts_after_update AFTER UPDATE OF title ON conversations
        WHEN old.title IS NOT new.title BEGIN
        INSERT INTO conversations_fts (conversations_fts, rowid, title) VALUES ('delete', old.id, old.title);
        INSERT INTO conversations_fts (rowid, title) VALUES (new.id, new.title);
      END;

      INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
      INSERT INTO conversations_fts (conversations_fts) VALUES ('rebuild');
    `);
  },
};
