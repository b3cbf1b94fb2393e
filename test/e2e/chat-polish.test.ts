/**
 * The chat polish people expect, in Chromium against the web harness with the real services and
 * the tiny model: Continue after Stop (appended to the same answer), focus that stays on the
 * answer being rewritten, a full-width edit box whose photos can be changed, titles that follow an
 * edited first message and renames, "Jump to latest", toasts clear of the message box, one
 * message in the same words for refused files from the dialog and a drop, per-chat instructions
 * and presets, timestamps on hover, date groups with cover photos, a collapsible sidebar that is
 * remembered, the shortcut sheet, loading and unloading the model, coloured code, the Trash with
 * restore and empty, remembered photo folders, and an import that notices what is already there.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Locator, Page } from 'playwright-core';
import type { TestBrowser } from './helpers/browser.ts';
import { startChatBrowser } from './helpers/chat-harness.ts';
import type { ChatBrowser, ChatHarness } from './helpers/chat-harness.ts';
import { answers, dropFiles, questions, SCREENSHOT_DIR } from './helpers/chat-page.ts';

/** An answer with a code fence, as a model writes it. */
const CODE_ANSWER = 'Like this:\n\n```python\ndef hoot(times):\n    return "hoo" * times  # owls\n```\n';

describe('chat polish in Chromium', () => {
  let env: ChatHarness;
  let browser: TestBrowser;
  let page: Page;
  let app: ChatBrowser | undefined;

  const composer = () => page.getByRole('textbox', { name: 'Message' });
  const lastAnswer = () => answers(page).last();
  const heading = () => page.getByRole('main').getByRole('heading', { level: 2 });
  const list = () => page.getByRole('list', { name: 'Conversations' });
  // Done: its Regenerate button is there and enabled again (it is disabled while anything is written).
  const answerDone = () => lastAnswer().getByRole('button', { name: 'Regenerate', disabled: false }).waitFor();
  const idOf = async (item: Locator) => Number(await item.locator('xpath=ancestor::li[@data-message-id][1]').getAttribute('data-message-id'));
  const focusedMessageId = () => page.evaluate('Number(document.activeElement?.closest("[data-message-id]")?.dataset.messageId ?? 0)');
  const ask = async (text: string) => {
    await composer().fill(text);
    await composer().press('Enter');
    await questions(page).filter({ hasText: text }).last().waitFor();
  };

  beforeAll(async () => {
    app = await startChatBrowser();
    ({ env, browser, page } = app);
  });

  afterAll(async () => {
    await app?.close();
  });

  // A failing step leaves a picture of the window (test-results/, git-ignored).
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') await page.screenshot({ path: join(SCREENSHOT_DIR, `failed-${ctx.task.name.slice(0, 40).replace(/\W+/g, '-')}.png`) }).catch(() => {});
  });

  it('continues a stopped answer: the same answer grows, from where it stopped', async () => {
    env.setSettings({ maxNewTokens: 4000 });
    await ask('Tell me a very long story about owls.');
    const answer = lastAnswer();
    await answer.getByText('Writing…').waitFor();
    await expect.poll(async () => ((await answer.locator('.markdown').textContent()) ?? '').length).toBeGreaterThan(0);
    await page.getByRole('button', { name: 'Stop' }).click();
    await answer.getByText('Stopped before the end.').waitFor();
    const stopped = (await answer.locator('.markdown').textContent()) ?? '';
    const id = await idOf(answer);
    expect(env.harness.services.store.getMessage(id).status).toBe('cancelled');

    // Greedy, so the continuation is the same every run (and not an immediate end of answer).
    env.setSettings({ maxNewTokens: 12, temperature: 0 });
    await answer.getByRole('button', { name: 'Continue' }).click();
    await answerDone();
    const continued = (await lastAnswer().locator('.markdown').textContent()) ?? '';
    expect(await idOf(lastAnswer())).toBe(id);
    expect(await answers(page).count()).toBe(1);
    expect(continued.startsWith(stopped.trimEnd())).toBe(true);
    expect(continued.length).toBeGreaterThan(stopped.length);
    const saved = env.harness.services.store.getMessage(id);
    expect(saved.status).toBe('complete');
    expect(saved.text.startsWith(env.harness.services.store.getMessage(id).text.slice(0, stopped.trimEnd().length))).toBe(true);
    // Focus stayed on the answer being continued.
    expect(await focusedMessageId()).toBe(id);
    env.setSettings({ temperature: 1 });
  });

  it('keeps the focus on the regenerated answer', async () => {
    await lastAnswer().getByRole('button', { name: 'Regenerate' }).click();
    await lastAnswer().getByRole('group', { name: 'Answer versions' }).waitFor();
    const id = await idOf(lastAnswer());
    expect(await focusedMessageId()).toBe(id);
    await answerDone();
    expect(await page.evaluate('document.activeElement === document.body')).toBe(false);
  });

  it('edits a question in a full-width box, with its photos: one removed, the title follows', async () => {
    await page.getByRole('button', { name: 'New chat' }).click();
    await dropFiles(page, page.getByRole('region', { name: 'New chat' }), [
      { path: join(env.photosDir, 'a.png'), type: 'image/png' },
      { path: join(env.photosDir, 'b.jpg'), type: 'image/jpeg' },
    ]);
    // Exact names: "Adding a.png" is the placeholder while the photo is stored.
    for (const name of ['a.png', 'b.jpg']) await page.getByRole('list', { name: 'Photos to send' }).getByRole('img', { name, exact: true }).waitFor();
    await ask('Owls in the garden');
    await answerDone();
    await heading().getByText('Owls in the garden').waitFor();

    await questions(page).first().getByRole('button', { name: 'Edit' }).click();
    const form = page.getByRole('form', { name: 'Edit your message' });
    const box = page.getByRole('textbox', { name: 'Edit your message' });
    expect(await page.evaluate('document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.id')).toMatch(/^edit-/);
    const [formBox, column] = [await form.boundingBox(), await page.getByRole('list', { name: 'Messages' }).boundingBox()];
    expect(formBox!.width).toBeGreaterThan(column!.width * 0.9);
    expect((await box.boundingBox())!.height).toBeGreaterThan(80);
    const photos = page.getByRole('list', { name: 'Photos of this message' });
    expect(await photos.getByRole('listitem').count()).toBe(2);
    await page.getByRole('button', { name: 'Remove photo a.png' }).click();
    await box.fill('Owls at night');
    await page.getByRole('button', { name: 'Save and send' }).click();
    await answerDone();
    expect(await questions(page).first().getByRole('list', { name: 'Photos' }).getByRole('button').count()).toBe(1);
    await questions(page).first().getByRole('button', { name: 'View b.jpg larger' }).waitFor();
    // The title was not set by hand: it follows the edited first message, in the header and the list.
    await heading().getByText('Owls at night').waitFor();
    await list().getByRole('button', { name: /^Owls at night/ }).waitFor();
  });

  it('follows a rename in the header; a renamed title no longer follows edits', async () => {
    await page.getByRole('button', { name: 'Actions for “Owls at night”' }).click();
    await page.getByRole('menuitem', { name: 'Rename' }).click();
    await page.getByRole('textbox', { name: 'New title for “Owls at night”' }).fill('My owl notes');
    await page.keyboard.press('Enter');
    await heading().getByText('My owl notes').waitFor();
    expect(await page.title()).toBe('My owl notes – Owlery');
  });

  it('shows dates on hover, date groups, and the first photo of each conversation', async () => {
    const time = questions(page).first().locator('time');
    expect(await time.getAttribute('title')).toMatch(/\d{4}/);
    const opacity = () => page.evaluate(`getComputedStyle(document.querySelector('[data-message-id] article time')).opacity`);
    await page.mouse.move(1, 1);
    expect(await opacity()).toBe('0');
    await questions(page).first().hover();
    await expect.poll(opacity).toBe('1');
    await list().getByRole('heading', { name: 'Today', level: 2 }).waitFor();
    const cover = list().getByRole('button', { name: /^My owl notes/ }).locator('img');
    await expect.poll(() => cover.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
  });

  it('offers "Jump to latest" while scrolled up during an answer', async () => {
    env.setSettings({ maxNewTokens: 4000 });
    await ask('Tell me everything about owls, at length.');
    await lastAnswer().getByText('Writing…').waitFor();
    const scroller = page.locator('.scroller');
    // Until the thread is taller than the window, there is nothing to scroll.
    await expect.poll(() => scroller.evaluate((el) => (el as unknown as { scrollHeight: number }).scrollHeight - (el as unknown as { clientHeight: number }).clientHeight), { timeout: 60_000 }).toBeGreaterThan(400);
    await scroller.evaluate((el) => (el as unknown as { scrollTop: number }).scrollTop = 0);
    await scroller.dispatchEvent('scroll');
    const jump = page.getByRole('button', { name: 'Jump to latest' });
    await jump.waitFor();
    await jump.click();
    await jump.waitFor({ state: 'detached' });
    const gap = () => scroller.evaluate((el) => {
      const s = el as unknown as { scrollHeight: number; scrollTop: number; clientHeight: number };
      return s.scrollHeight - s.scrollTop - s.clientHeight;
    });
    try {
      await expect.poll(gap).toBeLessThan(80);
    } finally {
      // The long answer must not outlive this test, even a failed one. The random tiny model may
      // also have ended it itself by now (an end-of-text token), so Stop may be gone already.
      env.setSettings({ maxNewTokens: 12 });
      const stop = page.getByRole('button', { name: 'Stop' });
      await stop.click({ timeout: 2_000 }).catch(() => {});
      await stop.waitFor({ state: 'detached' });
    }
  });

  it('refuses files in one message, in the same words from the dialog and from a drop', async () => {
    const notes = join(env.photosDir, 'notes.txt');
    // Outside the photos folder, which the Photos screen lists later.
    const empty = join(env.photosDir, '..', 'empty.png');
    await writeFile(empty, new Uint8Array());
    env.harness.choose('images', [notes, empty, join(env.photosDir, 'c.png')]);
    await page.getByRole('button', { name: 'Attach photos' }).click();
    const alert = page.getByRole('alert', { name: 'Photos not added' });
    await page.getByRole('list', { name: 'Photos to send' }).getByRole('img', { name: 'c.png', exact: true }).waitFor();
    const fromDialog = await alert.textContent();
    expect(fromDialog).toContain('2 files were not added: “notes.txt” is not a photo Owlery can read; “empty.png” is empty.');
    await alert.getByRole('button', { name: 'Dismiss this message' }).click();
    await dropFiles(page, page.getByRole('region', { name: 'My owl notes' }), [
      { path: notes, type: 'text/plain' },
      { path: empty, type: 'image/png' },
    ]);
    expect(await alert.textContent()).toBe(fromDialog);
    expect(await page.getByRole('alert').count()).toBe(1);
    await page.getByRole('button', { name: 'Remove photo c.png' }).click();
  });

  it('keeps the notice of a delete clear of the message box', async () => {
    await page.getByRole('button', { name: 'Actions for “My owl notes”' }).click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    const toast = page.getByRole('region', { name: 'Notifications' }).getByRole('listitem');
    await toast.waitFor();
    const [t, c] = [(await toast.boundingBox())!, (await page.getByRole('form', { name: 'Write a message' }).boundingBox())!];
    const overlap = t.x < c.x + c.width && c.x < t.x + t.width && t.y < c.y + c.height && c.y < t.y + t.height;
    expect(overlap).toBe(false);
    await toast.getByRole('button', { name: 'Undo' }).click();
    await list().getByRole('button', { name: /^My owl notes/ }).waitFor();
  });

  it('restores from the Trash, deletes one for good and empties it', async () => {
    const { store } = env.harness.services;
    for (const title of ['Trashed one', 'Trashed two', 'Trashed three']) {
      const c = store.createConversation({ title });
      store.deleteConversation(c.id);
    }
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Trash' }).click();
    const trash = page.getByRole('list', { name: 'Conversations in the trash' });
    await trash.getByText('Trashed two').waitFor();
    await page.getByRole('button', { name: 'Restore “Trashed two”' }).click();
    await trash.getByText('Trashed two').waitFor({ state: 'detached' });
    await list().getByRole('button', { name: /^Trashed two/ }).waitFor();
    await page.getByRole('button', { name: 'Delete forever “Trashed one”' }).click();
    await trash.getByText('Trashed one').waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Empty trash…' }).click();
    await page.getByRole('button', { name: 'Delete them for good' }).click();
    await page.getByText('The trash is empty.').waitFor();
    expect(store.listTrash({}).items).toEqual([]);
    expect(store.listConversations({}).items.map((c) => c.title)).toContain('Trashed two');
  });

  it('sets instructions for a chat, saves them as a preset and starts a new chat with it', async () => {
    await list().getByRole('button', { name: /^My owl notes/ }).click();
    await heading().getByText('My owl notes').waitFor();
    await page.getByRole('button', { name: 'Instructions…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Instructions and settings for this chat' });
    await dialog.getByRole('textbox', { name: 'Instructions' }).fill('Answer in French.');
    await dialog.getByRole('spinbutton', { name: 'Temperature' }).fill('0.2');
    await dialog.getByRole('button', { name: 'Save as preset…' }).click();
    await dialog.getByRole('textbox', { name: 'Preset name' }).fill('French');
    await dialog.getByRole('button', { name: 'Save preset' }).click();
    await dialog.getByText('Saved the preset “French”.').waitFor();
    await dialog.getByRole('button', { name: 'Save for this chat' }).click();
    await page.getByText('Instructions: Answer in French.').waitFor();
    const id = env.harness.services.store.listConversations({}).items.find((c) => c.title === 'My owl notes')!.id;
    expect(env.harness.services.store.getConversation(id).options).toEqual({ instructions: 'Answer in French.', temperature: 0.2, maxNewTokens: null });

    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByRole('button', { name: 'Instructions…' }).click();
    await dialog.getByRole('combobox', { name: 'Preset' }).selectOption({ label: 'French' });
    expect(await dialog.getByRole('textbox', { name: 'Instructions' }).inputValue()).toBe('Answer in French.');
    await dialog.getByRole('button', { name: 'Save for this chat' }).click();
    await ask('Bonjour');
    await answerDone();
    const created = env.harness.services.store.listConversations({}).items.find((c) => c.title === 'Bonjour')!;
    expect(env.harness.services.store.getConversation(created.id).options).toMatchObject({ instructions: 'Answer in French.', temperature: 0.2 });
  });

  it('colours code in answers', async () => {
    const { store } = env.harness.services;
    const c = store.createConversation({ title: 'Some code' });
    store.appendUserMessage({ conversationId: c.id, text: 'Show me code' });
    const a = store.createAssistantMessage({ conversationId: c.id });
    store.appendText(a.id, CODE_ANSWER);
    store.finishMessage(a.id, { status: 'complete' });
    env.harness.services.events.emit('conversations:changed', { reason: 'created', ids: [c.id] });
    await list().getByRole('button', { name: /^Some code/ }).click();
    const keyword = lastAnswer().locator('pre code .hljs-keyword').first();
    await keyword.waitFor();
    expect(await keyword.textContent()).toBe('def');
    const colours = (await page.evaluate(`(() => {
      const code = [...document.querySelectorAll('pre code')].pop();
      const colour = (el) => getComputedStyle(el).color;
      return [colour(code.querySelector('.hljs-keyword')), colour(code.querySelector('.hljs-string')), colour(code.querySelector('.hljs-comment')), colour(code)];
    })()`)) as string[];
    expect(new Set(colours).size).toBe(4);
  });

  it('opens the shortcut sheet with ? and Ctrl+/, and buttons carry their shortcuts', async () => {
    await page.locator('body').press('?');
    const sheet = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
    await sheet.waitFor();
    expect(await sheet.getByRole('row', { name: /Attach photos/ }).textContent()).toContain('Ctrl+O');
    await page.keyboard.press('Escape');
    await sheet.waitFor({ state: 'hidden' });
    await composer().focus();
    await page.keyboard.press('Control+/');
    await sheet.waitFor();
    await page.keyboard.press('Escape');
    expect(await page.getByRole('button', { name: 'New chat' }).getAttribute('aria-keyshortcuts')).toBe('Control+N');
    expect(await page.getByRole('button', { name: 'Attach photos' }).getAttribute('aria-keyshortcuts')).toBe('Control+O');
  });

  it('collapses the sidebar to a rail, and remembers it', async () => {
    await page.getByRole('button', { name: 'Collapse the conversation list' }).click();
    await page.getByRole('button', { name: 'Expand the conversation list' }).waitFor();
    expect(await list().count()).toBe(0);
    expect((await page.locator('#sidebar').boundingBox())!.width).toBeLessThan(80);
    await page.reload();
    await page.getByRole('button', { name: 'Expand the conversation list' }).waitFor();
    await page.getByRole('button', { name: 'Expand the conversation list' }).click();
    await list().waitFor();
    expect(env.harness.services.settings.get().sidebarCollapsed).toBe(false);
  });

  it('unloads and loads the model, showing the memory it holds', async () => {
    const control = page.getByRole('group', { name: 'Model memory' });
    await control.getByText(/^In memory: [\d.]+ MB$/).waitFor();
    await control.getByRole('button', { name: 'Unload model' }).click();
    await control.getByText('Not in memory').waitFor();
    expect(env.harness.services.engine.status()).toMatchObject({ state: 'idle', memoryBytes: null });
    await control.getByRole('button', { name: 'Load model' }).click();
    await control.getByText(/^In memory: [\d.]+ MB$/).waitFor();
    expect(env.harness.services.engine.status().memoryBytes).toBeGreaterThan(1_000_000);
  });

  it('remembers the photo folder across a reload', async () => {
    env.harness.choose('photos-folder', [env.photosDir]);
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Photos' }).click();
    await page.getByRole('button', { name: 'Open a folder…' }).click();
    await page.getByRole('option', { name: 'a.png' }).waitFor();
    await page.reload();
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Photos' }).click();
    await page.getByRole('option', { name: 'a.png' }).waitFor();
    expect(await page.getByText('photos', { exact: true }).count()).toBeGreaterThan(0);
  });

  it('notices an import of conversations already here, and imports a copy on request', async () => {
    const file = join(env.photosDir, '..', 'backup.json');
    const id = env.harness.services.store.listConversations({}).items.find((c) => c.title === 'Bonjour')!.id;
    await env.harness.services.exporter.exportTo(file, 'json', id);
    await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name: 'Chat' }).click();
    await page.keyboard.press('Control+e');
    const dialog = page.getByRole('dialog', { name: 'Export and import' });
    env.harness.choose('import', [file]);
    await dialog.getByRole('button', { name: 'Import a backup…' }).click();
    await dialog.getByText('“Bonjour” is already in Owlery; nothing was imported.').waitFor();
    await dialog.getByRole('button', { name: 'Import a copy' }).click();
    await dialog.getByText(/^Imported 1 conversation/).waitFor();
    expect(env.harness.services.store.listConversations({}).items.filter((c) => c.title === 'Bonjour')).toHaveLength(2);
    await dialog.getByRole('button', { name: 'Close' }).click();
  });

  it('logged no console errors, page errors or failed requests', () => {
    expect(browser.problems.join('\n')).toBe('');
  });
});
