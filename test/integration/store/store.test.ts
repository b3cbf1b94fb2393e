import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GenerationStats } from '../../../src-shared/engine.ts';
import { SQL } from '../../../src-main/store/queries.ts';
import { RELEVANCE_COST_LIMIT_US, Store } from '../../../src-main/store/store.ts';
import { fakeClock, owleryErrorOf, queryPlan, tempDir } from './helpers.ts';

const STATS: GenerationStats = {
  provider: 'cpu',
  promptTokens: 120,
  outputTokens: 42,
  contextLimit: 2048,
  imageCount: 1,
  imagesFromCache: 0,
  imageDecodeMs: 12,
  imageEncodeMs: 340,
  prefillMs: 800,
  prefillTokensPerSecond: 150,
  timeToFirstTokenMs: 1150,
  decodeTokensPerSecond: 9.5,
  totalMs: 5600,
  reusedPromptTokens: 0,
};
const MODEL = { packageId: 'mplug-owl2-llama2-7b', sha256: 'ab'.repeat(32) };

let tmp: ReturnType<typeof tempDir>;
let store: Store;

beforeEach(() => {
  tmp = tempDir();
  store = Store.open(join(tmp.dir, 'history.sqlite'), {}, { now: fakeClock() }).store;
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

/** A conversation with one question and a finished answer. */
function chat(title: string, question: string, answer: string) {
  const conv = store.createConversation({ title });
  const q = store.appendUserMessage({ conversationId: conv.id, text: question });
  const a = store.createAssistantMessage({ conversationId: conv.id });
  store.appendText(a.id, answer);
  store.finishMessage(a.id, { status: 'complete' });
  return { conv, q, a };
}

describe('conversations', () => {
  it('creates, reads, renames and pins', () => {
    const c = store.createConversation({ title: '  Owl\u0000 photo ', modelId: 'm1' });
    expect(c).toMatchObject({ title: 'Owl  photo', modelId: 'm1', pinned: false, deletedAt: null, activeLeafId: null });
    expect(store.renameConversation(c.id, 'Owls').title).toBe('Owls');
    expect(store.setPinned(c.id, true).pinned).toBe(true);
    expect(store.getConversation(c.id)).toMatchObject({ title: 'Owls', pinned: true });
    expect(owleryErrorOf(() => store.getConversation(999)).code).toBe('NOT_FOUND');
    expect(owleryErrorOf(() => store.renameConversation(999, 'x')).code).toBe('NOT_FOUND');
    expect(owleryErrorOf(() => store.renameConversation(c.id, 'x'.repeat(501))).code).toBe('INVALID_ARGUMENT');
  });

  it('lists pinned first, then by latest message, in pages', () => {
    const ids = Array.from({ length: 7 }, (_, i) => store.createConversation({ title: `c${i}` }).id);
    store.appendUserMessage({ conversationId: ids[1], text: 'bump' }); // c1 becomes the most recent
    store.setPinned(ids[4], true);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = store.listConversations({ limit: 3, cursor });
      expect(page.items.length).toBeLessThanOrEqual(3);
      seen.push(...page.items.map((c) => c.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([ids[4], ids[1], ids[6], ids[5], ids[3], ids[2], ids[0]]);
    expect(owleryErrorOf(() => store.listConversations({ cursor: 'garbage' })).code).toBe('INVALID_ARGUMENT');
  });

  it('soft-deletes into the trash, restores (undo) and purges', () => {
    const keep = chat('keep', 'q', 'a').conv;
    const gone = chat('gone', 'what is the glacier', 'a glacier').conv;
    const before = store.getConversation(gone.id);
    const deleted = store.deleteConversation(gone.id);
    expect(deleted.deletedAt).not.toBeNull();
    expect(store.listConversations().items.map((c) => c.id)).toEqual([keep.id]);
    expect(store.listTrash().items.map((c) => c.id)).toEqual([gone.id]);
    expect(store.search('glacier').hits).toEqual([]);

    // Undo: everything comes back as it was.
    expect(store.restoreConversation(gone.id)).toEqual(before);
    expect(store.listConversations().items.map((c) => c.id)).toEqual([gone.id, keep.id]);
    expect(store.getThread(gone.id).messages.map((m) => m.text)).toEqual(['what is the glacier', 'a glacier']);
    expect(store.search('glacier').hits.length).toBeGreaterThan(0);

    // Purge only what is in the trash.
    expect(owleryErrorOf(() => store.purgeConversation(keep.id)).code).toBe('INVALID_ARGUMENT');
    store.deleteConversation(gone.id);
    expect(store.purgeTrash()).toBe(1);
    expect(owleryErrorOf(() => store.getConversation(gone.id)).code).toBe('NOT_FOUND');
    expect(store.db.prepare('SELECT count(*) AS n FROM messages WHERE conversation_id = ?').get(gone.id)).toEqual({ n: 0 });
    expect(store.search('glacier').hits).toEqual([]);
    expect(store.listTrash().items).toEqual([]);
  });

  it('purges only conversations trashed before a time', () => {
    const a = store.createConversation({ title: 'a' });
    const b = store.createConversation({ title: 'b' });
    const first = store.deleteConversation(a.id).deletedAt!;
    store.deleteConversation(b.id);
    expect(store.purgeTrash({ before: first })).toBe(1);
    expect(store.listTrash().items.map((c) => c.id)).toEqual([b.id]);
  });
});

describe('messages and branches', () => {
  it('appends along the active branch and keeps settings, stats and model of answers', () => {
    const conv = store.createConversation();
    const q = store.appendUserMessage({ conversationId: conv.id, text: 'What is this?' });
    const a = store.createAssistantMessage({ conversationId: conv.id, settings: { temperature: 0.2, aspectMode: 'pad' }, model: MODEL });
    expect(a).toMatchObject({ parentId: q.id, role: 'assistant', status: 'partial', text: '' });
    store.appendText(a.id, 'An ');
    store.appendText(a.id, 'owl.');
    const done = store.finishMessage(a.id, { status: 'complete', stats: STATS });
    expect(done).toMatchObject({ text: 'An owl.', status: 'complete', stats: STATS, settings: { temperature: 0.2, aspectMode: 'pad' }, model: MODEL });
    expect(owleryErrorOf(() => store.appendText(a.id, 'more')).code).toBe('INVALID_ARGUMENT');
    expect(owleryErrorOf(() => store.finishMessage(a.id, { status: 'complete' })).code).toBe('INVALID_ARGUMENT');
    const q2 = store.appendUserMessage({ conversationId: conv.id, text: 'Is it awake?' });
    expect(q2.parentId).toBe(a.id);
    expect(store.getConversation(conv.id).activeLeafId).toBe(q2.id);
  });

  it('keeps cancelled and failed answers with their text', () => {
    const conv = store.createConversation();
    store.appendUserMessage({ conversationId: conv.id, text: 'q' });
    const a = store.createAssistantMessage({ conversationId: conv.id });
    store.updateText(a.id, 'half an ans');
    expect(store.finishMessage(a.id, { status: 'cancelled' })).toMatchObject({ status: 'cancelled', text: 'half an ans' });
    const b = store.regenerate(a.id);
    expect(store.finishMessage(b.id, { status: 'error', error: 'out of memory' })).toMatchObject({ status: 'error', error: 'out of memory' });
  });

  it('regenerate adds an answer beside the old one; the thread follows the newest', () => {
    const { conv, q, a } = chat('t', 'question', 'first answer');
    const r = store.regenerate(a.id, { model: MODEL });
    expect(r).toMatchObject({ parentId: q.id, status: 'partial', model: MODEL });
    store.finishMessage(r.id, { status: 'complete', text: 'second answer' });
    expect(store.branches(a.id).map((m) => m.id)).toEqual([a.id, r.id]);
    const thread = store.getThread(conv.id);
    expect(thread.messages.map((m) => m.text)).toEqual(['question', 'second answer']);
    expect(thread.messages[1]).toMatchObject({ siblingIds: [a.id, r.id], siblingIndex: 1 });
    // Regenerating from the question also adds a sibling answer.
    expect(store.regenerate(q.id).parentId).toBe(q.id);
  });

  it('edit adds a sibling question under the same parent, keeping photos unless replaced', () => {
    const conv = store.createConversation();
    const sha = 'cd'.repeat(32);
    store.putImageRecord({ sha256: sha, ext: 'png', mime: 'image/png', byteSize: 10, width: 4, height: 3, orientation: 1, thumbnail: null });
    const q1 = store.appendUserMessage({ conversationId: conv.id, text: 'first', images: [{ sha256: sha, name: '/home/me/Pictures/cat.png' }] });
    expect(q1.images).toEqual([expect.objectContaining({ sha256: sha, name: 'cat.png', width: 4, height: 3 })]);
    const a1 = store.createAssistantMessage({ conversationId: conv.id });
    store.finishMessage(a1.id, { status: 'complete', text: 'a cat' });
    const edited = store.editMessage(q1.id, { text: 'first, edited' });
    expect(edited).toMatchObject({ parentId: null, role: 'user', text: 'first, edited' });
    expect(edited.images.map((i) => i.sha256)).toEqual([sha]);
    expect(store.branches(q1.id).map((m) => m.id)).toEqual([q1.id, edited.id]);
    expect(store.getThread(conv.id).messages.map((m) => m.text)).toEqual(['first, edited']);
    expect(store.editMessage(q1.id, { text: 'no photo', images: [] }).images).toEqual([]);
    expect(owleryErrorOf(() => store.editMessage(a1.id, { text: 'x' })).code).toBe('INVALID_ARGUMENT');
    expect(owleryErrorOf(() => store.appendUserMessage({ conversationId: conv.id, text: 'x', images: [{ sha256: 'ef'.repeat(32) }] })).code).toBe('NOT_FOUND');
  });

  it('walks threads through a chosen leaf and switches branches', () => {
    const conv = store.createConversation();
    const q1 = store.appendUserMessage({ conversationId: conv.id, text: 'q1' });
    const a1 = store.createAssistantMessage({ conversationId: conv.id });
    store.finishMessage(a1.id, { status: 'complete', text: 'a1' });
    const q2 = store.appendUserMessage({ conversationId: conv.id, text: 'q2' });
    const a2 = store.createAssistantMessage({ conversationId: conv.id });
    store.finishMessage(a2.id, { status: 'complete', text: 'a2' });
    const a1b = store.regenerate(a1.id);
    store.finishMessage(a1b.id, { status: 'complete', text: 'a1b' });

    // The active branch is the newest one written: q1 → a1b.
    expect(store.getThread(conv.id).messages.map((m) => m.text)).toEqual(['q1', 'a1b']);
    // Asking for a message in the middle gives the whole thread through it.
    expect(store.getThread(conv.id, a1.id).messages.map((m) => m.text)).toEqual(['q1', 'a1', 'q2', 'a2']);
    expect(store.getThread(conv.id, q2.id).messages.map((m) => m.id)).toEqual([q1.id, a1.id, q2.id, a2.id]);
    // Switching to the older answer makes its branch the active one, down to its newest leaf.
    const switched = store.selectBranch(a1.id);
    expect(switched.messages.map((m) => m.text)).toEqual(['q1', 'a1', 'q2', 'a2']);
    expect(store.getConversation(conv.id).activeLeafId).toBe(a2.id);
    expect(store.getThread(conv.id).messages.map((m) => m.text)).toEqual(['q1', 'a1', 'q2', 'a2']);
    // A new message continues the selected branch.
    expect(store.appendUserMessage({ conversationId: conv.id, text: 'q3' }).parentId).toBe(a2.id);

    const other = store.createConversation();
    expect(owleryErrorOf(() => store.getThread(other.id, a1.id)).code).toBe('NOT_FOUND');
    expect(owleryErrorOf(() => store.appendUserMessage({ conversationId: other.id, parentId: a1.id, text: 'x' })).code).toBe('INVALID_ARGUMENT');
    expect(store.getThread(other.id).messages).toEqual([]);
  });

  it('supports several first messages (edits of the opening question)', () => {
    const conv = store.createConversation();
    const r1 = store.appendUserMessage({ conversationId: conv.id, text: 'r1' });
    const r2 = store.appendUserMessage({ conversationId: conv.id, parentId: null, text: 'r2' });
    expect(store.branches(r1.id).map((m) => m.id)).toEqual([r1.id, r2.id]);
    expect(store.getThread(conv.id).messages[0]).toMatchObject({ id: r2.id, siblingIds: [r1.id, r2.id], siblingIndex: 1 });
  });
});

describe('AnswerWriter (streaming)', () => {
  it('saves pushed text within the flush interval, including after a pause', async () => {
    const conv = store.createConversation();
    store.appendUserMessage({ conversationId: conv.id, text: 'q' });
    const w = store.beginAnswer({ conversationId: conv.id }, { flushIntervalMs: 30 });
    w.push('Hello');
    w.push(', world');
    await new Promise((r) => setTimeout(r, 80)); // no more tokens: the timer writes
    expect(store.getMessage(w.messageId)).toMatchObject({ text: 'Hello, world', status: 'partial' });
    w.push('!');
    const done = w.finish({ status: 'complete', stats: STATS });
    expect(done).toMatchObject({ text: 'Hello, world!', status: 'complete', stats: STATS });
    expect(() => w.push('late')).toThrow();
  });

  it('tells flush listeners about every write, the save timer\'s included', async () => {
    const conv = store.createConversation();
    store.appendUserMessage({ conversationId: conv.id, text: 'q' });
    const w = store.beginAnswer({ conversationId: conv.id }, { flushIntervalMs: 20 });
    const flushed: number[] = [];
    const timerWrote = new Promise<void>((resolve) => w.onDidFlush((chars) => (flushed.push(chars), resolve())));
    w.push('Hello'); // within the interval: buffered, the timer will write it
    expect(flushed).toEqual([]);
    await timerWrote;
    expect(flushed).toEqual([5]);
    expect(store.getMessage(w.messageId).text).toBe('Hello');
    w.flush();
    w.push(', world');
    w.flush();
    expect(flushed).toEqual([5, 12]);
    w.dispose();
  });

  it('on a full disk reports DISK_FULL, loses nothing and catches up when space is back', () => {
    const conv = store.createConversation({ title: 'full disk' });
    const q = store.appendUserMessage({ conversationId: conv.id, text: 'Describe the photo.' });
    const w = store.beginAnswer({ conversationId: conv.id }, { flushIntervalMs: 0 });
    w.push('Saved before the disk filled. ');
    expect(store.getMessage(w.messageId).text).toBe('Saved before the disk filled. ');

    // Simulate a full disk: the database may not grow by a single page.
    const pages = store.db.pragma('page_count', { simple: true }) as number;
    store.db.pragma(`max_page_count = ${pages}`);
    const big = 'x'.repeat(200_000);
    const err = owleryErrorOf(() => w.push(big));
    expect(err.code).toBe('DISK_FULL');
    expect(err.message).toMatch(/full/);
    expect(err.message).toMatch(/saved before is intact/);
    expect(w.unsaved).toBe(big);
    expect(owleryErrorOf(() => w.finish({ status: 'complete' })).code).toBe('DISK_FULL');
    // What was saved is intact and readable.
    expect(store.getMessage(q.id).text).toBe('Describe the photo.');
    expect(store.getMessage(w.messageId)).toMatchObject({ text: 'Saved before the disk filled. ', status: 'partial' });
    expect(store.db.pragma('quick_check', { simple: true })).toBe('ok');

    store.db.pragma('max_page_count = 1073741823');
    const done = w.finish({ status: 'complete' });
    expect(done.text).toBe(`Saved before the disk filled. ${big}`);
    expect(done.status).toBe('complete');
  });
});

describe('search', () => {
  beforeEach(() => {
    chat('Garden birds', 'What bird is on the fence?', 'It is a tawny owl (Strix aluco) on a wooden fence.');
    chat('Trip to Zermatt', 'Which mountain is this?', 'The Matterhorn, seen from the village.');
    chat('Café 🦉 नमस्ते', 'Qu’est-ce que c’est ?', 'Un hibou dans un café ☕ — नमस्ते दुनिया 🦉.');
    chat('Shopping', 'Read the sign "AND" the price', 'The sign says: 50% OFF * everything, AND "free" coffee.');
  });

  it('finds words in answers, with a highlighted snippet', () => {
    const { hits, messageOrder } = store.search('tawny owl');
    expect(messageOrder).toBe('relevance');
    expect(hits).toHaveLength(1);
    const hit = hits[0];
    expect(hit).toMatchObject({ kind: 'message', role: 'assistant', conversationTitle: 'Garden birds' });
    const marked = hit.snippet.highlights.map((r) => hit.snippet.text.slice(r.start, r.end));
    expect(marked).toEqual(['tawny', 'owl']);
  });

  it('finds titles first, then messages', () => {
    const { hits } = store.search('garden');
    expect(hits.map((h) => h.kind)).toEqual(['title']);
    expect(hits[0].snippet).toEqual({ text: 'Garden birds', highlights: [{ start: 0, end: 6 }] });
    const both = store.search('matterhorn zermatt').hits;
    expect(both).toEqual([]); // no single row has both words
    expect(store.search('Zermatt').hits.map((h) => h.kind)).toEqual(['title']);
  });

  it('ranks better matches first', () => {
    chat('Fences', 'fence fence fence', 'fence');
    const hits = store.search('fence', { limit: 10 }).hits.filter((h) => h.kind === 'message');
    expect(hits[0].snippet.text).toBe('fence fence fence');
    const ranks = hits.map((h) => h.rank!);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
  });

  it('accepts odd input: quotes, operators, stars, emoji, unicode', () => {
    for (const q of ['"', '""', '*', 'AND', 'OR NOT', 'NEAR(', '"AND"', 'title:owl', '50%', '(', '^', '🦉', 'नमस्ते', 'cafe', '\u0000', '']) {
      expect(() => store.search(q), q).not.toThrow();
    }
    expect(store.search('"').hits).toEqual([]);
    expect(store.search('*').hits).toEqual([]);
    expect(store.search('AND').hits.map((h) => h.conversationTitle)).toEqual(['Shopping', 'Shopping']);
    expect(store.search('🦉').hits.map((h) => h.kind)).toEqual(['title', 'message']);
    expect(store.search('cafe').hits.map((h) => h.kind)).toEqual(['title', 'message']);
    expect(store.search('नमस्ते').hits.length).toBe(2);
    expect(store.search('"wooden fence"').hits).toHaveLength(1);
    expect(store.search('"fence wooden"').hits).toHaveLength(0);
    expect(store.search('matterh').hits).toHaveLength(1); // typing: prefix of the last word
  });

  it('finds text of a streaming answer as it is saved', () => {
    const conv = store.createConversation();
    store.appendUserMessage({ conversationId: conv.id, text: 'q' });
    const w = store.beginAnswer({ conversationId: conv.id }, { flushIntervalMs: 0 });
    w.push('a heron ');
    expect(store.search('heron').hits).toHaveLength(1);
    w.push('and a kingfisher');
    expect(store.search('kingfisher').hits).toHaveLength(1);
    w.finish({ status: 'cancelled' });
    expect(store.search('heron kingfisher').hits).toHaveLength(1);
  });

  it('orders very common matches newest first instead of ranking them all', () => {
    const conv = store.createConversation();
    const insert = store.db.prepare("INSERT INTO messages (conversation_id, role, text, status, created_at, updated_at) VALUES (?, 'user', ?, 'complete', 0, 0)");
    store.db.transaction(() => {
      // One word costs ~1 µs per match to rank: one match more than the budget allows.
      for (let i = 0; i <= RELEVANCE_COST_LIMIT_US; i++) insert.run(conv.id, `common word ${i}`);
    })();
    const r = store.search('common', { limit: 3 });
    expect(r.messageOrder).toBe('recent');
    const n = RELEVANCE_COST_LIMIT_US;
    expect(r.hits.map((h) => h.snippet.text)).toEqual([`common word ${n}`, `common word ${n - 1}`, `common word ${n - 2}`]);
    expect(r.hits[0].rank).toBeNull();
    // With a selective second word there are few matches, so they are ranked.
    const narrow = store.search(`common ${n - 5}`);
    expect(narrow.messageOrder).toBe('relevance');
    expect(narrow.hits.map((h) => h.snippet.text)).toEqual([`common word ${n - 5}`]);
  });
});

describe('query plans of the hot queries use indexes', () => {
  beforeEach(() => {
    for (let i = 0; i < 20; i++) chat(`conversation ${i}`, `question ${i} about owls`, `answer ${i} about owls`);
  });

  const noFullScan = (plan: string[]) => {
    for (const step of plan) expect(step, plan.join('\n')).not.toMatch(/^SCAN (m|messages|c|conversations|mi|i)\b(?! USING)/);
  };

  it('lists conversations from the recency index without sorting', () => {
    for (const [sql, params] of [
      [SQL.listConversationsFirst, { limit: 50 }],
      [SQL.listConversationsAfter, { limit: 50, pinned: 0, updatedAt: 5, id: 5 }],
    ] as const) {
      const plan = queryPlan(store.db, sql, params);
      expect(plan.join('\n')).toMatch(/USING INDEX conversations_by_recency/);
      expect(plan.join('\n')).not.toMatch(/TEMP B-TREE/);
    }
    const trash = queryPlan(store.db, SQL.listTrashAfter, { limit: 50, deletedAt: 5, id: 5 }).join('\n');
    expect(trash).toMatch(/USING INDEX conversations_in_trash/);
  });

  it('fetches a thread by primary key and parent index', () => {
    const plan = queryPlan(store.db, SQL.thread, { start: 5, conversationId: 3 });
    const text = plan.join('\n');
    expect(text).toMatch(/SEARCH m USING INTEGER PRIMARY KEY/);
    expect(text).toMatch(/USING COVERING INDEX messages_by_parent \(parent_id=\?\)/);
    expect(text).toMatch(/messages_by_conversation \(conversation_id=\? AND parent_id=\?\)/);
    noFullScan(plan);
    const images = queryPlan(store.db, SQL.imagesOfMessages, ['[1,2,3]']).join('\n');
    expect(images).toMatch(/SEARCH mi USING PRIMARY KEY \(message_id=\?\)/);
    expect(images).toMatch(/SEARCH i USING PRIMARY KEY \(sha256=\?\)/);
  });

  it('searches through the FTS5 indexes and joins by primary key', () => {
    for (const sql of [SQL.searchMessages, SQL.searchMessagesRecent]) {
      const plan = queryPlan(store.db, sql, { query: '"owls"', limit: 20 });
      expect(plan[0]).toMatch(/^SCAN messages_fts VIRTUAL TABLE INDEX \d+:M/);
      expect(plan.join('\n')).toMatch(/SEARCH m USING INTEGER PRIMARY KEY/);
      expect(plan.join('\n')).toMatch(/SEARCH c USING INTEGER PRIMARY KEY/);
      expect(plan.join('\n')).not.toMatch(/TEMP B-TREE/); // FTS5 orders by rank / rowid itself
    }
    const titles = queryPlan(store.db, SQL.searchTitles, { query: '"owls"', limit: 20 });
    expect(titles[0]).toMatch(/^SCAN conversations_fts VIRTUAL TABLE INDEX \d+:M/);
    expect(titles.join('\n')).toMatch(/SEARCH c USING INTEGER PRIMARY KEY/);
  });
});
