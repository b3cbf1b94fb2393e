/**
 * The web harness with the seeded tiny model installed and loaded, for the chat's browser tests:
 * the real services (store, image store, engine, chat) on a temporary data folder, the built
 * renderer from `out/renderer` (the node project's global setup builds it).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import type { Settings } from '../../../src-shared/settings.ts';
import { startHarness } from '../../harness/server.ts';
import type { Harness } from '../../harness/server.ts';
import { makePhoto, removeDir, tempDir, tinyPackage } from '../../helpers/chat-env.ts';
import { launchBrowser } from './browser.ts';
import type { TestBrowser } from './browser.ts';

/** The id of the tiny package in the harness's data folder. */
export const TINY_MODEL_ID = 'tiny-package';

/** A harness with the tiny model active, and a folder of test photos. */
export interface ChatHarness {
  harness: Harness;
  /** Folder with `a.png`, `b.jpg`, `c.png` and `notes.txt`. */
  photosDir: string;
  /** Changes settings in main (sampling, theme…), as the settings screen would. */
  setSettings(patch: Partial<Settings>): void;
  close(): Promise<void>;
}

/** Starts the harness with the tiny model loaded; `settings` are applied before the page opens. */
export async function startChatHarness(settings: Partial<Settings> = {}): Promise<ChatHarness> {
  const root = await tempDir('owlery-chat-e2e-');
  const dataDir = join(root, 'data');
  await mkdir(join(dataDir, 'models'), { recursive: true });
  await tinyPackage(join(dataDir, 'models'));
  const photosDir = join(root, 'photos');
  await mkdir(photosDir, { recursive: true });
  await writeFile(join(photosDir, 'a.png'), await makePhoto(1, 96, 64));
  await writeFile(join(photosDir, 'b.jpg'), await makePhoto(2, 64, 96, 'jpeg'));
  await writeFile(join(photosDir, 'c.png'), await makePhoto(3, 80, 80));
  await writeFile(join(photosDir, 'notes.txt'), 'not a photo\n');

  const harness = await startHarness({ dataDir, services: { autoLoadModel: false } });
  try {
    harness.services.settings.set({ activeModelId: TINY_MODEL_ID, maxNewTokens: 48, temperature: 1, ...settings });
    await harness.services.engine.ensureModel();
  } catch (err) {
    await harness.close();
    await removeDir(root);
    throw err;
  }
  return {
    harness,
    photosDir,
    setSettings: (patch) => void harness.services.settings.set(patch),
    async close() {
      await harness.close();
      await removeDir(root);
    },
  };
}

/** The chat harness with Chromium open on a new chat. */
export interface ChatBrowser {
  env: ChatHarness;
  browser: TestBrowser;
  page: Page;
  close(): Promise<void>;
}

/** Starts the chat harness, opens Chromium on it and waits for the new chat. */
export async function startChatBrowser(): Promise<ChatBrowser> {
  const env = await startChatHarness();
  let browser: TestBrowser | undefined;
  try {
    browser = await launchBrowser();
    await browser.page.goto(env.harness.url);
    await browser.page.getByRole('heading', { name: 'New chat', level: 2 }).waitFor();
  } catch (err) {
    await browser?.close();
    await env.close();
    throw err;
  }
  const open = browser;
  return {
    env,
    browser: open,
    page: open.page,
    async close() {
      await open.close();
      await env.close();
    },
  };
}
