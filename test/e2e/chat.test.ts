/**
 * The chat in a real browser (Debian's Chromium) against the web harness with the real services
 * and the seeded tiny model: photos by drag-and-drop and paste (and refusals), a question
 * answered as a stream, the photo viewer, Stop, regenerate and edit with version switching, a
 * reload and finding the conversation again by a word of an answer, delete with Undo, a narrow
 * window, screenshots in light and dark, and no console errors.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestBrowser } from './helpers/browser.ts';
import { startChatBrowser } from './helpers/chat-harness.ts';
import type { ChatBrowser, ChatHarness } from './helpers/chat-harness.ts';
import { answers, dropFiles, pasteFiles, questions, recordStreaming, SCREENSHOT_DIR, searchableWord, streamRecord } from './helpers/chat-page.ts';

describe('chat in Chromium', () => {
  let env: ChatHarness;
  let browser: TestBrowser;
  let page: Page;
  const answerTexts: string[] = [];
  let conversationTitle = '';

  const composer = () => page.getByRole('textbox', { name: 'Message' });
  const tray = () => page.getByRole('list', { name: 'Photos to send' });
  const lastAnswer = () => answers(page).last();
  const waitForAnswerDone = async () => {
    await lastAnswer().getByRole('button', { name: 'Regenerate' }).waitFor();
  };
  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOT_DIR, name), fullPage: false });

  let app: ChatBrowser | undefined;
  beforeAll(async () => {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    app = await startChatBrowser();
    ({ env, browser, page } = app);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('attaches photos by drag-and-drop and paste, and refuses a file that is not a photo', async () => {
    const chat = page.getByRole('region', { name: 'New chat' });
    await dropFiles(page, chat, [
      { path: join(env.photosDir, 'a.png'), type: 'image/png' },
      { path: join(env.photosDir, 'notes.txt'), type: 'text/plain' },
      { path: join(env.photosDir, 'b.jpg'), type: 'image/jpeg' },
    ]);
    await tray().getByRole('img', { name: 'b.jpg' }).waitFor();
    await tray().getByRole('img', { name: 'a.png' }).waitFor();
    expect(await page.getByRole('alert', { name: 'Photos not added' }).textContent()).toContain('“notes.txt” is not a photo');

    await pasteFiles(page, 'composer-input', [{ path: join(env.photosDir, 'c.png'), type: 'image/png' }]);
    await tray().getByRole('img', { name: 'Pasted photo' }).waitFor();
    expect(await tray().getByRole('listitem').count()).toBe(3);

    await page.getByRole('button', { name: 'Remove photo a.png' }).click();
    await expect.poll(() => tray().getByRole('listitem').count()).toBe(2);
    // The thumbnails really load from the image store.
    const widths = () => tray().getByRole('img').evaluateAll((imgs) => imgs.map((i) => (i as unknown as { complete: boolean; naturalWidth: number }).naturalWidth));
    await expect.poll(async () => (await widths()).every((w) => w > 0)).toBe(true);
  });

  it('asks about the photos and watches the answer stream in', async () => {
    await recordStreaming(page);
    await composer().fill('What do you see in these two photos?');
    await composer().press('Enter');
    await questions(page).first().waitFor();
    await waitForAnswerDone();
    const seen = await streamRecord(page);
    const final = (await lastAnswer().locator('.markdown').textContent()) ?? '';
    answerTexts.push(final);
    expect(final.length).toBeGreaterThan(0);
    // Text grew in steps while the phase line said Owlery was writing.
    const partial = seen.filter((s) => s.phase.includes('Writing…') && s.length > 0 && s.length < final.length);
    expect(partial.length).toBeGreaterThan(0);
    // While the engine encoded the two photos, the answer said so, before it started writing.
    const phases = seen.map((s) => s.phase);
    const looking = phases.findIndex((p) => p.trim().startsWith('Looking at 2 photos…'));
    expect(looking, phases.join(' | ')).toBeGreaterThanOrEqual(0);
    expect(looking).toBeLessThan(phases.findIndex((p) => p.includes('Writing…')));

    const stats = lastAnswer().getByRole('group', { name: 'Answer statistics' });
    expect(await stats.textContent()).toMatch(/Photo encoding.*First token.*Speed.*tok\/s.*Context.*of 4,096 tokens/);
    const user = questions(page).first();
    expect(await user.getByRole('list', { name: 'Photos' }).getByRole('button').count()).toBe(2);
    expect(await composer().inputValue()).toBe('');
    expect(await page.getByRole('list', { name: 'Photos to send' }).count()).toBe(0);
    conversationTitle = (await page.getByRole('main').getByRole('heading', { level: 2 }).textContent()) ?? '';
    expect(conversationTitle).toContain('What do you see');
    expect(await page.title()).toBe(`${conversationTitle} – Owlery`);
    await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^What do you see/ }).waitFor();
    await shot('chat-light.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(() => page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    await shot('chat-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('shows a photo of the history large in a dialog, and Escape closes it', async () => {
    const thumb = questions(page).first().getByRole('button', { name: 'View b.jpg larger' });
    await thumb.click();
    const dialog = page.getByRole('dialog', { name: 'Photo: b.jpg' });
    await dialog.waitFor();
    const width = await dialog.getByRole('img', { name: 'b.jpg' }).evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth);
    expect(width).toBe(64);
    await dialog.getByRole('button', { name: 'Next photo' }).click();
    await page.getByRole('dialog', { name: 'Photo: Pasted photo 2' }).waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await thumb.evaluate((el) => el === (el.ownerDocument as unknown as { activeElement: unknown }).activeElement)).toBe(true);
  });

  it('stops a long answer, keeping what was written', async () => {
    env.setSettings({ maxNewTokens: 4000 });
    await composer().fill('Tell me a very long story about owls.');
    await composer().press('Enter');
    const answer = lastAnswer();
    await answer.getByText('Writing…').waitFor();
    await expect.poll(async () => ((await answer.locator('.markdown').textContent()) ?? '').length).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Stop' }).click();
    await answer.getByText('Stopped before the end.').waitFor();
    await page.getByRole('button', { name: 'Send' }).waitFor();
    const kept = (await answer.locator('.markdown').textContent()) ?? '';
    expect(kept.length).toBeGreaterThan(0);
    answerTexts.push(kept);
    const stored = env.harness.services.store.getMessage(Number(await answer.locator('xpath=..').getAttribute('data-message-id')));
    expect(stored).toMatchObject({ status: 'cancelled' });
    expect(stored.text.trim().length).toBeGreaterThan(0);
  });

  it('regenerates the stopped answer and switches between the two versions', async () => {
    env.setSettings({ maxNewTokens: 48 });
    await lastAnswer().getByRole('button', { name: 'Regenerate' }).click();
    const versions = lastAnswer().getByRole('group', { name: 'Answer versions' });
    await versions.waitFor();
    await waitForAnswerDone();
    expect(await versions.textContent()).toContain('2 / 2');
    const second = (await lastAnswer().locator('.markdown').textContent()) ?? '';
    answerTexts.push(second);
    await versions.getByRole('button', { name: 'Previous version' }).click();
    await expect.poll(() => lastAnswer().getByRole('group', { name: 'Answer versions' }).textContent()).toContain('1 / 2');
    await lastAnswer().getByText('Stopped before the end.').waitFor();
    await lastAnswer().getByRole('group', { name: 'Answer versions' }).getByRole('button', { name: 'Next version' }).click();
    await expect.poll(() => lastAnswer().getByRole('group', { name: 'Answer versions' }).textContent()).toContain('2 / 2');
    expect(await lastAnswer().locator('.markdown').textContent()).toBe(second);
  });

  it('edits a question into a new version, answers it, and switches back', async () => {
    const first = questions(page).first();
    await first.getByRole('button', { name: 'Edit' }).click();
    const box = page.getByRole('textbox', { name: 'Edit your message' });
    await box.fill('Describe only the colours, please.');
    await page.getByRole('button', { name: 'Save and send' }).click();
    const versions = questions(page).first().getByRole('group', { name: 'Message versions' });
    await versions.waitFor();
    await waitForAnswerDone();
    expect(await versions.textContent()).toContain('2 / 2');
    expect(await questions(page).first().textContent()).toContain('Describe only the colours, please.');
    // The title (not renamed by the user) follows the edited first message, in the header and the list.
    conversationTitle = 'Describe only the colours, please.';
    await page.getByRole('main').getByRole('heading', { name: conversationTitle, level: 2 }).waitFor();
    await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`^${conversationTitle}`) }).waitFor();
    // The edited question keeps its photos; the branch has one question and one answer.
    expect(await questions(page).count()).toBe(1);
    expect(await questions(page).first().getByRole('list', { name: 'Photos' }).getByRole('button').count()).toBe(2);
    answerTexts.push((await lastAnswer().locator('.markdown').textContent()) ?? '');
    await versions.getByRole('button', { name: 'Previous version' }).click();
    await expect.poll(() => questions(page).first().textContent()).toContain('What do you see in these two photos?');
    expect(await questions(page).count()).toBe(2);
  });

  it('after a reload, finds the conversation by a word of an answer', async () => {
    await page.reload();
    await page.getByRole('heading', { name: 'New chat', level: 2 }).waitFor();
    const word = searchableWord(answerTexts.join(' '), ['What do you see in these two photos', 'Tell me a very long story about owls', 'Describe only the colours please']);
    expect(word, `no searchable word in the answers: ${answerTexts.join(' | ')}`).toBeTruthy();
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill(word!);
    const results = page.getByRole('list', { name: 'Search results' });
    const hit = results.getByRole('button').filter({ has: page.locator('mark', { hasText: new RegExp(`^${word}$`, 'i') }) }).first();
    await hit.waitFor();
    expect((await hit.locator('mark').allTextContents()).map((m) => m.toLowerCase())).toContain(word!.toLowerCase());
    await shot('search-light.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await expect.poll(() => page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    await shot('search-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });
    await hit.click();
    await page.getByRole('heading', { name: conversationTitle, level: 2 }).waitFor();
    await expect.poll(async () => (await page.getByRole('list', { name: 'Messages' }).textContent()) ?? '').toContain(word!);
    await page.getByRole('searchbox', { name: 'Search conversations' }).fill('');
  });

  it('deletes the conversation and brings it back with Undo', async () => {
    const list = page.getByRole('list', { name: 'Conversations' });
    await page.getByRole('button', { name: `Actions for “${conversationTitle}”` }).click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    await list.getByRole('button', { name: new RegExp(`^${conversationTitle}`) }).waitFor({ state: 'detached' });
    await page.getByRole('heading', { name: 'New chat', level: 2 }).waitFor();
    const toast = page.getByRole('region', { name: 'Notifications' }).getByRole('listitem');
    expect(await toast.textContent()).toContain(`Deleted “${conversationTitle}”.`);
    await toast.getByRole('button', { name: 'Undo' }).click();
    await list.getByRole('button', { name: new RegExp(`^${conversationTitle}`) }).waitFor();
    const id = env.harness.services.store.listConversations({}).items.find((c) => c.title === conversationTitle)?.id;
    expect(id).toBeDefined();
  });

  it('fits a narrow window (as at 200% zoom): the conversations open as a drawer', async () => {
    await page.setViewportSize({ width: 640, height: 720 });
    const toggle = page.getByRole('button', { name: 'Show conversations' });
    await toggle.waitFor();
    expect(await page.getByRole('list', { name: 'Conversations' }).isVisible()).toBe(false);
    await toggle.click();
    const item = page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: new RegExp(`^${conversationTitle}`) });
    await item.waitFor();
    await shot('narrow-drawer-light.png');
    await item.click();
    await page.getByRole('heading', { name: conversationTitle, level: 2 }).waitFor();
    expect(await page.getByRole('list', { name: 'Conversations' }).isVisible()).toBe(false);
    expect(await composer().isVisible()).toBe(true);
    const overflow = await page.evaluate('document.documentElement.scrollWidth > document.documentElement.clientWidth');
    expect(overflow).toBe(false);
    await shot('narrow-chat-light.png');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('follows the theme and the chat text size settings (the size scales the chat text only)', async () => {
    const sizes = `(() => {
      const px = (el) => getComputedStyle(el).fontSize;
      const answer = [...document.querySelectorAll('article')].find((a) => a.querySelector('h3')?.textContent === 'Owlery');
      return [document.documentElement.dataset.theme, px(document.getElementById('composer-input')), px(answer.querySelector('.markdown')),
        px(document.querySelector('.chat-head h2')), px([...document.querySelectorAll('button')].find((b) => b.textContent.includes('New chat')))].join();
    })()`;
    const before = ((await page.evaluate(sizes)) as string).split(',');
    env.setSettings({ theme: 'dark', fontSize: 20 });
    await expect.poll(() => page.evaluate(sizes)).toBe(['dark', '20px', '20px', before[3], before[4]].join());
    // An explicit theme wins over the system's.
    await page.emulateMedia({ colorScheme: 'light' });
    expect(await page.evaluate('document.documentElement.dataset.theme')).toBe('dark');
    env.setSettings({ theme: 'system', fontSize: 15 });
    await expect.poll(() => page.evaluate(sizes)).toBe(['light', '15px', '15px', before[3], before[4]].join());
  });

  it('is served under the app CSP with no inline script', async () => {
    const res = await fetch(env.harness.url);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)];
    expect(scripts.length).toBeGreaterThan(1);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/\bsrc=/);
      expect(body!.trim()).toBe('');
    }
  });

  it('logged no console errors, page errors or failed requests', () => {
    expect(browser.problems).toEqual([]);
  });
});
