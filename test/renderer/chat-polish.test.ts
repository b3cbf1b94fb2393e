/**
 * The renderer's parts of the chat polish: one message per failure (an answer that failed shows
 * its own error), Continue streaming onto the answer's text, a new chat's instructions sent with
 * its first message, the header following a rename, the shortcut-sheet keys, date groups, and
 * refused files collapsed into one sentence.
 */
import { describe, expect, it } from 'vitest';
import type { Thread } from '../../src-shared/domain.ts';
import { ChatManager } from '../../src-renderer/lib/managers/chat.svelte.ts';
import { dateGroup, groupRuns } from '../../src-renderer/lib/format.ts';
import { describeRefusals, refusalOf } from '../../src-renderer/lib/refusals.ts';
import { shortcutCommand, SHORTCUTS } from '../../src-renderer/lib/shortcuts.ts';
import { fakeMain, threadMessage } from './helpers/chat-fakes.ts';

function thread(title: string, ...messages: ReturnType<typeof threadMessage>[]): Thread {
  return {
    conversation: {
      id: 1, title, createdAt: 0, updatedAt: 0, modelId: null, pinned: false, deletedAt: null, coverImage: null, activeLeafId: messages.at(-1)?.id ?? null,
      titleSetByUser: false, options: { instructions: '', temperature: null, maxNewTokens: null },
    },
    messages,
  };
}

const key = (k: string, over: Partial<{ ctrlKey: boolean; shiftKey: boolean; target: unknown }> = {}) => ({
  key: k, ctrlKey: false, metaKey: false, shiftKey: false, altKey: false, ...over, target: (over.target ?? null) as EventTarget | null,
});

describe('ChatManager: chat polish', () => {
  it('leaves a failure that has an answer to the answer (no second message on the error line)', () => {
    const chat = new ChatManager(fakeMain({}).client);
    chat.conversationId = 1;
    chat.handleEvent({ type: 'phase', requestId: 'r1', phase: 'generate' });
    chat.streams.get('r1')!.conversationId = 1;
    const failed = threadMessage(2, 'assistant', 'Half an answ', { status: 'error', error: 'The model stopped.' });
    chat.handleEvent({ type: 'error', requestId: 'r1', error: { name: 'OwleryError', code: 'ENGINE_CRASHED', message: 'The model stopped.' }, message: failed });
    expect(chat.error).toBeNull();
  });

  it('streams a continued answer onto its text, and keeps the one answer', async () => {
    const main = fakeMain({
      'chat:continue': () => ({ requestId: 'r2', conversationId: 1, userMessageId: 1, assistantMessageId: 2, continuedFrom: 'Once upon' }),
      'conversations:get': () => thread('Story', threadMessage(1, 'user', 'Tell a story'), threadMessage(2, 'assistant', 'Once upon', { status: 'partial' })),
    });
    const chat = new ChatManager(main.client);
    const stop = chat.start();
    chat.conversationId = 1;
    expect(await chat.continue(2)).toMatchObject({ assistantMessageId: 2 });
    expect(main.callsTo('chat:continue')).toEqual([{ messageId: 2 }]);
    main.emit('chat:event', { type: 'delta', requestId: 'r2', seq: 0, text: ' a time' });
    expect(chat.textOf(chat.messages[1]!)).toBe('Once upon a time');
    expect(chat.messages).toHaveLength(2);
    stop();
  });

  it('sends a new chat\'s instructions with its first message', async () => {
    const main = fakeMain({
      'chat:send': () => ({ requestId: 'r3', conversationId: 1, userMessageId: 1, assistantMessageId: 2 }),
      'conversations:get': () => thread('Hi', threadMessage(1, 'user', 'Hi')),
    });
    const chat = new ChatManager(main.client);
    expect(await chat.setOptions({ instructions: 'Answer in French.' })).toBe(true);
    await chat.send('Hi');
    expect(main.callsTo('chat:send')[0]).toMatchObject({ chatOptions: { instructions: 'Answer in French.', temperature: null, maxNewTokens: null } });
    chat.newChat();
    expect(chat.options.instructions).toBe('');
  });

  it('follows a rename of the conversation on screen', async () => {
    let title = 'Before';
    const main = fakeMain({ 'conversations:get': () => thread(title, threadMessage(1, 'user', 'q')) });
    const chat = new ChatManager(main.client);
    const stop = chat.start();
    await chat.open(1);
    title = 'After';
    main.emit('conversations:changed', { reason: 'updated', ids: [1] });
    await expect.poll(() => chat.conversation?.title).toBe('After');
    stop();
  });
});

describe('shortcut sheet keys', () => {
  it('opens with ? outside a text field and Ctrl+/ anywhere', () => {
    const opts = { menuOwnsShortcuts: true };
    expect(shortcutCommand(key('?', { shiftKey: true }), opts)).toBe('shortcuts');
    expect(shortcutCommand(key('?', { shiftKey: true, target: { tagName: 'TEXTAREA' } }), opts)).toBeNull();
    expect(shortcutCommand(key('/', { ctrlKey: true, target: { tagName: 'TEXTAREA' } }), opts)).toBe('shortcuts');
    expect(SHORTCUTS.find((s) => s.action === 'shortcuts')?.keys).toEqual(['?', 'Ctrl+/']);
  });
});

describe('date groups', () => {
  it('groups by day, week, month and year, in local time', () => {
    const now = new Date(2026, 2, 20, 15, 0).getTime();
    const at = (y: number, m: number, d: number) => new Date(y, m, d, 9, 0).getTime();
    expect(dateGroup(at(2026, 2, 20), now)).toBe('Today');
    expect(dateGroup(at(2026, 2, 19), now)).toBe('Yesterday');
    expect(dateGroup(at(2026, 2, 15), now)).toBe('Previous 7 days');
    expect(dateGroup(at(2026, 2, 1), now)).toBe('Previous 30 days');
    expect(dateGroup(at(2026, 0, 5), now)).toMatch(/January/);
    expect(dateGroup(at(2024, 6, 5), now)).toMatch(/July.*2024/);
    expect(groupRuns([1, 1, 2, 1], String).map((g) => [g.label, g.items.length])).toEqual([['1', 2], ['2', 1], ['1', 1]]);
  });
});

describe('refused files', () => {
  it('read as one sentence, the same reason together', () => {
    expect(describeRefusals([refusalOf('a.txt', 'IMAGE_UNSUPPORTED', 'x')], 16)).toBe('“a.txt” is not a photo Owlery can read.');
    expect(
      describeRefusals(
        [
          { name: 'a.txt', reason: 'not-a-photo' },
          { name: 'big.jpg', reason: 'too-large', detail: '(60 MB; the limit is 50 MB)' },
          { name: 'b.pdf', reason: 'not-a-photo' },
          { name: 'c.png', reason: 'too-many' },
        ],
        16,
      ),
    ).toBe(
      '4 files were not added: “a.txt” and “b.pdf” are not photos Owlery can read; “big.jpg” is too large (60 MB; the limit is 50 MB); “c.png” was not added: a message can carry at most 16 photos.',
    );
  });
});
