/**
 * Describing a photo folder from the Photos panel, in a real browser against the web harness with
 * the tiny model (issue 14): a job started on the folder shows its progress (n of N, the photo being
 * described), pauses and resumes, finishes with the photo it could not describe listed; the
 * selected photo shows its description and who wrote it; a word of a caption finds its photo; a
 * keyword chip finds photos, two of them start a chat whose question is answered; the folder's descriptions export as CSV. axe-core finds
 * no serious or critical violation on the panel in either theme.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DescribeJobEvent } from '../../src-shared/ipc/index.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { searchableWord } from './helpers/chat-page.ts';
import { describeViolations, seriousViolations } from './helpers/axe.ts';
import { CHROMIUM, goToScreen, SCREENSHOT_DIR, startBrowserApp } from './helpers/models-browser.ts';
import type { BrowserApp } from './helpers/models-browser.ts';

const PHOTOS = 8;

/** A small photo of its own colours (seeded by `i`). */
function photo(i: number): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 48 * 3);
  for (let p = 0; p < 64 * 48; p++) raw.set([(p * (i + 3)) % 256, (i * 40 + p) % 256, (255 - i * 25) % 256], p * 3);
  return sharp(raw, { raw: { width: 64, height: 48, channels: 3 } }).jpeg().toBuffer();
}

describe.skipIf(!CHROMIUM)('describing a photo folder (browser)', () => {
  let app: BrowserApp;
  let folder: string;
  const events: DescribeJobEvent[] = [];

  beforeAll(async () => {
    const checkpoint = await ensureTinyCheckpoint({ seed: 1 });
    app = await startBrowserApp({ prefix: 'owlery-e2e-describe-' });
    const { services } = app.harness;
    const task = await services.models.settled(services.models.importCheckpoint(checkpoint, { preset: 'cpu' }));
    await services.models.select(task.modelId!);
    services.settings.set({ maxNewTokens: 6, temperature: 0 });
    services.events.subscribe((e) => {
      if (e.type === 'describe:event') events.push(e.payload);
    });
    folder = join(app.root, 'Holiday');
    await mkdir(folder, { recursive: true });
    for (let i = 0; i < PHOTOS; i++) await writeFile(join(folder, `p${i}.jpg`), await photo(i));
    await writeFile(join(folder, 'z-broken.jpg'), 'not a photo at all');
    await app.open();
  });

  afterAll(async () => {
    await app?.close();
  });

  const panel = () => app.page.getByRole('region', { name: 'Describe job' });

  it('starts a job on the open folder, shows its progress, pauses and resumes it, and lists the photo it could not describe', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Photos');
    harness.choose('photos-folder', [folder]);
    await page.getByRole('button', { name: 'Open a folder…' }).click();
    await page.getByRole('listbox', { name: 'Photos in Holiday' }).waitFor();

    await page.getByRole('button', { name: 'Describe this folder…' }).click();
    const form = page.getByRole('form', { name: 'Describe Holiday' });
    // Sidecars are opt-in, and what they are is said.
    expect(await form.getByRole('checkbox', { name: 'Write XMP sidecars' }).isChecked()).toBe(false);
    expect(await form.getByText(/next to each photo with its caption and keywords/).count()).toBe(1);
    await form.getByRole('button', { name: 'Start describing' }).click();

    await panel().getByText(/of 9 photos/).waitFor();
    await panel().getByText('Describing', { exact: true }).waitFor();
    await panel().getByRole('button', { name: 'Pause' }).click();
    await panel().getByText('Paused', { exact: true }).waitFor();
    // Paused: nothing more is described.
    const job = harness.services.describe.jobs(1)[0]!;
    await expect.poll(() => harness.services.describe.job(job.id).state).toBe('paused');
    const at = harness.services.describe.job(job.id).progress.finished;
    await new Promise((r) => setTimeout(r, 1500));
    expect(harness.services.describe.job(job.id).progress.finished).toBe(at);
    expect(at).toBeLessThan(9);

    await panel().getByRole('button', { name: 'Resume' }).click();
    await panel().getByText('Done', { exact: true }).waitFor({ timeout: 120_000 });
    await panel().getByText(`${PHOTOS} described, 1 could not be described.`).waitFor();
    // Progress went by photo, with the photo being described named for its thumbnail.
    const currents = events.flatMap((e) => (e.type === 'job' && e.job.progress.current ? [e.job.progress.current] : []));
    expect(currents.length).toBeGreaterThan(0);
    expect(currents.every((c) => c.thumbnailUrl !== null && /^(p\d|z-broken)\.jpg$/.test(c.name))).toBe(true);
    await page.getByText('1 photo with a problem').click();
    const problem = page.getByRole('listitem').filter({ hasText: 'z-broken.jpg' });
    await problem.waitFor();
    // Named as the panel knows it, never by its path on disk.
    expect(await problem.textContent()).not.toContain(folder);
  });

  it('shows the selected photo\'s description and how it was written', async () => {
    const { page, harness } = app;
    const grid = page.getByRole('listbox', { name: 'Photos in Holiday' });
    await grid.getByRole('option', { name: /p3\.jpg/ }).click();
    const details = page.getByRole('region', { name: 'Description of p3.jpg' });
    const stored = harness.services.describe.description(join(folder, 'p3.jpg'))!;
    expect(stored.caption.length).toBeGreaterThan(0);
    await details.getByText(stored.caption, { exact: true }).waitFor();
    await details.getByText('How this was written').click();
    await details.getByText(stored.provenance.packageId).waitFor();
    await details.getByText(`version ${stored.provenance.promptVersion}`).waitFor();
  });

  it('finds photos by a word of their captions, with the match marked', async () => {
    const { page, harness } = app;
    const caption = harness.services.describe.description(join(folder, 'p1.jpg'))!.caption;
    const word = searchableWord(caption);
    expect(word, caption).not.toBeNull();
    await page.getByRole('searchbox', { name: 'Search photo descriptions' }).fill(word!);
    const found = page.getByRole('list', { name: 'Photos found' });
    await found.getByRole('button', { name: /p1\.jpg/ }).waitFor();
    const marked = await found.getByRole('button', { name: /p1\.jpg/ }).locator('mark').allTextContents();
    expect(marked.map((m) => m.toLowerCase())).toContain(word!.toLowerCase());
    await page.getByRole('button', { name: 'Back to all photos' }).click();
    await page.getByRole('listbox', { name: 'Photos in Holiday' }).waitFor();
  });

  it('filters by a keyword chip and opens a chat about two of the photos found, which is answered', async () => {
    const { page, harness } = app;
    // The tiny model's random weights write no usable keywords (every one is dropped as junk), so
    // three photos get the descriptions a real model would write, stored as a job stores them.
    const { descriptions } = harness.services.store;
    for (const name of ['p0.jpg', 'p2.jpg', 'p5.jpg']) {
      const d = harness.services.describe.description(join(folder, name))!;
      descriptions.save({ ...d.provenance, sha256: d.sha256, caption: `Fishing boats in a harbour at dusk (${name}).`, keywords: ['harbour', 'boats', 'dusk'] });
    }
    await page.getByRole('searchbox', { name: 'Search photo descriptions' }).focus(); // the chips are read again
    const chip = page.getByRole('list', { name: 'Keywords' }).getByRole('button', { name: 'harbour', exact: true });
    await chip.click();
    expect(await chip.getAttribute('aria-pressed')).toBe('true');
    const found = page.getByRole('list', { name: 'Photos found' });
    await expect.poll(() => found.getByRole('listitem').count()).toBe(3);
    expect(await found.locator('mark', { hasText: 'harbour' }).count()).toBe(3);

    await found.getByRole('button', { name: /p0\.jpg/ }).click();
    await found.getByRole('button', { name: /p5\.jpg/ }).click();
    await page.getByText('2 photos chosen').waitFor();
    await page.getByRole('button', { name: 'New chat about these photos' }).click();
    const tray = page.getByRole('list', { name: 'Photos to send' });
    await expect.poll(() => tray.getByRole('listitem').count()).toBe(2);
    await page.getByRole('textbox', { name: 'Message' }).fill('What do these two photos have in common?');
    await page.getByRole('button', { name: 'Send' }).click();
    await expect.poll(() => harness.services.store.listConversations().items.length).toBe(1);
    const id = harness.services.store.listConversations().items[0]!.id;
    await expect.poll(() => harness.services.store.getThread(id).messages.at(-1)?.status, { timeout: 60_000 }).toBe('complete');
    const [question] = harness.services.store.getThread(id).messages;
    expect(question!.images.map((i) => i.name).sort()).toEqual(['p0.jpg', 'p5.jpg']);
  });

  it('exports the folder\'s descriptions as CSV through the save dialog', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Photos');
    // Back on the screen after the chat: the grid, not the old search, and selecting still works.
    await page.getByRole('listbox', { name: 'Photos in Holiday' }).getByRole('option', { name: /p4\.jpg/ }).click();
    await page.getByText('1 photo selected').waitFor();
    await page.getByRole('region', { name: 'Description of p4.jpg' }).waitFor();
    const dest = join(app.root, 'holiday.csv');
    harness.choose('save', [dest]);
    await page.getByRole('group', { name: 'Export descriptions' }).getByRole('button', { name: /^CSV/ }).click();
    await page.getByText(`Saved the descriptions of ${PHOTOS} photos to holiday.csv.`).waitFor();
    const csv = await readFile(dest, 'utf8');
    expect(csv).toMatch(/^\ufeff?path,caption,keywords,/); // a BOM for spreadsheets
    for (let i = 0; i < PHOTOS; i++) expect(csv).toContain(join(folder, `p${i}.jpg`));
    expect(csv).not.toContain('z-broken.jpg');
  });

  it('has no serious or critical accessibility problem in either theme', async () => {
    const { page, harness } = app;
    const failures: string[] = [];
    await page.getByRole('button', { name: 'Describe this folder…' }).click();
    await page.getByRole('checkbox', { name: 'Write XMP sidecars' }).check();
    for (const theme of ['light', 'dark'] as const) {
      harness.services.settings.set({ theme });
      await expect.poll(() => page.evaluate('document.documentElement.dataset.theme')).toBe(theme);
      const violations = await seriousViolations(page);
      if (violations.length) failures.push(describeViolations(`Photos with descriptions (${theme})`, violations));
      await app.screenshot(`photos-describe-${theme}`);
    }
    // A small window: the grid keeps room under the panel.
    await page.getByRole('button', { name: 'Cancel', exact: true }).click();
    await page.setViewportSize({ width: 800, height: 600 });
    // Nothing is drawn over the grid: the selection line stays below it.
    const grid = (await page.locator('.grid-area').boundingBox())!;
    const footer = (await page.locator('footer[aria-label="Selection"]').boundingBox())!;
    expect(grid.height).toBeGreaterThan(200);
    expect(footer.y).toBeGreaterThanOrEqual(grid.y + grid.height - 1);
    await page.screenshot({ path: join(SCREENSHOT_DIR, 'photos-describe-dark-800x600.png') });
    await page.setViewportSize({ width: 1280, height: 860 });
    expect(failures).toEqual([]);
  });
});
