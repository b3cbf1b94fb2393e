/**
 * Page-side helpers for the chat's browser tests: drop and paste real files, watch an answer
 * stream, find the messages, keyboard-only focus moves. Code that runs in the page is sent as
 * text (this project type-checks tests without DOM types).
 */
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Locator, Page } from 'playwright-core';
import { REPO_ROOT } from './build-renderer.ts';

/** Where the chat's screenshots go (git-ignored). */
export const SCREENSHOT_DIR = join(REPO_ROOT, 'test-results', 'screenshots');

/** A file to hand to the page. */
export interface PageFile {
  path: string;
  type: string;
}

async function filesScript(files: PageFile[]): Promise<string> {
  const payload = await Promise.all(files.map(async (f) => ({ name: basename(f.path), type: f.type, b64: (await readFile(f.path)).toString('base64') })));
  return `(() => {
    const dt = new DataTransfer();
    for (const f of ${JSON.stringify(payload)}) {
      const bin = atob(f.b64);
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      dt.items.add(new File([bytes], f.name, { type: f.type }));
    }
    return dt;
  })()`;
}

/** Drags files from "outside" and drops them on `target` (dragenter, dragover, drop). */
export async function dropFiles(page: Page, target: Locator, files: PageFile[]): Promise<void> {
  const dataTransfer = await page.evaluateHandle(await filesScript(files));
  await target.dispatchEvent('dragenter', { dataTransfer });
  await target.dispatchEvent('dragover', { dataTransfer });
  await target.dispatchEvent('drop', { dataTransfer });
  await dataTransfer.dispose();
}

/** Pastes files into the element with id `targetId` (a real `paste` event with clipboard data). */
export async function pasteFiles(page: Page, targetId: string, files: PageFile[]): Promise<void> {
  await page.evaluate(`(() => {
    const clipboardData = ${await filesScript(files)};
    const target = document.getElementById(${JSON.stringify(targetId)});
    target.focus();
    target.dispatchEvent(new ClipboardEvent('paste', { clipboardData, bubbles: true, cancelable: true }));
  })()`);
}

/** The messages of the thread on screen. */
export function messages(page: Page): Locator {
  return page.getByRole('list', { name: 'Messages' }).getByRole('article');
}

/** Owlery's answers on screen. */
export function answers(page: Page): Locator {
  return page.getByRole('list', { name: 'Messages' }).getByRole('article', { name: 'Owlery' });
}

/** The user's messages on screen. */
export function questions(page: Page): Locator {
  return page.getByRole('list', { name: 'Messages' }).getByRole('article', { name: 'You' });
}

/**
 * Starts recording what the last answer on screen shows while it streams: its text length and
 * the phase line, at every DOM change. Read the record with {@link streamRecord}.
 */
export async function recordStreaming(page: Page): Promise<void> {
  await page.evaluate(`(() => {
    window.__owlStream = [];
    const seen = window.__owlStream;
    window.__owlObserver?.disconnect();
    window.__owlObserver = new MutationObserver(() => {
      const answers = [...document.querySelectorAll('article')].filter((a) => a.querySelector('h3')?.textContent === 'Owlery');
      const last = answers[answers.length - 1];
      if (!last) return;
      const text = last.querySelector('.markdown')?.textContent ?? '';
      const phase = last.querySelector('.phase')?.textContent ?? '';
      const prev = seen[seen.length - 1];
      if (!prev || prev.length !== text.length || prev.phase !== phase) seen.push({ length: text.length, phase });
    });
    window.__owlObserver.observe(document.body, { subtree: true, childList: true, characterData: true });
  })()`);
}

/** What {@link recordStreaming} saw, and stops recording. */
export async function streamRecord(page: Page): Promise<{ length: number; phase: string }[]> {
  return (await page.evaluate(`(() => { window.__owlObserver?.disconnect(); return window.__owlStream ?? []; })()`)) as { length: number; phase: string }[];
}

/** The accessible-ish name of the focused element (label, aria-label or text). */
export async function focusedName(page: Page): Promise<string> {
  return (await page.evaluate(`(() => {
    const el = document.activeElement;
    if (!el) return '';
    const labelled = el.getAttribute('aria-label');
    if (labelled) return labelled;
    if (el.id) {
      const label = document.querySelector('label[for="' + CSS.escape(el.id) + '"]');
      if (label) return label.textContent.trim();
    }
    return (el.textContent ?? '').trim();
  })()`)) as string;
}

/** Presses Tab (Shift+Tab when `back`) until the focused element's name matches; fails after `max`. */
export async function tabTo(page: Page, name: string | RegExp, opts: { back?: boolean; max?: number } = {}): Promise<void> {
  const matches = (n: string) => (typeof name === 'string' ? n === name : name.test(n));
  for (let i = 0; i < (opts.max ?? 60); i++) {
    if (matches(await focusedName(page))) return;
    await page.keyboard.press(opts.back ? 'Shift+Tab' : 'Tab');
  }
  throw new Error(`keyboard focus never reached ${String(name)} (last: ${await focusedName(page)})`);
}

/** A word of `text` that search can find on its own: whole, ASCII letters, 5+ characters, not in `avoid`. */
export function searchableWord(text: string, avoid: string[] = []): string | null {
  const lower = avoid.map((a) => a.toLowerCase());
  const words = text.split(/[^\p{L}\p{N}\p{Co}\p{So}\p{M}]+/u).filter((w) => /^[A-Za-z]{5,}$/.test(w) && !lower.some((a) => a.includes(w.toLowerCase())));
  return words.sort((a, b) => b.length - a.length)[0] ?? null;
}
