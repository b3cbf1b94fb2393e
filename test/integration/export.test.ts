/**
 * Export and import on real SQLite stores and image stores in temporary folders: JSON round trip
 * (exact), import into a history that already has the conversations (new ids, photos reused),
 * refused imports that write nothing, Markdown and HTML files (content, photos, escaping), PDF
 * plumbing, and atomic writes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import MarkdownIt from 'markdown-it';
import { Window } from 'happy-dom';
import type { ExportFile } from '../../src-shared/chat.ts';
import {
  buildExportFile,
  exportConversations,
  exportHtml,
  exportJson,
  exportMarkdown,
  exportPdf,
  importJson,
  suggestedFileName,
} from '../../src-main/export/index.ts';
import type { ExportContext } from '../../src-main/export/index.ts';
import { makePhoto, openStoreEnv, removeDir, tempDir } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { HOSTILE_ANSWER, HOSTILE_QUESTION, HOSTILE_TITLE, PINNED_INSTRUCTIONS, RICH_ANSWER, sampleStats, writeSampleHistory } from '../helpers/chat-history.ts';
import type { SampleHistory } from '../helpers/chat-history.ts';

let work: string;
let source: StoreEnv;
let ctx: ExportContext;
let sample: SampleHistory;
let photoA: Uint8Array;
let photoB: Uint8Array;
const opened: StoreEnv[] = [];

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  work = await tempDir('owlery-export-');
  source = openStoreEnv(join(work, 'source'));
  opened.push(source);
  photoA = await makePhoto(1, 40, 30);
  photoB = await makePhoto(2, 25, 50, 'jpeg');
  sample = await writeSampleHistory(source, photoA, photoB);
  ctx = { store: source.store, images: source.images, appVersion: '9.9.9' };
});

afterAll(async () => {
  for (const env of opened) env.close();
  await removeDir(work);
});

function freshEnv(name: string): StoreEnv {
  const env = openStoreEnv(join(work, name));
  opened.push(env);
  return env;
}

/**
 * An export document with ids replaced by positions (ids are local to a database), so documents
 * from two databases can be compared; everything else is kept.
 */
function withoutIds(doc: ExportFile): unknown {
  return {
    ...doc,
    exportedAt: null,
    conversations: doc.conversations.map((c) => {
      const pos = new Map(c.messages.map((m, i) => [m.id, i]));
      return {
        ...c,
        id: null,
        activeLeafId: c.activeLeafId === null ? null : pos.get(c.activeLeafId),
        messages: c.messages.map((m) => ({ ...m, id: pos.get(m.id), parentId: m.parentId === null ? null : pos.get(m.parentId) })),
      };
    }),
  };
}

const allIds = (): number[] => [sample.main, sample.pinned, sample.trashed, sample.empty];

describe('JSON export and import', () => {
  it('round-trips exactly: trees, texts, statuses, times, stats, settings, model, branch on screen, photo bytes', async () => {
    const dest = join(work, 'all.json');
    const summary = await exportJson(ctx, { conversations: allIds(), dest });
    expect(summary).toEqual({ path: dest, conversations: 4, assetsWritten: 0, skipped: [] });
    const doc = JSON.parse(await readFile(dest, 'utf8')) as ExportFile;
    expect(doc).toMatchObject({ format: 'owlery-export', version: 2, generator: { name: 'Owlery', version: '9.9.9' } });
    const pinned = doc.conversations.find((c) => c.id === sample.pinned)!;
    expect([pinned.titleSetByUser, pinned.options]).toEqual([true, { instructions: PINNED_INSTRUCTIONS, temperature: 0.3, maxNewTokens: 99 }]);
    expect(doc.images.map((i) => i.sha256).sort()).toEqual([sha(photoA), sha(photoB)].sort());
    const main = doc.conversations.find((c) => c.id === sample.main)!;
    expect(main.messages.map((m) => [m.role, m.status])).toEqual([
      ['user', 'complete'], ['assistant', 'complete'], ['assistant', 'cancelled'], ['user', 'complete'], ['assistant', 'error'], ['user', 'complete'], ['assistant', 'complete'],
    ]);
    expect(main.title).toBe(HOSTILE_TITLE);
    expect(main.messages[0].text).toBe(HOSTILE_QUESTION);
    expect(main.messages[1].text).toBe(HOSTILE_ANSWER);

    const target = freshEnv('target');
    const result = await importJson({ store: target.store, images: target.images }, dest);
    expect(result).toMatchObject({ messages: 12, imagesAdded: 2, imagesReused: 0 });
    expect(result.conversations.map((c) => c.sourceId)).toEqual([...allIds()].sort((x, y) => x - y));

    const idOf = new Map(result.conversations.map((c) => [c.sourceId, c.id]));
    const again = await buildExportFile({ store: target.store, images: target.images, appVersion: '9.9.9' }, allIds().map((id) => idOf.get(id)!));
    expect(withoutIds(again)).toEqual(withoutIds(doc));

    // The thread on screen and the stored photo files are the same too.
    const before = source.store.getThread(sample.main).messages;
    const after = target.store.getThread(idOf.get(sample.main)!).messages;
    expect(after.map((m) => [m.text, m.status, m.siblingIndex, m.siblingIds.length])).toEqual(before.map((m) => [m.text, m.status, m.siblingIndex, m.siblingIds.length]));
    for (const photo of [photoA, photoB]) {
      expect(new Uint8Array(await readFile(target.images.pathOf(target.store.getImage(sha(photo))!)))).toEqual(photo);
    }
    expect(target.store.listConversations().items.map((c) => [c.title, c.pinned])).toEqual(
      source.store.listConversations().items.map((c) => [c.title, c.pinned]),
    );
    expect(target.store.listTrash().items.map((c) => [c.title, c.deletedAt])).toEqual(source.store.listTrash().items.map((c) => [c.title, c.deletedAt]));
    expect(target.store.search('crash').hits.map((h) => h.snippet.text)).toEqual(source.store.search('crash').hits.map((h) => h.snippet.text));
  });

  it('imports copies into a history that already has them: new ids, nothing overwritten, photos reused', async () => {
    const dest = join(work, 'again.json');
    await exportJson(ctx, { conversations: allIds(), dest });
    const original = withoutIds(await buildExportFile(ctx, allIds()));
    const result = await importJson(ctx, dest, { duplicates: 'copy' });
    expect(result).toMatchObject({ imagesAdded: 0, imagesReused: 2 });
    for (const { sourceId, id } of result.conversations) expect(id).not.toBe(sourceId);
    // The originals are untouched, and the copies equal them.
    expect(withoutIds(await buildExportFile(ctx, allIds()))).toEqual(original);
    const copyOf = new Map(result.conversations.map((c) => [c.sourceId, c.id]));
    expect(withoutIds(await buildExportFile(ctx, allIds().map((id) => copyOf.get(id)!)))).toEqual(original);
  });

  it('refuses damaged, foreign and newer files before writing anything', async () => {
    const good = await buildExportFile(ctx, [sample.main]);
    const target = freshEnv('refusals');
    const tctx = { store: target.store, images: target.images };
    const attempt = (doc: unknown) => importJson(tctx, new TextEncoder().encode(JSON.stringify(doc)));
    await expect(importJson(tctx, new TextEncoder().encode('{"format": "owlery-export", "vers'))).rejects.toMatchObject({ code: 'IMPORT_INVALID' });
    await expect(attempt({ hello: 'world' })).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/not an Owlery export/) });
    await expect(attempt({ ...good, version: 3 })).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/newer Owlery/) });
    const damaged = structuredClone(good);
    damaged.images[0].data = Buffer.from('not the photo').toString('base64');
    await expect(attempt(damaged)).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/damaged/) });
    const orphan = structuredClone(good);
    orphan.conversations[0].messages[1].parentId = 999_999;
    await expect(attempt(orphan)).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/follows message 999999/) });
    const smuggled = structuredClone(good) as unknown as { conversations: Record<string, unknown>[] };
    smuggled.conversations[0].extra = 1;
    await expect(attempt(smuggled)).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/extra/) });
    const missingPhoto = structuredClone(good);
    missingPhoto.images = [];
    await expect(attempt(missingPhoto)).rejects.toMatchObject({ code: 'IMPORT_INVALID', message: expect.stringMatching(/does not contain/) });
    await expect(importJson(tctx, join(work, 'no-such-file.json'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    expect(target.store.listConversations().items).toEqual([]);
    expect(target.store.listTrash().items).toEqual([]);
  });

  it('imports a version 1 file (before chat instructions): the chat follows the app\'s settings, its title an edited first message', async () => {
    const doc = await buildExportFile(ctx, [sample.pinned]);
    const v1 = { ...doc, version: 1, conversations: doc.conversations.map(({ options: _o, titleSetByUser: _t, ...c }) => c) };
    const target = freshEnv('version-1');
    const result = await importJson({ store: target.store, images: target.images }, new TextEncoder().encode(JSON.stringify(v1)));
    const imported = target.store.getConversation(result.conversations[0].id);
    expect([imported.title, imported.titleSetByUser, imported.options]).toEqual(['Pinned one', false, { instructions: '', temperature: null, maxNewTokens: null }]);
    // Instructions past their length, or a temperature the app would not take, are refused by name.
    const tooHot = structuredClone(doc);
    tooHot.conversations[0].options!.temperature = 5;
    await expect(importJson({ store: target.store, images: target.images }, new TextEncoder().encode(JSON.stringify(tooHot)))).rejects.toMatchObject({
      code: 'IMPORT_INVALID', message: expect.stringMatching(/options\.temperature/),
    });
  });
});

describe('Markdown export', () => {
  it('writes the branch on screen with photos in assets/, linked relatively, and escapes everything', async () => {
    const dir = join(work, 'md');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    const dest = join(dir, 'trip.md');
    const summary = await exportMarkdown(ctx, { conversations: [sample.main], dest });
    expect(summary).toEqual({ path: dest, conversations: 1, assetsWritten: 2, skipped: [] });
    const md = await readFile(dest, 'utf8');
    const assetA = `assets/${sha(photoA)}.png`;
    const assetB = `assets/${sha(photoB)}.jpg`;
    expect(new Uint8Array(await readFile(join(dir, assetA)))).toEqual(photoA);
    expect(new Uint8Array(await readFile(join(dir, assetB)))).toEqual(photoB);
    expect((await readdir(dir)).sort()).toEqual(['assets', 'trip.md']);

    // Rendered by a real Markdown renderer (raw HTML and linkify on, the most permissive setup):
    const html = new MarkdownIt({ html: true, linkify: true }).render(md);
    const doc = new Window().document;
    doc.body.innerHTML = html;
    expect(doc.querySelectorAll('script, iframe, object, embed').length).toBe(0);
    expect([...doc.querySelectorAll('a')].map((a) => a.getAttribute('href'))).toEqual([]);
    expect([...doc.querySelectorAll('img')].map((i) => [i.getAttribute('src'), i.getAttribute('alt')])).toEqual([
      [assetA, 'garden <1>.png'],
      [assetB, 'Photo 2'],
    ]);
    expect(html).not.toMatch(/javascript:alert\(1\)\]|onerror=|<b>|<h1>Heading/i);
    expect(md).not.toContain('\u202E');
    expect(md).not.toContain('\u0007');
    const text = doc.body.textContent ?? '';
    // The edited question is on screen; the original and its answers are other branches.
    expect(text).toContain('Edited: what is in these photos?');
    expect(text).toContain('Two photos: a garden and a beach.');
    expect(text).not.toContain('Compare');
    expect(text).toContain('only the branch on screen is included');
    expect(doc.querySelector('h1')!.textContent).toBe('Trip <script>alert("title")</script> [x](javascript:alert(1)) [U+202E]gnp.exe');
  });

  it('shows a chat\'s instructions under its title, as written, in Markdown and HTML', async () => {
    const mdFile = join(work, 'instructions.md');
    const htmlFile = join(work, 'instructions.html');
    await exportMarkdown(ctx, { conversations: [sample.pinned], dest: mdFile });
    await exportHtml(ctx, { conversations: [sample.pinned], dest: htmlFile });
    const md = new Window().document;
    md.body.innerHTML = new MarkdownIt({ html: true }).render(await readFile(mdFile, 'utf8'));
    expect(md.querySelector('h1 + p + p')?.textContent).toBe('Instructions for this chat:');
    expect(md.querySelector('h1 + p + p + p')?.textContent).toBe(PINNED_INSTRUCTIONS);
    expect(md.querySelectorAll('script, strong:not(:first-child)').length).toBe(0);
    const html = new Window().document;
    html.write(await readFile(htmlFile, 'utf8'));
    expect(html.querySelector('header .instructions .text')?.textContent).toBe(PINNED_INSTRUCTIONS);
    expect(html.querySelectorAll('script').length).toBe(0);
    // A chat without instructions has no such part.
    const plain = join(work, 'no-instructions.md');
    await exportMarkdown(ctx, { conversations: [sample.main], dest: plain });
    expect(await readFile(plain, 'utf8')).not.toContain('Instructions for this chat');
  });

  it('renders a hostile question literally and keeps a hostile answer Markdown, its raw HTML shown as text', async () => {
    source.store.selectBranch(sample.hostileAnswer); // show the original question and its first answer
    try {
      const dest = join(work, 'md', 'original.md');
      await exportMarkdown(ctx, { conversations: [sample.main], dest });
      const md = await readFile(dest, 'utf8');
      const html = new MarkdownIt({ html: true, linkify: true }).render(md);
      const doc = new Window().document;
      doc.body.innerHTML = html;
      expect(doc.querySelectorAll('script, a').length).toBe(0);
      expect(doc.querySelectorAll('img').length).toBe(2); // only the photos, not the ![x](javascript:…) in the text
      const text = doc.body.textContent ?? '';
      expect(text).toContain('Compare [these](javascript:alert(1)) photos');
      expect(text).toContain('<img src=x onerror=alert(2)> & <b>bold</b>');
      expect(text).toContain('[U+202E]gnp.exe[U+0007] ![x](javascript:alert(3))');
      // The answer is Markdown: its heading sits below the export's own (# title, ## speakers) ...
      expect(md).toContain('### Heading\n- item *bold* `code`');
      expect(doc.querySelector('h3')?.textContent).toBe('Heading');
      expect(doc.querySelector('li')?.innerHTML).toMatch(/^item <em>bold<\/em> <code>code<\/code>\s/);
      // ... and its HTML is text, not markup.
      expect(md).toContain('&lt;script>alert(4)&lt;/script>');
      expect(text).toContain('](javascript:alert(1)) <script>alert(4)</script>');
      expect(text).toContain('[U+202E]reversed[U+202C] end');
      expect(text).toContain('model tiny-owl2 · 42 tokens · 88.5 tokens/s · cpu');
    } finally {
      source.store.selectBranch(sample.editedQuestion);
    }
  });
});

describe('HTML export', () => {
  it('writes one self-contained page: photos as data: URIs, strict CSP, no script, escaped text, print CSS', async () => {
    source.store.selectBranch(sample.hostileAnswer);
    const dest = join(work, 'trip.html');
    try {
      await exportHtml(ctx, { conversations: [sample.main, sample.pinned], dest });
    } finally {
      source.store.selectBranch(sample.editedQuestion);
    }
    const html = await readFile(dest, 'utf8');
    for (const c of ['\u202E', '\u202C', '\u0007']) expect(html).not.toContain(c);
    expect(html).toMatch(/@media print/);
    const doc = new Window().document;
    doc.write(html);
    const csp = doc.querySelector('meta[http-equiv="Content-Security-Policy"]')!.getAttribute('content')!;
    expect(csp).toMatch(/^default-src 'none'; img-src data:; style-src 'sha256-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'$/);
    const style = doc.querySelector('style')!.textContent!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(style).digest('base64')}'`);
    expect(doc.querySelectorAll('script, a, iframe, object, embed, link, base, form').length).toBe(0);
    expect([...doc.querySelectorAll('*')].flatMap((el) => el.getAttributeNames().filter((n) => n.startsWith('on')))).toEqual([]);
    const imgs = [...doc.querySelectorAll('img')];
    expect(imgs.map((i) => i.getAttribute('alt'))).toEqual(['garden <1>.png', 'Photo 2', 'garden.png']);
    const decoded = imgs.map((i) => {
      const m = /^data:(image\/[a-z]+);base64,([A-Za-z0-9+/=]+)$/.exec(i.getAttribute('src')!)!;
      return [m[1], sha(Buffer.from(m[2], 'base64'))];
    });
    expect(decoded).toEqual([['image/png', sha(photoA)], ['image/jpeg', sha(photoB)], ['image/png', sha(photoA)]]);
    expect(doc.querySelector('h1')!.textContent).toBe('Trip <script>alert("title")</script> [x](javascript:alert(1)) [U+202E]gnp.exe');
    expect(doc.querySelectorAll('h1').length).toBe(2);
    const texts = [...doc.querySelectorAll('.text')].map((t) => t.textContent);
    expect(texts[0]).toBe('Compare [these](javascript:alert(1)) photos\n\n<img src=x onerror=alert(2)> & <b>bold</b>\n[U+202E]gnp.exe[U+0007] ![x](javascript:alert(3))');
    // The answer is rendered from its Markdown, its raw HTML shown as text.
    const answer = doc.querySelector('.answer')!;
    expect(answer.querySelector('h3')?.textContent).toBe('Heading');
    expect(answer.querySelector('li')?.innerHTML).toBe('item <em>bold</em> <code>code</code><br>\nindented<br>\n](javascript:alert(1)) &lt;script&gt;alert(4)&lt;/script&gt;<br>\nline<br>\nafter [U+202E]reversed[U+202C] end');
    // Tags in your texts and titles are styled; an answer's are plain text inside its Markdown.
    expect(doc.querySelectorAll('.cc').length).toBeGreaterThanOrEqual(3);
    expect([...doc.querySelectorAll('.status')].map((s) => s.textContent)).toEqual(['Unfinished (the app stopped while writing it)']);
    expect(doc.body.textContent).toContain('model tiny-owl2 · 42 tokens · 88.5 tokens/s · cpu');
  });

  it('marks answers that were stopped, failed or left unfinished', async () => {
    source.store.selectBranch(sample.originalQuestion); // the cancelled regeneration, then an answer that failed
    const dest = join(work, 'statuses.html');
    try {
      await exportHtml(ctx, { conversations: [sample.main, sample.pinned], dest });
    } finally {
      source.store.selectBranch(sample.editedQuestion);
    }
    const doc = new Window().document;
    doc.write(await readFile(dest, 'utf8'));
    expect([...doc.querySelectorAll('.message')].map((m) => m.className)).toEqual([
      'message user', 'message assistant', 'message user', 'message assistant', 'message user', 'message assistant',
    ]);
    expect([...doc.querySelectorAll('.status')].map((s) => s.textContent)).toEqual([
      'Stopped by you before the end',
      'Failed: the engine process stopped unexpectedly (signal SIGKILL)',
      'Unfinished (the app stopped while writing it)',
    ]);
    expect(doc.body.textContent).toContain('Partial text before the crash');
  });

  it('prints the same page to PDF through the callback, writing its bytes atomically', async () => {
    const dest = join(work, 'trip.pdf');
    const printed: string[] = [];
    const pdf = new TextEncoder().encode('%PDF-1.7\n% stand-in printer output\n%%EOF\n');
    const summary = await exportPdf(ctx, { conversations: [sample.main], dest, printToPdf: async (html) => (printed.push(html), pdf) });
    expect(summary.conversations).toBe(1);
    expect(new Uint8Array(await readFile(dest))).toEqual(pdf);
    expect(printed).toHaveLength(1);
    expect(printed[0]).toContain('Content-Security-Policy');
    await expect(exportConversations(ctx, { format: 'pdf', conversations: [sample.main], dest })).rejects.toMatchObject({ code: 'EXPORT_FAILED' });
    await expect(exportPdf(ctx, { conversations: [sample.main], dest, printToPdf: async () => { throw new Error('printer failed'); } })).rejects.toThrow('printer failed');
    expect(new Uint8Array(await readFile(dest))).toEqual(pdf); // the earlier file is left as it was
  });
});

describe('export selection and files', () => {
  it('exports every conversation not in the trash with "all"', async () => {
    const dest = join(work, 'everything.json');
    const summary = await exportConversations(ctx, { format: 'json', conversations: 'all', dest });
    const doc = JSON.parse(await readFile(dest, 'utf8')) as ExportFile;
    expect(doc.conversations.map((c) => c.deletedAt)).not.toContain(expect.any(Number));
    expect(summary.conversations).toBe(source.store.listConversations({ limit: 500 }).items.length);
    expect(doc.conversations.map((c) => c.id)).toContain(sample.empty);
  });

  it('refuses unknown conversations and leaves no temporary files', async () => {
    const dir = join(work, 'clean');
    await import('node:fs/promises').then((fs) => fs.mkdir(dir));
    await expect(exportHtml(ctx, { conversations: [123456], dest: join(dir, 'x.html') })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(exportJson(ctx, { conversations: [sample.main], dest: join(dir, 'missing-folder', 'x.json') })).rejects.toMatchObject({ code: 'EXPORT_FAILED' });
    await writeFile(join(dir, 'keep.html'), 'old');
    await exportHtml(ctx, { conversations: [sample.empty], dest: join(dir, 'keep.html') });
    expect(await readdir(dir)).toEqual(['keep.html']);
    expect(await readFile(join(dir, 'keep.html'), 'utf8')).toContain('Untitled conversation');
  });

  it('suggests safe file names', () => {
    expect(suggestedFileName('Trip: <day 1>/2?', 'markdown')).toBe('Trip day 1 2.md');
    expect(suggestedFileName('\u202Egnp.exe', 'html')).toBe('gnp.exe.html');
    expect(suggestedFileName('..', 'json')).toBe('owlery-conversations.json');
    expect(suggestedFileName('CON', 'pdf')).toBe('owlery-conversations.pdf');
    expect(suggestedFileName(null, 'json')).toBe('owlery-conversations.json');
  });
});

describe('an answer with a list, code, a table and a link', () => {
  let env: StoreEnv;
  let convo: number;
  let exportCtx: ExportContext;

  beforeAll(() => {
    env = freshEnv('rich');
    convo = env.store.createConversation({ title: 'Colours' }).id;
    const q = env.store.appendUserMessage({ conversationId: convo, text: 'Which colours? 1. *all* of them' });
    const w = env.store.beginAnswer({ conversationId: convo, parentId: q.id });
    w.push(RICH_ANSWER);
    w.finish({ status: 'complete', stats: sampleStats(30) });
    exportCtx = { store: env.store, images: env.images, appVersion: '9.9.9', now: () => Date.UTC(2026, 11, 4, 10, 58) };
  });

  it('Markdown: writes the answer as it is (headings moved below the export\'s own, HTML as text), dates not escaped', async () => {
    const dest = join(work, 'rich.md');
    await exportMarkdown(exportCtx, { conversations: [convo], dest });
    const md = await readFile(dest, 'utf8');
    const expected = RICH_ANSWER.replace('# Colours', '### Colours').replace('<b>not bold</b>', '&lt;b>not bold&lt;/b>');
    expect(md).toContain(`\n${expected}\n`);
    expect(md).toContain('exported from Owlery 2026-12-04 10:58 UTC');
    expect(md).not.toMatch(/\\[-:.]/); // no escaped dates, times or list numbers outside your message
    expect(md).toContain('Which colours? 1. \\*all\\* of them'); // your message stays literal
    const doc = new Window().document;
    doc.body.innerHTML = new MarkdownIt({ html: true }).render(md);
    expect(doc.querySelector('h3')?.textContent).toBe('Colours');
    expect([...doc.querySelectorAll('ol > li')].map((li) => li.textContent)).toEqual(['A rainbow gradient across the sky', 'A calm sea, photographed 2026-12-04 10:58']);
    expect(doc.querySelector('pre code.language-python')?.textContent).toBe('def hue(x):\n    return "<b>%d</b>" % x\n');
    expect([...doc.querySelectorAll('table td')].map((td) => td.textContent)).toEqual(['red', '40%', 'blue', '60%']);
    expect(doc.querySelector('a')?.getAttribute('href')).toBe('https://example.com/colours?a=1&b=2');
    expect(doc.querySelectorAll('b').length).toBe(0);
  });

  it('closes a code fence the answer left open, so the rest of the file is not code', async () => {
    const q = env.store.appendUserMessage({ conversationId: convo, text: 'And the code?' });
    const w = env.store.beginAnswer({ conversationId: convo, parentId: q.id });
    w.push('Here:\n\n```js\nconst a = 1;');
    w.finish({ status: 'cancelled', stats: null });
    const dest = join(work, 'open-fence.md');
    await exportMarkdown(exportCtx, { conversations: [convo], dest });
    const doc = new Window().document;
    doc.body.innerHTML = new MarkdownIt().render(await readFile(dest, 'utf8'));
    expect(doc.querySelector('pre:last-of-type code')?.textContent).toBe('const a = 1;\n');
    // The stopped answer's note, after the fence, is text again.
    expect([...doc.querySelectorAll('em')].map((e) => e.textContent).at(-1)).toContain('Stopped by you before the end');
  });

  it('HTML: renders the answer\'s Markdown with the app\'s settings (list, highlighted code, table, safe link) under the strict CSP', async () => {
    const dest = join(work, 'rich.html');
    await exportHtml(exportCtx, { conversations: [convo], dest });
    const html = await readFile(dest, 'utf8');
    const doc = new Window().document;
    doc.write(html);
    const answer = doc.querySelector('.answer')!;
    expect(answer.querySelector('h3')?.textContent).toBe('Colours');
    expect([...answer.querySelectorAll('ol > li')].map((li) => li.innerHTML)).toEqual([
      'A <strong>rainbow gradient</strong> across the sky',
      'A <em>calm</em> sea, photographed 2026-12-04 10:58',
    ]);
    const code = answer.querySelector('pre code.language-python.hljs')!;
    expect(code.textContent).toBe('def hue(x):\n    return "<b>%d</b>" % x\n');
    expect(code.querySelector('.hljs-keyword')?.textContent).toBe('def');
    expect(code.querySelector('.hljs-string')?.textContent).toBe('"<b>%d</b>"');
    expect([...answer.querySelectorAll('table th')].map((th) => th.textContent)).toEqual(['Colour', 'Share']);
    expect([...answer.querySelectorAll('table td')].map((td) => td.textContent)).toEqual(['red', '40%', 'blue', '60%']);
    // Alignment by class: the page's CSP allows no style attribute.
    expect([...answer.querySelectorAll('table td')].map((td) => td.className)).toEqual(['', 'md-align-right', '', 'md-align-right']);
    expect(answer.querySelectorAll('[style]').length).toBe(0);
    const link = answer.querySelector('a')!;
    expect([link.getAttribute('href'), link.textContent, link.getAttribute('rel')]).toEqual(['https://example.com/colours?a=1&b=2', 'the colour guide', 'noopener noreferrer']);
    expect(answer.textContent).toContain('<b>not bold</b>');
    expect(doc.querySelectorAll('script, b, button').length).toBe(0);
    // Your message stays as you wrote it.
    expect(doc.querySelector('.text')?.textContent).toBe('Which colours? 1. *all* of them');
    const csp = doc.querySelector('meta[http-equiv="Content-Security-Policy"]')!.getAttribute('content')!;
    expect(csp).toContain(`'sha256-${createHash('sha256').update(doc.querySelector('style')!.textContent!).digest('base64')}'`);
    expect(csp.startsWith("default-src 'none';")).toBe(true);
  });
});
