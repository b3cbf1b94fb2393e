/**
 * Reads a SentencePiece `tokenizer.model` file (a serialized `sentencepiece.ModelProto`).
 *
 * Only what encoding and decoding need is kept: the pieces (text, score, type), the trainer
 * settings that change how text is segmented (model type, byte fallback, special piece names) and
 * the normalizer settings (dummy prefix, extra-whitespace removal, whitespace escaping, and the
 * precompiled normalization rules, which the tokenizer refuses when present). Field numbers follow
 * `sentencepiece_model.proto`; absent fields take that file's proto2 defaults.
 */
import { readFile } from 'node:fs/promises';
import { fixedFloat32, protoFields, WIRE_I32, WIRE_LEN, WIRE_VARINT } from '../../../models/protobuf.ts';
import type { ProtoField } from '../../../models/protobuf.ts';
import { OwleryError } from '../../../src-shared/errors.ts';

/** The type of one vocabulary entry (`ModelProto.SentencePiece.Type`). */
export type PieceType = 'NORMAL' | 'UNKNOWN' | 'CONTROL' | 'USER_DEFINED' | 'BYTE' | 'UNUSED';

/** One vocabulary entry; its id is its index in `SentencePieceModel.pieces`. */
export interface SentencePiece {
  piece: string;
  /** Merge priority for BPE (larger merges first); stored as float32. */
  score: number;
  type: PieceType;
}

/** Segmentation algorithm the model was trained with (`TrainerSpec.ModelType`). */
export type ModelType = 'UNIGRAM' | 'BPE' | 'WORD' | 'CHAR';

/** The `TrainerSpec` fields that matter at encode/decode time. */
export interface TrainerSpec {
  modelType: ModelType;
  vocabSize: number;
  byteFallback: boolean;
  treatWhitespaceAsSuffix: boolean;
  splitDigits: boolean;
  allowWhitespaceOnlyPieces: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
  /** What SentencePiece's own decoder prints for `<unk>` (default " ⁇ "). */
  unkSurface: string;
}

/** A `NormalizerSpec` (also used for the optional denormalizer). */
export interface NormalizerSpec {
  name: string;
  /** Compiled normalization rules (e.g. NFKC); empty for the identity normalizer. */
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

/** A parsed `tokenizer.model`. */
export interface SentencePieceModel {
  pieces: SentencePiece[];
  trainerSpec: TrainerSpec;
  normalizerSpec: NormalizerSpec;
  /** Present only when the file has one. */
  denormalizerSpec?: NormalizerSpec;
}

const PIECE_TYPES: Record<number, PieceType> = {
  1: 'NORMAL',
  2: 'UNKNOWN',
  3: 'CONTROL',
  4: 'USER_DEFINED',
  5: 'UNUSED',
  6: 'BYTE',
};

const MODEL_TYPES: Record<number, ModelType> = { 1: 'UNIGRAM', 2: 'BPE', 3: 'WORD', 4: 'CHAR' };

class Invalid extends Error {}

function expectWire(f: ProtoField, wire: number, what: string): void {
  if (f.wire !== wire) throw new Invalid(`${what} (field ${f.field}) has wire type ${f.wire}, expected ${wire}`);
}

function varintNumber(f: ProtoField, what: string): number {
  expectWire(f, WIRE_VARINT, what);
  // int32 fields are written sign-extended to 64 bits (e.g. pad_id = -1).
  return Number(BigInt.asIntN(64, f.varint!));
}

function varintBool(f: ProtoField, what: string): boolean {
  return varintNumber(f, what) !== 0;
}

// Not `fieldString`: a piece may be exactly U+FEFF (LLaMA id 30143), which a default TextDecoder
// would strip as a byte-order mark; and invalid UTF-8 must be an error, not U+FFFD.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function str(f: ProtoField, what: string): string {
  expectWire(f, WIRE_LEN, what);
  try {
    return utf8.decode(f.bytes!);
  } catch {
    throw new Invalid(`${what} is not valid UTF-8`);
  }
}

function float(f: ProtoField, what: string): number {
  expectWire(f, WIRE_I32, what);
  return fixedFloat32(f);
}

function parsePiece(buf: Uint8Array, index: number): SentencePiece {
  let piece: string | undefined;
  let score = 0;
  let type: PieceType = 'NORMAL';
  for (const f of protoFields(buf)) {
    if (f.field === 1) piece = str(f, `piece ${index} text`);
    else if (f.field === 2) score = float(f, `piece ${index} score`);
    else if (f.field === 3) {
      const t = varintNumber(f, `piece ${index} type`);
      const name = PIECE_TYPES[t];
      if (!name) throw new Invalid(`piece ${index} has unknown type ${t}`);
      type = name;
    }
  }
  if (piece === undefined || piece.length === 0) throw new Invalid(`piece ${index} is empty`);
  return { piece, score, type };
}

function parseTrainerSpec(buf: Uint8Array): TrainerSpec {
  const spec: TrainerSpec = {
    modelType: 'UNIGRAM',
    vocabSize: 8000,
    byteFallback: false,
    treatWhitespaceAsSuffix: false,
    splitDigits: false,
    allowWhitespaceOnlyPieces: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
    unkSurface: ' \u2047 ',
  };
  for (const f of protoFields(buf)) {
    switch (f.field) {
      case 3: {
        const t = varintNumber(f, 'trainer_spec.model_type');
        const name = MODEL_TYPES[t];
        if (!name) throw new Invalid(`unknown model_type ${t}`);
        spec.modelType = name;
        break;
      }
      case 4: spec.vocabSize = varintNumber(f, 'trainer_spec.vocab_size'); break;
      case 24: spec.treatWhitespaceAsSuffix = varintBool(f, 'trainer_spec.treat_whitespace_as_suffix'); break;
      case 25: spec.splitDigits = varintBool(f, 'trainer_spec.split_digits'); break;
      case 26: spec.allowWhitespaceOnlyPieces = varintBool(f, 'trainer_spec.allow_whitespace_only_pieces'); break;
      case 35: spec.byteFallback = varintBool(f, 'trainer_spec.byte_fallback'); break;
      case 40: spec.unkId = varintNumber(f, 'trainer_spec.unk_id'); break;
      case 41: spec.bosId = varintNumber(f, 'trainer_spec.bos_id'); break;
      case 42: spec.eosId = varintNumber(f, 'trainer_spec.eos_id'); break;
      case 43: spec.padId = varintNumber(f, 'trainer_spec.pad_id'); break;
      case 44: spec.unkSurface = str(f, 'trainer_spec.unk_surface'); break;
      case 45: spec.unkPiece = str(f, 'trainer_spec.unk_piece'); break;
      case 46: spec.bosPiece = str(f, 'trainer_spec.bos_piece'); break;
      case 47: spec.eosPiece = str(f, 'trainer_spec.eos_piece'); break;
      case 48: spec.padPiece = str(f, 'trainer_spec.pad_piece'); break;
      default: break; // training-only settings
    }
  }
  return spec;
}

function parseNormalizerSpec(buf: Uint8Array, what: string): NormalizerSpec {
  const spec: NormalizerSpec = {
    name: '',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
  for (const f of protoFields(buf)) {
    switch (f.field) {
      case 1: spec.name = str(f, `${what}.name`); break;
      case 2:
        expectWire(f, WIRE_LEN, `${what}.precompiled_charsmap`);
        spec.precompiledCharsmap = f.bytes!;
        break;
      case 3: spec.addDummyPrefix = varintBool(f, `${what}.add_dummy_prefix`); break;
      case 4: spec.removeExtraWhitespaces = varintBool(f, `${what}.remove_extra_whitespaces`); break;
      case 5: spec.escapeWhitespaces = varintBool(f, `${what}.escape_whitespaces`); break;
      default: break;
    }
  }
  return spec;
}

/**
 * Parses the bytes of a SentencePiece model.
 *
 * Throws `OwleryError('TOKENIZER_INVALID')`, naming `fileName`, when the bytes are not a complete
 * SentencePiece model (truncated, another format, empty or duplicate pieces, no `<unk>`, byte pieces
 * without byte fallback, or missing trainer/normalizer settings).
 */
export function parseSentencePieceModel(bytes: Uint8Array, fileName = 'tokenizer.model'): SentencePieceModel {
  try {
    const pieces: SentencePiece[] = [];
    let trainerSpec: TrainerSpec | undefined;
    let normalizerSpec: NormalizerSpec | undefined;
    let denormalizerSpec: NormalizerSpec | undefined;
    for (const f of protoFields(bytes)) {
      switch (f.field) {
        case 1:
          expectWire(f, WIRE_LEN, 'pieces');
          pieces.push(parsePiece(f.bytes!, pieces.length));
          break;
        case 2:
          expectWire(f, WIRE_LEN, 'trainer_spec');
          trainerSpec = parseTrainerSpec(f.bytes!);
          break;
        case 3:
          expectWire(f, WIRE_LEN, 'normalizer_spec');
          normalizerSpec = parseNormalizerSpec(f.bytes!, 'normalizer_spec');
          break;
        case 4:
          expectWire(f, WIRE_LEN, 'self_test_data');
          break;
        case 5:
          expectWire(f, WIRE_LEN, 'denormalizer_spec');
          denormalizerSpec = parseNormalizerSpec(f.bytes!, 'denormalizer_spec');
          break;
        default:
          throw new Invalid(`unexpected top-level field ${f.field}`);
      }
    }
    if (pieces.length === 0) throw new Invalid('it has no vocabulary pieces');
    // SentencePiece writes pieces, then trainer_spec, then normalizer_spec: a file cut short at a
    // field boundary loses the specs, so their absence means "truncated".
    if (!trainerSpec) throw new Invalid('trainer_spec is missing (truncated file?)');
    if (!normalizerSpec) throw new Invalid('normalizer_spec is missing (truncated file?)');
    checkPieces(pieces, trainerSpec);
    const model: SentencePieceModel = { pieces, trainerSpec, normalizerSpec };
    if (denormalizerSpec) model.denormalizerSpec = denormalizerSpec;
    return model;
  } catch (err) {
    if (err instanceof OwleryError) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new OwleryError('TOKENIZER_INVALID', `${fileName} is not a valid SentencePiece model: ${why}.`, {
      file: fileName,
    });
  }
}

const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

/** The same consistency checks SentencePiece's `ModelInterface::InitializePieces` makes. */
function checkPieces(pieces: SentencePiece[], trainer: TrainerSpec): void {
  const seen = new Set<string>();
  let unk = -1;
  const bytes = new Set<number>();
  pieces.forEach((p, i) => {
    if (seen.has(p.piece)) throw new Invalid(`piece ${JSON.stringify(p.piece)} is defined twice`);
    seen.add(p.piece);
    if (p.type === 'UNKNOWN') {
      if (unk >= 0) throw new Invalid('it defines more than one unknown piece');
      unk = i;
    }
    if (p.type === 'BYTE') {
      if (!trainer.byteFallback) throw new Invalid(`byte piece ${p.piece} found although byte_fallback is false`);
      const m = BYTE_PIECE.exec(p.piece);
      if (!m) throw new Invalid(`byte piece ${JSON.stringify(p.piece)} is malformed`);
      bytes.add(parseInt(m[1], 16));
    }
  });
  if (unk < 0) throw new Invalid('it has no unknown piece');
  if (trainer.byteFallback && bytes.size !== 256) {
    throw new Invalid(`byte_fallback is set but only ${bytes.size} of the 256 byte pieces exist`);
  }
}

/**
 * Reads and parses a `tokenizer.model` file.
 *
 * Throws `OwleryError('FILE_NOT_FOUND')` when the file does not exist and
 * `OwleryError('TOKENIZER_INVALID')` when it is not a SentencePiece model.
 */
export async function readSentencePieceModel(path: string): Promise<SentencePieceModel> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new OwleryError('FILE_NOT_FOUND', `Tokenizer file not found: ${path}`, { file: path });
    }
    throw new OwleryError('TOKENIZER_INVALID', `Cannot read tokenizer file ${path}: ${(err as Error).message}`, {
      file: path,
    });
  }
  return parseSentencePieceModel(bytes, path);
}
