/**
 * Settings in a real browser against the web harness: a changed setting is saved at once (with a
 * confirmation), an invalid one shows its message next to the field and never reaches main, the
 * theme applies, and everything is still there after a reload (read back from the settings file
 * main wrote). No console errors. Screenshots of the Settings screen, light and dark.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SettingKey } from '../../src-shared/settings.ts';
import { CHROMIUM, goToScreen, skipFirstRun, startBrowserApp } from './helpers/models-browser.ts';
import type { BrowserApp } from './helpers/models-browser.ts';

describe.skipIf(!CHROMIUM)('settings persist (browser)', () => {
  let app: BrowserApp;
  const changes: SettingKey[][] = [];

  beforeAll(async () => {
    app = await startBrowserApp({ prefix: 'owlery-e2e-settings-' });
    app.harness.services.events.subscribe((e) => {
      if (e.type === 'settings:changed') changes.push(e.payload.changed);
    });
    await app.open();
    await skipFirstRun(app.page);
    await goToScreen(app.page, 'Settings');
  });

  afterAll(async () => {
    await app?.close();
  });

  it('saves a valid change at once and confirms it', async () => {
    const { page, harness } = app;
    const temperature = page.getByRole('spinbutton', { name: 'Temperature' });
    await expect(temperature.inputValue()).resolves.toBe('0.7');
    await temperature.fill('0.3');
    await temperature.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Temperature saved.' }).waitFor();
    expect(harness.services.settings.get().temperature).toBe(0.3);
    expect(changes).toEqual([['temperature']]);
  });

  it('shows why a value is invalid next to the field and never sends it', async () => {
    const { page, harness } = app;
    const topK = page.getByRole('spinbutton', { name: 'Top-k' });
    await topK.fill('forty');
    await topK.press('Enter');
    await topK.blur();
    const message = page.getByText('“forty” is not a number. Enter a whole number from 0 to 1000.');
    await expect(message.isVisible()).resolves.toBe(true);
    await expect(topK.getAttribute('aria-invalid')).resolves.toBe('true');
    const describedBy = (await topK.getAttribute('aria-describedby'))!.split(' ');
    expect(describedBy).toContain(await message.getAttribute('id'));
    await expect(page.getByRole('status').first().innerText()).resolves.toContain('One value is not valid and not saved.');
    expect(harness.services.settings.get().topK).toBe(0);
    expect(changes).toEqual([['temperature']]);
    await app.screenshot('settings-light');
  });

  it('applies the theme as soon as it is chosen', async () => {
    const { page, harness } = app;
    await page.getByRole('radio', { name: 'Dark' }).check();
    await page.locator('html[data-theme="dark"]').waitFor({ state: 'attached' });
    expect(harness.services.settings.get().theme).toBe('dark');
    await app.screenshot('settings-dark');
  });

  it('keeps the settings after a reload', async () => {
    const { page, harness } = app;
    await page.reload();
    await skipFirstRun(page);
    await goToScreen(page, 'Settings');
    const temperature = page.getByRole('spinbutton', { name: 'Temperature' });
    await expect.poll(() => temperature.inputValue()).toBe('0.3');
    await expect(page.getByRole('spinbutton', { name: 'Top-k' }).inputValue()).resolves.toBe('0');
    await expect(page.getByRole('radio', { name: 'Dark' }).isChecked()).resolves.toBe(true);
    await expect(page.locator('html').getAttribute('data-theme')).resolves.toBe('dark');
    // Main wrote them to its settings file.
    const file = JSON.parse(await readFile(join(harness.dataDir, 'settings.json'), 'utf8')) as { settings: Record<string, unknown> };
    expect(file.settings).toMatchObject({ temperature: 0.3, theme: 'dark' });
  });

  it('copies diagnostics for a bug report, without any message text, and asks main to show the logs folder', async () => {
    const { page, harness, context } = app;
    // Something for the report's error list, as the engine would log it.
    harness.services.log.error('the model could not be loaded', new Error('decoder.onnx is truncated'));
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: harness.url });
    await page.getByRole('button', { name: 'Copy diagnostics' }).click();
    await page.getByRole('status').filter({ hasText: 'Diagnostics copied' }).waitFor();
    const text = (await page.evaluate('navigator.clipboard.readText()')) as string;
    expect(text).toMatch(/^Owlery .* diagnostics/);
    expect(text).toContain('## Engine');
    expect(text).toContain('execution provider: auto');
    expect(text).toMatch(/main error: the model could not be loaded: decoder\.onnx is truncated/);
    expect(text).not.toContain(harness.dataDir);

    await page.getByRole('button', { name: 'Open logs folder' }).click();
    await page.getByRole('status').filter({ hasText: 'logs' }).waitFor();
    expect(harness.shownFolders).toEqual([join(harness.dataDir, 'logs')]);
  });

  it('logged no console errors', () => {
    expect(app.consoleErrors).toEqual([]);
  });
});
