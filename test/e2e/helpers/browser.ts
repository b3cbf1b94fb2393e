/**
 * Debian's Chromium driven by playwright-core for the browser tests: headless, no sandbox (tests
 * run as root in containers), nothing that talks to the network in the background, and a new empty
 * profile each time. Missing Chromium is a failure with instructions, never a silent skip.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import type { BrowserContext, ConsoleMessage, Page } from 'playwright-core';

/** Where the tests look for Chromium (`OWLERY_CHROMIUM` overrides). */
export const CHROMIUM_PATH = process.env.OWLERY_CHROMIUM ?? '/usr/bin/chromium';

/** Chromium's flags for the tests. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-default-apps',
  '--disable-extensions',
];

/** A running browser with one page, and what went wrong in it. */
export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Console errors, uncaught exceptions and failed requests seen so far. */
  problems: string[];
  close(): Promise<void>;
}

/** Throws a clear error when Chromium is not installed. */
export function requireChromium(): string {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `The browser tests need Chromium at ${CHROMIUM_PATH} and it is not there. ` +
        'Install it (Debian/Ubuntu: apt-get update && apt-get install -y chromium) or point OWLERY_CHROMIUM at a Chromium binary.',
    );
  }
  return CHROMIUM_PATH;
}

/** Records console errors, page errors and failed requests of a page into `problems`. */
export function watchProblems(page: Page, problems: string[]): void {
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('requestfailed', (r) => {
    // A navigation away from the page aborts its pending image loads; that is not an error.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText ?? ''}`);
  });
}

/** Starts Chromium with a new profile and opens one page. */
export async function launchBrowser(opts: { viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> {
  const executablePath = requireChromium();
  const profile = await mkdtemp(join(tmpdir(), 'owlery-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: opts.viewport ?? { width: 1280, height: 800 },
    reducedMotion: 'reduce',
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  watchProblems(page, problems);
  return {
    context,
    page,
    problems,
    async close() {
      await context.close().catch(() => {});
      await rm(profile, { recursive: true, force: true });
    },
  };
}
