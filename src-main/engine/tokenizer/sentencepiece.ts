/**
 * A SentencePiece BPE processor: the encode and decode paths of Google's `sentencepiece` library
 * (`normalizer.cc`, `bpe_model.cc`, `sentencepiece_processor.cc`, v0.1.97–0.1.99) for models
 * without precompiled normalization rules, such as Meta's LLaMA tokenizer.
 *
 * Encoding: normalize (dummy `▁` prefix, optional extra-whitespace removal, spaces escaped to `▁`),
 * split into characters (user-defined symbols stay whole), merge the adjacent pair whose merged
 * piece has the highest score (leftmost on ties) until no pair is in the vocabulary, and turn
 * characters that are not in the vocabulary into `<0xNN>` byte pieces when byte fallback is on.
 * Decoding: `▁` becomes a space, the first piece's leading `▁` is dropped, runs of byte pieces are
 * decoded as UTF-8 with one U+FFFD per invalid byte, control pieces print nothing.
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { SentencePieceModel, PieceType } from './sentencepiece-model.ts';

/** U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's escaped space. */
export const SPACE_SYMBOL = '\u2581';

/** One piece of an encoding, with its id. */
export interface EncodedPiece {
  piece: string;
  id: number;
}

const REPLACEMENT = '\uFFFD';

/**
 * Decodes one UTF-8 character at `bytes[offset]`, looking at no more than `end - offset` bytes,
 * exactly like SentencePiece's `string_util::DecodeUTF8` + `IsValidDecodeUTF8`: on success returns
 * the character and its length; otherwise U+FFFD with length 1 (overlong forms, surrogates, code
 * points above U+10FFFF and sequences cut short are all invalid).
 */
export function decodeUtf8Char(bytes: ArrayLike<number>, offset: number, end: number): [string, number] {
  const len = end - offset;
  const b0 = bytes[offset];
  const trail = (i: number): boolean => (bytes[offset + i] & 0xc0) === 0x80;
  const valid = (cp: number): boolean => cp < 0xd800 || (cp >= 0xe000 && cp <= 0x10ffff);
  if (b0 < 0x80) return [String.fromCharCode(b0), 1];
  if (len >= 2 && (b0 & 0xe0) === 0xc0) {
    const cp = ((b0 & 0x1f) << 6) | (bytes[offset + 1] & 0x3f);
    if (trail(1) && cp >= 0x80 && valid(cp)) return [String.fromCodePoint(cp), 2];
  } else if (len >= 3 && (b0 & 0xf0) === 0xe0) {
    const cp = ((b0 & 0x0f) << 12) | ((bytes[offset + 1] & 0x3f) << 6) | (bytes[offset + 2] & 0x3f);
    if (trail(1) && trail(2) && cp >= 0x800 && valid(cp)) return [String.fromCodePoint(cp), 3];
  } else if (len >= 4 && (b0 & 0xf8) === 0xf0) {
    const cp =
      ((b0 & 0x07) << 18) | ((bytes[offset + 1] & 0x3f) << 12) | ((bytes[offset + 2] & 0x3f) << 6) | (bytes[offset + 3] & 0x3f);
    if (trail(1) && trail(2) && trail(3) && cp >= 0x10000 && valid(cp)) return [String.fromCodePoint(cp), 4];
  }
  return [REPLACEMENT, 1];
}

/**
 * How many bytes `decodeUtf8Char` needs to see before its verdict on a character starting with
 * `lead` can no longer change (1 for ASCII and for bytes that can never start a character).
 */
export function utf8NeededBytes(lead: number): number {
  if ((lead & 0xe0) === 0xc0) return 2;
  if ((lead & 0xf0) === 0xe0) return 3;
  if ((lead & 0xf8) === 0xf0) return 4;
  return 1;
}

/** Decodes a complete run of bytes the way SentencePiece decodes a run of byte pieces. */
export function decodeByteRun(bytes: readonly number[]): string {
  let out = '';
  for (let off = 0; off < bytes.length; ) {
    const [ch, n] = decodeUtf8Char(bytes, off, bytes.length);
    out += ch;
    off += n;
  }
  return out;
}

const encoder = new TextEncoder();

/** Splits a JS string into characters (code points); lone surrogates become U+FFFD, as UTF-8 encoding does. */
function codePoints(text: string): string[] {
  const out: string[] = [];
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    out.push(c >= 0xd800 && c <= 0xdfff ? REPLACEMENT : ch);
  }
  return out;
}

/** Longest-match lookup of user-defined symbols (SentencePiece's `PrefixMatcher`). */
class PrefixMatcher {
  private readonly symbols: Set<string>;
  private readonly lengths: number[];
  constructor(symbols: Iterable<string>) {
    this.symbols = new Set(symbols);
    this.lengths = [...new Set([...this.symbols].map((s) => s.length))].sort((a, b) => b - a);
  }

  get empty(): boolean {
    return this.symbols.size === 0;
  }

  /** Length (UTF-16 units) of the longest symbol starting at `pos`, or 0. */
  match(text: string, pos: number): number {
    for (const len of this.lengths) {
      if (pos + len <= text.length && this.symbols.has(text.slice(pos, pos + len))) return len;
    }
    return 0;
  }

  /** Splits text into units: whole user-defined symbols (frozen) or single characters. */
  split(text: string): { unit: string; frozen: boolean }[] {
    if (this.empty) return codePoints(text).map((unit) => ({ unit, frozen: false }));
    const out: { unit: string; frozen: boolean }[] = [];
    let pos = 0;
    while (pos < text.length) {
      const n = this.match(text, pos);
      if (n > 0) {
        out.push({ unit: text.slice(pos, pos + n), frozen: true });
        pos += n;
      } else {
        const c = text.codePointAt(pos)!;
        const width = c > 0xffff ? 2 : 1;
        out.push({ unit: c >= 0xd800 && c <= 0xdfff ? REPLACEMENT : text.slice(pos, pos + width), frozen: false });
        pos += width;
      }
    }
    return out;
  }
}

interface Candidate {
  left: number;
  right: number;
  score: number;
  /** Length of the merged piece when the candidate was made; a stale candidate no longer matches. */
  size: number;
}

/** Max-heap on (score, then smaller `left`): the order of SentencePiece's BPE agenda. */
class Agenda {
  private readonly heap: Candidate[] = [];

  get size(): number {
    return this.heap.length;
  }

  private before(a: Candidate, b: Candidate): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }

  push(c: Candidate): void {
    const h = this.heap;
    h.push(c);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  pop(): Candidate {
    const h = this.heap;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < h.length && this.before(h[l], h[best])) best = l;
        if (r < h.length && this.before(h[r], h[best])) best = r;
        if (best === i) break;
        [h[i], h[best]] = [h[best], h[i]];
        i = best;
      }
    }
    return top;
  }
}

/** Encoder/decoder over a parsed SentencePiece BPE model. */
export class SentencePieceProcessor {
  /** Piece text → id for NORMAL, USER_DEFINED and UNUSED pieces (the ones BPE may produce). */
  private readonly normal = new Map<string, number>();
  /** Piece text → id for CONTROL, UNKNOWN and BYTE pieces. */
  private readonly reserved = new Map<string, number>();
  private readonly types: PieceType[];
  private readonly scores: number[];
  private readonly byteToId = new Int32Array(256).fill(-1);
  /** id → byte value for BYTE pieces, -1 otherwise. */
  private readonly idToByte: Int16Array;
  private readonly matcher: PrefixMatcher;
  /** Id of the UNKNOWN piece. */
  readonly unkId: number;

  constructor(
    readonly model: SentencePieceModel,
    fileName = 'tokenizer.model',
  ) {
    const { trainerSpec, normalizerSpec, denormalizerSpec } = model;
    const unsupported = (what: string): never => {
      throw new OwleryError('TOKENIZER_INVALID', `${fileName}: ${what} is not supported.`, { file: fileName });
    };
    if (trainerSpec.modelType !== 'BPE') unsupported(`a SentencePiece ${trainerSpec.modelType} model (only BPE)`);
    if (normalizerSpec.precompiledCharsmap.length > 0) {
      unsupported(`the normalization rules of normalizer "${normalizerSpec.name}" (precompiled_charsmap)`);
    }
    if (denormalizerSpec && denormalizerSpec.precompiledCharsmap.length > 0) unsupported('a denormalizer');

    this.types = model.pieces.map((p) => p.type);
    this.scores = model.pieces.map((p) => p.score);
    this.idToByte = new Int16Array(model.pieces.length).fill(-1);
    const userDefined: string[] = [];
    let unk = -1;
    model.pieces.forEach((p, id) => {
      const isNormal = p.type === 'NORMAL' || p.type === 'USER_DEFINED' || p.type === 'UNUSED';
      (isNormal ? this.normal : this.reserved).set(p.piece, id);
      if (p.type === 'USER_DEFINED') userDefined.push(p.piece);
      if (p.type === 'UNKNOWN') unk = id;
      if (p.type === 'BYTE') {
        const b = parseInt(p.piece.slice(3, 5), 16);
        this.byteToId[b] = id;
        this.idToByte[id] = b;
      }
    });
    this.unkId = unk;
    this.matcher = new PrefixMatcher(userDefined);
  }

  /** Number of pieces in the vocabulary. */
  get vocabSize(): number {
    return this.types.length;
  }

  /** Id of `piece`, or the unknown id when the vocabulary has no such piece (`PieceToId`). */
  pieceToId(piece: string): number {
    return this.reserved.get(piece) ?? this.normal.get(piece) ?? this.unkId;
  }

  /** Whether `piece` is in the vocabulary. */
  hasPiece(piece: string): boolean {
    return this.reserved.has(piece) || this.normal.has(piece);
  }

  /** Text of piece `id` (the caller checks the range). */
  idToPiece(id: number): string {
    return this.model.pieces[id].piece;
  }

  /** Type of piece `id` (the caller checks the range). */
  pieceType(id: number): PieceType {
    return this.types[id];
  }

  /** Byte value of a `<0xNN>` piece, or -1 for any other id. */
  byteOf(id: number): number {
    return this.idToByte[id];
  }

  /** SentencePiece's `Normalizer::Normalize` for a model without normalization rules. */
  normalize(text: string): string {
    const spec = this.model.normalizerSpec;
    const suffix = this.model.trainerSpec.treatWhitespaceAsSuffix;
    const ws = spec.escapeWhitespaces ? SPACE_SYMBOL : ' ';
    const units = this.matcher.split(text).map((u) => u.unit);
    let i = 0;
    if (spec.removeExtraWhitespaces) while (i < units.length && units[i] === ' ') i++;
    if (i >= units.length) return '';
    let out = !suffix && spec.addDummyPrefix ? ws : '';
    let prevSpace = spec.removeExtraWhitespaces;
    for (; i < units.length; i++) {
      let unit = units[i];
      if (prevSpace) while (unit.startsWith(' ')) unit = unit.slice(1);
      if (unit.length > 0) {
        out += spec.escapeWhitespaces ? unit.replaceAll(' ', SPACE_SYMBOL) : unit;
        prevSpace = unit.endsWith(' ');
      }
      if (!spec.removeExtraWhitespaces) prevSpace = false;
    }
    if (spec.removeExtraWhitespaces) while (out.endsWith(ws)) out = out.slice(0, -ws.length);
    if (suffix && spec.addDummyPrefix) out += ws;
    return out;
  }

  /** BPE over already-normalized text (`bpe::Model::Encode`): the final pieces, before byte fallback. */
  private bpe(normalized: string): string[] {
    if (normalized.length === 0) return [];
    const syms = this.matcher.split(normalized);
    const n = syms.length;
    const piece = syms.map((s) => s.unit);
    const frozen = syms.map((s) => s.frozen);
    const prev = Array.from({ length: n }, (_, i) => i - 1);
    const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const agenda = new Agenda();
    const revMerge = new Map<string, [string, string]>();

    const maybeAdd = (left: number, right: number): void => {
      if (left === -1 || right === -1 || frozen[left] || frozen[right]) return;
      const merged = piece[left] + piece[right];
      const id = this.normal.get(merged);
      if (id === undefined) return;
      agenda.push({ left, right, score: this.scores[id], size: merged.length });
      if (this.types[id] === 'UNUSED') revMerge.set(merged, [piece[left], piece[right]]);
    };

    for (let i = 1; i < n; i++) maybeAdd(i - 1, i);
    while (agenda.size > 0) {
      const top = agenda.pop();
      const l = piece[top.left];
      const r = piece[top.right];
      if (l.length === 0 || r.length === 0 || l.length + r.length !== top.size) continue; // stale
      piece[top.left] = l + r;
      next[top.left] = next[top.right];
      if (next[top.right] >= 0) prev[next[top.right]] = top.left;
      piece[top.right] = '';
      maybeAdd(prev[top.left], top.left);
      maybeAdd(top.left, next[top.left]);
    }

    const out: string[] = [];
    const resegment = (w: string): void => {
      const id = this.pieceToId(w);
      const split = this.types[id] === 'UNUSED' ? revMerge.get(w) : undefined;
      if (!split) {
        out.push(w);
        return;
      }
      resegment(split[0]);
      resegment(split[1]);
    };
    for (let i = 0; i !== -1; i = next[i]) resegment(piece[i]);
    return out;
  }

  /**
   * Encodes text like `SentencePieceProcessor::Encode`: pieces and ids, with characters outside the
   * vocabulary as `<0xNN>` byte pieces (byte fallback) or merged runs of `<unk>`.
   */
  encode(text: string): EncodedPiece[] {
    const byteFallback = this.model.trainerSpec.byteFallback;
    const out: EncodedPiece[] = [];
    let prevUnk = false;
    for (const w of this.bpe(this.normalize(text))) {
      const id = this.pieceToId(w);
      const isUnk = this.types[id] === 'UNKNOWN';
      if (isUnk && byteFallback) {
        for (const b of encoder.encode(w)) out.push({ piece: this.idToPiece(this.byteToId[b]), id: this.byteToId[b] });
      } else if (isUnk && prevUnk) {
        out[out.length - 1].piece += w;
      } else {
        out.push({ piece: w, id });
      }
      prevUnk = isUnk;
    }
    return out;
  }

  /**
   * Decodes ids like `SentencePieceProcessor::Decode` (ids must be in range): `▁` → space, the
   * leading `▁` of the first piece dropped, byte runs decoded as UTF-8 (one U+FFFD per invalid
   * byte), control pieces invisible, `<unk>` printed as the model's unknown surface (" ⁇ ").
   */
  decode(ids: readonly number[]): string {
    let text = '';
    let bytes: number[] = [];
    let isBosWs = true;
    let bosWsSeen = false;
    for (const id of ids) {
      const b = this.idToByte[id];
      if (b >= 0) {
        bytes.push(b);
        continue;
      }
      text += decodeByteRun(bytes);
      bytes = [];
      if (bosWsSeen || text.length > 0) isBosWs = false;
      const [surface, consumed] = this.decodePiece(id, isBosWs);
      text += surface;
      bosWsSeen = consumed;
    }
    return text + decodeByteRun(bytes);
  }

  /**
   * Surface of one non-byte piece; the flag says whether it consumed the leading `▁` that the
   * dummy prefix put at the start of the text (`DecodeSentencePiece`).
   */
  decodePiece(id: number, isBosWs: boolean): [string, boolean] {
    const type = this.types[id];
    if (type === 'CONTROL') return ['', false];
    if (type === 'UNKNOWN') return [this.model.trainerSpec.unkSurface, false];
    let piece = this.idToPiece(id);
    let hasBosWs = false;
    const spec = this.model.normalizerSpec;
    if (isBosWs && (spec.addDummyPrefix || spec.removeExtraWhitespaces)) {
      if (piece.startsWith(SPACE_SYMBOL)) {
        piece = piece.slice(SPACE_SYMBOL.length);
        hasBosWs = true;
      }
      if (spec.removeExtraWhitespaces) hasBosWs = false;
    }
    return [piece.replaceAll(SPACE_SYMBOL, ' '), hasBosWs];
  }
}
