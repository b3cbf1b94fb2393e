/**
 * Checks a checkpoint's `tokenizer.model` before a conversion writes anything: the whole
 * SentencePiece `ModelProto` is walked (every piece, the trainer and normalizer settings), and it
 * must be what the engine can load for this model: a BPE model without normalization rules, one
 * unknown piece, unique non-empty pieces, all 256 byte pieces when byte fallback is on, exactly
 * `vocab_size` pieces, and `<s>`/`</s>` control pieces at config.json's `bos_token_id` /
 * `eos_token_id`. Field numbers follow `sentencepiece_model.proto` (as the engine's reader,
 * src-main/engine/tokenizer/sentencepiece-model.ts, which parses the same file when chatting).
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { WIRE_LEN, WIRE_VARINT, protoFields } from '../protobuf.ts';
import type { ProtoField } from '../protobuf.ts';
import type { LlmConfig } from './config.ts';

/** What the check learned about the tokenizer. */
export interface TokenizerSummary {
  pieces: number;
  bosPiece: string;
  eosPiece: string;
}

const CONTROL = 3;
const UNKNOWN = 2;
const BYTE = 6;
const BPE = 2;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

class Bad extends Error {}

function want(f: ProtoField, wire: number, what: string): ProtoField {
  if (f.wire !== wire) throw new Bad(`${what} has wire type ${f.wire}, expected ${wire}`);
  return f;
}

/** A varint field as a signed 64-bit number (int32 fields are written sign-extended). */
function int(f: ProtoField, what: string): number {
  return Number(BigInt.asIntN(64, want(f, WIRE_VARINT, what).varint!));
}

function text(f: ProtoField, what: string): string {
  try {
    return utf8.decode(want(f, WIRE_LEN, what).bytes!);
  } catch (err) {
    if (err instanceof Bad) throw err;
    throw new Bad(`${what} is not valid UTF-8`);
  }
}

/** The settings of `TrainerSpec` that decide ids; proto2 defaults for absent fields. */
function trainerOf(buf: Uint8Array): { modelType: number; byteFallback: boolean; bosId: number; eosId: number; unkId: number; bosPiece: string; eosPiece: string } {
  const t = { modelType: 1, byteFallback: false, bosId: 1, eosId: 2, unkId: 0, bosPiece: '<s>', eosPiece: '</s>' };
  for (const f of protoFields(buf)) {
    if (f.field === 3) t.modelType = int(f, 'trainer_spec.model_type');
    else if (f.field === 35) t.byteFallback = int(f, 'trainer_spec.byte_fallback') !== 0;
    else if (f.field === 40) t.unkId = int(f, 'trainer_spec.unk_id');
    else if (f.field === 41) t.bosId = int(f, 'trainer_spec.bos_id');
    else if (f.field === 42) t.eosId = int(f, 'trainer_spec.eos_id');
    else if (f.field === 46) t.bosPiece = text(f, 'trainer_spec.bos_piece');
    else if (f.field === 47) t.eosPiece = text(f, 'trainer_spec.eos_piece');
  }
  return t;
}

/**
 * Checks `bytes` (the contents of `file`) against the model's config. Throws
 * `TOKENIZER_INVALID` naming `file` and the problem.
 */
export function checkTokenizerModel(bytes: Uint8Array, file: string, llm: Pick<LlmConfig, 'vocabSize' | 'bosTokenId' | 'eosTokenId'>): TokenizerSummary {
  const fail = (why: string): never => {
    throw new OwleryError('TOKENIZER_INVALID', `${file} is not a valid SentencePiece model for this checkpoint: ${why}.`, { file });
  };
  const pieces: string[] = [];
  const types: number[] = [];
  let trainer: ReturnType<typeof trainerOf> | undefined;
  let charsmap = 0;
  let normalizer = false;
  try {
    for (const f of protoFields(bytes)) {
      if (f.field === 1) {
        let piece = '';
        let type = 1;
        for (const p of protoFields(want(f, WIRE_LEN, 'a piece').bytes!)) {
          if (p.field === 1) piece = text(p, `piece ${pieces.length}`);
          else if (p.field === 3) type = int(p, `piece ${pieces.length} type`);
        }
        if (piece === '') throw new Bad(`piece ${pieces.length} is empty`);
        if (type < 1 || type > 6) throw new Bad(`piece ${pieces.length} has unknown type ${type}`);
        pieces.push(piece);
        types.push(type);
      } else if (f.field === 2) {
        trainer = trainerOf(want(f, WIRE_LEN, 'trainer_spec').bytes!);
      } else if (f.field === 3) {
        normalizer = true;
        for (const n of protoFields(want(f, WIRE_LEN, 'normalizer_spec').bytes!)) if (n.field === 2) charsmap = want(n, WIRE_LEN, 'precompiled_charsmap').bytes!.length;
      } else if (f.field === 4 || f.field === 5) {
        want(f, WIRE_LEN, f.field === 4 ? 'self_test_data' : 'denormalizer_spec');
      } else {
        throw new Bad(`unexpected top-level field ${f.field}`);
      }
    }
  } catch (err) {
    if (err instanceof OwleryError) throw err;
    return fail(`${(err as Error).message.replace(/^protobuf: /, '')} (not a SentencePiece model, or a damaged one)`);
  }
  if (pieces.length === 0) fail('it has no vocabulary pieces (not a SentencePiece model)');
  if (!trainer || !normalizer) return fail(`its ${trainer ? 'normalizer' : 'trainer'} settings are missing (a truncated or damaged file)`);
  if (trainer.modelType !== BPE) fail(`it is a SentencePiece model of type ${trainer.modelType}, not BPE (type 2) as LLaMA's`);
  if (charsmap > 0) fail('it has normalization rules (precompiled_charsmap), which LLaMA\'s tokenizer does not');
  const seen = new Set<string>();
  let bytePieces = 0;
  pieces.forEach((p, i) => {
    if (seen.has(p)) fail(`piece ${JSON.stringify(p)} is defined twice`);
    seen.add(p);
    if (types[i] === BYTE) bytePieces++;
  });
  if (types.filter((t) => t === UNKNOWN).length !== 1) fail('it must have exactly one unknown piece');
  if (trainer.byteFallback && bytePieces !== 256) fail(`byte_fallback is on but ${bytePieces} of the 256 byte pieces exist`);
  if (pieces.length !== llm.vocabSize) fail(`it has ${pieces.length} pieces, but config.json's vocab_size is ${llm.vocabSize}`);
  const special = (key: 'bos' | 'eos', id: number, piece: string): void => {
    const configId = key === 'bos' ? llm.bosTokenId : llm.eosTokenId;
    if (configId !== id) fail(`config.json's ${key}_token_id is ${configId}, but the tokenizer's ${piece} is id ${id}`);
    if (pieces[id] !== piece || types[id] !== CONTROL) fail(`the ${key} piece ${piece} is not a control piece at id ${id}`);
  };
  special('bos', trainer.bosId, trainer.bosPiece);
  special('eos', trainer.eosId, trainer.eosPiece);
  if (types[trainer.unkId] !== UNKNOWN) fail(`unk_id ${trainer.unkId} is not the unknown piece`);
  return { pieces: pieces.length, bosPiece: trainer.bosPiece, eosPiece: trainer.eosPiece };
}
