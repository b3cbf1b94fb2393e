/**
 * From a request to the prompt's token ids: the `mplug_owl2` chat template (prompt.ts),
 * `tokenizer_image_token` (one -200 id per image marker) and fitting a chat into the context
 * window.
 *
 * Fitting: a chat whose prompt leaves no room for an answer (`room` new tokens) loses its oldest
 * question/answer pairs from the prompt — never the question asked — until it fits; the photos of
 * the pairs left out go with them. The whole prompt is tokenized once; only when it does not fit is
 * each pair tokenized once more to estimate how many to leave out, and the chosen prompt is then
 * tokenized exactly (and one pair more or fewer tried when the estimate was off at a pair's edge:
 * text after `</s>` tokenizes a little differently at the start of a prompt). Leaving out more pairs
 * never makes the prompt longer. Per-chat instructions go into the first turn kept, and an answer
 * being continued (the last turn) is kept like the question it answers (prompt.ts).
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ChatMessage } from '../protocol.ts';
import { IMAGE_TOKEN_INDEX } from '../tokenizer/llama-tokenizer.ts';
import type { LlamaTokenizer } from '../tokenizer/llama-tokenizer.ts';
import { buildChatPrompt } from './prompt.ts';
import type { ChatPromptOptions } from './prompt.ts';

/** A prompt ready for the model. */
export interface EncodedPrompt {
  /** The rendered prompt. */
  prompt: string;
  /** Its ids (-200 where each image goes). */
  ids: number[];
  /** Positions it takes in the decoder (each image marker counts the image's rows). */
  positions: number;
  /** Images it carries, in marker order. */
  imageCount: number;
  /** Question/answer pairs left out at the start (0 unless fitted). */
  droppedPairs: number;
  /** Index of the first image kept (the images of the pairs left out come before it). */
  firstImage: number;
}

/** See the module comment. */
export class Owl2Processor {
  constructor(
    readonly tokenizer: LlamaTokenizer,
    /** Decoder rows one image takes. */
    readonly imageTokens: number,
    /** The context window, in positions. */
    readonly contextLimit: number,
  ) {}

  /** Positions `ids` take in the decoder. */
  positions(ids: readonly number[]): number {
    let images = 0;
    for (const id of ids) if (id === IMAGE_TOKEN_INDEX) images++;
    return ids.length - images + images * this.imageTokens;
  }

  /** Tokenizes a rendered prompt; its `<|image|>` markers must match `imageCount`. */
  encode(prompt: string, imageCount: number): EncodedPrompt {
    const ids = this.tokenizer.tokenizeWithImages(prompt);
    const markers = ids.filter((id) => id === IMAGE_TOKEN_INDEX).length;
    if (markers !== imageCount) {
      throw new OwleryError('INVALID_ARGUMENT', `the prompt has ${markers} <|image|> marker(s) but ${imageCount} image(s) were given`);
    }
    return { prompt, ids, positions: this.positions(ids), imageCount, droppedPairs: 0, firstImage: 0 };
  }

  /**
   * The chat prompt for `turns` (alternating, ending with the user's question, or with the answer
   * to continue when `opts.continueAnswer`) with room for `room` new tokens when leaving out old
   * pairs can make it (see the module comment).
   */
  fitChat(turns: readonly ChatMessage[], room: number, opts: ChatPromptOptions = {}): EncodedPrompt {
    const imageCount = turns.reduce((n, t) => n + (t.images ?? 0), 0);
    // The question (and the answer being continued) always stay.
    const droppable = Math.floor((turns.length - (opts.continueAnswer ? 2 : 1)) / 2);
    const render = (drop: number): EncodedPrompt => {
      const kept = turns.slice(2 * drop);
      const skippedImages = turns.slice(0, 2 * drop).reduce((n, t) => n + (t.images ?? 0), 0);
      const prompt = buildChatPrompt(kept, opts);
      return { ...this.encode(prompt, imageCount - skippedImages), droppedPairs: drop, firstImage: skippedImages };
    };
    const fits = (p: EncodedPrompt): boolean => p.positions + room <= this.contextLimit;
    const whole = render(0);
    if (droppable === 0 || fits(whole)) return whole;

    // Estimate: what each pair adds (its ids without the BOS that a prompt starting with it has).
    const pairCost = Array.from({ length: droppable }, (_, j) => {
      const pair = buildChatPrompt([turns[2 * j], turns[2 * j + 1]]);
      // A pair ends with the answer, so it renders as inside the whole prompt (no open turn).
      const ids = this.tokenizer.tokenizeWithImages(pair);
      return this.positions(ids) - (ids[0] === this.tokenizer.bosId ? 1 : 0);
    });
    let estimate = whole.positions;
    let drop = 0;
    while (drop < droppable && estimate + room > this.contextLimit) estimate -= pairCost[drop++];

    let best = render(drop);
    if (fits(best)) {
      // The estimate may leave out one pair too many: keep as many as fit.
      while (best.droppedPairs > 0) {
        const more = render(best.droppedPairs - 1);
        if (!fits(more)) break;
        best = more;
      }
      return best;
    }
    while (best.droppedPairs < droppable) {
      best = render(best.droppedPairs + 1);
      if (fits(best)) break;
    }
    return best;
  }
}
