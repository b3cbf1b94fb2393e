/**
 * First run in a real browser against the web harness (real services, real converter and engine):
 * with no model the first-run screen explains what to do; importing the seeded tiny checkpoint
 * through the (scripted) folder dialog first asks which form to make (sizes, memory, speed, the
 * form recommended for this machine chosen), then shows progress; the model is converted in that
 * form, becomes the active one and is loaded, and the Models screen shows it with its
 * information. Each form asked for is the one made (its manifest's quantization); a rename shows
 * in the chat header with the device; loading a model shows its phase. No console errors.
 * Screenshots of the first-run screen, the form chooser and the Models screen, light and dark.
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelTask } from '../../src-shared/ipc/index.ts';
import type { PackageManifest } from '../../models/package/manifest.ts';
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
    // A machine without a graphics card, whatever this one has (the recommendation depends on it).
    app = await startBrowserApp({ prefix: 'owlery-e2e-models-', services: { gpu: () => null } });
    app.harness.services.events.subscribe((e) => {
      if (e.type === 'models:task') tasks.push(e.payload);
    });
    await app.open();
  });

  afterAll(async () => {
    await app?.close();
  });

  const manifestOf = async (id: string): Promise<PackageManifest> =>
    JSON.parse(await readFile(join(app.harness.services.models.dirOf(id), 'manifest.json'), 'utf8')) as PackageManifest;

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

  it('asks which form to make, recommending one for this machine, then imports with progress; it becomes the active, loaded model', async () => {
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

    // The chooser: three forms, each with its size, memory and speed; the test machines have no
    // GPU and memory to spare for the tiny model, so the laptop form is recommended and chosen.
    const chooser = page.getByRole('region', { name: 'Which form should Owlery make?' });
    await chooser.waitFor();
    const forms = await harness.services.models.forms();
    expect(forms.machine.gpu).toBeNull();
    const laptop = chooser.getByRole('radio', { name: /^Laptop/ });
    await expect(laptop.isChecked()).resolves.toBe(true);
    const labels = (await chooser.locator('label.option').allInnerTexts()).map((t) => t.replace(/\s+/g, ' '));
    expect(labels).toHaveLength(4);
    expect(labels[0]).toMatch(/^Laptop Recommended 4-bit language model, 8-bit vision [\d.]+ (KB|MB) on disk · needs about [\d.]+ (MB|GB) of memory · Fast Runs on the processor/);
    expect(labels[1]).toMatch(/^Small GPU 4-bit language model, 16-bit vision, for 6–8 GB graphics cards .* on disk · needs about .* of memory · Medium speed/);
    expect(labels[2]).toMatch(/^GPU 16-bit throughout .* on disk · needs about .* of memory · Slow/);
    expect(labels[3]).toMatch(/^Full precision 32-bit floats/);
    await expect(chooser.getByText(/^This computer has .* of memory, .* of free disk and no graphics card Owlery can use: the laptop form/).isVisible()).resolves.toBe(true);
    await expect(chooser.getByRole('textbox', { name: 'Name' }).inputValue()).resolves.toMatch(/^mPLUG-Owl2 \d+M · 4-bit$/);
    await app.screenshot('form-chooser-light');
    await app.colorScheme('dark');
    await app.screenshot('form-chooser-dark');
    await app.colorScheme('light');
    await chooser.getByRole('button', { name: 'Convert' }).click();

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
    expect(await manifestOf(modelId)).toMatchObject({ preset: 'cpu', quantization: { llm: 'int4', vision: 'int8', embed: 'int8' } });
  });

  it('shows the model with its information on the Models screen', async () => {
    const { page, harness } = app;
    await goToScreen(page, 'Models');
    const [model] = await harness.services.models.list();
    expect(model).toBeTruthy();
    expect(model!.name).toMatch(/^mPLUG-Owl2 \d+M · 4-bit$/);
    const card = page.getByRole('list', { name: 'Installed models' }).getByRole('listitem', { name: model!.name });
    await card.waitFor();
    const text = (await card.innerText()).replace(/\s+/g, ' ');
    expect(text).toContain('Active');
    expect(text).toContain('Form Laptop (4-bit)');
    expect(text).toContain(`Size ${formatBytes(model!.sizeBytes)}`);
    expect(text).toContain('Quantization language int4, vision int8, embeddings int8');
    expect(text).toContain('Converted from safetensors');
    expect(text).toContain('Runs on CPU');
    expect(text).toContain('Verified: every file matches its checksum');
    expect(text).toContain(model!.id);
    // The finished import stays listed with its outcome until dismissed.
    const task = page.getByRole('listitem', { name: `Import: ${basename(checkpoint)}` });
    await expect(task.getByRole('status').innerText()).resolves.toBe('The model is ready.');

    await app.screenshot('models-light');
    await app.colorScheme('dark');
    await app.screenshot('models-dark');
    await app.colorScheme('light');
  });

  it('makes each form asked for: the manifest holds its quantization', async () => {
    const { page, harness } = app;
    const expected = {
      'gpu-int4': { llm: 'int4', vision: 'fp16', embed: 'fp16' },
      gpu: { llm: 'fp16', vision: 'fp16', embed: 'fp16' },
      reference: { llm: 'fp32', vision: 'fp32', embed: 'fp32' },
    } as const;
    const words = { 'gpu-int4': ['4-bit GPU', 'Small GPU (4-bit)'], gpu: ['16-bit', 'GPU (16-bit)'], reference: ['full precision', 'Full precision'] } as const;
    for (const [preset, title] of [['gpu-int4', 'Small GPU'], ['gpu', 'GPU'], ['reference', 'Full precision']] as const) {
      const before = tasks.filter((t) => t.kind === 'import' && t.state === 'done').length;
      harness.choose('checkpoint-folder', [checkpoint]);
      await page.getByRole('button', { name: 'Import a checkpoint folder…' }).click();
      const chooser = page.getByRole('region', { name: 'Which form should Owlery make?' });
      await chooser.getByRole('radio', { name: new RegExp(`^${title} `) }).check();
      await chooser.getByRole('button', { name: 'Convert' }).click();
      await expect.poll(() => tasks.filter((t) => t.kind === 'import' && t.state === 'done').length, { timeout: 120_000 }).toBe(before + 1);
      const done = tasks.filter((t) => t.kind === 'import' && t.state === 'done').at(-1)!;
      expect(await manifestOf(done.modelId!)).toMatchObject({ preset, quantization: expected[preset] });
      const card = page.getByRole('list', { name: 'Installed models' }).getByRole('listitem', { name: new RegExp(`· ${words[preset][0]}$`) });
      await expect(card.innerText().then((t) => t.replace(/\s+/g, ' '))).resolves.toContain(`Form ${words[preset][1]}`);
    }
    await expect(page.getByRole('list', { name: 'Installed models' }).getByRole('listitem').count()).resolves.toBe(4);
  });

  it('loading a model shows its phase with a bar; a rename shows in the chat header with the device', async () => {
    const { page, harness } = app;
    await page.evaluate(`(() => {
      const seen = (globalThis.loadSeen = []);
      new MutationObserver(() => {
        for (const p of document.querySelectorAll('.model progress')) seen.push(p.getAttribute('aria-label') + '|' + p.getAttribute('value') + '/' + p.getAttribute('max'));
      }).observe(document.body, { subtree: true, childList: true, attributes: true });
    })()`);
    const list = page.getByRole('list', { name: 'Installed models' });
    const full = list.getByRole('listitem', { name: /· full precision$/ });
    await full.getByRole('button', { name: /^Use this model/ }).click();
    await full.getByText('Active', { exact: true }).waitFor();
    const loadSeen = await page.evaluate(() => (globalThis as unknown as { loadSeen: string[] }).loadSeen);
    expect(loadSeen.some((l) => /^Loading the model…\|\d+\/\d+$/.test(l)), loadSeen.join(' ')).toBe(true);

    await full.getByRole('button', { name: /^Rename/ }).click();
    const field = full.getByRole('textbox', { name: /^Name of / });
    await field.fill('Reference owl');
    await field.press('Enter');
    await list.getByRole('listitem', { name: 'Reference owl' }).waitFor();
    const id = harness.services.engine.status().modelId!;
    expect((await manifestOf(id)).name).toBe('Reference owl');
    await goToScreen(page, 'Chat');
    await expect(page.locator('.chat-head .engine').innerText()).resolves.toBe('Reference owl on CPU');
  });

  it('logged no console errors', () => {
    expect(app.consoleErrors).toEqual([]);
  });
});
