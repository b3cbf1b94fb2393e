/**
 * From a stored thread to the prompt (no engine needed): normalisation of threads the template
 * cannot express as they are, leaving out old turns, and automatic titles.
 */
import { describe, expect, it } from 'vitest';
import { threadRequest, threadTurns, titleFromMessage } from '../../src-main/chat/history.ts';
import { buildChatPrompt } from '../../src-main/engine/index.ts';

const img = (sha256: string) => ({ sha256 });

describe('prompt from a thread', () => {
  it('renders a plain thread like buildChatPrompt, photos in marker order', () => {
    const thread = [
      { role: 'user' as const, text: 'What is this?', images: [img('a'), img('b')] },
      { role: 'assistant' as const, text: 'Two photos.', images: [] },
      { role: 'user' as const, text: 'And <|image|> this?', images: [img('c')] },
    ];
    const { turns, images } = threadRequest(thread);
    const prompt = buildChatPrompt(turns);
    expect(prompt).toBe(buildChatPrompt([
      { role: 'user', content: 'What is this?', images: 2 },
      { role: 'assistant', content: 'Two photos.' },
      { role: 'user', content: 'And <|image|> this?', images: 1 },
    ]));
    expect(prompt).toBe('USER: <|image|><|image|>What is this? ASSISTANT: Two photos.</s>USER: And <|image|> this? ASSISTANT:');
    expect(images.map((i) => i.sha256)).toEqual(['a', 'b', 'c']);
  });

  it('skips system messages and empty answers, merging the questions they separated', () => {
    const turns = threadTurns([
      { role: 'system', text: 'Be brief.', images: [] },
      { role: 'user', text: 'First?', images: [img('a')] },
      { role: 'assistant', text: '', images: [] }, // failed before its first token
      { role: 'user', text: 'Second?', images: [img('b')] },
    ]);
    expect(turns).toEqual([{ role: 'user', text: '<|image|>First?\n\n<|image|>Second?', images: [img('a'), img('b')] }]);
    expect(buildChatPrompt(threadRequest([
      { role: 'user', text: 'First?', images: [img('a')] },
      { role: 'assistant', text: '', images: [] },
      { role: 'user', text: 'Second?', images: [img('b')] },
    ]).turns)).toBe('USER: <|image|>First?\n\n<|image|>Second? ASSISTANT:');
  });

  it('drops a leading answer and refuses a thread that does not end with a question', () => {
    expect(threadTurns([{ role: 'assistant', text: 'Hello!', images: [] }, { role: 'user', text: 'Hi', images: [] }])).toEqual([
      { role: 'user', text: 'Hi', images: [] },
    ]);
    expect(() => threadTurns([{ role: 'user', text: 'Hi', images: [] }, { role: 'assistant', text: 'Yes', images: [] }])).toThrow(/no question/);
    expect(() => threadTurns([])).toThrow(/no question/);
    expect(() => threadTurns([{ role: 'user', text: '<|image|><|image|>', images: [img('a')] }])).toThrow(/markers?/);
  });

  it('gives the engine each turn with its photo count, photos in order (the engine fits them to its window)', () => {
    const { turns, images } = threadRequest([
      { role: 'user', text: 'one', images: [img('a')] },
      { role: 'assistant', text: 'uno', images: [] },
      { role: 'user', text: 'two', images: [] },
      { role: 'assistant', text: 'dos', images: [] },
      { role: 'user', text: 'three', images: [img('c')] },
    ]);
    expect(turns).toEqual([
      { role: 'user', content: '<|image|>one', images: 1 },
      { role: 'assistant', content: 'uno', images: 0 },
      { role: 'user', content: 'two', images: 0 },
      { role: 'assistant', content: 'dos', images: 0 },
      { role: 'user', content: '<|image|>three', images: 1 },
    ]);
    expect(images).toEqual([img('a'), img('c')]);
    expect(() => threadRequest([{ role: 'user', text: '<|image|> and <|image|>', images: [img('a')] }])).toThrow(/markers?/);
  });
});

describe('automatic titles', () => {
  it('uses the first message, cut at a word boundary near 60 characters', () => {
    expect(titleFromMessage('  What is   in\nthis photo?  ')).toBe('What is in this photo?');
    const long = 'Please describe the colours, the people and the weather in these holiday photos from Lisbon';
    const title = titleFromMessage(long);
    expect(title).toBe('Please describe the colours, the people and the weather in…');
    expect(Array.from(title).length).toBeLessThanOrEqual(61);
    expect(titleFromMessage('<|image|>Compare')).toBe('Compare');
    expect(Array.from(titleFromMessage('🦉'.repeat(100)))).toHaveLength(61);
  });

  it('falls back to the photo name, then a generic title', () => {
    expect(titleFromMessage('', ['beach.jpg'])).toBe('beach.jpg');
    expect(titleFromMessage('', [null])).toBe('Photo');
    expect(titleFromMessage('   ')).toBe('New conversation');
  });
});
