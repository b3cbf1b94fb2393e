// Parsing tokenizer.model, and the SentencePiece processor's mechanics on small hand-built models
// (expected results follow sentencepiece's normalizer.cc and bpe_model.cc, step by step).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProtoWriter } from '../../../models/protobuf.ts';
import { LlamaTokenizer } from '../../../src-main/engine/tokenizer/llama-tokenizer.ts';
import { parseSentencePieceModel, readSentencePieceModel } from '../../../src-main/engine/tokenizer/sentencepiece-model.ts';
import type { SentencePieceModel } from '../../../src-main/engine/tokenizer/sentencepiece-model.ts';
import { SentencePieceProcessor } from '../../../src-main/engine/tokenizer/sentencepiece.ts';
import { OwleryError } from '../../../src-shared/errors.ts';

const MODEL_PATH = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint/tokenizer.model', import.meta.url));

let bytes: Uint8Array;
let model: SentencePieceModel;
let tmp: string;

beforeAll(async () => {
  bytes = new Uint8Array(await readFile(MODEL_PATH));
  model = await readSentencePieceModel(MODEL_PATH);
  tmp = await mkdtemp(join(tmpdir(), 'owlery-spm-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

function expectInvalid(fn: () => unknown, ...parts: string[]): OwleryError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(OwleryError);
  const e = err as OwleryError;
  expect(e.code, e.message).toBe('TOKENIZER_INVALID');
  for (const p of parts) expect(e.message).toContain(p);
  return e;
}

type PieceDef = [piece: string, score: number, type?: number];

/** Builds a ModelProto: pieces (type 1 NORMAL by default), trainer and normalizer fields. */
function buildModel(
  pieces: PieceDef[],
  trainer: { modelType?: number; byteFallback?: boolean; suffix?: boolean } = {},
  normalizer: { addDummyPrefix?: boolean; removeExtra?: boolean; escape?: boolean; charsmap?: Uint8Array } = {},
): Uint8Array {
  const w = new ProtoWriter();
  for (const [piece, score, type] of pieces) {
    const p = new ProtoWriter().string(1, piece).float(2, score);
    if (type !== undefined) p.varint(3, type);
    w.message(1, p);
  }
  const t = new ProtoWriter().varint(3, trainer.modelType ?? 2);
  if (trainer.byteFallback !== undefined) t.varint(35, trainer.byteFallback);
  if (trainer.suffix !== undefined) t.varint(24, trainer.suffix);
  w.message(2, t);
  const n = new ProtoWriter().string(1, 'identity');
  if (normalizer.charsmap) n.bytes(2, normalizer.charsmap);
  if (normalizer.addDummyPrefix !== undefined) n.varint(3, normalizer.addDummyPrefix);
  if (normalizer.removeExtra !== undefined) n.varint(4, normalizer.removeExtra);
  if (normalizer.escape !== undefined) n.varint(5, normalizer.escape);
  w.message(3, n);
  return w.finish();
}

const SPECIALS: PieceDef[] = [
  ['<unk>', 0, 2],
  ['<s>', 0, 3],
  ['</s>', 0, 3],
];

function processor(pieces: PieceDef[], normalizer: Parameters<typeof buildModel>[2] = {}): SentencePieceProcessor {
  return new SentencePieceProcessor(parseSentencePieceModel(buildModel([...SPECIALS, ...pieces], {}, normalizer), 'test.model'));
}

const encodePieces = (sp: SentencePieceProcessor, text: string): string[] => sp.encode(text).map((p) => p.piece);

describe('parseSentencePieceModel on the LLaMA tokenizer.model', () => {
  it('reads 32000 pieces with their types and scores', () => {
    expect(model.pieces).toHaveLength(32000);
    const counts: Record<string, number> = {};
    for (const p of model.pieces) counts[p.type] = (counts[p.type] ?? 0) + 1;
    expect(counts).toEqual({ UNKNOWN: 1, CONTROL: 2, BYTE: 256, NORMAL: 31741 });
    expect(model.pieces.slice(0, 4)).toEqual([
      { piece: '<unk>', score: 0, type: 'UNKNOWN' },
      { piece: '<s>', score: 0, type: 'CONTROL' },
      { piece: '</s>', score: 0, type: 'CONTROL' },
      { piece: '<0x00>', score: 0, type: 'BYTE' },
    ]);
    expect(model.pieces[259]).toEqual({ piece: '▁▁', score: -1e9, type: 'NORMAL' });
    expect(model.pieces[260]).toEqual({ piece: '▁t', score: -1, type: 'NORMAL' });
    expect(model.pieces[31999]).toEqual({ piece: '给', score: -31740, type: 'NORMAL' });
    // The byte-order-mark character is a piece of its own and must not be stripped.
    expect(model.pieces[30143].piece).toBe('\uFEFF');
  });

  it('reads the trainer spec: BPE with byte fallback', () => {
    expect(model.trainerSpec).toMatchObject({
      modelType: 'BPE',
      vocabSize: 32000,
      byteFallback: true,
      treatWhitespaceAsSuffix: false,
      splitDigits: true,
      allowWhitespaceOnlyPieces: true,
      unkId: 0,
      bosId: 1,
      eosId: 2,
      padId: -1,
      unkSurface: ' \u2047 ',
    });
  });

  it('reads the normalizer spec: identity, dummy prefix, extra whitespace kept, no NFKC', () => {
    expect(model.normalizerSpec.name).toBe('identity');
    expect(model.normalizerSpec.precompiledCharsmap).toHaveLength(0);
    expect(model.normalizerSpec.addDummyPrefix).toBe(true);
    expect(model.normalizerSpec.removeExtraWhitespaces).toBe(false);
    expect(model.normalizerSpec.escapeWhitespaces).toBe(true); // absent in the file: proto default
    expect(model.denormalizerSpec).toBeUndefined();
  });

  it('normalizes like SentencePiece with this spec', () => {
    const sp = new SentencePieceProcessor(model);
    expect(sp.normalize('')).toBe('');
    expect(sp.normalize(' a  b ')).toBe('▁▁a▁▁b▁');
    expect(sp.normalize('a\tb')).toBe('▁a\tb');
    expect(sp.normalize('\uff21')).toBe('▁\uff21'); // no NFKC
  });
});

describe('invalid files', () => {
  it('a truncated file is TOKENIZER_INVALID and names the file', () => {
    // Cut inside a piece, in the middle of the vocabulary, and just before the specs.
    for (const n of [1, 7, 100_000, bytes.length - 200, bytes.length - 1]) {
      expectInvalid(() => parseSentencePieceModel(bytes.subarray(0, n), 'my/tokenizer.model'), 'my/tokenizer.model');
    }
  });

  it('a file cut exactly at a field boundary (specs lost) is detected', () => {
    // Find where the pieces end: the first top-level field that is not field 1.
    const specsAt = bytes.indexOf(0x12, findPiecesEnd(bytes));
    expect(specsAt).toBeGreaterThan(0);
    expectInvalid(() => parseSentencePieceModel(bytes.subarray(0, specsAt), 'cut.model'), 'cut.model', 'trainer_spec');
  });

  it('another kind of file is TOKENIZER_INVALID', () => {
    expectInvalid(() => parseSentencePieceModel(new TextEncoder().encode('{"legacy": false}'), 'x.model'), 'x.model');
    expectInvalid(() => parseSentencePieceModel(new Uint8Array(0), 'empty.model'), 'empty.model');
    expectInvalid(() => parseSentencePieceModel(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), 'png.model'));
  });

  it('inconsistent vocabularies are refused', () => {
    const parse = (pieces: PieceDef[], byteFallback?: boolean): unknown =>
      parseSentencePieceModel(buildModel(pieces, { byteFallback }), 't.model');
    expectInvalid(() => parse([['a', 0]]), 'unknown piece');
    expectInvalid(() => parse([...SPECIALS, ['a', 0], ['a', -1]]), 'defined twice');
    expectInvalid(() => parse([...SPECIALS, ['<0x41>', 0, 6]]), 'byte_fallback');
    expectInvalid(() => parse([...SPECIALS, ['<0x41>', 0, 6]], true), '256 byte pieces');
    expectInvalid(() => parse([...SPECIALS, ['', 0]]), 'empty');
  });

  it('unsupported models are refused when building the processor', () => {
    const unigram = parseSentencePieceModel(buildModel([...SPECIALS, ['a', 0]], { modelType: 1 }), 'u.model');
    expectInvalid(() => new SentencePieceProcessor(unigram, 'u.model'), 'UNIGRAM', 'u.model');
    const nfkc = parseSentencePieceModel(buildModel([...SPECIALS, ['a', 0]], {}, { charsmap: new Uint8Array([1, 2, 3]) }), 'n.model');
    expectInvalid(() => new SentencePieceProcessor(nfkc, 'n.model'), 'precompiled_charsmap');
  });

  it('LlamaTokenizer.fromFiles reports the path of a truncated file', async () => {
    const path = join(tmp, 'tokenizer.model');
    await writeFile(path, bytes.subarray(0, 5000));
    await expect(LlamaTokenizer.fromFiles(path)).rejects.toMatchObject({ code: 'TOKENIZER_INVALID', message: expect.stringContaining(path) });
    await expect(LlamaTokenizer.fromFiles(join(tmp, 'missing.model'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
  });
});

/** Offset just past the last top-level field 1 (pieces) of a ModelProto. */
function findPiecesEnd(buf: Uint8Array): number {
  let pos = 0;
  for (;;) {
    if (buf[pos] !== 0x0a) return pos; // key of field 1, wire type 2
    pos++;
    let len = 0;
    let shift = 0;
    for (;;) {
      const b = buf[pos++];
      len |= (b & 0x7f) << shift;
      if ((b & 0x80) === 0) break;
      shift += 7;
    }
    pos += len;
  }
}

describe('BPE mechanics on hand-built vocabularies', () => {
  const base: PieceDef[] = [
    ['▁', -10],
    ['a', -10],
    ['b', -10],
    ['c', -10],
  ];

  it('merges the highest-scoring pair first', () => {
    // "▁abc": candidate pairs ab (-2) and bc (-1): bc wins, then a+bc is not a piece.
    const sp = processor([...base, ['ab', -2], ['bc', -1]]);
    expect(encodePieces(sp, 'abc')).toEqual(['▁', 'a', 'bc']);
    // With ab scoring higher, ab merges first and ab+c is not a piece.
    const sp2 = processor([...base, ['ab', -1], ['bc', -2]]);
    expect(encodePieces(sp2, 'abc')).toEqual(['▁', 'ab', 'c']);
  });

  it('breaks score ties by the leftmost pair', () => {
    const sp = processor([...base, ['ab', -1], ['bc', -1]]);
    expect(encodePieces(sp, 'abc')).toEqual(['▁', 'ab', 'c']);
  });

  it('keeps merging as long as the merged piece exists', () => {
    const sp = processor([...base, ['▁a', -1], ['bc', -2], ['▁abc', -3]]);
    expect(encodePieces(sp, 'abc')).toEqual(['▁abc']);
    expect(sp.encode('abc')[0].id).toBe(9);
  });

  it('resegments UNUSED pieces into the pieces they were merged from', () => {
    // "ab" (UNUSED, type 5) still takes part in merging, then is split back into a, b.
    const sp = processor([...base, ['ab', -1, 5]]);
    expect(encodePieces(sp, 'ab')).toEqual(['▁', 'a', 'b']);
  });

  it('user-defined symbols stay whole and never merge with their neighbours', () => {
    const sp = processor([...base, ['<x>', 0, 4], ['a<', -1], ['▁a', -1]]);
    expect(encodePieces(sp, 'a<x>b')).toEqual(['▁a', '<x>', 'b']);
  });

  it('without byte fallback, runs of unknown characters become one <unk>', () => {
    const sp = processor(base);
    expect(sp.encode('azzb')).toEqual([
      { piece: '▁', id: 3 },
      { piece: 'a', id: 4 },
      { piece: 'zz', id: 0 },
      { piece: 'b', id: 5 },
    ]);
    expect(sp.decode([3, 4, 0, 5])).toBe('a \u2047 b');
  });

  it('remove_extra_whitespaces: leading, trailing and repeated spaces collapse', () => {
    const sp = processor(base, { removeExtra: true });
    expect(sp.normalize('  a   b  ')).toBe('▁a▁b');
    expect(sp.normalize('   ')).toBe('');
    // With remove_extra_whitespaces the decoder never marks the leading ▁ as consumed, so every
    // leading ▁ piece is stripped while the text is still empty.
    expect(sp.decode([3, 3, 4])).toBe('a');
  });

  it('add_dummy_prefix: false and escape_whitespaces: false', () => {
    expect(processor(base, { addDummyPrefix: false, removeExtra: false }).normalize(' a')).toBe('▁a');
    expect(processor(base, { removeExtra: false, escape: false }).normalize('a b')).toBe(' a b');
  });
});
