/**
 * Every screen in a real browser (Debian's Chromium against the web harness with the real
 * services and the tiny model), in the light and the dark theme: axe-core finds no serious or
 * critical violation, and a screenshot of each is saved at 1280×800 and 800×600 under
 * `test-results/screenshots/` (git-ignored): first run, the chat with answers (one with a list,
 * code, a table and a link), the photo viewer, the export dialog, Photos, Models, Settings,
 * Trash, the chat's instructions dialog and the shortcut sheet.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { Theme } from '../../src-shared/settings.ts';
import { launchBrowser } from './helpers/browser.ts';
import type { TestBrowser } from './helpers/browser.ts';
import { describeViolations, seriousViolations } from './helpers/axe.ts';
import { startChatHarness, TINY_MODEL_ID } from './helpers/chat-harness.ts';
import type { ChatHarness } from './helpers/chat-harness.ts';
import { answers, dropFiles, SCREENSHOT_DIR } from './helpers/chat-page.ts';

/** An answer with the Markdown a model writes: a list, a code fence, a table and a link. */
export const RICH_ANSWER = [
  'Here is what I see:',
  '',
  '1. A **rainbow gradient** across the photo',
  '2. A round shape in the middle',
  '',
  '```ts',
  'const owl: string = "tawny"; // a comment',
  'function hoot(times: number) { return "hoo".repeat(times); }',
  '```',
  '',
  '| colour | where |',
  '| --- | --- |',
  '| red | left |',
  '',
  'More at [the owl page](https://example.org/owls).',
].join('\n');

const SIZES = [
  { width: 1280, height: 800 },
  { width: 800, height: 600 },
];

describe('every screen, both themes: axe and screenshots', () => {
  let env: ChatHarness;
  let browser: TestBrowser;
  let page: Page;
  const failures: string[] = [];

  /** Checks the screen on display in both themes and saves its screenshots. */
  async function check(name: string, ready: () => Promise<unknown>): Promise<void> {
    for (const theme of ['light', 'dark'] as Theme[]) {
      env.setSettings({ theme });
      await expect.poll(() => page.evaluate('document.documentElement.dataset.theme')).toBe(theme);
      await ready();
      const violations = await seriousViolations(page);
      if (violations.length) failures.push(describeViolations(`${name} (${theme})`, violations));
      for (const size of SIZES) {
        await page.setViewportSize(size);
        await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}-${theme}-${size.width}x${size.height}.png`) });
      }
      await page.setViewportSize(SIZES[0]!);
    }
  }

  beforeAll(async () => {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    env = await startChatHarness();
    // First run shows while no model is chosen (the engine keeps the tiny model loaded meanwhile).
    env.setSettings({ activeModelId: null });
    browser = await launchBrowser({ viewport: SIZES[0] });
    page = browser.page;
    // History to show: a rich answer (stored as the model would have written it) and one conversation in the trash.
    const { store } = env.harness.services;
    const c = store.createConversation({ title: 'What is in this picture?' });
    store.appendUserMessage({ conversationId: c.id, text: 'What is in this picture? Answer with a list and some code.' });
    const a = store.createAssistantMessage({ conversationId: c.id });
    store.appendText(a.id, RICH_ANSWER);
    store.finishMessage(a.id, { status: 'complete' });
    const old = store.createConversation({ title: 'An old conversation about owls' });
    store.appendUserMessage({ conversationId: old.id, text: 'Where do owls sleep?' });
    store.deleteConversation(old.id);
  });

  afterAll(async () => {
    await browser?.close();
    await env?.close();
  });

  it('first run', async () => {
    await page.goto(env.harness.url);
    await check('first-run', () => page.getByRole('heading', { name: 'Welcome to Owlery' }).waitFor());
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Owlery');
    env.setSettings({ activeModelId: TINY_MODEL_ID });
    await page.reload();
    await page.getByRole('heading', { name: 'New chat', level: 2 }).waitFor();
  });

  it('the chat with answers, the photo viewer, the export dialog, the instructions and the shortcut sheet', async () => {
    await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^What is in this picture/ }).click();
    await answers(page).first().locator('code.hljs').waitFor();
    // A question with a photo, answered by the model.
    await dropFiles(page, page.getByRole('region', { name: 'What is in this picture?' }), [{ path: join(env.photosDir, 'b.jpg'), type: 'image/jpeg' }]);
    await page.getByRole('list', { name: 'Photos to send' }).getByRole('img', { name: 'b.jpg', exact: true }).waitFor();
    await page.getByRole('textbox', { name: 'Message' }).fill('And this photo?');
    await page.getByRole('textbox', { name: 'Message' }).press('Enter');
    await answers(page).nth(1).getByRole('button', { name: 'Regenerate' }).waitFor();
    await check('chat', () => answers(page).nth(1).getByRole('group', { name: 'Answer statistics' }).waitFor());

    await page.getByRole('button', { name: 'View b.jpg larger' }).click();
    await check('image-viewer', () => page.getByRole('dialog', { name: 'Photo: b.jpg' }).waitFor());
    await page.keyboard.press('Escape');

    await page.getByRole('button', { name: 'Export…' }).click();
    await check('export-dialog', () => page.getByRole('dialog', { name: 'Export and import' }).waitFor());
    await page.getByRole('dialog', { name: 'Export and import' }).getByRole('button', { name: 'Close' }).click();

    await page.getByRole('button', { name: 'Instructions…' }).click();
    await check('chat-instructions', () => page.getByRole('dialog', { name: 'Instructions and settings for this chat' }).waitFor());
    await page.keyboard.press('Escape');

    await page.locator('body').press('?');
    await check('shortcuts', () => page.getByRole('dialog', { name: 'Keyboard shortcuts' }).waitFor());
    await page.keyboard.press('Escape');
  });

  it('Photos, Models, Settings and Trash', async () => {
    env.harness.choose('photos-folder', [env.photosDir]);
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Photos' }).click();
    await page.getByRole('button', { name: 'Open a folder…' }).click();
    await check('photos', () => page.getByRole('option', { name: 'a.png' }).waitFor());

    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Models' }).click();
    await check('models', () => page.getByRole('heading', { name: 'Models', level: 2 }).waitFor());

    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Settings' }).click();
    await check('settings', () => page.getByRole('heading', { name: 'Settings', level: 2 }).waitFor());

    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Trash' }).click();
    await check('trash', () => page.getByRole('list', { name: 'Conversations in the trash' }).getByText('An old conversation about owls').waitFor());
  });

  it('found no serious or critical axe violations', () => {
    expect(failures.join('\n\n')).toBe('');
  });

  it('logged no console errors, page errors or failed requests', () => {
    expect(browser.problems).toEqual([]);
  });
});
