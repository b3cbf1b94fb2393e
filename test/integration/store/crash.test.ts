/**
 * Crash safety: a process streaming an answer is killed with SIGKILL; the database reopens
 * cleanly with every earlier message intact and the answer saved up to its last write.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Store } from '../../../src-main/store/store.ts';
import { REPO_ROOT, tempDir } from './helpers.ts';

let tmp: ReturnType<typeof tempDir>;
beforeEach(() => {
  tmp = tempDir();
});
afterEach(() => tmp.cleanup());

interface Ids {
  conversationId: number;
  q1: number;
  a1: number;
  q2: number;
  a2: number;
}

it('keeps everything written before a SIGKILL in the middle of a streamed answer', async () => {
  const file = join(tmp.dir, 'history.sqlite');
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'crash-child.ts'), file], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  let ids: Ids | null = null;
  let last = { pushed: 0, saved: 0 };
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      const msg = JSON.parse(line) as Ids | { pushed: number; saved: number };
      if ('conversationId' in msg) ids = msg;
      else last = msg;
      if (last.saved >= 40) break; // a few hundred ms into the answer, with several saves behind it
    }
  } finally {
    child.kill('SIGKILL');
  }
  expect(await exited).toBe('SIGKILL');
  expect(ids).not.toBeNull();
  const { conversationId, q1, a1, q2, a2 } = ids!;

  const { store } = Store.open(file);
  expect(store.db.pragma('quick_check', { simple: true })).toBe('ok');
  const thread = store.getThread(conversationId);
  expect(thread.messages.map((m) => m.id)).toEqual([q1, a1, q2, a2]);
  expect(thread.messages.slice(0, 3).map((m) => [m.text, m.status])).toEqual([
    ['First question', 'complete'],
    ['First answer, complete.', 'complete'],
    ['Second question', 'complete'],
  ]);
  const answer = thread.messages[3];
  expect(answer.status).toBe('partial');
  // The saved text is exactly the first N tokens, N at least what the child saw committed, and at
  // most a second (100 tokens at 10 ms) behind what it had pushed when it was killed.
  const tokens = answer.text.trim().split(' ');
  expect(answer.text).toBe(tokens.map((_, i) => `tok${i} `).join(''));
  expect(tokens.length).toBeGreaterThanOrEqual(last.saved);
  expect(last.pushed - tokens.length).toBeLessThanOrEqual(100);
  // The partial answer is searchable, and the app can carry on with it.
  expect(store.search('tok0').hits.map((h) => h.messageId)).toEqual([a2]);
  expect(store.finishMessage(a2, { status: 'cancelled' }).status).toBe('cancelled');
  store.close();
});
