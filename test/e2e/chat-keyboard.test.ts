/**
 * A whole chat with the keyboard only, in Chromium against the harness with the tiny model: skip
 * link to the message box, attach photos (Ctrl+O and the dialog), ask, open a photo of the history
 * and close it, stop an answer with Escape, regenerate and switch versions, a new chat (Ctrl+N),
 * search (Ctrl+K, arrows, Enter), rename (F2) and delete (Delete) in the list, Undo from the toast.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { TestBrowser } from './helpers/browser.ts';
import { startChatBrowser } from './helpers/chat-harness.ts';
import type { ChatBrowser, ChatHarness } from './helpers/chat-harness.ts';
import { answers, focusedName, questions, searchableWord, tabTo } from './helpers/chat-page.ts';

describe('keyboard-only chat in Chromium', () => {
  let env: ChatHarness;
  let browser: TestBrowser;
  let page: Page;
  let firstTitle = '';
  const answerTexts: string[] = [];

  const lastAnswer = () => answers(page).last();
  const answerDone = () => lastAnswer().getByRole('button', { name: 'Regenerate' }).waitFor();
  const type = (text: string) => page.keyboard.type(text);
  const press = (keys: string) => page.keyboard.press(keys);

  let app: ChatBrowser | undefined;
  beforeAll(async () => {
    app = await startChatBrowser();
    ({ env, browser, page } = app);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('skips to the message box, attaches photos with Ctrl+O and asks', async () => {
    await press('Tab');
    expect(await focusedName(page)).toBe('Skip to message box');
    await press('Enter');
    expect(await focusedName(page)).toBe('Message');
    env.harness.choose('images', [join(env.photosDir, 'a.png'), join(env.photosDir, 'c.png')]);
    await press('Control+o');
    await page.getByRole('list', { name: 'Photos to send' }).getByRole('img', { name: 'c.png' }).waitFor();
    expect(await focusedName(page)).toBe('Message');
    await type('Which colours are in these photos?');
    await press('Enter');
    await answerDone();
    answerTexts.push((await lastAnswer().locator('.markdown').textContent()) ?? '');
    firstTitle = (await page.getByRole('main').getByRole('heading', { level: 2 }).textContent()) ?? '';
    expect(firstTitle).toBe('Which colours are in these photos?');
  });

  it('opens a photo of the question, moves to the next with arrows, and closes with Escape', async () => {
    await tabTo(page, 'View a.png larger', { back: true });
    await press('Enter');
    await page.getByRole('dialog', { name: 'Photo: a.png' }).waitFor();
    await press('ArrowRight');
    await page.getByRole('dialog', { name: 'Photo: c.png' }).waitFor();
    await press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'detached' });
    expect(await focusedName(page)).toBe('View a.png larger');
  });

  it('stops a long answer with Escape', async () => {
    await press('Control+l');
    expect(await focusedName(page)).toBe('Message');
    env.setSettings({ maxNewTokens: 4000 });
    await type('Now tell me a long story.');
    await press('Enter');
    await lastAnswer().getByText('Writing…').waitFor();
    await expect.poll(async () => ((await lastAnswer().locator('.markdown').textContent()) ?? '').length).toBeGreaterThan(0);
    await press('Escape');
    await lastAnswer().getByText('Stopped before the end.').waitFor();
    answerTexts.push((await lastAnswer().locator('.markdown').textContent()) ?? '');
    env.setSettings({ maxNewTokens: 48 });
  });

  it('regenerates and switches versions from the keyboard', async () => {
    await tabTo(page, 'Regenerate', { back: true });
    await press('Enter');
    const versions = lastAnswer().getByRole('group', { name: 'Answer versions' });
    await versions.waitFor();
    await answerDone();
    expect(await versions.textContent()).toContain('2 / 2');
    answerTexts.push((await lastAnswer().locator('.markdown').textContent()) ?? '');
    await press('Control+l');
    await tabTo(page, 'Previous version', { back: true });
    await press('Enter');
    await expect.poll(() => versions.textContent()).toContain('1 / 2');
    expect(await lastAnswer().getByText('Stopped before the end.').count()).toBe(1);
  });

  it('starts a new chat with Ctrl+N and asks there', async () => {
    await press('Control+n');
    await page.getByRole('heading', { name: 'New chat', level: 2 }).waitFor();
    expect(await focusedName(page)).toBe('Message');
    await type('A second conversation');
    await press('Enter');
    await answerDone();
    expect(await questions(page).count()).toBe(1);
    await page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: /^A second conversation/ }).waitFor();
  });

  it('searches with Ctrl+K, moves to a hit with the arrows and opens it with Enter', async () => {
    const word = searchableWord(answerTexts.join(' '), ['Which colours are in these photos', 'Now tell me a long story', 'A second conversation']);
    expect(word, `no searchable word in: ${answerTexts.join(' | ')}`).toBeTruthy();
    await press('Control+k');
    expect(await focusedName(page)).toBe('Search conversations');
    await type(word!);
    await page.getByRole('list', { name: 'Search results' }).getByRole('button').first().waitFor();
    await press('ArrowDown');
    expect(await focusedName(page)).toContain(firstTitle);
    await press('Enter');
    await page.getByRole('heading', { name: firstTitle, level: 2 }).waitFor();
    await expect.poll(async () => (await page.getByRole('list', { name: 'Messages' }).textContent()) ?? '').toContain(word!);
  });

  it('renames with F2, deletes with Delete and undoes from the toast', async () => {
    await press('Control+k');
    await press('Escape');
    const list = page.getByRole('list', { name: 'Conversations' });
    await list.waitFor();
    await press('ArrowDown');
    expect(await focusedName(page)).toMatch(/^A second conversation/);
    await press('F2');
    expect(await focusedName(page)).toBe('New title for “A second conversation”');
    await press('Control+a');
    await type('Renamed by keyboard');
    await press('Enter');
    await list.getByRole('button', { name: /^Renamed by keyboard/ }).waitFor();
    expect(await focusedName(page)).toMatch(/^Renamed by keyboard/);
    await press('Delete');
    await list.getByRole('button', { name: /^Renamed by keyboard/ }).waitFor({ state: 'detached' });
    await expect.poll(() => focusedName(page)).toMatch(new RegExp(`^${firstTitle.replace('?', '\\?')}`));
    await tabTo(page, 'Undo', { max: 80 });
    await press('Enter');
    await list.getByRole('button', { name: /^Renamed by keyboard/ }).waitFor();
    expect(env.harness.services.store.listConversations({}).items.map((c) => c.title)).toContain('Renamed by keyboard');
  });

  it('logged no console errors, page errors or failed requests', () => {
    expect(browser.problems).toEqual([]);
  });
});
