/**
 * Browser end-to-end setup for the Models, Settings, Photos and Export flows: the web harness over
 * a fresh data folder (the real services), Debian's Chromium driven by playwright-core with a fresh
 * profile, console errors collected, and screenshots saved under `test-results/screenshots/`.
 *
 * The renderer build (`out/renderer`) comes from the node project's global setup
 * (`build-renderer.ts`); {@link startBrowserApp} builds it too when run on its own.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { startHarness } from '../../harness/server.ts';
import type { Harness, HarnessOptions } from '../../harness/server.ts';
import { removeDir, tempDir } from '../../helpers/chat-env.ts';
import { CHROMIUM_ARGS } from './browser.ts';
import { ensureRendererBuilt, REPO_ROOT } from './build-renderer.ts';

/** Debian's Chromium, when installed. */
export const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

/** Where screenshots go. */
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

/** The window size of every test. */
const VIEWPORT = { width: 1280, height: 860 };

/** A running harness with a page on it. */
export interface BrowserApp {
  harness: Harness;
  context: BrowserContext;
  page: Page;
  /** Console errors and uncaught page errors seen so far. */
  consoleErrors: string[];
  /** The temporary folder holding the data folder, the profile and test files. */
  root: string;
  /** Loads the app page and waits for the shell. */
  open(): Promise<void>;
  /**
   * Saves a screenshot as `test-results/screenshots/<name>.png` and returns its path. The window
   * grows for the shot so a screen that scrolls inside the shell is shown whole.
   */
  screenshot(name: string): Promise<string>;
  /**
   * Switches the page's `prefers-color-scheme`; while the theme setting is `system`, waits until
   * the app has followed it (`<html data-theme>`).
   */
  colorScheme(scheme: 'light' | 'dark'): Promise<void>;
  close(): Promise<void>;
}

/** Starts the harness on a fresh data folder and opens Chromium (fresh profile) on it. */
export async function startBrowserApp(opts: { services?: HarnessOptions['services']; prefix?: string; printToPdf?: boolean } = {}): Promise<BrowserApp> {
  if (!CHROMIUM) throw new Error('Chromium is not installed (/usr/bin/chromium)');
  await ensureRendererBuilt();
  const root = await tempDir(opts.prefix ?? 'owlery-e2e-');
  let context: BrowserContext | null = null;
  // PDF export prints with the browser engine, like the app's hidden window does.
  const printToPdf = async (html: string): Promise<Uint8Array> => {
    if (!context) throw new Error('the browser is not running');
    const printer = await context.newPage();
    try {
      await printer.setContent(html, { waitUntil: 'load' });
      return new Uint8Array(await printer.pdf({ format: 'A4', printBackground: true }));
    } finally {
      await printer.close();
    }
  };
  const harness = await startHarness({
    dataDir: join(root, 'data'),
    services: { autoLoadModel: false, ...(opts.printToPdf ? { printToPdf } : {}), ...opts.services },
  });
  context = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: VIEWPORT,
    colorScheme: 'light',
    reducedMotion: 'reduce',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`pageerror: ${err.message}`));
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  return {
    harness,
    context,
    page,
    consoleErrors,
    root,
    async open() {
      await page.goto(harness.url);
      await page.locator('main').first().waitFor();
    },
    async screenshot(name) {
      const path = join(SCREENSHOT_DIR, `${name}.png`);
      const size = page.viewportSize() ?? VIEWPORT;
      // The tallest scrolling area of the page decides how tall the shot must be.
      // (Page code as a string: this file is type-checked without the DOM library.)
      const needed = await page.evaluate<number>(`(() => {
        let extra = 0;
        for (const el of document.querySelectorAll('*')) {
          const style = getComputedStyle(el);
          if ((style.overflowY === 'auto' || style.overflowY === 'scroll') && el.scrollHeight > el.clientHeight && style.contain !== 'strict') {
            extra = Math.max(extra, el.scrollHeight - el.clientHeight);
          }
        }
        return extra;
      })()`);
      if (needed > 0) await page.setViewportSize({ width: size.width, height: Math.min(size.height + needed, 4000) });
      await page.screenshot({ path, fullPage: true, animations: 'disabled' });
      if (needed > 0) await page.setViewportSize(size);
      return path;
    },
    async colorScheme(scheme) {
      await page.emulateMedia({ colorScheme: scheme });
      if (harness.services.settings.get().theme === 'system') {
        await page.locator(`html[data-theme="${scheme}"]`).waitFor({ state: 'attached' });
      }
    },
    async close() {
      await context?.close().catch(() => {});
      await harness.close();
      await removeDir(root);
    },
  };
}

/** Goes to one of the shell's screens through the sidebar's "Screens" navigation. */
export async function goToScreen(page: Page, name: 'Chat' | 'Photos' | 'Models' | 'Settings'): Promise<void> {
  await page.getByRole('navigation', { name: 'Screens' }).getByRole('button', { name, exact: true }).click();
}

/** Leaves the first-run screen when it shows (it does while no model is chosen). */
export async function skipFirstRun(page: Page): Promise<void> {
  const skip = page.getByRole('button', { name: 'Skip for now' });
  await skip.click();
  await page.getByRole('navigation', { name: 'Screens' }).waitFor();
}
