/**
 * The harness in a real browser (Debian's Chromium through playwright-core): the injected client
 * installs `window.owlery` under the app's CSP, calls round-trip to the real services, errors keep
 * their codes, events arrive, stored photos load through `/owlery-image/`, and the page cannot
 * replace the API. Skipped where no Chromium is installed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { startHarness } from '../harness/server.ts';
import type { Harness } from '../harness/server.ts';
import { makePhoto, removeDir, tempDir } from '../helpers/chat-env.ts';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

describe.skipIf(!CHROMIUM)('harness in Chromium', () => {
  let root: string;
  let harness: Harness;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    root = await tempDir('owlery-browser-');
    harness = await startHarness({ dataDir: join(root, 'data'), rendererDir: join(root, 'no-build'), services: { autoLoadModel: false } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    await page.goto(harness.url);
  });

  afterAll(async () => {
    await browser?.close();
    await harness?.close();
    await removeDir(root);
  });

  it('installs window.owlery with the contract functions only', async () => {
    const shape = await page.evaluate(() => {
      const api = (globalThis as unknown as { owlery: Record<string, Record<string, unknown>> }).owlery;
      return Object.fromEntries(Object.entries(api).map(([k, v]) => [k, Object.keys(v).sort()]));
    });
    expect(shape.chat).toEqual(['cancel', 'continue', 'edit', 'onEvent', 'regenerate', 'send']);
    expect(Object.keys(shape).sort()).toEqual(['app', 'chat', 'conversations', 'describe', 'engine', 'export', 'images', 'models', 'network', 'presets', 'settings']);
    expect(shape.describe).toEqual(['cancel', 'description', 'errors', 'exportFolder', 'jobs', 'keywords', 'onEvent', 'pause', 'resume', 'search', 'start']);
    const replaced = await page.evaluate(() => {
      const g = globalThis as unknown as { owlery: unknown };
      try {
        g.owlery = {};
      } catch {
        // strict-mode pages throw; either way it must stay
      }
      return typeof (g.owlery as { app?: { info?: unknown } }).app?.info;
    });
    expect(replaced).toBe('function');
  });

  it('round-trips calls, errors and events from the page', async () => {
    const out = await page.evaluate(async () => {
      type R = { ok: boolean; value?: unknown; error?: { code: string } };
      const api = (globalThis as unknown as { owlery: Record<string, Record<string, (a?: unknown) => Promise<R>>> }).owlery;
      const info = await api.app!.info!();
      const created = await api.conversations!.create!({ title: 'From the page' });
      const bad = await api.conversations!.rename!({ id: 'x', title: 1 });
      const changed = new Promise<unknown>((resolve) => {
        const off = (api.settings!.onChange as unknown as (cb: (e: unknown) => void) => () => void)((e) => {
          off();
          resolve(e);
        });
      });
      await api.settings!.set!({ patch: { theme: 'dark' } });
      return { info, created, bad, changed: await changed };
    });
    expect(out.info).toMatchObject({ ok: true, value: { harness: true } });
    expect(out.created).toMatchObject({ ok: true, value: { title: 'From the page' } });
    expect(out.bad).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(out.changed).toMatchObject({ changed: ['theme'], settings: { theme: 'dark' } });
  });

  it('sends image bytes and shows the stored photo through /owlery-image/ under the CSP', async () => {
    const png = Array.from(await makePhoto(5, 30, 20));
    const size = await page.evaluate(async (bytes) => {
      type R = { ok: boolean; value: { url: string } };
      const api = (globalThis as unknown as { owlery: { images: { import: (a: unknown) => Promise<R> } } }).owlery;
      const r = await api.images.import({ name: 'dot.png', bytes: new Uint8Array(bytes) });
      // DOM types are not in this project's lib: reach the page's Image through globalThis.
      type Img = { src: string; naturalWidth: number; naturalHeight: number; decode(): Promise<void> };
      const img = new (globalThis as unknown as { Image: new () => Img }).Image();
      img.src = r.value.url;
      await img.decode();
      return [img.naturalWidth, img.naturalHeight];
    }, png);
    expect(size).toEqual([30, 20]);
    expect(consoleErrors.filter((e) => /Content Security Policy/i.test(e))).toEqual([]);
  });
});
