/**
 * Schema v3: the selected branch per conversation, image thumbnails and answer statistics.
 *
 * - `conversations.active_leaf_id`: the message at the end of the branch the user is on. Existing
 *   conversations get their newest message, which is the branch they last wrote to.
 * - `images.thumb_*`: the thumbnail stored next to each image (`<sha256>.thumb.webp`). Images
 *   stored before v3 have none until the image store backfills them (`ImageStore.backfillThumbnails`).
 * - `messages.stats_json`: timing and token counts of a finished answer.
 */
import type Database from 'better-sqlite3';
import type { Migration } from './types.ts';

/** Migration 3: branch selection, thumbnails, answer stats. */
export const migration0003: Migration = {
  version: 3,
  name: '0003-branches-thumbnails-stats',
  up(db: Database.Database): void {
    db.exec(`
      ALTER TABLE conversations ADD COLUMN active_leaf_id INTEGER;
      UPDATE conversations
         SET active_leaf_id = (SELECT max(m.id) FROM messages m WHERE m.conversation_id = conversations.id);

      ALTER TABLE images ADD COLUMN thumb_mime TEXT;
      ALTER TABLE images ADD COLUMN thumb_width INTEGER;
      ALTER TABLE images ADD COLUMN thumb_height INTEGER;

      ALTER TABLE messages ADD COLUMN stats_json TEXT;
    `);
  },
};
