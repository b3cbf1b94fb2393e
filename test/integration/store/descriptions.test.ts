/**
 * Photo descriptions and describe jobs in the history database (schema v4): the migration from
 * an old database, the skip key, the current description of a photo, search over captions and
 * keywords (ranked, highlighted, keyword chips, folders), keyword counts, and job rows.
 */
import { join, sep } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DescriptionSettings } from '../../../src-shared/describe.ts';
import { openDatabase } from '../../../src-main/store/database.ts';
import type { NewDescription } from '../../../src-main/store/descriptions.ts';
import { DESCRIPTION_SQL } from '../../../src-main/store/description-queries.ts';
import { Store } from '../../../src-main/store/store.ts';
import { copyFixture, fakeClock, queryPlan, tempDir } from './helpers.ts';

const SETTINGS: DescriptionSettings = { greedy: true, captionMaxTokens: 96, keywordsMaxTokens: 80, aspectMode: 'resize', provider: 'cpu' };
const MODEL = { packageId: 'owl2-7b-cpu', modelSha256: 'a'.repeat(64) };
const shaOf = (n: number): string => n.toString(16).padStart(64, '0');
const root = `${sep}photos`;

let tmp: ReturnType<typeof tempDir>;
let store: Store;
beforeEach(() => {
  tmp = tempDir();
  store = Store.open(join(tmp.dir, 'h.sqlite'), {}, { now: fakeClock() }).store;
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

function describePhoto(n: number, path: string, caption: string, keywords: string[], over: Partial<NewDescription> = {}): number {
  store.descriptions.putPhotoFile({ path, sha256: shaOf(n), size: 100 + n, mtimeMs: 1000 + n });
  return store.descriptions.save({ sha256: shaOf(n), caption, keywords, ...MODEL, promptVersion: 'describe-v1', settings: SETTINGS, describedAt: 1000 + n, ms: 900, ...over });
}

function library(): void {
  describePhoto(1, join(root, 'beach.jpg'), 'A golden retriever runs along a sandy beach at sunset.', ['dog', 'beach', 'sunset', 'golden retriever']);
  describePhoto(2, join(root, 'park.jpg'), 'Two children play with a dog in a green park.', ['children', 'park', 'dog', 'play']);
  describePhoto(3, join(root, 'trip', 'harbour.jpg'), 'Fishing boats in a small harbour under a cloudy sky.', ['boats', 'harbour', 'sea', 'clouds']);
  describePhoto(4, join(root, 'trip', 'cafe.jpg'), 'A cup of coffee on a café table near the sea.', ['coffee', 'café', 'table', 'sea']);
  describePhoto(5, `${root}-other${sep}dog.jpg`, 'A dog sleeping on a sofa.', ['dog', 'sofa']);
}

describe('photo descriptions', () => {
  it('migrates an old database to v4 with its data and the new tables', () => {
    const file = copyFixture(2, tmp.dir, 'old.sqlite');
    const { db, previousVersion, version } = openDatabase(file, { targetVersion: 4 });
    expect({ previousVersion, version }).toEqual({ previousVersion: 2, version: 4 });
    expect((db.prepare('SELECT count(*) AS n FROM messages').get() as { n: number }).n).toBe(11);
    for (const table of ['photo_descriptions', 'description_keywords', 'photo_files', 'describe_jobs', 'describe_items', 'photo_descriptions_fts']) {
      expect(db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = ?").get(table)).toEqual({ n: 1 });
    }
    db.exec("INSERT INTO photo_descriptions_fts (photo_descriptions_fts, rank) VALUES ('integrity-check', 1)");
    db.close();
  });

  it('finds a description by model and prompt version (the skip key); the newest is the current one', () => {
    const first = describePhoto(1, join(root, 'a.jpg'), 'A red car.', ['car', 'red']);
    expect(store.descriptions.find(shaOf(1), MODEL, 'describe-v1')).toMatchObject({ id: first, caption: 'A red car.', keywords: ['car', 'red'] });
    expect(store.descriptions.find(shaOf(1), MODEL, 'describe-v2')).toBeUndefined();
    expect(store.descriptions.find(shaOf(1), { ...MODEL, modelSha256: 'b'.repeat(64) }, 'describe-v1')).toBeUndefined();
    const second = describePhoto(1, join(root, 'a.jpg'), 'A small red car parked on a street.', ['car', 'street'], { promptVersion: 'describe-v2' });
    expect(store.descriptions.current(shaOf(1))).toMatchObject({ id: second, caption: 'A small red car parked on a street.', provenance: { promptVersion: 'describe-v2', settings: SETTINGS, ...MODEL } });
    expect(store.descriptions.currentAt(join(root, 'a.jpg'))).toMatchObject({ path: join(root, 'a.jpg'), keywords: ['car', 'street'] });
    // Saving again under the same key replaces that row and its keywords.
    expect(describePhoto(1, join(root, 'a.jpg'), 'A blue car.', ['blue car'])).toBe(first);
    expect(store.descriptions.find(shaOf(1), MODEL, 'describe-v1')!.keywords).toEqual(['blue car']);
    expect(store.descriptions.search('blue')).toEqual([]); // only current descriptions are searched
    expect(store.descriptions.search('red').map((h) => h.caption.text)).toEqual(['A small red car parked on a street.']);
    expect(() => describePhoto(9, join(root, 'x.jpg'), 'x', ['two\nlines'])).toThrow(/line break/);
  });

  it('searches captions and keywords, ranked, with matches marked, the last word as a prefix', () => {
    library();
    const hits = store.descriptions.search('dog');
    expect(hits.map((h) => h.paths[0])).toHaveLength(3);
    const beach = store.descriptions.search('sunset beach')[0];
    expect(beach).toMatchObject({ sha256: shaOf(1), paths: [join(root, 'beach.jpg')], matchedKeywords: ['beach', 'sunset'] });
    expect(beach.caption.highlights.map((r) => beach.caption.text.slice(r.start, r.end))).toEqual(['beach', 'sunset']);
    // Keywords weigh more than captions: "sea" is a keyword of two photos.
    expect(store.descriptions.search('sea').map((h) => h.sha256).sort()).toEqual([shaOf(3), shaOf(4)]);
    expect(store.descriptions.search('harb').map((h) => h.sha256)).toEqual([shaOf(3)]);
    expect(store.descriptions.search('cafe')[0].sha256).toBe(shaOf(4)); // diacritics folded
    expect(store.descriptions.search('"NOT" OR * (')).toEqual([]);
  });

  it('filters by keyword chips and folders, and counts keywords for the chips', () => {
    library();
    expect(store.descriptions.search('', { keywords: ['dog'] }).map((h) => h.sha256)).toEqual([shaOf(5), shaOf(2), shaOf(1)]);
    expect(store.descriptions.search('', { keywords: ['dog', 'park'] }).map((h) => h.sha256)).toEqual([shaOf(2)]);
    expect(store.descriptions.search('play', { keywords: ['Dog '] })[0]).toMatchObject({ sha256: shaOf(2), matchedKeywords: ['dog', 'play'] });
    expect(store.descriptions.search('dog', { folder: root }).map((h) => h.sha256).sort()).toEqual([shaOf(1), shaOf(2)]);
    expect(store.descriptions.search('', { keywords: ['sea'], folder: join(root, 'trip') })).toHaveLength(2);
    expect(store.descriptions.search('')).toEqual([]);
    expect(store.descriptions.keywordCounts({ limit: 2 })).toEqual([{ keyword: 'dog', count: 3 }, { keyword: 'sea', count: 2 }]);
    expect(store.descriptions.keywordCounts({ folder: join(root, 'trip'), limit: 1 })).toEqual([{ keyword: 'sea', count: 2 }]);
    // A folder's descriptions, for export: top level only unless recursive.
    expect(store.descriptions.inFolder(root).map((p) => p.path)).toEqual([join(root, 'beach.jpg'), join(root, 'park.jpg')]);
    expect(store.descriptions.inFolder(root, { recursive: true })).toHaveLength(4);
  });

  it('uses the indexes for the hot lookups', () => {
    const skip = queryPlan(store.db, DESCRIPTION_SQL.findDescription, { sha256: shaOf(1), ...MODEL, promptVersion: 'v' }).join('\n');
    expect(skip).toMatch(/USING INDEX/);
    const pending = queryPlan(store.db, DESCRIPTION_SQL.nextPending, [1]).join('\n');
    expect(pending).toMatch(/describe_items_pending/);
  });
});

describe('describe jobs', () => {
  it('keep their photos in order, finish each once, count and list errors', () => {
    const spec = { folders: [root], files: [], recursive: false, sidecars: null };
    const job = store.describeJobs.create(spec, 'describe-v1', ['/p/a.jpg', '/p/b.jpg', '/p/c.jpg']);
    expect(job).toMatchObject({ state: 'queued', spec, promptVersion: 'describe-v1', finishedAt: null });
    expect(store.describeJobs.nextPending(job.id)).toEqual({ position: 0, path: '/p/a.jpg' });
    const ok = { state: 'described' as const, sha256: shaOf(1), descriptionId: null, error: null, sidecarError: null, ms: 1200 };
    expect(store.describeJobs.finishItem(job.id, 0, ok)).toBe(true);
    expect(store.describeJobs.finishItem(job.id, 0, ok)).toBe(false);
    store.describeJobs.finishItem(job.id, 1, { state: 'failed', sha256: null, descriptionId: null, error: { code: 'IMAGE_UNREADABLE', message: 'b.jpg is broken' }, sidecarError: null, ms: null });
    expect(store.describeJobs.nextPending(job.id)).toEqual({ position: 2, path: '/p/c.jpg' });
    store.describeJobs.finishItem(job.id, 2, { ...ok, state: 'skipped', ms: null, sidecarError: { code: 'FORBIDDEN', message: 'read-only' } });
    expect(store.describeJobs.counts(job.id)).toEqual({ total: 3, pending: 0, described: 1, skipped: 1, failed: 1, describedMs: 1200 });
    expect(store.describeJobs.errors(job.id)).toEqual([
      { path: '/p/b.jpg', stage: 'describe', error: { code: 'IMAGE_UNREADABLE', message: 'b.jpg is broken' } },
      { path: '/p/c.jpg', stage: 'sidecar', error: { code: 'FORBIDDEN', message: 'read-only' } },
    ]);
    expect(store.describeJobs.setState(job.id, 'done').finishedAt).not.toBeNull();
    expect(store.describeJobs.setState(job.id, 'paused').finishedAt).toBeNull();
    expect(() => store.describeJobs.get(999)).toThrow(expect.objectContaining({ code: 'NOT_FOUND' }));
    store.describeJobs.delete(job.id);
    expect(store.describeJobs.list()).toEqual([]);
  });
});
