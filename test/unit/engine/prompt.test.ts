// The conv_mplug_owl2 template against the prompts the official code rendered for the owl2-public
// fixture, then through the real tokenizer to the official ids.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildChatPrompt, countImageMarkers, placeImageMarkers, renderConversation } from '../../../src-main/engine/mplug-owl2/prompt.ts';
import type { ConversationTurn } from '../../../src-main/engine/mplug-owl2/prompt.ts';
import type { ChatMessage } from '../../../src-main/engine/protocol.ts';
import { LlamaTokenizer } from '../../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { OwleryError } from '../../../src-shared/errors.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/', import.meta.url));
const M = '<|image|>';

interface ManifestPrompt {
  messages: [string, string | null][];
  prompt: string;
  ids: number[];
  num_image_markers: number;
}

let prompts: Record<string, ManifestPrompt>;
let tok: LlamaTokenizer;

beforeAll(async () => {
  prompts = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8')).prompts;
  tok = await LlamaTokenizer.fromDir(join(FIXTURE, 'checkpoint'));
});

function turnsOf(p: ManifestPrompt): ConversationTurn[] {
  return p.messages.map(([role, text]) => {
    expect(['USER', 'ASSISTANT']).toContain(role);
    return { role: role === 'USER' ? 'user' : 'assistant', text };
  });
}

function expectInvalidArgument(fn: () => unknown, ...parts: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(OwleryError);
  expect((err as OwleryError).code).toBe('INVALID_ARGUMENT');
  for (const p of parts) expect((err as OwleryError).message).toContain(p);
}

describe('renderConversation (official prompts)', () => {
  const keys = ['single_image', 'image_not_at_start', 'two_images_one_message', 'three_turns_image_in_turn2', 'text_only', 'non_ascii'];

  for (const key of keys) {
    it(`${key}: renders the official prompt and the official ids`, () => {
      const p = prompts[key];
      const prompt = renderConversation(turnsOf(p));
      expect(prompt).toBe(p.prompt);
      expect(tok.tokenizeWithImages(prompt)).toEqual(p.ids);
    });

    it(`${key}: buildChatPrompt gives the same prompt`, () => {
      const p = prompts[key];
      const messages: ChatMessage[] = p.messages
        .filter(([, text]) => text !== null)
        .map(([role, text]) => ({
          role: role === 'USER' ? 'user' : 'assistant',
          content: text!,
          images: countImageMarkers(text!),
        }));
      expect(buildChatPrompt(messages)).toBe(p.prompt);
    });
  }

  it('three turns: exact separators', () => {
    expect(
      renderConversation([
        { role: 'user', text: 'a' },
        { role: 'assistant', text: 'b' },
        { role: 'user', text: 'c' },
        { role: 'assistant', text: null },
      ]),
    ).toBe('USER: a ASSISTANT: b</s>USER: c ASSISTANT:');
  });

  it('a closed conversation ends with </s>', () => {
    expect(renderConversation([{ role: 'user', text: 'a' }, { role: 'assistant', text: 'b' }])).toBe('USER: a ASSISTANT: b</s>');
  });

  it('an empty text renders like an open turn (the official code tests truthiness)', () => {
    expect(renderConversation([{ role: 'user', text: '' }, { role: 'assistant', text: null }])).toBe('USER:ASSISTANT:');
  });

  it('refuses turns that do not alternate or open turns that are not last', () => {
    expectInvalidArgument(() => renderConversation([{ role: 'assistant', text: 'x' }]), 'alternate');
    expectInvalidArgument(() => renderConversation([{ role: 'user', text: 'x' }, { role: 'user', text: 'y' }]), 'turn 2');
    expectInvalidArgument(
      () => renderConversation([{ role: 'user', text: 'x' }, { role: 'assistant', text: null }, { role: 'user', text: 'y' }]),
      'open',
    );
    expectInvalidArgument(() => renderConversation([{ role: 'user', text: null }]), 'open');
  });

  it('renders nothing for no turns', () => {
    expect(renderConversation([])).toBe('');
  });
});

describe('placeImageMarkers', () => {
  it('puts one marker per image at the very start when the text has none', () => {
    expect(placeImageMarkers('Describe it.', 1)).toBe(`${M}Describe it.`);
    expect(placeImageMarkers('Compare.', 2)).toBe(`${M}${M}Compare.`);
    expect(placeImageMarkers(' spaced ', 1)).toBe(`${M} spaced `);
    expect(placeImageMarkers('', 1)).toBe(M);
  });

  it('leaves text without images alone', () => {
    expect(placeImageMarkers('Just text.', 0)).toBe('Just text.');
  });

  it('keeps markers the user placed when their count matches', () => {
    const t = `I took this photo on holiday: ${M} Can you guess where I was?`;
    expect(placeImageMarkers(t, 1)).toBe(t);
    expect(placeImageMarkers(`${M}first, ${M}second`, 2)).toBe(`${M}first, ${M}second`);
  });

  it('refuses a marker count that differs from the image count', () => {
    expectInvalidArgument(() => placeImageMarkers(`${M} and ${M}`, 1), '2', '1 image');
    expectInvalidArgument(() => placeImageMarkers(`look: ${M}`, 0), '1', '0 images');
    expectInvalidArgument(() => placeImageMarkers(`${M}`, 3), '3 images');
  });

  it('refuses a bad image count', () => {
    expectInvalidArgument(() => placeImageMarkers('x', -1), '-1');
    expectInvalidArgument(() => placeImageMarkers('x', 1.5), '1.5');
  });

  it('counts markers', () => {
    expect(countImageMarkers('')).toBe(0);
    expect(countImageMarkers(`${M}${M}x${M}`)).toBe(3);
    expect(countImageMarkers('<|image|'.concat('>'))).toBe(1);
    expect(countImageMarkers('<|image>')).toBe(0);
  });
});

describe('buildChatPrompt', () => {
  it('places markers for attached images and opens the assistant turn', () => {
    const prompt = buildChatPrompt([{ role: 'user', content: 'What shapes are in this picture, and what colour is each one?', images: 1 }]);
    expect(prompt).toBe(prompts.single_image.prompt);
    expect(tok.tokenizeWithImages(prompt)).toEqual(prompts.single_image.ids);
  });

  it('builds the three-turn conversation with the image in turn 2 from plain messages', () => {
    const prompt = buildChatPrompt([
      { role: 'user', content: 'Hello! I have a few pictures to ask you about.' },
      { role: 'assistant', content: 'Sure, go ahead and share them.' },
      { role: 'user', content: 'This is the first one. What is the main colour?', images: 1 },
      { role: 'assistant', content: 'Mostly grey, with lighter\nrings near the middle.' },
      { role: 'user', content: 'Thanks. Is it a photo or a drawing?' },
    ]);
    expect(prompt).toBe(prompts.three_turns_image_in_turn2.prompt);
    expect(tok.tokenizeWithImages(prompt)).toEqual(prompts.three_turns_image_in_turn2.ids);
  });

  it('does not open a turn after a final assistant message', () => {
    expect(
      buildChatPrompt([
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello.' },
      ]),
    ).toBe('USER: Hi ASSISTANT: Hello.</s>');
  });

  it('allows an image without text', () => {
    expect(buildChatPrompt([{ role: 'user', content: '', images: 1 }])).toBe(`USER: ${M} ASSISTANT:`);
  });

  it('refuses bad chats', () => {
    expectInvalidArgument(() => buildChatPrompt([]), 'at least one');
    expectInvalidArgument(() => buildChatPrompt([{ role: 'user', content: '' }]), 'neither text nor images');
    expectInvalidArgument(
      () => buildChatPrompt([{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b', images: 1 }]),
      'assistant',
    );
    expectInvalidArgument(() => buildChatPrompt([{ role: 'user', content: `${M}${M}two?`, images: 1 }]), '2');
    expectInvalidArgument(() => buildChatPrompt([{ role: 'assistant', content: 'first' }]), 'alternate');
    // A marker in an assistant reply would be taken for an image slot.
    expectInvalidArgument(() => buildChatPrompt([{ role: 'user', content: 'a' }, { role: 'assistant', content: `see ${M}` }, { role: 'user', content: 'b' }]));
  });
});

describe('buildChatPrompt: instructions and continuing an answer', () => {
  it('puts instructions at the start of the first question, after its photos', () => {
    expect(buildChatPrompt([{ role: 'user', content: 'What is it?', images: 1 }], { instructions: ' Answer in French. ' })).toBe(
      `USER: ${M}Answer in French.\n\nWhat is it? ASSISTANT:`,
    );
    expect(buildChatPrompt([{ role: 'user', content: `Compare ${M} and ${M}`, images: 2 }], { instructions: 'Be brief.' })).toBe(
      `USER: Be brief.\n\nCompare ${M} and ${M} ASSISTANT:`,
    );
    expect(
      buildChatPrompt([{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }, { role: 'user', content: 'More' }], { instructions: 'Be kind.' }),
    ).toBe('USER: Be kind.\n\nHi ASSISTANT: Hello.</s>USER: More ASSISTANT:');
    // Blank instructions change nothing; a photo alone gets them as its text.
    expect(buildChatPrompt([{ role: 'user', content: 'Hi' }], { instructions: '  ' })).toBe('USER: Hi ASSISTANT:');
    expect(buildChatPrompt([{ role: 'user', content: '', images: 1 }], { instructions: 'Describe.' })).toBe(`USER: ${M}Describe. ASSISTANT:`);
  });

  it('leaves the answer being continued open (no </s>, no new turn, no trailing space)', () => {
    expect(buildChatPrompt([{ role: 'user', content: 'Story?' }, { role: 'assistant', content: 'Once upon a time \n' }], { continueAnswer: true })).toBe(
      'USER: Story? ASSISTANT: Once upon a time',
    );
    expectInvalidArgument(() => buildChatPrompt([{ role: 'user', content: 'Story?' }], { continueAnswer: true }), 'continued');
    expectInvalidArgument(() => buildChatPrompt([{ role: 'user', content: 'Story?' }, { role: 'assistant', content: ' ' }], { continueAnswer: true }), 'continued');
    expectInvalidArgument(() => renderConversation([{ role: 'user', text: 'a', open: true }, { role: 'assistant', text: 'b' }]), 'open');
  });
});
