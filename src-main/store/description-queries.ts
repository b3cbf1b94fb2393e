/**
 * The SQL of photo descriptions and describe jobs (schema v4), in one place like `queries.ts`'s,
 * so tests can check the plans of the hot queries against the text the store runs.
 */

const DESCRIPTION_COLUMNS =
  'd.id, d.sha256, d.package_id, d.model_sha256, d.prompt_version, d.caption, d.keywords, d.settings_json, d.described_at, d.ms';
const JOB_COLUMNS = 'id, state, spec_json, prompt_version, created_at, updated_at, finished_at';

/** The newest description of the photo `d.sha256` is `d` (a photo's current description). */
const IS_CURRENT = 'd.id = (SELECT max(c.id) FROM photo_descriptions c WHERE c.sha256 = d.sha256)';
/** Every keyword of the JSON array `@keywords` is one of `d`'s (no filter when it is null). */
const HAS_KEYWORDS =
  '(@keywords IS NULL OR (SELECT count(DISTINCT k.keyword) FROM description_keywords k ' +
  'WHERE k.description_id = d.id AND k.keyword IN (SELECT value FROM json_each(@keywords))) = json_array_length(@keywords))';
/** The photo was seen under the folder `@from` … `@to` (path range; no filter when null). */
const IN_FOLDER = '(@from IS NULL OR EXISTS (SELECT 1 FROM photo_files f WHERE f.sha256 = d.sha256 AND f.path >= @from AND f.path < @to))';

/** SQL text of every statement of the description parts. Named parameters use `@name`. */
export const DESCRIPTION_SQL = {
  // Descriptions ----------------------------------------------------------------------------------
  findDescription:
    `SELECT ${DESCRIPTION_COLUMNS} FROM photo_descriptions d ` +
    'WHERE d.sha256 = @sha256 AND d.package_id = @packageId AND d.model_sha256 = @modelSha256 AND d.prompt_version = @promptVersion',
  currentDescription: `SELECT ${DESCRIPTION_COLUMNS} FROM photo_descriptions d WHERE d.sha256 = ? ORDER BY d.id DESC LIMIT 1`,
  upsertDescription:
    'INSERT INTO photo_descriptions (sha256, package_id, model_sha256, prompt_version, caption, keywords, settings_json, described_at, ms) ' +
    'VALUES (@sha256, @packageId, @modelSha256, @promptVersion, @caption, @keywords, @settings, @describedAt, @ms) ' +
    'ON CONFLICT (sha256, package_id, model_sha256, prompt_version) DO UPDATE SET caption = excluded.caption, ' +
    'keywords = excluded.keywords, settings_json = excluded.settings_json, described_at = excluded.described_at, ms = excluded.ms ' +
    'RETURNING id',
  deleteKeywords: 'DELETE FROM description_keywords WHERE description_id = ?',
  insertKeyword: 'INSERT INTO description_keywords (description_id, position, keyword) VALUES (?, ?, ?)',

  // Where photos were seen ------------------------------------------------------------------------
  getPhotoFile: 'SELECT path, sha256, byte_size, mtime_ms FROM photo_files WHERE path = ?',
  putPhotoFile:
    'INSERT INTO photo_files (path, sha256, byte_size, mtime_ms, seen_at) VALUES (@path, @sha256, @size, @mtimeMs, @now) ' +
    'ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, byte_size = excluded.byte_size, mtime_ms = excluded.mtime_ms, seen_at = excluded.seen_at',
  pathsOf: 'SELECT path FROM photo_files WHERE sha256 = ? ORDER BY path',
  /** The current descriptions of the photos seen in a folder (path range), by path. */
  folderDescriptions:
    `SELECT f.path, ${DESCRIPTION_COLUMNS} FROM photo_files f JOIN photo_descriptions d ON d.sha256 = f.sha256 ` +
    `WHERE f.path >= @from AND f.path < @to AND ${IS_CURRENT} ORDER BY f.path`,

  // Search ----------------------------------------------------------------------------------------
  /** Current descriptions matching the query, best first; keywords weigh twice the caption. */
  searchDescriptions:
    `SELECT ${DESCRIPTION_COLUMNS}, highlight(photo_descriptions_fts, 0, char(2), char(3)) AS caption_marked, ` +
    'highlight(photo_descriptions_fts, 1, char(2), char(3)) AS keywords_marked, bm25(photo_descriptions_fts, 1.0, 2.0) AS rank ' +
    'FROM photo_descriptions_fts JOIN photo_descriptions d ON d.id = photo_descriptions_fts.rowid ' +
    `WHERE photo_descriptions_fts MATCH @query AND ${IS_CURRENT} AND ${HAS_KEYWORDS} AND ${IN_FOLDER} ` +
    'ORDER BY rank LIMIT @limit',
  /** Current descriptions with every keyword of the filter (no text query), newest first. */
  filterByKeywords:
    `SELECT ${DESCRIPTION_COLUMNS} FROM photo_descriptions d ` +
    `WHERE d.id IN (SELECT k.description_id FROM description_keywords k WHERE k.keyword = @first) AND ${IS_CURRENT} AND ${HAS_KEYWORDS} AND ${IN_FOLDER} ` +
    'ORDER BY d.described_at DESC, d.id DESC LIMIT @limit',
  /** The most frequent keywords of current descriptions (optionally in a folder). */
  keywordCounts:
    'SELECT k.keyword, count(*) AS n FROM description_keywords k JOIN photo_descriptions d ON d.id = k.description_id ' +
    `WHERE ${IS_CURRENT} AND ${IN_FOLDER} GROUP BY k.keyword ORDER BY n DESC, k.keyword LIMIT @limit`,

  // Jobs ------------------------------------------------------------------------------------------
  insertJob:
    'INSERT INTO describe_jobs (state, spec_json, prompt_version, created_at, updated_at) VALUES (@state, @spec, @promptVersion, @now, @now) RETURNING id',
  insertItem: 'INSERT INTO describe_items (job_id, position, path) VALUES (?, ?, ?)',
  getJob: `SELECT ${JOB_COLUMNS} FROM describe_jobs WHERE id = ?`,
  listJobs: `SELECT ${JOB_COLUMNS} FROM describe_jobs ORDER BY id DESC LIMIT ?`,
  jobsInState: `SELECT ${JOB_COLUMNS} FROM describe_jobs WHERE state = ? ORDER BY id`,
  setJobState:
    'UPDATE describe_jobs SET state = @state, updated_at = @now, finished_at = CASE WHEN @state IN (\'done\', \'cancelled\') THEN @now ELSE NULL END WHERE id = @id',
  deleteJob: 'DELETE FROM describe_jobs WHERE id = ?',
  itemCounts: 'SELECT state, count(*) AS n, coalesce(sum(ms), 0) AS ms FROM describe_items WHERE job_id = ? GROUP BY state',
  /** The partial index holds only pending photos: the next one is found at once however far the job is. */
  nextPending: "SELECT position, path FROM describe_items INDEXED BY describe_items_pending WHERE job_id = ? AND state = 'pending' ORDER BY position LIMIT 1",
  finishItem:
    'UPDATE describe_items SET state = @state, sha256 = @sha256, description_id = @descriptionId, error_code = @errorCode, ' +
    'error_message = @errorMessage, sidecar_error_code = @sidecarErrorCode, sidecar_error_message = @sidecarErrorMessage, ' +
    "ms = @ms, finished_at = @now WHERE job_id = @jobId AND position = @position AND state = 'pending'",
  itemErrors:
    'SELECT path, error_code, error_message, sidecar_error_code, sidecar_error_message FROM describe_items ' +
    'WHERE job_id = ? AND (error_code IS NOT NULL OR sidecar_error_code IS NOT NULL) ORDER BY position LIMIT ?',
} as const;

/** The name of a statement in {@link DESCRIPTION_SQL}. */
export type DescriptionSqlName = keyof typeof DESCRIPTION_SQL;
