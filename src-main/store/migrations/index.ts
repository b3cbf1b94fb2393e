/**
 * Every schema migration, in order. Append new ones here; never edit or reorder released ones.
 */
import type { Migration } from './types.ts';
import { migration0001 } from './0001-init.ts';
import { migration0002 } from './0002-search.ts';
import { migration0003 } from './0003-branches-thumbnails-stats.ts';
import { migration0004 } from './0004-photo-descriptions.ts';
import { migration0005 } from './0005-chat-options-presets.ts';

export type { Migration } from './types.ts';
export { OWLERY_APPLICATION_ID } from './0001-init.ts';

/** All migrations, ordered by version (1, 2, 3, …). */
export const MIGRATIONS: readonly Migration[] = [migration0001, migration0002, migration0003, migration0004, migration0005];

/** The schema version this build of Owlery writes. */
export const SCHEMA_VERSION = MIGRATIONS.length;
