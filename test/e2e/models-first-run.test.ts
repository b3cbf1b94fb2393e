/**
 * First run in a real browser against the web harness (real services, real converter and engine):
 * with no model the first-run screen explains what to do; importing the seeded tiny checkpoint
 * through the (scripted) folder dialog shows progress; the model is converted, becomes the active
 * one and is loaded, and the Models screen shows it with its information. No console errors.
 * Screenshots of the first-run and Models screens, light and dark.
 */
import { basename } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelTask } from '../../src-shared/ipc/index.ts';
import { formatBytes } from '../../src-renderer/lib/components/models/format.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { CHROMIUM, goToScreen, startBrowserApp } from './helpers/models-browser.ts';
import type { BrowserApp } from './helpers/models-browser.ts';

describe.skipIf(!CHROMIUM)('first run → import → active model (browser)', () => {
  let app: BrowserApp;
  let checkpoint: string;
  const tasks: ModelTask[] = [];

  beforeAll(async () => {
    checkpoint = await ensureTinyCheckpoint({ seed: 1 });
    app = await startBrowserApp({ prefix: 'owlery-e2e-models-' });
    app.harness.services.events.subscribe((e) => {
      if (e.type === 'models:task') tasks.push(e.payload);
    });
    await app.open();
  });

  afterAll(async () => {
    await app?.close();
  });

  it('explains what to do when no model is installed', async () => {
    const { page } = app;
    await expect(page.getByRole('heading', { name: 'Welcome to Owlery' }).isVisible()).resolves.toBe(true);
    await expect(page.getByText('MAGAer13/mplug-owl2-llama2-7b', { exact: true }).first().isVisible()).resolves.toBe(true);
    await expect(page.getByText(/The checkpoint is about 16 GB/).isVisible()).resolves.toBe(true);
    await expect(page.getByText(/never leave\s+this computer/).isVisible()).resolves.toBe(true);
    // Offline by default: the download form says why it is off.
    await expect(page.getByRole('textbox', { name: 'Hub repository' }).isDisabled()).resolves.toBe(true);
    await app.screenshot('first-run-light');
    await app.colorScheme('dark');
    await expect(page.locator('html').getAttribute('data-theme')).resolves.toBe('dark');
    await app.screenshot('first-run-dark');
    await app.colorScheme('light');
  });

  it('imports the tiny checkpoint with progress; it becomes the active, loaded model', async () => {
    const { page, harness } = app;
    // Record every progress bar the page shows, however briefly (no timing involved).
    await page.evaluate(`(() => {
      const seen = (globalThis.progressSeen = []);
      const record = () => {
        for (const p of document.querySelectorAll('progress')) seen.push((p.getAttribute('aria-valuetext') ?? '') + '|' + (p.getAttribute('value') ?? ''));
      };
      new MutationObserver(record).observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
    })()`);
    harness.choose('checkpoint-folder', [checkpoint]);
    await page.getByRole('button', { name: 'Import a checkpoint folder…' }).click();

    // The first model added becomes the active one, so the shell leaves the first-run screen.
    await page.getByRole('navigation', { name: 'Screens' }).waitFor({ timeout: 120_000 });
    const seen = await page.evaluate(() => (globalThis as unknown as { progressSeen: string[] }).progressSeen);
    expect(seen.length).toBeGreaterThan(0);
    const mine = tasks.filter((t) => t.kind === 'import');
    expect(mine.at(-1)).toMatchObject({ state: 'done', error: null });
    expect(new Set(mine.map((t) => t.phase))).toContain('writing-graphs');

    const modelId = mine.at(-1)!.modelId!;
    expect(harness.services.settings.get().activeModelId).toBe(modelId);
    expect(harness.services.engine.status()).toMatchObject({ modelId, state: 'ready' });
  });

  it('shows the model with its information on the Models screen', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Models');
    const [model] = await harness.services.models.list();
    expect(model).toBeTruthy();
    const name = basename(checkpoint);
    const card = page.getByRole('list', { name: 'Installed models' }).getByRole('listitem', { name });
    await card.waitFor();
    const text = (await card.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('Active');
    expect(text).toContain(`Size ${formatBytes(model!.sizeBytes)}`);
    expect(text).toContain('Quantization fp32');
    expect(text).toContain('Converted from safetensors');
    expect(text).toContain('Runs on CPU');
    expect(text).toContain('Verified: every file matches its checksum');
    expect(text).toContain(model!.id);
    // The finished import stays listed with its outcome until dismissed.
    const task = page.getByRole('listitem', { name: `Import: ${name}` });
    await expect(task.getByRole('status').innerText()).resolves.toBe('The model is ready.');

    await app.screenshot('models-light');
    await app.colorScheme('dark');
    await app.screenshot('models-dark');
    await app.colorScheme('light');
  });

  it('logged no console errors', () => {
    expect(app.consoleErrors).toEqual([]);
  });
});
