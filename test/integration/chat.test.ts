/**
 * The chat service end to end: a real SQLite store and image store in a temporary folder, the
 * real engine host (a separate engine process) on the seeded tiny model, converted once here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChatEvent, ChatOutcome, ChatStarted } from '../../src-shared/chat.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost, buildChatPrompt } from '../../src-main/engine/index.ts';
import { EngineService } from '../../src-main/services/engine-service.ts';
import { makePhoto, openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';

let work: string;
let pkg: string;
let env: StoreEnv;
let host: EngineHost;
let engine: EngineService;
let chat: ChatService;
let photoA: Uint8Array;
let photoB: Uint8Array;
let fileB: string;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  work = await tempDir('owlery-chat-');
  pkg = await tinyPackage(work);
  env = openStoreEnv(join(work, 'data'));
  host = new EngineHost();
  // As the app wires them: the engine service restarts the engine after a crash.
  engine = new EngineService({ host, modelDir: () => pkg, loadOptions: () => ({ provider: 'cpu' }) });
  await engine.load('tiny');
  chat = new ChatService({ store: env.store, images: env.images, engine });
  photoA = await makePhoto(1, 40, 30);
  photoB = await makePhoto(2, 25, 50, 'jpeg');
  fileB = join(work, 'beach.jpg');
  await writeFile(fileB, photoB);
});

afterAll(async () => {
  await chat?.dispose();
  await engine?.dispose();
  env?.close();
  await removeDir(work);
});

/** Runs a request to the end, collecting its events. */
async function collect(start: (onEvent: (e: ChatEvent) => void) => Promise<ChatStarted>): Promise<{ started: ChatStarted; events: ChatEvent[]; outcome: ChatOutcome; text: string }> {
  const events: ChatEvent[] = [];
  const started = await start((e) => events.push(e));
  const outcome = await chat.outcome(started.requestId);
  const text = events.flatMap((e) => (e.type === 'delta' ? [e.text] : [])).join('');
  return { started, events, outcome, text };
}

const greedy = { greedy: true, maxNewTokens: 24 };

describe('chat service', () => {
  it('sends a message with two photos: streamed deltas make up the saved answer, with stats, settings and model', async () => {
    const question = 'What differs between these two photos?';
    const { started, events, outcome, text } = await collect((onEvent) =>
      chat.send({ text: question, images: [{ kind: 'bytes', bytes: photoA, name: 'garden.png' }, { kind: 'file', path: fileB }], sampling: greedy }, { onEvent }),
    );
    expect(outcome).toMatchObject({ type: 'done', requestId: started.requestId });
    if (outcome.type !== 'done') throw new Error('unreachable');

    // Events: queued, the engine's phases, deltas numbered from 0, then exactly one final event.
    const phases = events.flatMap((e) => (e.type === 'phase' ? [`${e.phase}${e.progress ? ` ${e.progress.done}/${e.progress.total}` : ''}`] : []));
    expect(phases).toEqual(['queued', 'decode-image 0/2', 'decode-image 1/2', 'encode-image 0/2', 'encode-image 1/2', 'prefill', 'generate']);
    const deltas = events.filter((e) => e.type === 'delta');
    expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
    expect(deltas.every((d) => d.requestId === started.requestId && d.text.length > 0)).toBe(true);
    expect(events.at(-1)).toBe(outcome);
    expect(events.filter((e) => e.type === 'done' || e.type === 'error')).toHaveLength(1);

    // The saved answer is exactly the streamed text, and what the engine answers to the same prompt.
    const saved = env.store.getMessage(started.assistantMessageId);
    expect(text.length).toBeGreaterThan(0);
    expect(saved).toMatchObject({ role: 'assistant', status: 'complete', text, parentId: started.userMessageId, error: null });
    expect(outcome.message).toEqual(saved);
    const direct = await host.generate({ prompt: buildChatPrompt([{ role: 'user', content: question, images: 2 }]), images: [photoA, photoB], sampling: greedy });
    expect(saved.text).toBe(direct.text);

    expect(saved.stats).toEqual(outcome.stats);
    expect(saved.stats).toMatchObject({ imageCount: 2, outputTokens: direct.outputIds.length, provider: 'cpu' });
    expect(saved.settings).toEqual({ greedy: true, maxNewTokens: 24, aspectMode: 'resize', provider: 'cpu' });
    const manifestSha = sha(await readFile(join(pkg, 'manifest.json')));
    expect(saved.model).toEqual({ packageId: host.info!.packageId, sha256: manifestSha });

    // The question with its photos, in order; the conversation titled after it.
    const user = env.store.getMessage(started.userMessageId);
    expect(user).toMatchObject({ role: 'user', text: question, status: 'complete', parentId: null });
    expect(user.images.map((i) => [i.sha256, i.name])).toEqual([[sha(photoA), 'garden.png'], [sha(photoB), 'beach.jpg']]);
    const thread = env.store.getThread(started.conversationId);
    expect(thread.conversation.title).toBe(question);
    expect(thread.messages.map((m) => m.id)).toEqual([started.userMessageId, started.assistantMessageId]);
  });

  it('answers a follow-up with the whole conversation as context', async () => {
    const first = await collect((onEvent) => chat.send({ text: 'Describe this.', images: [{ kind: 'bytes', bytes: photoA }], sampling: greedy }, { onEvent }));
    const second = await collect((onEvent) =>
      chat.send({ conversationId: first.started.conversationId, text: 'And this one?', images: [{ kind: 'bytes', bytes: photoB }], sampling: greedy }, { onEvent }),
    );
    expect(second.outcome.type).toBe('done');
    expect(env.store.getMessage(second.started.userMessageId).parentId).toBe(first.started.assistantMessageId);
    const prompt = buildChatPrompt([
      { role: 'user', content: 'Describe this.', images: 1 },
      { role: 'assistant', content: first.text },
      { role: 'user', content: 'And this one?', images: 1 },
    ]);
    const direct = await host.generate({ prompt, images: [photoA, photoB], sampling: greedy });
    expect(second.text).toBe(direct.text);
    expect(env.store.getThread(first.started.conversationId).messages).toHaveLength(4);
  });

  it('keeps the partial answer of a cancelled request, marked cancelled', async () => {
    let cancelled = false;
    const { started, outcome, text } = await collect((onEvent) =>
      chat.send({ text: 'Tell me a long story.', sampling: { temperature: 1, seed: 4, maxNewTokens: 1000 } }, {
        onEvent: (e) => {
          onEvent(e);
          if (e.type === 'delta' && !cancelled) cancelled = chat.cancel(e.requestId);
        },
      }),
    );
    expect(cancelled).toBe(true);
    expect(outcome).toMatchObject({ type: 'done', finish: 'cancelled' });
    const saved = env.store.getMessage(started.assistantMessageId);
    expect(saved.status).toBe('cancelled');
    expect(saved.text).toBe(text);
    expect(text.length).toBeGreaterThan(0);
    expect(saved.stats!.outputTokens).toBeLessThan(1000);
    expect(chat.cancel(started.requestId)).toBe(false);
  });

  it('queues a second request behind the running one, and cancels a waiting one without running it', async () => {
    const order: string[] = [];
    const waiting = new Map<string, () => void>();
    chat.subscribe((e) => {
      if (e.type === 'phase' && e.phase === 'prefill') {
        order.push(e.requestId);
        waiting.get(e.requestId)?.();
      }
    });
    const prefillOf = (id: string) => new Promise<void>((resolve) => (order.includes(id) ? resolve() : waiting.set(id, resolve)));
    const long = await chat.send({ text: 'One.', sampling: { temperature: 1, seed: 1, maxNewTokens: 600 } });
    const next = await chat.send({ text: 'Two.', sampling: greedy });
    const dropped = await chat.send({ text: 'Three.', sampling: greedy });
    expect(chat.queueState).toEqual({ running: long.requestId, queued: 2 });
    expect(chat.cancel(dropped.requestId)).toBe(true);
    const droppedOutcome = await chat.outcome(dropped.requestId);
    expect(droppedOutcome).toMatchObject({ type: 'done', finish: 'cancelled', stats: null });
    expect(env.store.getMessage(dropped.assistantMessageId)).toMatchObject({ status: 'cancelled', text: '' });
    // Cancel the long one only once it is generating, so its prefill is part of the order.
    await prefillOf(long.requestId);
    chat.cancel(long.requestId);
    expect((await chat.outcome(long.requestId)).type).toBe('done');
    expect((await chat.outcome(next.requestId)).type).toBe('done');
    expect(order.filter((id) => [long.requestId, next.requestId, dropped.requestId].includes(id))).toEqual([long.requestId, next.requestId]);
  });

  it('refuses with ENGINE_BUSY when the queue is full, writing nothing', async () => {
    const strict = new ChatService({ store: env.store, images: env.images, engine: host, maxQueued: 0 });
    const long = await strict.send({ text: 'Busy now.', sampling: { temperature: 1, seed: 2, maxNewTokens: 600 } });
    const before = env.store.listConversations({ limit: 500 }).items.length;
    await expect(strict.send({ text: 'Me too.' })).rejects.toMatchObject({ code: 'ENGINE_BUSY' });
    expect(env.store.listConversations({ limit: 500 }).items.length).toBe(before);
    strict.cancel(long.requestId);
    await strict.outcome(long.requestId);
    await strict.dispose();
  });

  it('regenerates an answer as a new branch; the old answer stays', async () => {
    const first = await collect((onEvent) => chat.send({ text: 'Regenerate me.', sampling: { temperature: 1, seed: 10, maxNewTokens: 12 } }, { onEvent }));
    const again = await collect((onEvent) => chat.regenerate({ messageId: first.started.assistantMessageId, sampling: { temperature: 1, seed: 11, maxNewTokens: 12 } }, { onEvent }));
    expect(again.outcome.type).toBe('done');
    expect(again.started.userMessageId).toBe(first.started.userMessageId);
    const thread = env.store.getThread(first.started.conversationId);
    const last = thread.messages.at(-1)!;
    expect(last.id).toBe(again.started.assistantMessageId);
    expect(last.text).toBe(again.text);
    expect(last.siblingIds).toEqual([first.started.assistantMessageId, again.started.assistantMessageId]);
    expect(last.settings).toMatchObject({ seed: 11 });
    expect(env.store.getMessage(first.started.assistantMessageId)).toMatchObject({ status: 'complete', text: first.text });
    // The old branch can still be selected.
    const old = env.store.selectBranch(first.started.assistantMessageId);
    expect(old.messages.map((m) => m.id)).toEqual([first.started.userMessageId, first.started.assistantMessageId]);
  });

  it('edits a message and answers the edit as a new branch; the original and its answer stay', async () => {
    const first = await collect((onEvent) => chat.send({ text: 'Original question.', images: [{ kind: 'bytes', bytes: photoA }], sampling: greedy }, { onEvent }));
    const conv = first.started.conversationId;
    const edited = await collect((onEvent) => chat.edit({ messageId: first.started.userMessageId, text: 'Edited question.', sampling: greedy }, { onEvent }));
    expect(edited.outcome.type).toBe('done');
    const thread = env.store.getThread(conv);
    expect(thread.messages.map((m) => m.id)).toEqual([edited.started.userMessageId, edited.started.assistantMessageId]);
    expect(thread.messages[0]).toMatchObject({ text: 'Edited question.', siblingIds: [first.started.userMessageId, edited.started.userMessageId], siblingIndex: 1 });
    expect(thread.messages[0].images.map((i) => i.sha256)).toEqual([sha(photoA)]); // photos kept
    const direct = await host.generate({ prompt: buildChatPrompt([{ role: 'user', content: 'Edited question.', images: 1 }]), images: [photoA], sampling: greedy });
    expect(edited.text).toBe(direct.text);
    const original = env.store.selectBranch(first.started.userMessageId);
    expect(original.messages.map((m) => [m.id, m.text])).toEqual([
      [first.started.userMessageId, 'Original question.'],
      [first.started.assistantMessageId, first.text],
    ]);
    // The title, set from the first message and not renamed, followed its edit.
    expect(env.store.getConversation(conv).title).toBe('Edited question.');
  });

  it('makes answers searchable', async () => {
    const { started, text } = await collect((onEvent) => chat.send({ text: 'Say something searchable.', sampling: { temperature: 1, seed: 21, maxNewTokens: 60 } }, { onEvent }));
    const word = [...text.matchAll(/\p{L}{4,}/gu)].map((m) => m[0]).find((w) => !/[^\p{L}]/u.test(w));
    expect(word, `no word of four letters in ${JSON.stringify(text)}`).toBeDefined();
    const hits = env.store.search(word!).hits.filter((h) => h.kind === 'message');
    expect(hits.map((h) => h.messageId)).toContain(started.assistantMessageId);
    const titleHits = env.store.search('searchable').hits;
    expect(titleHits.some((h) => h.kind === 'title' && h.conversationId === started.conversationId)).toBe(true);
  });

  it('refuses bad input before writing anything', async () => {
    const before = env.store.listConversations({ limit: 500 }).items.length;
    await expect(chat.send({ text: '   ' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(chat.send({ text: '<|image|><|image|> two markers', images: [{ kind: 'bytes', bytes: photoA }] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(chat.send({ text: 'x', images: [{ kind: 'bytes', bytes: new TextEncoder().encode('not a photo') }] })).rejects.toMatchObject({ code: 'IMAGE_UNSUPPORTED' });
    await expect(chat.send({ conversationId: 987654, text: 'x' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(env.store.listConversations({ limit: 500 }).items.length).toBe(before);
  });

  it('keeps the partial answer with status error when the engine process dies, and the next send works', async () => {
    let killed = false;
    const { started, outcome, text } = await collect((onEvent) =>
      chat.send({ text: 'Count to a thousand.', sampling: { temperature: 1, seed: 6, maxNewTokens: 2000 } }, {
        onEvent: (e) => {
          onEvent(e);
          if (e.type === 'delta' && !killed) {
            killed = true;
            process.kill(host.enginePid!, 'SIGKILL');
          }
        },
      }),
    );
    expect(killed).toBe(true);
    expect(outcome).toMatchObject({ type: 'error', error: { code: 'ENGINE_CRASHED' } });
    const saved = env.store.getMessage(started.assistantMessageId);
    expect(saved.status).toBe('error');
    expect(saved.text).toBe(text);
    expect(text.length).toBeGreaterThan(0);
    expect(saved.error).toMatch(/engine process stopped unexpectedly/);
    if (outcome.type === 'error') expect(outcome.message).toEqual(saved);

    const next = await collect((onEvent) => chat.send({ conversationId: started.conversationId, text: 'Are you back?', sampling: greedy }, { onEvent }));
    expect(next.outcome.type).toBe('done');
    expect(env.store.getMessage(next.started.assistantMessageId)).toMatchObject({ status: 'complete', text: next.text });
    expect(env.store.getMessage(next.started.userMessageId).parentId).toBe(started.assistantMessageId);
  });
});
