/**
 * A kill in the middle of an answer: the store and chat service run in a child process
 * (test/helpers/chat-crash-child.ts) that is SIGKILLed after the first streamed text of a long
 * answer was saved. The database must then open cleanly, with the earlier messages intact and the
 * partial answer there.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store } from '../../src-main/store/store.ts';
import { forkTestChild, isAlive, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { CrashChildMessage } from '../helpers/chat-crash-child.ts';

let work: string;
let pkg: string;
/** The services' child process; killed after the test even when an assertion failed first. */
let running: ChildProcess | undefined;

beforeAll(async () => {
  work = await tempDir('owlery-chat-crash-');
  pkg = await tinyPackage(work);
});

afterAll(async () => {
  // Its engine process exits by itself once this child is gone (closed IPC channel).
  if (running && running.exitCode === null && running.signalCode === null) running.kill('SIGKILL');
  await removeDir(work);
});

it('a process killed mid-answer leaves a database that opens cleanly, with the partial answer saved', async () => {
  const dataDir = join(work, 'data');
  // (The orphaned engine process may print an EPIPE when its parent dies: it is only in `output`.)
  const { child, exited, message } = forkTestChild<CrashChildMessage>('helpers/chat-crash-child.ts', [dataDir, pkg]);
  running = child;
  const [first, saved] = await Promise.all([
    message((m) => (m.type === 'first' ? m : undefined)),
    message((m) => (m.type === 'saved' ? m : undefined)),
  ]);
  expect(first.answer.length).toBeGreaterThan(0);

  // The child is frozen right after the save: the text is in the file, the answer not finished.
  const peek = new Database(join(dataDir, 'owlery.sqlite'), { readonly: true });
  const row = peek.prepare('SELECT status, length(text) AS n FROM messages WHERE id = ?').get(saved.assistantMessageId) as { status: string; n: number };
  peek.close();
  expect(row.status).toBe('partial');
  expect(row.n).toBeGreaterThan(0);

  child.kill('SIGKILL');
  expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });

  // Reopen: clean, earlier messages intact, the partial answer kept.
  const { store } = Store.open(join(dataDir, 'owlery.sqlite'), { integrityCheck: true });
  try {
    const thread = store.getThread(first.conversationId);
    expect(thread.messages.map((m) => m.id)).toEqual([first.userMessageId, first.assistantMessageId, saved.userMessageId, saved.assistantMessageId]);
    expect(thread.messages[0]).toMatchObject({ role: 'user', text: 'A short question first.', status: 'complete' });
    expect(thread.messages[1]).toMatchObject({ role: 'assistant', text: first.answer, status: 'complete' });
    expect(thread.messages[1].stats).not.toBeNull();
    expect(thread.messages[2]).toMatchObject({ role: 'user', text: 'Now write a very long answer.', status: 'complete' });
    const partial = thread.messages[3];
    expect(partial.status).toBe('partial');
    expect(partial.text.length).toBeGreaterThanOrEqual(saved.chars);
    expect(partial.text.length).toBeGreaterThan(0);
    expect(partial.stats).toBeNull();
    expect(store.search('short question').hits.some((h) => h.messageId === first.userMessageId)).toBe(true);
  } finally {
    store.close();
  }

  // The orphaned engine process notices its parent is gone and exits.
  if (saved.enginePid !== undefined) {
    await expect.poll(() => isAlive(saved.enginePid!), { timeout: 30_000, interval: 50 }).toBe(false);
  }
});
