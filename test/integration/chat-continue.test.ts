/**
 * Continue after Stop, per-chat instructions and titles that follow an edited first message, with
 * the chat service on a real store and the real engine process running the seeded tiny model.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ChatEvent, ChatOutcome, ChatStarted } from '../../src-shared/chat.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost, buildChatPrompt } from '../../src-main/engine/index.ts';
import { EngineService } from '../../src-main/services/engine-service.ts';
import { openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';

let work: string;
let env: StoreEnv;
let engine: EngineService;
let chat: ChatService;

beforeAll(async () => {
  work = await tempDir('owlery-chat-continue-');
  const pkg = await tinyPackage(work);
  env = openStoreEnv(join(work, 'data'));
  engine = new EngineService({ host: new EngineHost(), modelDir: () => pkg, loadOptions: () => ({ provider: 'cpu' }) });
  await engine.load('tiny');
  chat = new ChatService({ store: env.store, images: env.images, engine });
});

afterAll(async () => {
  await chat?.dispose();
  await engine?.dispose();
  env?.close();
  await removeDir(work);
});

async function run(start: (onEvent: (e: ChatEvent) => void) => Promise<ChatStarted>): Promise<{ started: ChatStarted; outcome: ChatOutcome; text: string }> {
  const events: ChatEvent[] = [];
  const started = await start((e) => events.push(e));
  const outcome = await chat.outcome(started.requestId);
  return { started, outcome, text: events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('') };
}

const greedy = (maxNewTokens: number) => ({ greedy: true, maxNewTokens });

describe('continue an answer', () => {
  it('appends what the model writes next to the same answer, from a prompt that ends inside it', async () => {
    const first = await run((onEvent) => chat.send({ text: 'Tell me a story about an owl.', sampling: greedy(6) }, { onEvent }));
    if (first.outcome.type !== 'done') throw new Error(`the first answer failed: ${JSON.stringify(first.outcome)}`);
    expect(first.outcome.finish).toBe('length');
    const before = env.store.getMessage(first.started.assistantMessageId);
    expect(before.text.length).toBeGreaterThan(0);

    const more = await run((onEvent) => chat.continue({ messageId: before.id, sampling: greedy(6) }, { onEvent }));
    expect(more.started).toMatchObject({ assistantMessageId: before.id, userMessageId: first.started.userMessageId, continuedFrom: before.text });
    if (more.outcome.type !== 'done') throw new Error(`the continuation failed: ${JSON.stringify(more.outcome)}`);
    const after = env.store.getMessage(before.id);
    // One answer, longer: its old text, then exactly what streamed.
    expect(more.text.length).toBeGreaterThan(0);
    expect(after).toMatchObject({ status: 'complete', text: before.text + more.text });
    expect(env.store.getThread(before.conversationId).messages.map((m) => m.id)).toEqual([first.started.userMessageId, before.id]);
    // The engine continued the open answer: the same as asking it with the answer left open…
    const prompt = buildChatPrompt([{ role: 'user', content: 'Tell me a story about an owl.' }, { role: 'assistant', content: before.text }], { continueAnswer: true });
    expect(prompt.endsWith(`ASSISTANT: ${before.text.trimEnd()}`)).toBe(true);
    // …and it reused the cached prefix it already had (the question and most of the answer).
    expect(more.outcome.stats!.promptTokens).toBeGreaterThan(first.outcome.stats!.promptTokens);
    expect(more.outcome.stats!.reusedPromptTokens).toBeGreaterThan(first.outcome.stats!.promptTokens - 2);
    // (A rendered prompt's answer starts like any answer, dropping its first word's space; a
    // continuation keeps it, since it goes on mid-text.)
    const direct = await engine.generate({ prompt, sampling: greedy(6) });
    expect(more.text.trimStart()).toBe(direct.text.trimStart());
  });

  it('refuses what cannot be continued, writing nothing', async () => {
    const { started } = await run((onEvent) => chat.send({ text: 'Hello', sampling: greedy(3) }, { onEvent }));
    await expect(chat.continue({ messageId: started.userMessageId })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: 'Only answers can be continued.' });
    await run((onEvent) => chat.send({ conversationId: started.conversationId, text: 'And then?', sampling: greedy(3) }, { onEvent }));
    await expect(chat.continue({ messageId: started.assistantMessageId })).rejects.toMatchObject({ message: 'Only the last answer of a conversation can be continued.' });
    expect(env.store.getMessage(started.assistantMessageId).status).toBe('complete');
  });
});

describe('a chat\'s instructions', () => {
  it('open the first question of every prompt of that chat', async () => {
    const { started } = await run((onEvent) =>
      chat.send({ text: 'What is this?', chatOptions: { instructions: 'Answer in one word.' }, sampling: greedy(8) }, { onEvent }),
    );
    expect(env.store.getConversation(started.conversationId).options.instructions).toBe('Answer in one word.');
    const next = await run((onEvent) => chat.send({ conversationId: started.conversationId, text: 'Why?', sampling: greedy(8) }, { onEvent }));
    const thread = env.store.getThread(started.conversationId).messages;
    const prompt = buildChatPrompt(
      [{ role: 'user', content: 'What is this?' }, { role: 'assistant', content: thread[1].text }, { role: 'user', content: 'Why?' }],
      { instructions: 'Answer in one word.' },
    );
    expect(prompt.startsWith('USER: Answer in one word.\n\nWhat is this? ASSISTANT:')).toBe(true);
    expect((await engine.generate({ prompt, sampling: greedy(8) })).text).toBe(next.text);
  });
});

describe('titles', () => {
  it('follow an edited first message until the user renames the conversation', async () => {
    const { started } = await run((onEvent) => chat.send({ text: 'Owls at night', sampling: greedy(2) }, { onEvent }));
    expect(env.store.getConversation(started.conversationId).title).toBe('Owls at night');
    const edited = await run((onEvent) => chat.edit({ messageId: started.userMessageId, text: 'Owls in the morning', sampling: greedy(2) }, { onEvent }));
    expect(env.store.getConversation(started.conversationId).title).toBe('Owls in the morning');
    // A later message's edit does not retitle.
    const second = await run((onEvent) => chat.send({ conversationId: started.conversationId, text: 'Where do they sleep?', sampling: greedy(2) }, { onEvent }));
    await run((onEvent) => chat.edit({ messageId: second.started.userMessageId, text: 'Where do they hunt?', sampling: greedy(2) }, { onEvent }));
    expect(env.store.getConversation(started.conversationId).title).toBe('Owls in the morning');
    env.store.renameConversation(started.conversationId, 'My owl notes');
    await run((onEvent) => chat.edit({ messageId: edited.started.userMessageId, text: 'Owls at noon', sampling: greedy(2) }, { onEvent }));
    expect(env.store.getConversation(started.conversationId).title).toBe('My owl notes');
  });
});
