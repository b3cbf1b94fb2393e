/**
 * The LLaMA tokenizer exactly as mPLUG-Owl2 runs it: Hugging Face transformers 4.31's slow
 * `LlamaTokenizer` (settings from the checkpoint's `tokenizer_config.json`, normally
 * `legacy: false`, `add_bos_token: true`, `add_eos_token: false`) over the SentencePiece BPE model,
 * plus mPLUG-Owl2's `tokenizer_image_token` (`<|image|>` markers → -200 placeholders).
 *
 * What transformers 4.31 adds on top of SentencePiece, all reproduced here:
 * - Special-token strings (`<s>`, `</s>`, `<unk>`) in the text are cut out and become their ids.
 * - `legacy: false`: every `▁` in the text is first replaced by a space and one `▁` is put in front;
 *   the first stretch of text is encoded with SentencePiece's dummy prefix, but a stretch that follows
 *   a special token and does not start with a space loses the `▁` of its first piece by string
 *   surgery (`▁US` → `US`). When the shortened string is not itself a piece, it becomes `<unk>`
 *   (id 0): transformers 4.31 does exactly that (`</s>Übersetze` → `</s>`, `<unk>`, `et`, `ze`).
 * - `legacy: true`: each stretch is encoded by SentencePiece as is (its own dummy prefix).
 * - Decoding: text between special tokens is decoded by SentencePiece (so each such stretch loses
 *   the leading space of its first piece), special tokens are printed verbatim, and a space is put
 *   in front of a run of ordinary tokens that is followed by a special token (`▁Hi`,`</s>` →
 *   `" Hi</s>"`), unless the run is at index 0.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OwleryError } from '../../../src-shared/errors.ts';
import { readSentencePieceModel } from './sentencepiece-model.ts';
import type { SentencePieceModel } from './sentencepiece-model.ts';
import { decodeByteRun, decodeUtf8Char, SentencePieceProcessor, SPACE_SYMBOL, utf8NeededBytes } from './sentencepiece.ts';

/** The id mPLUG-Owl2 puts where an image's embeddings go (`IMAGE_TOKEN_INDEX`). */
export const IMAGE_TOKEN_INDEX = -200;

/** The image marker in prompt text (`DEFAULT_IMAGE_TOKEN`). */
export const IMAGE_MARKER = '<|image|>';

/** A special token as `tokenizer_config.json` describes it (transformers' `AddedToken`). */
export interface SpecialToken {
  content: string;
  /** Strip whitespace on the token's left (from the text before it). */
  lstrip: boolean;
  /** Strip whitespace on the token's right (from the text after it). */
  rstrip: boolean;
}

/** The `tokenizer_config.json` settings the slow `LlamaTokenizer` uses. */
export interface LlamaTokenizerSettings {
  legacy: boolean;
  addBosToken: boolean;
  addEosToken: boolean;
  bosToken: SpecialToken;
  eosToken: SpecialToken;
  unkToken: SpecialToken;
  padToken: SpecialToken | null;
}

/** Options of `decode` and `createStreamDecoder`. */
export interface DecodeOptions {
  /** Drop `<s>`, `</s>`, `<unk>` (and the pad token) instead of printing them. Default false, as in transformers. */
  skipSpecialTokens?: boolean;
}

/** Incremental decoder for generated ids (see `LlamaTokenizer.createStreamDecoder`). */
export interface StreamDecoder {
  /** Adds one id; returns the text that is now final (possibly empty). */
  push(id: number): string;
  /** Ends the stream: returns the text still held back and resets the decoder. */
  flush(): string;
}

const token = (content: string): SpecialToken => ({ content, lstrip: false, rstrip: false });

/** mPLUG-Owl2's shipped settings (`legacy: false`, BOS added, no EOS); used when no config file is given. */
export const MPLUG_OWL2_TOKENIZER_SETTINGS: Readonly<LlamaTokenizerSettings> = Object.freeze({
  legacy: false,
  addBosToken: true,
  addEosToken: false,
  bosToken: token('<s>'),
  eosToken: token('</s>'),
  unkToken: token('<unk>'),
  padToken: null,
});

/** Code points for which Python's `str.isspace` is true (what `str.strip()` removes). */
const PY_SPACES = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x85, 0xa0, 0x1680,
  0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009, 0x200a,
  0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

function isPySpace(ch: string): boolean {
  return PY_SPACES.has(ch.codePointAt(0)!);
}

function pyRstrip(s: string): string {
  const chars = [...s];
  while (chars.length > 0 && isPySpace(chars[chars.length - 1])) chars.pop();
  return chars.join('');
}

function pyLstrip(s: string): string {
  const chars = [...s];
  let i = 0;
  while (i < chars.length && isPySpace(chars[i])) i++;
  return chars.slice(i).join('');
}

/**
 * Reads the tokenizer settings from the text of a `tokenizer_config.json`, with transformers 4.31's
 * defaults for missing keys (note: a missing `legacy` means `legacy: true` there).
 *
 * Throws `OwleryError('TOKENIZER_INVALID')`, naming `fileName`, for malformed JSON or settings this
 * tokenizer does not implement.
 */
export function parseTokenizerConfig(json: string, fileName = 'tokenizer_config.json'): LlamaTokenizerSettings {
  const fail = (why: string): never => {
    throw new OwleryError('TOKENIZER_INVALID', `${fileName}: ${why}`, { file: fileName });
  };
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    return fail(`not valid JSON (${(err as Error).message}).`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('expected a JSON object.');
  const cfg = raw as Record<string, unknown>;
  const bool = (key: string, dflt: boolean): boolean => {
    const v = cfg[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') return fail(`"${key}" must be true or false, got ${JSON.stringify(v)}.`);
    return v;
  };
  const special = (key: string, dflt: string | null): SpecialToken | null => {
    const v = cfg[key];
    if (v === undefined || v === null) return dflt === null ? null : token(dflt);
    if (typeof v === 'string') return token(v);
    if (typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') {
      const t = v as { content: string; lstrip?: unknown; rstrip?: unknown };
      return { content: t.content, lstrip: t.lstrip === true, rstrip: t.rstrip === true };
    }
    return fail(`"${key}" must be a string or an AddedToken object, got ${JSON.stringify(v)}.`);
  };
  const tokenizerClass = cfg.tokenizer_class;
  if (tokenizerClass !== undefined && tokenizerClass !== null && !/^Llama(Tokenizer)?(Fast)?$/.test(String(tokenizerClass))) {
    fail(`tokenizer_class ${JSON.stringify(tokenizerClass)} is not a LLaMA tokenizer.`);
  }
  if (bool('clean_up_tokenization_spaces', false)) fail('"clean_up_tokenization_spaces": true is not supported.');
  const extra = cfg.additional_special_tokens;
  if (Array.isArray(extra) && extra.length > 0) fail('"additional_special_tokens" are not supported.');
  return {
    legacy: bool('legacy', true),
    addBosToken: bool('add_bos_token', true),
    addEosToken: bool('add_eos_token', false),
    bosToken: special('bos_token', '<s>')!,
    eosToken: special('eos_token', '</s>')!,
    unkToken: special('unk_token', '<unk>')!,
    padToken: special('pad_token', null),
  };
}

type Segment = { text: string; special: false } | { text: string; special: true; token: SpecialToken };

/** transformers 4.31's slow `LlamaTokenizer` over a SentencePiece BPE model, with mPLUG-Owl2's image markers. */
export class LlamaTokenizer {
  /** Id of the beginning-of-sequence token `<s>`. */
  readonly bosId: number;
  /** Id of the end-of-sequence token `</s>`. */
  readonly eosId: number;
  /** Id of the unknown token `<unk>`. */
  readonly unkId: number;
  /** Number of ids (pieces in `tokenizer.model`). */
  readonly vocabSize: number;
  /** Settings in use. */
  readonly settings: Readonly<LlamaTokenizerSettings>;

  private readonly sp: SentencePieceProcessor;
  /** Special tokens in transformers' `all_special_tokens` order, without duplicates. */
  private readonly specials: SpecialToken[];
  /** Ids of the special tokens (`all_special_ids`). */
  private readonly specialIds: Set<number>;

  /**
   * Builds a tokenizer from a parsed model and settings (default: mPLUG-Owl2's shipped settings).
   * Throws `OwleryError('TOKENIZER_INVALID')` when the model is unsupported or a special token is
   * not in its vocabulary.
   */
  constructor(model: SentencePieceModel, settings: LlamaTokenizerSettings = MPLUG_OWL2_TOKENIZER_SETTINGS, fileName = 'tokenizer.model') {
    this.sp = new SentencePieceProcessor(model, fileName);
    this.settings = settings;
    this.vocabSize = this.sp.vocabSize;
    const all = [settings.bosToken, settings.eosToken, settings.unkToken, settings.padToken].filter(
      (t): t is SpecialToken => t !== null,
    );
    this.specials = [];
    for (const t of all) {
      if (!this.sp.hasPiece(t.content)) {
        throw new OwleryError(
          'TOKENIZER_INVALID',
          `${fileName}: the special token ${JSON.stringify(t.content)} is not in the vocabulary.`,
          { file: fileName },
        );
      }
      if (!this.specials.some((s) => s.content === t.content)) this.specials.push(t);
    }
    this.specialIds = new Set(this.specials.map((t) => this.sp.pieceToId(t.content)));
    this.bosId = this.sp.pieceToId(settings.bosToken.content);
    this.eosId = this.sp.pieceToId(settings.eosToken.content);
    this.unkId = this.sp.pieceToId(settings.unkToken.content);
  }

  /**
   * Loads `tokenizer.model` and, if given, `tokenizer_config.json` (without it: mPLUG-Owl2's
   * settings). Throws `OwleryError('FILE_NOT_FOUND')` or `OwleryError('TOKENIZER_INVALID')`.
   */
  static async fromFiles(modelPath: string, tokenizerConfigPath?: string): Promise<LlamaTokenizer> {
    const model = await readSentencePieceModel(modelPath);
    let settings: LlamaTokenizerSettings = MPLUG_OWL2_TOKENIZER_SETTINGS;
    if (tokenizerConfigPath !== undefined) {
      let text: string;
      try {
        text = await readFile(tokenizerConfigPath, 'utf8');
      } catch (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        throw new OwleryError(
          missing ? 'FILE_NOT_FOUND' : 'TOKENIZER_INVALID',
          missing ? `Tokenizer config not found: ${tokenizerConfigPath}` : `Cannot read ${tokenizerConfigPath}: ${(err as Error).message}`,
          { file: tokenizerConfigPath },
        );
      }
      settings = parseTokenizerConfig(text, tokenizerConfigPath);
    }
    return new LlamaTokenizer(model, settings, modelPath);
  }

  /** Loads `tokenizer.model` and `tokenizer_config.json` from a checkpoint or model-package folder. */
  static async fromDir(dir: string): Promise<LlamaTokenizer> {
    return LlamaTokenizer.fromFiles(join(dir, 'tokenizer.model'), join(dir, 'tokenizer_config.json'));
  }

  /** Splits text around special-token strings (leftmost match, longest on ties), as transformers' trie does. */
  private splitOnSpecials(text: string): Segment[] {
    const out: Segment[] = [];
    let start = 0;
    let pos = 0;
    while (pos < text.length) {
      let best: SpecialToken | undefined;
      for (const t of this.specials) {
        if (text.startsWith(t.content, pos) && (!best || t.content.length > best.content.length)) best = t;
      }
      if (!best) {
        pos++;
        continue;
      }
      if (pos > start) out.push({ text: text.slice(start, pos), special: false });
      out.push({ text: best.content, special: true, token: best });
      pos += best.content.length;
      start = pos;
    }
    if (start < text.length) out.push({ text: text.slice(start), special: false });
    // AddedToken lstrip/rstrip eat the whitespace next to the token (both false for LLaMA).
    out.forEach((seg, i) => {
      if (!seg.special) return;
      const left = out[i - 1];
      const right = out[i + 1];
      if (seg.token.rstrip && right && !right.special) right.text = pyLstrip(right.text);
      if (seg.token.lstrip && left && !left.special) left.text = pyRstrip(left.text);
    });
    return out;
  }

  /**
   * Splits text into pieces like transformers' `LlamaTokenizer.tokenize` (no BOS/EOS). A piece may
   * be a string that is not in the vocabulary (see the module comment); it maps to `<unk>`.
   */
  tokenize(text: string): string[] {
    const legacy = this.settings.legacy;
    if (!legacy) text = SPACE_SYMBOL + text.replaceAll(SPACE_SYMBOL, ' ');
    const out: string[] = [];
    for (const seg of this.splitOnSpecials(text)) {
      if (seg.text.length === 0) continue;
      if (seg.special) {
        out.push(seg.text);
        continue;
      }
      if (legacy) {
        for (const p of this.sp.encode(seg.text)) out.push(p.piece);
        continue;
      }
      const isFirst = seg.text.startsWith(SPACE_SYMBOL);
      const body = isFirst ? seg.text.slice(SPACE_SYMBOL.length) : seg.text;
      const pieces = this.sp.encode(body).map((p) => p.piece);
      if (!isFirst && !body.startsWith(' ') && pieces.length > 0 && pieces[0].startsWith(SPACE_SYMBOL)) {
        const rest = pieces[0].slice(SPACE_SYMBOL.length);
        if (rest.length > 0) pieces[0] = rest;
        else pieces.shift();
      }
      for (const p of pieces) out.push(p); // not push(...pieces): a long text has more pieces than a call has room for arguments
    }
    return out;
  }

  /**
   * Encodes text like `tokenizer(text).input_ids` in transformers 4.31: BOS first (unless
   * `addBos: false`, or the config says `add_bos_token: false`), special-token strings as their
   * ids, EOS last only when the config sets `add_eos_token`.
   */
  encode(text: string, opts?: { addBos?: boolean }): number[] {
    const ids = this.tokenize(text).map((p) => this.sp.pieceToId(p));
    if (opts?.addBos ?? this.settings.addBosToken) ids.unshift(this.bosId);
    if (this.settings.addEosToken) ids.push(this.eosId);
    return ids;
  }

  /**
   * mPLUG-Owl2's `tokenizer_image_token`: splits the prompt on `<|image|>`, encodes each non-empty
   * chunk on its own (each with its own dummy prefix), and joins the chunks with one
   * `IMAGE_TOKEN_INDEX` (-200) per marker. When the first chunk's ids start with BOS, that BOS is
   * kept and the first id of every later chunk (its BOS) is dropped; when the prompt starts with a
   * marker, nothing is dropped, so there is no BOS in front and every later chunk keeps its BOS.
   */
  tokenizeWithImages(prompt: string): number[] {
    const chunks = prompt.split(IMAGE_MARKER).map((c) => (c.length > 0 ? this.encode(c) : []));
    const ids: number[] = [];
    let offset = 0;
    if (chunks.length > 0 && chunks[0].length > 0 && chunks[0][0] === this.bosId) {
      offset = 1;
      ids.push(chunks[0][0]);
    }
    // insert_separator(chunks, [IMAGE_TOKEN_INDEX] * (offset + 1)), then x[offset:] for every element.
    const separator = new Array<number>(offset + 1).fill(IMAGE_TOKEN_INDEX);
    chunks.forEach((chunk, i) => {
      if (i > 0) for (const id of separator.slice(offset)) ids.push(id);
      for (let j = offset; j < chunk.length; j++) ids.push(chunk[j]); // a loop: a spread overflows the stack on long prompts
    });
    return ids;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      const what = id === IMAGE_TOKEN_INDEX ? ' (the image placeholder, which has no text)' : '';
      throw new OwleryError('INVALID_ARGUMENT', `Token id ${id}${what} is outside the vocabulary (0..${this.vocabSize - 1}).`);
    }
  }

  /** Text of the piece with this id (e.g. `▁Hello`, `<0x0A>`, `</s>`). */
  idToPiece(id: number): string {
    this.checkId(id);
    return this.sp.idToPiece(id);
  }

  /** Id of a piece; a string that is not a piece gives the unknown id, as SentencePiece's `PieceToId` does. */
  pieceToId(piece: string): number {
    return this.sp.pieceToId(piece);
  }

  /** Whether an id is one of the special tokens (`<s>`, `</s>`, `<unk>`, the pad token). */
  isSpecialId(id: number): boolean {
    return this.specialIds.has(id);
  }

  /**
   * Decodes ids like transformers 4.31's `tokenizer.decode(ids, skip_special_tokens)` with
   * `clean_up_tokenization_spaces: false`. Throws `OwleryError('INVALID_ARGUMENT')` for an id
   * outside the vocabulary (including -200).
   */
  decode(ids: readonly number[], opts?: DecodeOptions): string {
    ids.forEach((id) => this.checkId(id));
    const kept = opts?.skipSpecialTokens ? ids.filter((id) => !this.specialIds.has(id)) : ids;
    let out = '';
    let run: number[] = [];
    let prevSpecial = false;
    kept.forEach((id, i) => {
      if (this.specialIds.has(id)) {
        if (!prevSpecial && i !== 0) out += ' ';
        out += this.sp.decode(run) + this.sp.idToPiece(id);
        prevSpecial = true;
        run = [];
      } else {
        run.push(id);
        prevSpecial = false;
      }
    });
    return out + this.sp.decode(run);
  }

  /**
   * An incremental decoder whose outputs, concatenated, equal `decode(allIds, opts)`. Characters
   * split over several `<0xNN>` byte tokens are held until complete (or until the byte run ends, when
   * each invalid byte becomes U+FFFD), so no broken UTF-8 is ever emitted.
   *
   * With `skipSpecialTokens: true` (what a chat UI wants) text comes out as soon as it is final. With
   * special tokens shown, the text of a run of ordinary tokens is held until the next special token
   * or `flush()`, because transformers puts a space in front of such a run when a special token
   * follows it.
   */
  createStreamDecoder(opts?: DecodeOptions): StreamDecoder {
    return new LlamaStreamDecoder(this, this.sp, opts?.skipSpecialTokens ?? false);
  }
}

/** State machine behind `LlamaTokenizer.createStreamDecoder`. */
class LlamaStreamDecoder implements StreamDecoder {
  /** Index of the next kept id (transformers' `i` in `convert_tokens_to_string`). */
  private index = 0;
  private prevSpecial = false;
  /** SentencePiece decode state of the current run of ordinary tokens. */
  private isBosWs = true;
  private bosWsSeen = false;
  private runHasText = false;
  private pendingBytes: number[] = [];
  /** Text of the current run not yet emitted (only when special tokens are shown). */
  private held = '';

  constructor(
    private readonly tok: LlamaTokenizer,
    private readonly sp: SentencePieceProcessor,
    private readonly skipSpecial: boolean,
  ) {}

  push(id: number): string {
    const piece = this.tok.idToPiece(id); // validates the id
    if (this.tok.isSpecialId(id)) {
      if (this.skipSpecial) return '';
      const space = !this.prevSpecial && this.index !== 0 ? ' ' : '';
      const out = space + this.held + this.endRun() + piece;
      this.held = '';
      this.prevSpecial = true;
      this.index++;
      return out;
    }
    this.prevSpecial = false;
    this.index++;
    let text: string;
    const b = this.sp.byteOf(id);
    if (b >= 0) {
      this.pendingBytes.push(b);
      text = this.completeChars();
    } else {
      text = this.finishBytes();
      if (text.length > 0) this.runHasText = true;
      if (this.bosWsSeen || this.runHasText) this.isBosWs = false;
      const [surface, consumed] = this.sp.decodePiece(id, this.isBosWs);
      this.bosWsSeen = consumed;
      text += surface;
    }
    if (text.length > 0) this.runHasText = true;
    return this.emit(text);
  }

  flush(): string {
    const out = this.held + this.endRun();
    this.held = '';
    this.index = 0;
    this.prevSpecial = false;
    return out;
  }

  private emit(text: string): string {
    if (this.skipSpecial) return text;
    this.held += text;
    return '';
  }

  /** Decodes the characters at the front of the pending bytes whose decoding can no longer change. */
  private completeChars(): string {
    const bytes = this.pendingBytes;
    let off = 0;
    let out = '';
    while (off < bytes.length && bytes.length - off >= utf8NeededBytes(bytes[off])) {
      const [ch, n] = decodeUtf8Char(bytes, off, bytes.length);
      out += ch;
      off += n;
    }
    this.pendingBytes = bytes.slice(off);
    return out;
  }

  /** The byte run is over: decodes what is left of it (incomplete characters become U+FFFD). */
  private finishBytes(): string {
    const text = decodeByteRun(this.pendingBytes);
    this.pendingBytes = [];
    return text;
  }

  /** Ends the current run of ordinary tokens; returns its last text and resets the run state. */
  private endRun(): string {
    const text = this.finishBytes();
    this.isBosWs = true;
    this.bosWsSeen = false;
    this.runHasText = false;
    return text;
  }
}
