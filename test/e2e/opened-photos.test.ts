/**
 * "Open with Owlery": photos the operating system hands to the app (a file association, a second
 * launch, macOS open-file) land in a new chat's photo tray, in a real browser against the real
 * services. Main queues them (`app:photos-opened`); the page takes them (`app:take-opened-photos`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchBrowser, type TestBrowser } from './helpers/browser.ts';
import { startChatHarness, type ChatHarness } from './helpers/chat-harness.ts';

describe('photos opened with Owlery', () => {
  let env: ChatHarness;
  let browser: TestBrowser;
  let page: Page;

  beforeAll(async () => {
    env = await startChatHarness();
    browser = await launchBrowser();
    page = browser.page;
  });

  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  it('shows photos opened before the window was ready, and ones opened while it is open', async () => {
    await env.harness.services.openedPhotos.open([join(env.photosDir, 'a.png')]);
    await page.goto(env.harness.url);
    const tray = page.getByRole('list', { name: 'Photos to send' });
    await tray.getByRole('listitem').first().waitFor();
    expect(await tray.getByRole('listitem').count()).toBe(1);

    await env.harness.services.openedPhotos.open([join(env.photosDir, 'b.jpg'), join(env.photosDir, 'notes.txt')]);
    // Added to the tray beside the first (the text file is refused by main, not shown).
    await expect.poll(() => tray.getByRole('button', { name: /Remove photo/ }).count()).toBe(2);
    expect(await tray.getByRole('button', { name: /Remove photo b\.jpg/ }).count()).toBe(1);
    expect(await tray.getByRole('button', { name: /Remove photo a\.png/ }).count()).toBe(1);
    expect(browser.problems).toEqual([]);
  });
});
