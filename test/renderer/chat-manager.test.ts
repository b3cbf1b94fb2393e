/**
 * The chat manager's handling of streamed events against the calls that start them: events may
 * arrive before `chat:send` resolves (even the final `done`), Stop cancels the request on screen,
 * errors reach the error line with their code, and search hits open the branch through a message.
 */
import { describe, expect, it } from 'vitest';
import type { Thread } from '../../src-shared/domain.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { ChatManager } from '../../src-renderer/lib/managers/chat.svelte.ts';
import { fakeMain, threadMessage } from './helpers/chat-fakes.ts';

function thread(...messages: ReturnType<typeof threadMessage>[]): Thread {
  return {
    conversation: {
      id: 1, title: 'Owls', createdAt: 0, updatedAt: 0, modelId: null, pinned: false, deletedAt: null, coverImage: null, activeLeafId: 2,
      titleSetByUser: false, options: { instructions: '', temperature: null, maxNewTokens: null },
    },
    messages,
  };
}

describe('ChatManager', () => {
  it('keeps deltas that arrive before chat:send resolves, and ends when done came first', async () => {
    const started = { requestId: 'r1', conversationId: 1, userMessageId: 1, assistantMessageId: 2 };
    const ref: { chat?: ChatManager } = {};
    const main = fakeMain({
      'chat:send': () => {
        const chat = ref.chat!;
        chat.handleEvent({ type: 'delta', requestId: 'r1', seq: 0, text: 'Hoot' });
        chat.handleEvent({ type: 'done', requestId: 'r1', finish: 'eos', stats: null, message: threadMessage(2, 'assistant', 'Hoot.') });
        return started;
      },
      // The thread was read while the answer was still partial.
      'conversations:get': () => thread(threadMessage(1, 'user', 'hi'), threadMessage(2, 'assistant', 'Ho', { status: 'partial' })),
    });
    const chat = (ref.chat = new ChatManager(main.client));
    expect(await chat.send('hi')).toBe(true);
    expect(chat.conversationId).toBe(1);
    expect(chat.activeStream).toBeNull();
    expect(chat.generating).toBe(false);
    expect(chat.messages[1]).toMatchObject({ text: 'Hoot.', status: 'complete' });
  });

  it('streams into the answer on screen, and Stop cancels that request', async () => {
    const main = fakeMain({
      'chat:send': () => ({ requestId: 'r2', conversationId: 1, userMessageId: 1, assistantMessageId: 2 }),
      'conversations:get': () => thread(threadMessage(1, 'user', 'hi'), threadMessage(2, 'assistant', '', { status: 'partial' })),
      'chat:cancel': () => ({ cancelled: true }),
    });
    const chat = new ChatManager(main.client);
    const stop = chat.start();
    await chat.send('hi', [{ sha256: 'a'.repeat(64), name: 'a.png' }]);
    expect(main.callsTo('chat:send')).toEqual([{ conversationId: null, text: 'hi', images: [{ sha256: 'a'.repeat(64), name: 'a.png' }] }]);
    main.emit('chat:event', { type: 'delta', requestId: 'r2', seq: 0, text: 'An owl' });
    expect(chat.generating).toBe(true);
    expect(chat.textOf(chat.messages[1]!)).toBe('An owl');
    await chat.stop();
    expect(main.callsTo('chat:cancel')).toEqual([{ requestId: 'r2' }]);
    main.emit('chat:event', { type: 'done', requestId: 'r2', finish: 'cancelled', stats: null, message: threadMessage(2, 'assistant', 'An owl', { status: 'cancelled' }) });
    expect(chat.generating).toBe(false);
    expect(chat.messages[1]!.status).toBe('cancelled');
    stop();
  });

  it('shows refusals with their code, and failed answers as errors', async () => {
    const main = fakeMain({
      'chat:send': () => {
        throw new OwleryError('NO_MODEL', 'No model is chosen yet.');
      },
    });
    const chat = new ChatManager(main.client);
    expect(await chat.send('hi')).toBe(false);
    expect(chat.errorCode).toBe('NO_MODEL');
    expect(chat.error).toContain('No model is chosen yet.');
    chat.clearError();
    chat.conversationId = 1;
    chat.handleEvent({ type: 'phase', requestId: 'r3', phase: 'prefill' });
    chat.streams.get('r3')!.conversationId = 1;
    chat.handleEvent({ type: 'error', requestId: 'r3', error: { name: 'OwleryError', code: 'ENGINE_CRASHED', message: 'The model stopped.' }, message: null });
    expect(chat.errorCode).toBe('ENGINE_CRASHED');
    expect(chat.generating).toBe(false);
  });

  it('opens a search hit on the branch through its message', async () => {
    const main = fakeMain({ 'conversations:select-branch': () => thread(threadMessage(1, 'user', 'q'), threadMessage(2, 'assistant', 'a')) });
    const chat = new ChatManager(main.client);
    await chat.open(1, 2);
    expect(main.callsTo('conversations:select-branch')).toEqual([{ messageId: 2 }]);
    expect(chat.messages.map((m) => m.id)).toEqual([1, 2]);
    expect(chat.conversation?.title).toBe('Owls');
  });
});
