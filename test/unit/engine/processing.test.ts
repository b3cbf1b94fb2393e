// Fitting a chat into the context window (src-main/engine/mplug-owl2/processing.ts): the engine
// keeps as many of the newest question/answer pairs as leave room for an answer — the same choice as
// trying every number of pairs left out with an exact tokenization — with the real LLaMA tokenizer.
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildChatPrompt } from '../../../src-main/engine/mplug-owl2/prompt.ts';
import { Owl2Processor } from '../../../src-main/engine/mplug-owl2/processing.ts';
import type { ChatMessage } from '../../../src-main/engine/protocol.ts';
import { IMAGE_TOKEN_INDEX, LlamaTokenizer } from '../../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { mulberry32 } from '../../../src-shared/random.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint', import.meta.url));
const IMAGE_TOKENS = 65;

let tok: LlamaTokenizer;
beforeAll(async () => {
  tok = await LlamaTokenizer.fromDir(FIXTURE);
});

/** Positions of a prompt (each image marker counts its rows). */
function positions(prompt: string): number {
  const ids = tok.tokenizeWithImages(prompt);
  const images = ids.filter((i) => i === IMAGE_TOKEN_INDEX).length;
  return ids.length - images + images * IMAGE_TOKENS;
}

/** The fewest pairs to leave out, by trying each count with an exact tokenization. */
function bruteForce(turns: ChatMessage[], limit: number, room: number): number {
  const droppable = Math.floor((turns.length - 1) / 2);
  for (let drop = 0; drop < droppable; drop++) {
    if (positions(buildChatPrompt(turns.slice(2 * drop))) + room <= limit) return drop;
  }
  return droppable;
}

const WORDS = ['river', 'mountain', 'a', 'photo', '🦉', 'Straße', '  ', '\n', 'code: `x = 1`', '</s>', 'ASSISTANT:', 'USER:', '42', 'über', 'the'];

function randomChat(seed: number): ChatMessage[] {
  const rnd = mulberry32(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const text = (): string => Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => pick(WORDS)).join(rnd() < 0.8 ? ' ' : '');
  const pairs = Math.floor(rnd() * 8);
  const turns: ChatMessage[] = [];
  for (let i = 0; i <= pairs; i++) {
    const images = rnd() < 0.3 ? 1 + Math.floor(rnd() * 2) : 0;
    turns.push({ role: 'user', content: text(), images });
    if (i < pairs) turns.push({ role: 'assistant', content: text() });
  }
  return turns;
}

describe('fitting a chat into the context window', () => {
  it('leaves out the fewest oldest pairs that make room, as an exhaustive search would (120 seeded chats)', () => {
    let fitted = 0;
    for (let seed = 1; seed <= 120; seed++) {
      const turns = randomChat(seed);
      const whole = positions(buildChatPrompt(turns));
      // A window somewhere between "the question alone barely fits" and "everything fits".
      const limit = Math.max(64, Math.round(whole * (0.3 + 0.8 * mulberry32(seed * 7)())));
      const room = Math.min(24, Math.floor(limit / 4));
      const p = new Owl2Processor(tok, IMAGE_TOKENS, limit);
      const got = p.fitChat(turns, room);
      const want = bruteForce(turns, limit, room);
      expect(got.droppedPairs, `seed ${seed}`).toBe(want);
      const kept = buildChatPrompt(turns.slice(2 * want));
      expect(got.prompt).toBe(kept);
      expect(got.ids).toEqual(tok.tokenizeWithImages(kept));
      const skipped = turns.slice(0, 2 * want).reduce((n, t) => n + (t.images ?? 0), 0);
      expect(got.firstImage).toBe(skipped);
      expect(got.imageCount).toBe(turns.reduce((n, t) => n + (t.images ?? 0), 0) - skipped);
      if (want > 0) fitted++;
    }
    expect(fitted, 'some chats had to be fitted').toBeGreaterThan(30);
  });

  it('never leaves out the question, even when it alone is too long', () => {
    const turns: ChatMessage[] = [
      { role: 'user', content: 'first', images: 1 },
      { role: 'assistant', content: 'answer' },
      { role: 'user', content: 'lake '.repeat(200) },
    ];
    const p = new Owl2Processor(tok, IMAGE_TOKENS, 100);
    const got = p.fitChat(turns, 25);
    expect(got.droppedPairs).toBe(1);
    expect(got.prompt).toBe(buildChatPrompt([turns[2]]));
    expect(got.positions).toBeGreaterThan(100);
  });

  it('tokenizes a chat that fits once, and refuses markers that do not match the photos', () => {
    const p = new Owl2Processor(tok, IMAGE_TOKENS, 4096);
    const turns: ChatMessage[] = [{ role: 'user', content: 'Hi <|image|> there', images: 1 }];
    expect(p.fitChat(turns, 512)).toMatchObject({ droppedPairs: 0, imageCount: 1, firstImage: 0 });
    expect(() => p.encode('USER: <|image|>x ASSISTANT:', 2)).toThrow(/1 <\|image\|> marker\(s\) but 2 image/);
  });
});
