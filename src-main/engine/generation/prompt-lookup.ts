/**
 * Prompt-lookup decoding: more tokens per decoder call, the same output.
 *
 * A decode step on a GPU costs about as much for a handful of positions as for one (it is bound by
 * the CPU's dispatch work, not by arithmetic), and answers often repeat spans of the conversation
 * (names, phrases of the question, earlier answers). So after each chosen token, the last few
 * tokens are looked up earlier in the conversation and what followed them there is proposed as
 * draft tokens; one decoder call runs the chosen token and the drafts and returns the logits after
 * each. The generation loop then samples as usual: while its token equals the next draft, the
 * logits after that draft are already computed and no call is needed; at the first difference the
 * cache drops the rejected drafts and the next call starts from the sampled token.
 *
 * The output is the same as without drafts by construction: every token is sampled from the logits
 * the model gives after exactly the tokens before it (a draft's logits are used only when the draft
 * is the token that was sampled), with the same sampler and random stream.
 */

/**
 * Draft tokens for `history` (the conversation's token ids, the last one just chosen): the tokens
 * that followed the most recent earlier occurrence of its last `n` tokens, for n = `maxNgram`
 * down to 1, at most `maxTokens` of them; none when nothing matches.
 */
export function lookupDraft(history: readonly number[], maxTokens: number, maxNgram = 3): number[] {
  const len = history.length;
  if (maxTokens <= 0) return [];
  for (let n = Math.min(maxNgram, len - 1); n >= 1; n--) {
    // Candidate starts i: history[i..i+n) equals the tail, and at least one token follows it.
    for (let i = len - n - 1; i >= 0; i--) {
      let match = true;
      for (let j = 0; j < n; j++) {
        if (history[i + j] !== history[len - n + j]) {
          match = false;
          break;
        }
      }
      if (match) return history.slice(i + n, Math.min(i + n + maxTokens, len)) as number[];
    }
  }
  return [];
}

/** What prompt-lookup needs from the decoder. */
export interface LookaheadDecoder {
  /** Appends `ids` (text tokens) to the cache; returns the logits after each of them, [ids.length, vocab]. */
  run(ids: number[]): Promise<Float32Array>;
  /** Valid positions in the cache. */
  length(): number;
  /** Keeps the first `n` positions. */
  truncate(n: number): void;
  /** Most positions one call may have (and room left in the context window, counted by the caller). */
  maxPositions(): number;
}

/** Counts for the answer's statistics. */
export interface LookaheadStats {
  /** Draft tokens proposed. */
  drafted: number;
  /** Draft tokens that were the sampled token (so their logits were used). */
  accepted: number;
  /** Decoder calls. */
  calls: number;
}

/** Feeds the generation loop's tokens to the decoder with prompt-lookup drafts (see the header). */
export class PromptLookup {
  readonly stats: LookaheadStats = { drafted: 0, accepted: 0, calls: 0 };
  /** Drafts of the last call not consumed yet, and the logits after each. */
  private drafts: number[] = [];
  private draftLogits: Float32Array[] = [];
  /** Cache length after the last token given to `next`. */
  private consumed = 0;

  constructor(
    private readonly decoder: LookaheadDecoder,
    private readonly vocab: number,
    /** Draft tokens per call at most. */
    private readonly draftTokens: number,
  ) {}

  /**
   * The logits after `id`, the token just chosen (`history` ends with it): from the previous call
   * when `id` was its next draft, else from a new call over `id` and fresh drafts.
   */
  async next(id: number, history: readonly number[]): Promise<Float32Array> {
    if (this.drafts.length && this.drafts[0] === id) {
      this.drafts.shift();
      this.stats.accepted++;
      this.consumed++;
      return this.draftLogits.shift()!;
    }
    // Drop the drafts that were not taken.
    if (this.decoder.length() > this.consumed && this.consumed > 0) this.decoder.truncate(this.consumed);
    const room = Math.max(0, this.decoder.maxPositions() - 1);
    const draft = lookupDraft(history, Math.min(this.draftTokens, room));
    const logits = await this.decoder.run([id, ...draft]);
    this.stats.calls++;
    this.stats.drafted += draft.length;
    this.consumed = this.decoder.length() - draft.length;
    this.drafts = draft;
    this.draftLogits = draft.map((_, j) => logits.subarray((j + 1) * this.vocab, (j + 2) * this.vocab));
    return logits.subarray(0, this.vocab);
  }
}
