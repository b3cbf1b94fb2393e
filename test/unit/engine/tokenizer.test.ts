// Encoding with the genuine LLaMA vocabulary: every prompt the official mPLUG-Owl2 code tokenized
// for the owl2-public fixture, plus cases the fixture does not cover. For the latter the expected ids
// are derived by hand from SentencePiece's BPE (merge the adjacent pair whose merged piece scores
// highest, leftmost on ties; characters without a piece fall back to <0xNN> = id 3 + byte) and from
// transformers 4.31's LlamaTokenizer (legacy=false); each case says why, and where the reasoning
// rests on a vocabulary fact ("X is not a piece") the test checks that fact first.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IMAGE_MARKER, IMAGE_TOKEN_INDEX, LlamaTokenizer, parseTokenizerConfig } from '../../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { OwleryError } from '../../../src-shared/errors.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/', import.meta.url));
const CHECKPOINT = join(FIXTURE, 'checkpoint');

interface ManifestPrompt {
  messages: [string, string | null][];
  prompt: string;
  ids: number[];
  num_image_markers: number;
  chunks: { text: string; tokenizer_ids: number[]; pieces: string[] }[];
  ids_if_legacy_true: number[] | null;
}

let tok: LlamaTokenizer;
let prompts: Record<string, ManifestPrompt>;
let manifestTokenizer: { stop_keyword_ids: Record<string, number[]>; IMAGE_TOKEN_INDEX: number; image_marker: string };
let tmp: string;

beforeAll(async () => {
  tok = await LlamaTokenizer.fromDir(CHECKPOINT);
  const manifest = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8'));
  prompts = manifest.prompts;
  manifestTokenizer = manifest.tokenizer;
  tmp = await mkdtemp(join(tmpdir(), 'owlery-tok-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** Pieces of ids, for readable failure messages. */
const pieces = (ids: number[]): string[] => ids.map((id) => (id === IMAGE_TOKEN_INDEX ? '<IMAGE>' : tok.idToPiece(id)));

/** Asserts that a string is not a vocabulary piece (the premise of several hand derivations). */
function expectNotAPiece(piece: string): void {
  expect(tok.pieceToId(piece), `${JSON.stringify(piece)} should not be a piece`).toBe(tok.unkId);
}

async function withConfig(config: Record<string, unknown>): Promise<LlamaTokenizer> {
  const base = JSON.parse(await readFile(join(CHECKPOINT, 'tokenizer_config.json'), 'utf8'));
  const path = join(tmp, `tokenizer_config.${Math.random().toString(36).slice(2)}.json`);
  await writeFile(path, JSON.stringify({ ...base, ...config }));
  return LlamaTokenizer.fromFiles(join(CHECKPOINT, 'tokenizer.model'), path);
}

describe('LlamaTokenizer basics', () => {
  it('loads the LLaMA vocabulary and the checkpoint settings', () => {
    expect(tok.vocabSize).toBe(32000);
    expect([tok.unkId, tok.bosId, tok.eosId]).toEqual([0, 1, 2]);
    expect(tok.settings.legacy).toBe(false);
    expect(tok.settings.addBosToken).toBe(true);
    expect(tok.settings.addEosToken).toBe(false);
    expect(IMAGE_TOKEN_INDEX).toBe(manifestTokenizer.IMAGE_TOKEN_INDEX);
    expect(IMAGE_MARKER).toBe(manifestTokenizer.image_marker);
  });

  it('maps ids and pieces both ways', () => {
    expect(tok.idToPiece(15043)).toBe('▁Hello');
    expect(tok.pieceToId('▁Hello')).toBe(15043);
    expect(tok.idToPiece(13)).toBe('<0x0A>');
    expect(tok.pieceToId('<0x0A>')).toBe(13);
    expect(tok.idToPiece(2)).toBe('</s>');
    // U+FEFF is a real piece (id 30143); a BOM-stripping UTF-8 decoder would lose it.
    expect(tok.idToPiece(30143)).toBe('\uFEFF');
    expect(tok.pieceToId('\uFEFF')).toBe(30143);
    expect(tok.pieceToId('no such piece')).toBe(0);
    expect(() => tok.idToPiece(32000)).toThrow(OwleryError);
    expect(() => tok.idToPiece(-200)).toThrow(/image placeholder/);
  });

  it('without a config file uses the mPLUG-Owl2 settings', async () => {
    const t = await LlamaTokenizer.fromFiles(join(CHECKPOINT, 'tokenizer.model'));
    expect(t.settings.legacy).toBe(false);
    expect(t.tokenizeWithImages(prompts.three_turns_image_in_turn2.prompt)).toEqual(prompts.three_turns_image_in_turn2.ids);
  });

  it('stop keyword </s> encodes like KeywordsStoppingCriteria sees it', () => {
    // KeywordsStoppingCriteria drops the leading BOS of tokenizer("</s>").input_ids.
    expect(tok.encode('</s>').slice(1)).toEqual(manifestTokenizer.stop_keyword_ids['</s>']);
  });
});

describe('official prompts (owl2-public manifest)', () => {
  const keys = ['single_image', 'image_not_at_start', 'two_images_one_message', 'three_turns_image_in_turn2', 'text_only', 'non_ascii'];

  it('covers every prompt of the manifest', () => {
    expect(Object.keys(prompts).sort()).toEqual([...keys].sort());
  });

  for (const key of keys) {
    it(`${key}: tokenizer_image_token ids`, () => {
      const p = prompts[key];
      const ids = tok.tokenizeWithImages(p.prompt);
      expect(pieces(ids)).toEqual(pieces(p.ids));
      expect(ids).toEqual(p.ids);
      expect(ids.filter((id) => id === IMAGE_TOKEN_INDEX)).toHaveLength(p.num_image_markers);
    });

    it(`${key}: per-chunk ids and pieces`, () => {
      const p = prompts[key];
      expect(p.chunks.map((c) => c.text)).toEqual(p.prompt.split(IMAGE_MARKER));
      for (const chunk of p.chunks) {
        const ids = chunk.text.length > 0 ? tok.encode(chunk.text) : [];
        expect(ids.map((id) => tok.idToPiece(id))).toEqual(chunk.pieces);
        expect(ids).toEqual(chunk.tokenizer_ids);
      }
    });
  }

  it('three_turns_image_in_turn2 with legacy=true gives ids_if_legacy_true', async () => {
    const legacy = await withConfig({ legacy: true });
    const p = prompts.three_turns_image_in_turn2;
    expect(p.ids_if_legacy_true).not.toBeNull();
    expect(legacy.tokenizeWithImages(p.prompt)).toEqual(p.ids_if_legacy_true);
  });
});

describe('encode: whitespace', () => {
  it('single spaces: "Hello world" is ▁Hello ▁world', () => {
    // The normalizer prefixes ▁ and escapes the space: "▁Hello▁world"; both words are pieces.
    expect(tok.encode('Hello world')).toEqual([1, 15043, 3186]);
  });

  it('a leading space becomes a lone ▁ in front of the dummy-prefixed word', () => {
    // "▁▁Hello": whitespace-only pieces score -1e9, so ▁Hello forms first and ▁ + ▁Hello is not a piece.
    expectNotAPiece('▁▁Hello');
    expect(tok.encode(' Hello')).toEqual([1, 29871, 15043]);
  });

  it('an inner double space leaves a lone ▁ between the words', () => {
    // "▁Hello▁▁world": the extra ▁ joins neither ▁Hello nor ▁world (no such pieces).
    expectNotAPiece('▁Hello▁');
    expectNotAPiece('▁▁world');
    expect(tok.encode('Hello  world')).toEqual([1, 15043, 29871, 3186]);
  });

  it('three inner spaces: the two extra ▁ merge into ▁▁', () => {
    // "▁a▁▁▁b": ▁a (263) and ▁b (289) form first; the remaining ▁,▁ merge into ▁▁ (259).
    expectNotAPiece('▁▁▁b');
    expect(tok.encode('a   b')).toEqual([1, 263, 259, 289]);
  });

  it('trailing space is kept (remove_extra_whitespaces is false in this model)', () => {
    // "Hi " → "▁Hi▁": ▁Hi (6324) then a lone ▁ (29871), as the manifest's "USER: " chunk ends.
    expect(tok.encode('Hi ')).toEqual([1, 6324, 29871]);
  });

  it('whitespace-only text', () => {
    // " " → "▁▁" (259); "  " → "▁▁▁" (1678); legacy=false strips only its own added ▁.
    expect(tok.encode(' ')).toEqual([1, 259]);
    expect(tok.encode('  ')).toEqual([1, 1678]);
  });

  it('a long run of spaces merges leftmost first (ties in score are broken by position)', () => {
    // 20 spaces → 21 ▁ symbols, and every ▁-run piece scores -1e9. Leftmost-first merging grows a
    // run from the left up to the longest ▁ piece (16 ▁, id 462), then the remaining 5 ▁ merge into
    // id 418. Rightmost-first would give [418, 462].
    expectNotAPiece('▁'.repeat(17));
    expect(tok.idToPiece(462)).toBe('▁'.repeat(16));
    expect(tok.idToPiece(418)).toBe('▁'.repeat(5));
    expect(tok.encode(' '.repeat(20))).toEqual([1, 462, 418]);
  });

  it('tabs and newlines are not pieces: byte fallback, and no ▁ after them', () => {
    // "▁a", <0x09> (12), "b" (29890), <0x0A> (13), "c" (29883): only spaces are escaped to ▁.
    expectNotAPiece('\t');
    expectNotAPiece('\n');
    expect(tok.encode('a\tb\nc')).toEqual([1, 263, 12, 29890, 13, 29883]);
  });

  it('carriage return is a piece, and so is ▁ followed by it', () => {
    // "a\r\nb": ▁a, \r (30004), <0x0A>, b.  "a \r": ▁a, ▁\r (6756).
    expect(tok.encode('a\r\nb')).toEqual([1, 263, 30004, 13, 29890]);
    expect(tok.encode('a \r')).toEqual([1, 263, 6756]);
  });

  it('U+2581 in the text is treated as a space (legacy=false replaces it before encoding)', () => {
    expect(tok.encode('▁Hello')).toEqual(tok.encode(' Hello'));
  });

  it('the empty string is just BOS, and addBos: false drops it', () => {
    expect(tok.encode('')).toEqual([1]);
    expect(tok.encode('', { addBos: false })).toEqual([]);
    expect(tok.encode('Hello world', { addBos: false })).toEqual([15043, 3186]);
  });
});

describe('encode: digits, non-ASCII, emoji', () => {
  it('digits are one token each, after a lone ▁', () => {
    // The vocabulary has single digits only (no "20", no "▁2"), so "2023" is ▁,2,0,2,3.
    expectNotAPiece('20');
    expectNotAPiece('▁2');
    expect(tok.encode('2023 is 12')).toEqual([1, 29871, 29906, 29900, 29906, 29941, 338, 29871, 29896, 29906]);
  });

  it('an emoji without a piece falls back to its UTF-8 bytes', () => {
    // 🦉 = F0 9F A6 89 → ids 3 + byte = 243, 162, 169, 140, after the dummy-prefix ▁ (nothing to merge with).
    expectNotAPiece('🦉');
    expectNotAPiece('▁🦉');
    expect(tok.encode('🦉')).toEqual([1, 29871, 243, 162, 169, 140]);
  });

  it('accented letters: precomposed é merges with ▁, a combining accent does not', () => {
    // "é" (U+00E9) has ▁é (904). "e\u0301" is ▁e + the combining accent piece (30103), as in the manifest.
    expect(tok.encode('\u00e9')).toEqual([1, 904]);
    expect(tok.encode('e\u0301')).toEqual([1, 321, 30103]);
    // No NFKC: a full-width letter stays itself and falls back to bytes EF BC A1.
    expectNotAPiece('\uff21');
    expect(tok.encode('\uff21')).toEqual([1, 29871, 242, 191, 164]);
  });

  it('U+FEFF is an ordinary character with its own piece', () => {
    // "▁\uFEFF" and "\uFEFFx" are not pieces: ▁ (29871), U+FEFF (30143), x (29916).
    expectNotAPiece('▁\uFEFF');
    expectNotAPiece('\uFEFFx');
    expect(tok.encode('\uFEFFx')).toEqual([1, 29871, 30143, 29916]);
  });

  it('lone surrogates are encoded as U+FFFD (what UTF-8 encoding of the string gives)', () => {
    expect(tok.encode('a\uD800b')).toEqual(tok.encode('a\uFFFDb'));
  });
});

describe('encode: special tokens inside text', () => {
  it('</s> becomes id 2 and the text after it gets no ▁ (legacy=false)', () => {
    // "there" after </s>: SentencePiece gives ▁there, transformers strips the ▁ → "there" (12711).
    expect(tok.encode('Hi</s>there')).toEqual([1, 6324, 2, 12711]);
  });

  it('with legacy=true the text after </s> keeps its dummy prefix', async () => {
    const legacy = await withConfig({ legacy: true });
    expect(legacy.encode('Hi</s>there')).toEqual([1, 6324, 2, 727]);
    expect(legacy.encode('</s>Übersetze')).toEqual([1, 2, 19999, 300, 911]);
  });

  it('a stripped first piece that is not itself a piece becomes <unk> (transformers 4.31 quirk)', () => {
    // SentencePiece gives ▁Übers,et,ze (see the manifest's non_ascii); 4.31 cuts the ▁ off the string
    // "▁Übers" and looks up "Übers", which is not a piece, so it becomes <unk> (0).
    expectNotAPiece('Übers');
    expect(tok.tokenize('</s>Übersetze')).toEqual(['</s>', 'Übers', 'et', 'ze']);
    expect(tok.encode('</s>Übersetze')).toEqual([1, 2, 0, 300, 911]);
  });

  it('a space after </s> is kept as a ▁ of its own', () => {
    // "x " → ▁x,▁ ; " y" starts with a space so nothing is stripped: ▁,▁y.
    expect(tok.encode('x </s> y')).toEqual([1, 921, 29871, 2, 29871, 343]);
  });

  it('a newline after </s>: the lone ▁ SentencePiece puts in front is dropped', () => {
    // sp("\nfoo") = ▁, <0x0A>, foo; the first piece is exactly ▁, so 4.31 drops it.
    expect(tok.encode('</s>\nfoo')).toEqual([1, 2, 13, 5431]);
  });

  it('<s> and <unk> in the text become their ids too', () => {
    // "Hi" right after <s> loses the ▁ of ▁Hi: "Hi" (18567).
    expect(tok.encode('<s>Hi')).toEqual([1, 1, 18567]);
    expect(tok.encode('a<unk>b')).toEqual([1, 263, 0, 29890]);
    // Text at the very start that is only a special token: the added ▁ vanishes.
    expect(tok.encode('</s>')).toEqual([1, 2]);
    expect(tok.encode('</s></s>')).toEqual([1, 2, 2]);
  });

  it('a partial special token is plain text', () => {
    // "▁</s": ▁< (score -270) beats </ (-570) and merges first; then ▁< + / = ▁</ (1533) is a
    // piece, ▁</s is not, so the result is ▁</, s (29879).
    expectNotAPiece('▁</s');
    expect(tok.encode('</s')).toEqual([1, 1533, 29879]);
  });

  it('add_eos_token: true appends </s>; add_bos_token: false drops <s>', async () => {
    const eos = await withConfig({ add_eos_token: true });
    expect(eos.encode('Hi')).toEqual([1, 6324, 2]);
    const noBos = await withConfig({ add_bos_token: false });
    expect(noBos.encode('Hi')).toEqual([6324]);
  });
});

describe('tokenizeWithImages (tokenizer_image_token)', () => {
  it('empty prompt → no ids', () => {
    expect(tok.tokenizeWithImages('')).toEqual([]);
  });

  it('text without markers is a plain encode', () => {
    expect(tok.tokenizeWithImages('Hello world')).toEqual([1, 15043, 3186]);
  });

  it('a prompt that is only a marker has no BOS', () => {
    expect(tok.tokenizeWithImages(IMAGE_MARKER)).toEqual([-200]);
  });

  it('empty first chunk: no BOS in front, and the next chunk keeps its own BOS', () => {
    expect(tok.tokenizeWithImages(`${IMAGE_MARKER}Hi`)).toEqual([-200, 1, 6324]);
    expect(tok.tokenizeWithImages(`${IMAGE_MARKER}${IMAGE_MARKER}Hi`)).toEqual([-200, -200, 1, 6324]);
    expect(tok.tokenizeWithImages(`${IMAGE_MARKER}Hi${IMAGE_MARKER}Hi`)).toEqual([-200, 1, 6324, -200, 1, 6324]);
  });

  it('non-empty first chunk: one BOS, later chunks lose theirs but keep their own dummy prefix', () => {
    expect(tok.tokenizeWithImages(`Hi${IMAGE_MARKER}Hi`)).toEqual([1, 6324, -200, 6324]);
    expect(tok.tokenizeWithImages(`Hi${IMAGE_MARKER}`)).toEqual([1, 6324, -200]);
    expect(tok.tokenizeWithImages(`Hi${IMAGE_MARKER}${IMAGE_MARKER}`)).toEqual([1, 6324, -200, -200]);
    expect(tok.tokenizeWithImages(`Hi${IMAGE_MARKER}${IMAGE_MARKER}${IMAGE_MARKER}Hi`)).toEqual([1, 6324, -200, -200, -200, 6324]);
  });

  it('a chunk after a marker that starts with </s> keeps the </s>', () => {
    // Chunk "</s>x" → [1, 2, x(29916)]; only its BOS is dropped.
    expect(tok.tokenizeWithImages(`Hi${IMAGE_MARKER}</s>x`)).toEqual([1, 6324, -200, 2, 29916]);
  });

  it('with add_bos_token: false nothing is dropped from any chunk', async () => {
    const noBos = await withConfig({ add_bos_token: false });
    expect(noBos.tokenizeWithImages(`Hi${IMAGE_MARKER}Hi`)).toEqual([6324, -200, 6324]);
  });
});

describe('tokenizer_config.json handling', () => {
  it('reads AddedToken objects and plain strings', () => {
    const s = parseTokenizerConfig(JSON.stringify({ legacy: false, bos_token: '<s>', eos_token: { content: '</s>', lstrip: true } }));
    expect(s.bosToken).toEqual({ content: '<s>', lstrip: false, rstrip: false });
    expect(s.eosToken).toEqual({ content: '</s>', lstrip: true, rstrip: false });
    expect(s.padToken).toBeNull();
  });

  it('a missing "legacy" means legacy=true, as in transformers 4.31', () => {
    expect(parseTokenizerConfig('{}').legacy).toBe(true);
  });

  it('AddedToken lstrip/rstrip eat the whitespace next to the token', async () => {
    const t = await withConfig({ eos_token: { content: '</s>', lstrip: true, rstrip: true } });
    // "x </s> y" → "x" | </s> | "y": the spaces are gone, so ▁x, </s>, y (29891).
    expect(t.encode('x </s> y')).toEqual([1, 921, 2, 29891]);
  });

  it('rejects malformed or unsupported configs with TOKENIZER_INVALID naming the file', () => {
    const cases = ['not json', '[]', '{"legacy": "no"}', '{"clean_up_tokenization_spaces": true}', '{"additional_special_tokens": ["<x>"]}', '{"tokenizer_class": "GPT2Tokenizer"}'];
    for (const text of cases) {
      let err: unknown;
      try {
        parseTokenizerConfig(text, 'some/tokenizer_config.json');
      } catch (e) {
        err = e;
      }
      expect(err, text).toBeInstanceOf(OwleryError);
      expect((err as OwleryError).code).toBe('TOKENIZER_INVALID');
      expect((err as OwleryError).message).toContain('some/tokenizer_config.json');
    }
  });

  it('rejects a special token that is not in the vocabulary', async () => {
    await expect(withConfig({ pad_token: '<pad>' })).rejects.toMatchObject({ code: 'TOKENIZER_INVALID' });
  });

  it('missing files are FILE_NOT_FOUND', async () => {
    await expect(LlamaTokenizer.fromDir(join(tmp, 'nowhere'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(LlamaTokenizer.fromFiles(join(CHECKPOINT, 'tokenizer.model'), join(tmp, 'none.json'))).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
    });
  });
});
