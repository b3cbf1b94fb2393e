/**
 * Long conversations on a tiny model with a short context window (300 positions): the chat
 * service leaves out the oldest question/answer pairs until the prompt fits with room for an
 * answer, and reports a question too long on its own as CONTEXT_OVERFLOW, saved as an error.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { join } from 'node:path';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { buildChatPrompt } from '../../src-main/engine/mplug-owl2/prompt.ts';
import { openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';

const CONTEXT = 300;
let work: string;
let env: StoreEnv;
let host: EngineHost;
let chat: ChatService;

beforeAll(async () => {
  work = await tempDir('owlery-chat-context-');
  const pkg = await tinyPackage(work, 1, { max_position_embeddings: CONTEXT });
  env = openStoreEnv(join(work, 'data'));
  host = new EngineHost();
  const info = await host.load(pkg, { provider: 'cpu' });
  expect(info.contextLimit).toBe(CONTEXT);
  chat = new ChatService({ store: env.store, images: env.images, engine: host });
});

afterAll(async () => {
  await chat?.dispose();
  await host?.dispose();
  env?.close();
  await removeDir(work);
});

async function answer(req: Parameters<ChatService['send']>[0]) {
  const started = await chat.send({ sampling: { greedy: true, maxNewTokens: 24 }, ...req });
  return { started, outcome: await chat.outcome(started.requestId) };
}

it('leaves out the oldest turns when the conversation outgrows the context window', async () => {
  const q1 = `${'river '.repeat(100)}?`;
  const q2 = `${'mountain '.repeat(100)}?`;
  const q3 = 'Which one was first?';
  const first = await answer({ text: q1 });
  const conversationId = first.started.conversationId;
  const second = await answer({ conversationId, text: q2 });
  const third = await answer({ conversationId, text: q3 });
  expect(third.outcome.type).toBe('done');
  const [a1, a2] = [first, second].map((r) => env.store.getMessage(r.started.assistantMessageId).text);

  // Premise: the whole thread does not leave room for an answer, the thread without the first pair does.
  const full = buildChatPrompt([{ role: 'user', content: q1 }, { role: 'assistant', content: a1 }, { role: 'user', content: q2 }, { role: 'assistant', content: a2 }, { role: 'user', content: q3 }]);
  const shorter = buildChatPrompt([{ role: 'user', content: q2 }, { role: 'assistant', content: a2 }, { role: 'user', content: q3 }]);
  expect((await host.tokenize(full)).length + 24).toBeGreaterThan(CONTEXT);
  expect((await host.tokenize(shorter)).length + 24).toBeLessThanOrEqual(CONTEXT);

  const direct = await host.generate({ prompt: shorter, sampling: { greedy: true, maxNewTokens: 24 } });
  expect(env.store.getMessage(third.started.assistantMessageId)).toMatchObject({ status: 'complete', text: direct.text });
  // Nothing is removed from the history: the thread still has every message.
  expect(env.store.getThread(conversationId).messages).toHaveLength(6);
});

it('saves a question too long for the model as an error with a clear message', async () => {
  const { started, outcome } = await answer({ text: 'lake '.repeat(CONTEXT) });
  expect(outcome).toMatchObject({ type: 'error', error: { code: 'CONTEXT_OVERFLOW', message: expect.stringMatching(/context window is 300 tokens/) } });
  expect(env.store.getMessage(started.assistantMessageId)).toMatchObject({ status: 'error', text: '', error: expect.stringMatching(/context window/) });
  // The service keeps working.
  expect((await answer({ text: 'Short one.' })).outcome.type).toBe('done');
});
