/**
 * Schema v4: photo descriptions (issue 14) — captions and keywords per photo with their
 * provenance, where photos were seen, describe jobs and their photos, and full-text search.
 *
 * - `photo_descriptions`: one row per photo content (sha256) × model package (id and manifest
 *   sha256) × prompt version, so a photo already described the same way is skipped. The newest row
 *   of a photo is its current description. `keywords` holds the keywords one per line (what the
 *   search index reads); `description_keywords` holds them as rows, for the keyword filter.
 * - `photo_files`: where a photo was seen (absolute path), with its size and modification time, so
 *   an unchanged file need not be hashed again.
 * - `describe_jobs` / `describe_items`: a job and its photos in order; an item stays `pending`
 *   until its photo is finished, so a job interrupted by a crash continues at its first pending
 *   photo and never redoes a finished one.
 * - `photo_descriptions_fts`: FTS5 over caption and keywords (external content, kept in step by
 *   triggers), with the same tokenizer as the history search.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './types.ts';

/** Migration 4: photo descriptions and describe jobs. */
export const migration0004: Migration = {
  version: 4,
  name: '0004-photo-descriptions',
  up(db: Database.Database): void {
    db.exec(`
      CREATE TABLE photo_descriptions (
        id             INTEGER PRIMARY KEY,
        sha256         TEXT    NOT NULL CHECK (length(sha256) = 64),
        package_id     TEXT    NOT NULL,
        model_sha256   TEXT    NOT NULL,
        prompt_version TEXT    NOT NULL,
        caption        TEXT    NOT NULL,
        keywords       TEXT    NOT NULL DEFAULT '',
        settings_json  TEXT    NOT NULL,
        described_at   INTEGER NOT NULL,
        ms             INTEGER NOT NULL,
        UNIQUE (sha256, package_id, model_sha256, prompt_version)
      );
      CREATE INDEX photo_descriptions_by_photo ON photo_descriptions (sha256, id);

      CREATE TABLE description_keywords (
        description_id INTEGER NOT NULL REFERENCES photo_descriptions (id) ON DELETE CASCADE,
        position       INTEGER NOT NULL,
        keyword        TEXT    NOT NULL,
        PRIMARY KEY (description_id, position)
      ) WITHOUT ROWID;
      CREATE INDEX description_keywords_by_keyword ON description_keywords (keyword, description_id);

      CREATE TABLE photo_files (
        path       TEXT    PRIMARY KEY,
        sha256     TEXT    NOT NULL CHECK (length(sha256) = 64),
        byte_size  INTEGER NOT NULL,
        mtime_ms   INTEGER NOT NULL,
        seen_at    INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX photo_files_by_photo ON photo_files (sha256);

      CREATE TABLE describe_jobs (
        id             INTEGER PRIMARY KEY,
        state          TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'paused', 'done', 'cancelled')),
        spec_json      TEXT    NOT NULL,
        prompt_version TEXT    NOT NULL,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        finished_at    INTEGER
      );

      CREATE TABLE describe_items (
        job_id                INTEGER NOT NULL REFERENCES describe_jobs (id) ON DELETE CASCADE,
        position              INTEGER NOT NULL,
        path                  TEXT    NOT NULL,
        state                 TEXT    NOT NULL DEFAULT 'pending'
                                      CHECK (state IN ('pending', 'described', 'skipped', 'failed')),
        sha256                TEXT,
        description_id        INTEGER REFERENCES photo_descriptions (id) ON DELETE SET NULL,
        error_code            TEXT,
        error_message         TEXT,
        sidecar_error_code    TEXT,
        sidecar_error_message TEXT,
        ms                    INTEGER,
        finished_at           INTEGER,
        PRIMARY KEY (job_id, position)
      ) WITHOUT ROWID;
      CREATE INDEX describe_items_pending ON describe_items (job_id, position) WHERE state = 'pending';

      CREATE VIRTUAL TABLE photo_descriptions_fts USING fts5 (
        caption,
        keywords,
        content = 'photo_descriptions',
        content_rowid = 'id',
        tokenize = "unicode61 remove_diacritics 2 categories 'L* N* Co So M*'"
      );
      CREATE TRIGGER photo_descriptions_fts_after_insert AFTER INSERT ON photo_descriptions BEGIN
        INSERT INTO photo_descriptions_fts (rowid, caption, keywords) VALUES (new.id, new.caption, new.keywords);
      END;
      CREATE TRIGGER photo_descriptions_fts_after_delete AFTER DELETE ON photo_descriptions BEGIN
        INSERT INTO photo_descriptions_fts (photo_descriptions_fts, rowid, caption, keywords) VALUES ('delete', old.id, old.caption, old.keywords);
      END;
      CREATE TRIGGER photo_descriptions_fts_after_update AFTER UPDATE OF caption, keywords ON photo_descriptions BEGIN
        INSERT INTO photo_descriptions_fts (photo_descriptions_fts, rowid, caption, keywords) VALUES ('delete', old.id, old.caption, old.keywords);
        INSERT INTO photo_descriptions_fts (rowid, caption, keywords) VALUES (new.id, new.caption, new.keywords);
      END;
    `);
  },
};
