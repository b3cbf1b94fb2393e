/**
 * Photos panel → chat → export, in a real browser against the web harness with the tiny model:
 * open a folder (scripted dialog), thumbnails turned by their EXIF orientation, select a photo by
 * keyboard, start a chat about it, get an answer, then export the conversation as HTML, JSON and
 * PDF and check the files (text, the embedded photo's bytes), and import the JSON back. No
 * console errors. Screenshots of the Photos panel, light and dark.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChatOutcome, ExportFile } from '../../src-shared/chat.ts';
import { makePhoto } from '../helpers/chat-env.ts';
import { ensureTinyCheckpoint, REPO_ROOT } from '../helpers/tiny-model.ts';
import { CHROMIUM, goToScreen, startBrowserApp } from './helpers/models-browser.ts';
import type { BrowserApp } from './helpers/models-browser.ts';

const QUESTION = 'What is the man on the taxi doing?';
const FIXTURE = join(REPO_ROOT, 'test', 'fixtures', 'extreme_ironing.jpg');

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(!CHROMIUM)('photos → chat → export (browser)', () => {
  let app: BrowserApp;
  let photos: string;
  let out: string;
  let photoBytes: Uint8Array;
  const outcomes: ChatOutcome[] = [];

  beforeAll(async () => {
    const checkpoint = await ensureTinyCheckpoint({ seed: 1 });
    app = await startBrowserApp({ prefix: 'owlery-e2e-export-', printToPdf: true });
    const { services } = app.harness;
    // A model to answer with, chosen before the window opens (the first-run flow has its own test).
    const task = await services.models.settled(services.models.importCheckpoint(checkpoint, { name: 'tiny owl' }));
    await services.models.select(task.modelId!);
    services.settings.set({ maxNewTokens: 12, temperature: 0 });
    services.events.subscribe((e) => {
      if (e.type === 'chat:event' && (e.payload.type === 'done' || e.payload.type === 'error')) outcomes.push(e.payload);
    });

    // A folder of photos: the fixture, one with EXIF orientation 6 (stored landscape, shown portrait), and more.
    photos = join(app.root, 'Holiday photos');
    out = join(app.root, 'exports');
    await mkdir(photos, { recursive: true });
    await mkdir(out, { recursive: true });
    await copyFile(FIXTURE, join(photos, 'extreme_ironing.jpg'));
    photoBytes = new Uint8Array(await readFile(FIXTURE));
    const landscape = await makePhoto(3, 320, 200, 'png');
    await writeFile(join(photos, 'rotated.jpg'), await sharp(landscape).jpeg().withMetadata({ orientation: 6 }).toBuffer());
    for (let i = 1; i <= 18; i++) await writeFile(join(photos, `photo-${String(i).padStart(2, '0')}.jpg`), await makePhoto(i, 240 + i * 8, 180, 'jpeg'));
    await app.open();
  });

  afterAll(async () => {
    await app?.close();
  });

  it('opens a folder and shows its thumbnails the right way up', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Photos');
    await page.getByText(/Open a folder of photos to browse them here/).waitFor();
    harness.choose('photos-folder', [photos]);
    await page.getByRole('button', { name: 'Open a folder…' }).click();
    const grid = page.getByRole('listbox', { name: 'Photos in Holiday photos' });
    await grid.waitFor();
    await expect(page.getByText('20 photos').isVisible()).resolves.toBe(true);
    await expect(grid.getByRole('option').count()).resolves.toBe(20);
    // Every thumbnail loads; the EXIF-rotated one comes out portrait.
    type Img = { complete: boolean; naturalWidth: number; naturalHeight: number };
    await expect
      .poll(() => grid.locator('img').evaluateAll((imgs) => (imgs as unknown as Img[]).every((i) => i.complete && i.naturalWidth > 0)))
      .toBe(true);
    const rotated = await grid.getByRole('option', { name: 'rotated.jpg' }).locator('img').evaluate((i) => {
      const img = i as unknown as Img;
      return { w: img.naturalWidth, h: img.naturalHeight };
    });
    expect(rotated.h).toBeGreaterThan(rotated.w);
  });

  it('selects a photo by keyboard and starts a chat about it', async () => {
    const { page } = app;
    const grid = page.getByRole('listbox', { name: 'Photos in Holiday photos' });
    await grid.focus();
    await page.keyboard.press('Home');
    await page.keyboard.press('Space');
    await expect(grid.getByRole('option', { selected: true }).allInnerTexts()).resolves.toEqual([expect.stringContaining('extreme_ironing.jpg')]);
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
    await expect(page.getByText('1 photo selected').isVisible()).resolves.toBe(true);
    await app.screenshot('photos-light');
    await app.colorScheme('dark');
    await app.screenshot('photos-dark');
    await app.colorScheme('light');

    await page.getByRole('button', { name: 'New chat about this photo' }).click();
    const message = page.getByRole('textbox', { name: 'Message' });
    await message.waitFor();
    await message.fill(QUESTION);
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => outcomes.length, { timeout: 60_000 }).toBe(1);
    expect(outcomes[0]).toMatchObject({ type: 'done' });
  });

  it('exports the conversation as HTML with the photo embedded', async () => {
    const { page, harness } = app;
    await page.getByRole('button', { name: 'Export…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Export and import' });
    await dialog.waitFor();
    await expect(dialog.getByRole('radio', { name: /Web page \(HTML\)/ }).isChecked()).resolves.toBe(true);
    harness.choose('save', [join(out, 'ironing.html')]);
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Saved 1 conversation as Web page (HTML) to “ironing.html”.' }).waitFor();

    const html = await readFile(join(out, 'ironing.html'), 'utf8');
    expect(html).toContain(QUESTION);
    expect(html).toContain('Assistant');
    const m = /<img[^>]+src="data:image\/jpeg;base64,([A-Za-z0-9+/=]+)"/.exec(html);
    expect(m).not.toBeNull();
    expect(sha256(Buffer.from(m![1]!, 'base64'))).toBe(sha256(photoBytes));
    expect(html).not.toMatch(/<script/i);
  });

  it('exports the conversation as JSON with the photo’s bytes', async () => {
    const { page, harness } = app;
    const dialog = page.getByRole('dialog', { name: 'Export and import' });
    await dialog.getByRole('radio', { name: /Owlery backup \(JSON\)/ }).check();
    harness.choose('save', [join(out, 'ironing.json')]);
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Saved 1 conversation as Owlery backup (JSON) to “ironing.json”.' }).waitFor();

    const file = JSON.parse(await readFile(join(out, 'ironing.json'), 'utf8')) as ExportFile;
    expect(file).toMatchObject({ format: 'owlery-export', version: 2 });
    expect(file.conversations).toHaveLength(1);
    const [user, answer] = file.conversations[0]!.messages;
    expect(user).toMatchObject({ role: 'user', text: QUESTION, images: [{ sha256: sha256(photoBytes), name: 'extreme_ironing.jpg' }] });
    expect(answer).toMatchObject({ role: 'assistant', status: 'complete' });
    expect(file.images).toHaveLength(1);
    expect(file.images[0]).toMatchObject({ sha256: sha256(photoBytes), mime: 'image/jpeg', byteSize: photoBytes.byteLength });
    expect(sha256(Buffer.from(file.images[0]!.data, 'base64'))).toBe(sha256(photoBytes));
  });

  it('exports the conversation as PDF', async () => {
    const { page, harness } = app;
    const dialog = page.getByRole('dialog', { name: 'Export and import' });
    await dialog.getByRole('radio', { name: /PDF/ }).check();
    harness.choose('save', [join(out, 'ironing.pdf')]);
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'to “ironing.pdf”.' }).waitFor();
    const pdf = await readFile(join(out, 'ironing.pdf'));
    expect(pdf.subarray(0, 5).toString('latin1')).toBe('%PDF-');
  });

  it('imports the JSON back: already here, so a copy on request, and reports what it added', async () => {
    const { page, harness } = app;
    const dialog = page.getByRole('dialog', { name: 'Export and import' });
    harness.choose('import', [join(out, 'ironing.json')]);
    await dialog.getByRole('button', { name: 'Import a backup…' }).click();
    await dialog.getByRole('status').filter({ hasText: `“${QUESTION}” is already in Owlery; nothing was imported.` }).waitFor();
    expect(harness.services.store.listConversations().items).toHaveLength(1);
    await dialog.getByRole('button', { name: 'Import a copy' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Imported 1 conversation with 2 messages, 1 photo (1 already in Owlery).' }).waitFor();
    expect(harness.services.store.listConversations().items).toHaveLength(2);
    // A cancelled save dialog is reported as such, not as an error.
    await dialog.getByRole('button', { name: 'Export…' }).click();
    await dialog.getByRole('status').filter({ hasText: 'Nothing was saved.' }).waitFor();
    await expect(dialog.getByRole('alert').count()).resolves.toBe(0);
    await dialog.getByRole('button', { name: 'Close' }).click();
    await expect(dialog.isVisible()).resolves.toBe(false);
  });

  it('logged no console errors', () => {
    expect(app.consoleErrors).toEqual([]);
  });
});
