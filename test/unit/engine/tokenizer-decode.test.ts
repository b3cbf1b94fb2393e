// Decoding and stream decoding with the genuine LLaMA vocabulary. Expected strings follow
// SentencePiece's Decode (▁ → space, the first piece's leading ▁ dropped, byte runs decoded as
// UTF-8 with one U+FFFD per invalid byte) under transformers 4.31's LlamaTokenizer.decode (text
// between special tokens decoded separately; a space put in front of a run of ordinary tokens that
// a special token follows, unless the run starts at index 0).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { LlamaTokenizer } from '../../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { OwleryError } from '../../../src-shared/errors.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/', import.meta.url));

let tok: LlamaTokenizer;
let chunks: { text: string; tokenizer_ids: number[] }[];
let nonAsciiUserText: string;

beforeAll(async () => {
  tok = await LlamaTokenizer.fromDir(join(FIXTURE, 'checkpoint'));
  const manifest = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8'));
  const prompts = Object.values(manifest.prompts) as { chunks: typeof chunks; messages: [string, string | null][] }[];
  chunks = prompts.flatMap((p) => p.chunks).filter((c) => c.text.length > 0);
  nonAsciiUserText = manifest.prompts.non_ascii.messages[0][1];
});

/** Byte-fallback id of a byte value. */
const B = (byte: number): number => 3 + byte;

/** Streams ids one by one; returns every push's output and the flush output last. */
function stream(ids: number[], skipSpecialTokens: boolean): string[] {
  const dec = tok.createStreamDecoder({ skipSpecialTokens });
  return [...ids.map((id) => dec.push(id)), dec.flush()];
}

describe('decode', () => {
  it('plain text: the dummy-prefix space is dropped, BOS printed unless skipped', () => {
    expect(tok.decode([1, 15043, 3186])).toBe('<s>Hello world');
    expect(tok.decode([1, 15043, 3186], { skipSpecialTokens: true })).toBe('Hello world');
  });

  it('a run of text followed by a special token gets a space in front (transformers 4.31)', () => {
    // <s> at index 0: no space; ▁Hello then </s>: " " + "Hello" + "</s>".
    expect(tok.decode([1, 15043, 2])).toBe('<s> Hello</s>');
    expect(tok.decode([15043, 2, 3308, 1001])).toBe(' Hello</s>USER');
    expect(tok.decode([15043, 2], { skipSpecialTokens: true })).toBe('Hello');
    expect(tok.decode([2, 2])).toBe('</s></s>');
  });

  it('text after a special token is decoded on its own, losing its leading ▁', () => {
    // ▁x after </s>: a new SentencePiece decode starts, so its ▁ is dropped.
    expect(tok.decode([2, 921])).toBe('</s>x');
  });

  it('leading spaces survive: a lone first ▁ is the one dropped', () => {
    expect(tok.decode([1, 29871, 15043])).toBe('<s> Hello');
    expect(tok.decode([29871, 15043])).toBe(' Hello');
    expect(tok.decode([259])).toBe(' '); // ▁▁ → one ▁ dropped
  });

  it('byte tokens are joined into UTF-8 characters', () => {
    expect(tok.decode([1, 29871, B(0xf0), B(0x9f), B(0xa6), B(0x89)], { skipSpecialTokens: true })).toBe('🦉');
    expect(tok.decode([B(0xe2), B(0x82), B(0xac)])).toBe('€');
    expect(tok.decode([263, B(0x09), 29890, B(0x0a), 29883])).toBe('a\tb\nc');
  });

  it('invalid or cut-off byte sequences give one U+FFFD per byte', () => {
    // F0 9F then a non-byte piece: each byte is invalid alone. The text is no longer empty, so ▁x keeps its space.
    expect(tok.decode([B(0xf0), B(0x9f), 921])).toBe('\uFFFD\uFFFD x');
    expect(tok.decode([921, B(0xf0)])).toBe('x\uFFFD');
    // E2 needs two continuation bytes; C3 is not one, so E2 is invalid and C3 A9 is é.
    expect(tok.decode([B(0xe2), B(0xc3), B(0xa9)])).toBe('\uFFFDé');
    // Overlong encoding of "/" (C0 AF) and a UTF-16 surrogate (ED A0 80) are invalid too.
    expect(tok.decode([B(0xc0), B(0xaf)])).toBe('\uFFFD\uFFFD');
    expect(tok.decode([B(0xed), B(0xa0), B(0x80)])).toBe('\uFFFD\uFFFD\uFFFD');
  });

  it('<unk> is printed as "<unk>" (a special token), or dropped when skipping', () => {
    expect(tok.decode([263, 0, 29890])).toBe(' a<unk>b');
    expect(tok.decode([263, 0, 29890], { skipSpecialTokens: true })).toBe('ab');
  });

  it('decodes a manifest chunk with </s> inside', () => {
    const c = chunks.find((x) => x.text.startsWith('USER: Hello!'))!;
    expect(tok.decode(c.tokenizer_ids)).toBe(
      '<s> USER: Hello! I have a few pictures to ask you about. ASSISTANT: Sure, go ahead and share them.</s>USER: ',
    );
  });

  it('rejects ids outside the vocabulary, the image placeholder included', () => {
    for (const bad of [-200, -1, 32000, 1.5]) {
      expect(() => tok.decode([15043, bad]), String(bad)).toThrow(OwleryError);
    }
    expect(() => tok.decode([-200])).toThrow(/image placeholder/);
  });

  it('round-trips text without special tokens', () => {
    const texts = [
      'Hello world',
      '  two leading spaces, two  inner,  trailing ',
      'tabs\tand\nnewlines\r\n',
      '2023-11-26 12:34',
      nonAsciiUserText,
      '🦉🐈‍⬛ Ｆｕｌｌ e\u0301 \uFEFF ½≤∞',
      ' ',
    ];
    for (const t of texts) expect(tok.decode(tok.encode(t), { skipSpecialTokens: true }), JSON.stringify(t)).toBe(t);
  });
});

describe('createStreamDecoder', () => {
  it('holds the bytes of a character until it is complete', () => {
    // 🐈 = F0 9F 90 88, then ZWJ (a piece, 30722), then ⬛ = E2 AC 9B.
    const ids = [1, 29871, B(0xf0), B(0x9f), B(0x90), B(0x88), 30722, B(0xe2), B(0xac), B(0x9b)];
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe('🐈\u200d⬛');
    expect(stream(ids, true)).toEqual(['', '', '', '', '', '🐈', '\u200d', '', '', '⬛', '']);
  });

  it('emits text as soon as it is final when skipping special tokens', () => {
    expect(stream([1, 15043, 3186, 2], true)).toEqual(['', 'Hello', ' world', '', '']);
  });

  it('turns incomplete sequences into U+FFFD when the byte run ends or at flush', () => {
    expect(stream([B(0xf0), B(0x9f)], true)).toEqual(['', '', '\uFFFD\uFFFD']);
    expect(stream([B(0xf0), B(0x9f), 921], true)).toEqual(['', '', '\uFFFD\uFFFD x', '']);
    expect(stream([B(0xe2), B(0xc3), B(0xa9)], true)).toEqual(['', '', '\uFFFDé', '']);
    // A continuation byte can never start a character: it is replaced at once.
    expect(stream([B(0x80), 921], true)).toEqual(['\uFFFD', ' x', '']);
  });

  it('flush resets the decoder', () => {
    const dec = tok.createStreamDecoder({ skipSpecialTokens: true });
    expect(dec.push(B(0xf0))).toBe('');
    expect(dec.flush()).toBe('\uFFFD');
    expect(dec.push(15043)).toBe('Hello');
    expect(dec.flush()).toBe('');
  });

  it('with special tokens shown, holds a run until the next special token (it may need a space in front)', () => {
    expect(stream([15043, 2], false)).toEqual(['', ' Hello</s>', '']);
    expect(stream([1, 15043, 3186], false)).toEqual(['<s>', '', '', 'Hello world']);
  });

  it('validates ids', () => {
    const dec = tok.createStreamDecoder();
    expect(() => dec.push(-200)).toThrow(OwleryError);
  });

  it('concatenated output equals decode() for every manifest chunk, both modes', () => {
    for (const c of chunks) {
      for (const skip of [false, true]) {
        const parts = stream(c.tokenizer_ids, skip);
        expect(parts.join(''), `${JSON.stringify(c.text)} skip=${skip}`).toBe(tok.decode(c.tokenizer_ids, { skipSpecialTokens: skip }));
        if (skip) expect(parts.join('')).not.toContain('\uFFFD');
      }
    }
  });

  it('concatenated output equals decode() for random id sequences', () => {
    // Deterministic LCG; ids drawn from specials, ▁-pieces, ordinary pieces and UTF-8-shaped bytes.
    let seed = 0x5eed;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const pieces = [0, 1, 2, 29871, 259, 15043, 3308, 921, 30004, 30722, 13];
    const leads = [0xc3, 0xe2, 0xe3, 0xf0, 0xf4, 0xc0, 0xed, 0xf8];
    let checked = 0;
    for (let n = 0; n < 3000; n++) {
      const ids: number[] = [];
      const len = 1 + rand(12);
      while (ids.length < len) {
        const kind = rand(4);
        if (kind === 0) ids.push(pieces[rand(pieces.length)]);
        else if (kind === 1) ids.push(B(0x80 + rand(64)));
        else if (kind === 2) ids.push(B(leads[rand(leads.length)]));
        else ids.push(B(rand(256)));
      }
      for (const skip of [false, true]) {
        expect(stream(ids, skip).join(''), `${JSON.stringify(ids)} skip=${skip}`).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
        checked++;
      }
    }
    expect(checked).toBe(6000);
  });
});
