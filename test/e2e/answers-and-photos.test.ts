/**
 * In a real browser against the web harness, with the tiny model (issue 13, items 2–4):
 * - a 12000×12000 photo attached with the dialog is stored downscaled, the tray says "downscaled
 *   from 12000×12000", and the question about it is answered — first waiting for the model to load
 *   (the chat's pending line shows the load's phase with a bar), the engine reporting the photo's
 *   phases with progress — and the answer's statistics keep the photo's encoding time;
 * - the Photos grid says why each photo it cannot show cannot be shown (empty, not an image, cut
 *   off, too large), and shows the 12000×12000 one;
 * - an answer with a list, a code fence, a table and a link exports to Markdown as it is, and to
 *   HTML rendered (`<ol>`, highlighted `<pre><code>`, `<table>`, `<a>`); the HTML page, opened in
 *   the browser, shows them under its strict CSP without a console error.
 * Screenshots: the tray with the downscaled photo, the Photos grid with unreadable files, the
 * exported page (light).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatEvent, ChatOutcome } from '../../src-shared/chat.ts';
import { RICH_ANSWER, sampleStats } from '../helpers/chat-history.ts';
import { ensureTinyCheckpoint, REPO_ROOT } from '../helpers/tiny-model.ts';
import { pngBomb } from '../robustness/helpers/images.ts';
import { CHROMIUM, goToScreen, SCREENSHOT_DIR, startBrowserApp } from './helpers/models-browser.ts';
import type { BrowserApp } from './helpers/models-browser.ts';

const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'extreme_ironing.jpg');

/** A 12000×12000 PNG (blocks of colour: a few hundred KB), made without a 432 MB buffer in JS. */
async function hugePng(): Promise<Buffer> {
  const raw = Buffer.alloc(40 * 40 * 3);
  for (let i = 0; i < 40 * 40; i++) raw.set([(i * 7) % 256, (i * 13) % 256, (i * 29) % 256], i * 3);
  return sharp(raw, { raw: { width: 40, height: 40, channels: 3 } }).resize(12000, 12000, { kernel: 'nearest' }).png().toBuffer();
}

describe.skipIf(!CHROMIUM)('answers, exports and photos (browser)', () => {
  let app: BrowserApp;
  let photos: string;
  let out: string;
  const events: ChatEvent[] = [];
  const outcomes: ChatOutcome[] = [];

  beforeAll(async () => {
    const checkpoint = await ensureTinyCheckpoint({ seed: 1 });
    app = await startBrowserApp({ prefix: 'owlery-e2e-answers-' });
    const { services } = app.harness;
    const task = await services.models.settled(services.models.importCheckpoint(checkpoint, { preset: 'cpu' }));
    await services.models.select(task.modelId!);
    services.settings.set({ maxNewTokens: 8, temperature: 0 });
    services.events.subscribe((e) => {
      if (e.type !== 'chat:event') return;
      events.push(e.payload);
      if (e.payload.type === 'done' || e.payload.type === 'error') outcomes.push(e.payload);
    });
    photos = join(app.root, 'Camera roll');
    out = join(app.root, 'exports');
    await mkdir(photos, { recursive: true });
    await mkdir(out, { recursive: true });
    const jpg = await readFile(FIXTURE);
    await writeFile(join(photos, 'a-huge.png'), await hugePng());
    await writeFile(join(photos, 'b-good.jpg'), jpg);
    await writeFile(join(photos, 'c-empty.jpg'), new Uint8Array(0));
    await writeFile(join(photos, 'd-notes.jpg'), 'shopping list: milk, eggs\n');
    await writeFile(join(photos, 'e-half.jpg'), jpg.subarray(0, jpg.length >> 1));
    await writeFile(join(photos, 'f-bomb.png'), pngBomb(30000, 30000));
    await app.open();
  });

  afterAll(async () => {
    await app?.close();
  });

  it('attaches a 12000×12000 photo: stored downscaled, the tray says so, and the question about it is answered', async () => {
    const { page, harness } = app;
    await page.getByRole('textbox', { name: 'Message' }).waitFor();
    harness.choose('images', [join(photos, 'a-huge.png')]);
    await page.getByRole('button', { name: 'Attach photos' }).click();
    await page.getByText('“a-huge.png” was downscaled from 12000×12000 to 4096×4096 pixels.').waitFor();
    const tray = page.getByRole('list', { name: 'Photos to send' });
    await expect.poll(() => tray.getByRole('img', { name: 'a-huge.png' }).evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    await app.screenshot('tray-downscaled-light');

    // With the model unloaded, the question first waits for it to load: the chat says so, with a bar.
    await harness.services.engine.unload();
    await page.evaluate(`(() => {
      const seen = (globalThis.pendingSeen = []);
      new MutationObserver(() => {
        const line = document.querySelector('.pending .phase');
        if (line) seen.push(line.querySelector('.label').textContent + '|' + (line.querySelector('progress')?.getAttribute('max') ?? ''));
      }).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    })()`);
    await page.getByRole('textbox', { name: 'Message' }).fill('What colours are in this photo?');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => outcomes.length, { timeout: 120_000 }).toBe(1);
    const pending = await page.evaluate(() => (globalThis as unknown as { pendingSeen: string[] }).pendingSeen);
    expect(pending.some((p) => /^(Loading the model|Checking the model’s files)…\|\d+$/.test(p)), pending.join(' ')).toBe(true);
    expect(outcomes[0]).toMatchObject({ type: 'done' });
    // The engine said it was looking at the photo, with how far it was, before it wrote.
    const phases = events.flatMap((e) => (e.type === 'phase' ? [`${e.phase}${e.progress ? ` ${e.progress.done}/${e.progress.total}` : ''}`] : []));
    expect(phases).toEqual(['queued', 'decode-image 0/1', 'encode-image 0/1', 'prefill', 'generate']);
    const answer = page.getByRole('article', { name: 'Owlery' }).last();
    const stats = answer.getByRole('group', { name: 'Answer statistics' });
    await stats.waitFor();
    expect(await stats.innerText()).toMatch(/Photo encoding[:\s]+[\d.]+ (ms|s)/);
    // What was stored is the 4096×4096 copy; the message carries it.
    const done = outcomes[0] as Extract<ChatOutcome, { type: 'done' }>;
    const thread = harness.services.store.getThread(done.message.conversationId);
    const image = thread.messages.find((m) => m.role === 'user')!.images[0]!;
    expect([image.width, image.height]).toEqual([4096, 4096]);
  });

  it('says why each photo of a folder that cannot be shown cannot be, and shows the 12000×12000 one', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Photos');
    harness.choose('photos-folder', [photos]);
    await page.getByRole('button', { name: 'Open a folder…' }).click();
    const grid = page.getByRole('listbox', { name: 'Photos in Camera roll' });
    await grid.waitFor();
    const cell = (name: string) => grid.getByRole('option', { name: new RegExp(name.replace('.', '\\.')) });
    await cell('c-empty.jpg').getByText('Empty file').waitFor();
    await cell('d-notes.jpg').getByText('Not an image').waitFor();
    await cell('e-half.jpg').getByText('File is cut off').waitFor();
    await cell('f-bomb.png').getByText('Too large').waitFor();
    await expect(cell('f-bomb.png').locator('.unreadable').getAttribute('title')).resolves.toBe(
      'f-bomb.png is 30000×30000 pixels (900 MP), more than the 250 MP Owlery can downscale.',
    );
    await expect(cell('e-half.jpg').locator('.unreadable').getAttribute('title')).resolves.toMatch(/^e-half\.jpg is cut off \(truncated\)/);
    type Img = { complete: boolean; naturalWidth: number };
    for (const name of ['a-huge.png', 'b-good.jpg']) {
      await expect.poll(() => cell(name).locator('img').evaluate((i) => (i as unknown as Img).complete && (i as unknown as Img).naturalWidth > 0)).toBe(true);
    }
    await app.screenshot('photos-unreadable-light');
    await goToScreen(page, 'Chat');
  });

  it('exports an answer with a list, code, a table and a link: Markdown as it is, HTML rendered', async () => {
    const { page, harness } = app;
    const { store } = harness.services;
    const conversation = store.createConversation({ title: 'Colours of the sky' });
    const question = store.appendUserMessage({ conversationId: conversation.id, text: 'Which colours, and how much of each?' });
    const writer = store.beginAnswer({ conversationId: conversation.id, parentId: question.id });
    writer.push(RICH_ANSWER);
    writer.finish({ status: 'complete', stats: sampleStats(40) });
    harness.services.events.emit('conversations:changed', { reason: 'created', ids: [conversation.id] });
    await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^Colours of the sky/ }).click();
    const answer = page.getByRole('article', { name: 'Owlery' });
    await answer.locator('table').waitFor();

    const dialogOf = async () => {
      await page.getByRole('button', { name: 'Export…' }).click();
      const dialog = page.getByRole('dialog', { name: 'Export and import' });
      await dialog.waitFor();
      return dialog;
    };
    const dialog = await dialogOf();
    await dialog.getByRole('radio', { name: /^Markdown/ }).check();
    harness.choose('save', [join(out, 'colours.md')]);
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'to “colours.md”.' }).waitFor();
    const md = await readFile(join(out, 'colours.md'), 'utf8');
    // The answer as the model wrote it: only its heading moved below the export's own, its HTML made text.
    expect(md).toContain(`\n${RICH_ANSWER.replace('# Colours', '### Colours').replace('<b>not bold</b>', '&lt;b>not bold&lt;/b>')}\n`);
    expect(md).not.toMatch(/\d\\[-:.]/);

    await dialog.getByRole('radio', { name: /^Web page \(HTML\)/ }).check();
    harness.choose('save', [join(out, 'colours.html')]);
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'to “colours.html”.' }).waitFor();
    await dialog.getByRole('button', { name: 'Close' }).click();

    // The exported page, opened in the browser like a user would: rendered, styled, no errors.
    const viewer = await app.context.newPage();
    const errors: string[] = [];
    viewer.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    try {
      await viewer.goto(pathToFileURL(join(out, 'colours.html')).href);
      const exported = viewer.locator('.answer');
      await expect(exported.locator('ol > li').allInnerTexts()).resolves.toEqual(['A rainbow gradient across the sky', 'A calm sea, photographed 2026-12-04 10:58']);
      await expect(exported.locator('ol strong').innerText()).resolves.toBe('rainbow gradient');
      await expect(exported.locator('pre code.language-python .hljs-keyword').first().innerText()).resolves.toBe('def');
      await expect(exported.locator('table td').allInnerTexts()).resolves.toEqual(['red', '40%', 'blue', '60%']);
      await expect(exported.locator('a').getAttribute('href')).resolves.toBe('https://example.com/colours?a=1&b=2');
      await expect(exported.getByText('<b>not bold</b>').count()).resolves.toBe(1);
      // The page's own stylesheet applied under its CSP: the code block is highlighted in colour.
      // (Page code as a string: this file is type-checked without the DOM library.)
      const keyword = await viewer.evaluate<string>(`getComputedStyle(document.querySelector('.answer .hljs-keyword')).color`);
      expect(keyword).toBe('rgb(166, 38, 164)');
      await viewer.setViewportSize({ width: 1280, height: 800 });
      await viewer.screenshot({ path: join(SCREENSHOT_DIR, 'export-html-light.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await viewer.close();
    }
  });

  it('logged no console errors but the failed loads of the four thumbnails that cannot be made', () => {
    // Chromium logs every image that fails to load; the grid then asks main why (above).
    const failedLoad: string = 'Failed to load resource: the server responded with a status of 404 (Not Found)';
    const failedLoads = app.consoleErrors.filter((e) => e === failedLoad);
    expect(failedLoads).toHaveLength(4);
    expect(app.consoleErrors.filter((e) => e !== failedLoad)).toEqual([]);
  });
});
