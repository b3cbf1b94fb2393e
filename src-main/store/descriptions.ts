/**
 * Photo descriptions in the history database (schema v4): captions and keywords with their
 * provenance, where each photo was seen, search over captions and keywords (FTS5, ranked,
 * highlighted; the query language is `search-query.ts`'s), keyword counts for filter chips, and a
 * folder's descriptions for export. Describe jobs are `describe-jobs.ts`'s.
 *
 * Reached as `store.descriptions`; every method turns SQLite failures into `OwleryError`s.
 */
import { sep } from 'node:path';
import type Database from 'better-sqlite3';
import type { DescribedPhoto, DescriptionHit, DescriptionProvenance, DescriptionSettings, KeywordCount, PhotoDescription } from '../../src-shared/describe.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { DESCRIPTION_SQL } from './description-queries.ts';
import type { DescriptionSqlName } from './description-queries.ts';
import { classified } from './errors.ts';
import { parseHighlighted, parseSearch, HIGHLIGHT_OPEN } from './search-query.ts';

/** Default and largest number of search hits. */
export const DEFAULT_DESCRIPTION_HITS = 100;
export const MAX_DESCRIPTION_HITS = 1000;

/** A description to save. */
export interface NewDescription extends DescriptionProvenance {
  sha256: string;
  caption: string;
  keywords: string[];
}

/** A description with its row id. */
export type StoredDescription = PhotoDescription & { id: number };

/** What the store remembers about a photo file. */
export interface PhotoFileRecord {
  path: string;
  sha256: string;
  size: number;
  mtimeMs: number;
}

/** Options of {@link DescriptionStore.search}. */
export interface DescriptionSearchOptions {
  /** Only photos carrying every one of these keywords (the chips). */
  keywords?: string[];
  /** Only photos seen in this folder (absolute path) or below it. */
  folder?: string;
  /** Most hits (default 100, at most 1000). */
  limit?: number;
}

interface DescriptionRow {
  id: number;
  sha256: string;
  package_id: string;
  model_sha256: string;
  prompt_version: string;
  caption: string;
  keywords: string;
  settings_json: string;
  described_at: number;
  ms: number;
}

/** Statements prepared once per connection. */
export class StatementCache {
  private readonly statements = new Map<DescriptionSqlName, Database.Statement>();
  constructor(readonly db: Database.Database) {}

  get(name: DescriptionSqlName): Database.Statement {
    let s = this.statements.get(name);
    if (!s) {
      s = this.db.prepare(DESCRIPTION_SQL[name]);
      this.statements.set(name, s);
    }
    return s;
  }
}

/** The `[from, to)` path range of everything under `folder` (a trailing separator or not). */
export function folderRange(folder: string): { from: string; to: string } {
  const base = folder.endsWith(sep) ? folder : folder + sep;
  return { from: base, to: base.slice(0, -1) + String.fromCharCode(sep.charCodeAt(0) + 1) };
}

function toDescription(r: DescriptionRow): StoredDescription {
  return {
    id: r.id,
    sha256: r.sha256,
    caption: r.caption,
    keywords: r.keywords === '' ? [] : r.keywords.split('\n'),
    provenance: {
      packageId: r.package_id,
      modelSha256: r.model_sha256,
      promptVersion: r.prompt_version,
      settings: JSON.parse(r.settings_json) as DescriptionSettings,
      describedAt: r.described_at,
      ms: r.ms,
    },
  };
}

/** A description without its row id (what leaves the main process). */
export function publicDescription(d: StoredDescription): PhotoDescription {
  const { id: _id, ...rest } = d;
  return rest;
}

/** See the module comment. */
export class DescriptionStore {
  private readonly sql: StatementCache;

  constructor(
    private readonly db: Database.Database,
    private readonly file: string,
    private readonly now: () => number,
  ) {
    this.sql = new StatementCache(db);
  }

  /** The description of a photo by this model package and prompt version, if there is one (the skip check). */
  find(sha256: string, model: { packageId: string; modelSha256: string }, promptVersion: string): StoredDescription | undefined {
    return this.guard(() => {
      const r = this.sql.get('findDescription').get({ sha256, ...model, promptVersion }) as DescriptionRow | undefined;
      return r && toDescription(r);
    });
  }

  /** A photo's current description (the newest), if it has one. */
  current(sha256: string): StoredDescription | undefined {
    return this.guard(() => {
      const r = this.sql.get('currentDescription').get(sha256) as DescriptionRow | undefined;
      return r && toDescription(r);
    });
  }

  /** The current description of the photo last seen at `path`, if any. */
  currentAt(path: string): DescribedPhoto | undefined {
    const file = this.photoFile(path);
    const d = file && this.current(file.sha256);
    return d && { path, ...publicDescription(d) };
  }

  /**
   * Saves a description (replacing one by the same model package and prompt version) with its
   * keywords, in one transaction. Returns its row id.
   */
  save(d: NewDescription): number {
    if (d.keywords.some((k) => k.includes('\n'))) throw new OwleryError('INVALID_ARGUMENT', 'A keyword cannot contain a line break.');
    return this.guard(() => this.db.transaction(() => {
      const { id } = this.sql.get('upsertDescription').get({
        sha256: d.sha256, packageId: d.packageId, modelSha256: d.modelSha256, promptVersion: d.promptVersion,
        caption: d.caption, keywords: d.keywords.join('\n'), settings: JSON.stringify(d.settings), describedAt: d.describedAt, ms: Math.round(d.ms),
      }) as { id: number };
      this.sql.get('deleteKeywords').run(id);
      d.keywords.forEach((k, i) => this.sql.get('insertKeyword').run(id, i, k));
      return id;
    }).immediate());
  }

  /** What the store knows of the file at `path` (its hash when last seen), if anything. */
  photoFile(path: string): PhotoFileRecord | undefined {
    return this.guard(() => {
      const r = this.sql.get('getPhotoFile').get(path) as { path: string; sha256: string; byte_size: number; mtime_ms: number } | undefined;
      return r && { path: r.path, sha256: r.sha256, size: r.byte_size, mtimeMs: r.mtime_ms };
    });
  }

  /** Records that the photo `sha256` is at `path` (with the file's size and modification time). */
  putPhotoFile(file: PhotoFileRecord): void {
    this.guard(() => this.sql.get('putPhotoFile').run({ ...file, mtimeMs: Math.round(file.mtimeMs), now: this.now() }));
  }

  /** Where the photo `sha256` was seen, by path. */
  pathsOf(sha256: string): string[] {
    return this.guard(() => (this.sql.get('pathsOf').all(sha256) as { path: string }[]).map((r) => r.path));
  }

  /**
   * Searches current descriptions: the words of `query` in captions and keywords (ranked by bm25,
   * keywords weighing twice; the last word matches as a prefix while typing), filtered by keyword
   * chips and folder. With an empty query the chips alone select (newest first). Matches are
   * marked in the caption; `matchedKeywords` lists the keywords that matched.
   */
  search(query: string, opts: DescriptionSearchOptions = {}): DescriptionHit[] {
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? DEFAULT_DESCRIPTION_HITS)), MAX_DESCRIPTION_HITS);
    const chips = [...new Set((opts.keywords ?? []).map((k) => k.trim().toLowerCase()).filter(Boolean))];
    const range = opts.folder ? folderRange(opts.folder) : { from: null, to: null };
    const params = { keywords: chips.length ? JSON.stringify(chips) : null, ...range, limit };
    const parsed = parseSearch(query);
    return this.guard(() => {
      if (parsed === null) {
        if (chips.length === 0) return [];
        const rows = this.sql.get('filterByKeywords').all({ ...params, first: chips[0] }) as DescriptionRow[];
        return rows.map((r) => this.hit(r, { text: r.caption, highlights: [] }, chips, 0));
      }
      const rows = this.sql.get('searchDescriptions').all({ ...params, query: parsed.query }) as (DescriptionRow & { caption_marked: string; keywords_marked: string; rank: number })[];
      return rows.map((r) => {
        const matched = r.keywords_marked.split('\n').filter((k) => k.includes(HIGHLIGHT_OPEN)).map((k) => parseHighlighted(k).text);
        return this.hit(r, parseHighlighted(r.caption_marked), [...new Set([...chips, ...matched])], r.rank);
      });
    });
  }

  /** The most frequent keywords of current descriptions (in `folder` and below, when given). */
  keywordCounts(opts: { folder?: string; limit?: number } = {}): KeywordCount[] {
    const range = opts.folder ? folderRange(opts.folder) : { from: null, to: null };
    const limit = Math.min(Math.max(1, Math.floor(opts.limit ?? 50)), MAX_DESCRIPTION_HITS);
    return this.guard(() => (this.sql.get('keywordCounts').all({ ...range, limit }) as { keyword: string; n: number }[]).map((r) => ({ keyword: r.keyword, count: r.n })));
  }

  /** The current descriptions of the photos seen in `folder` (and below when `recursive`), by path. */
  inFolder(folder: string, opts: { recursive?: boolean } = {}): DescribedPhoto[] {
    const range = folderRange(folder);
    return this.guard(() => {
      const rows = this.sql.get('folderDescriptions').all(range) as (DescriptionRow & { path: string })[];
      return rows.filter((r) => opts.recursive || !r.path.slice(range.from.length).includes(sep)).map((r) => ({ path: r.path, ...publicDescription(toDescription(r)) }));
    });
  }

  private hit(r: DescriptionRow, caption: DescriptionHit['caption'], matchedKeywords: string[], rank: number): DescriptionHit {
    const keywords = r.keywords === '' ? [] : r.keywords.split('\n');
    return { sha256: r.sha256, paths: this.pathsOf(r.sha256), caption, keywords, matchedKeywords: matchedKeywords.filter((k) => keywords.includes(k)), rank };
  }

  private guard<T>(fn: () => T): T {
    return classified(this.file, fn);
  }
}
