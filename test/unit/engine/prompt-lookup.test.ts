/**
 * Prompt-lookup decoding: drafts come from the most recent earlier occurrence of the last n-gram,
 * and generating through `PromptLookup` gives exactly the tokens of generating one call per token,
 * for greedy and seeded sampling, while accepted drafts save calls. The "model" here is a
 * deterministic function of the whole token sequence with a real KV-cache discipline (appending
 * and truncating positions), so a wrong cache length or a draft's logits used for the wrong token
 * changes the output.
 */
import { describe, expect, it } from 'vitest';
import { PromptLookup, lookupDraft } from '../../../src-main/engine/generation/prompt-lookup.ts';
import { Sampler, resolveSampling } from '../../../src-main/engine/generation/sampler.ts';
import type { SamplingOptions } from '../../../src-shared/engine.ts';

describe('lookupDraft', () => {
  it('proposes what followed the most recent earlier occurrence of the longest matching tail', () => {
    expect(lookupDraft([1, 2, 3, 9, 9, 1, 2, 3, 7, 1, 2, 3], 4)).toEqual([7, 1, 2, 3]);
    expect(lookupDraft([5, 6, 7, 8, 6, 7], 2)).toEqual([8, 6]);
    expect(lookupDraft([5, 6, 7, 8, 4, 7], 3)).toEqual([8, 4, 7]);
    expect(lookupDraft([1, 2, 3], 4)).toEqual([]);
    expect(lookupDraft([4, 4], 4)).toEqual([4]);
    expect(lookupDraft([1, 2, 1], 0)).toEqual([]);
  });
});

const VOCAB = 50;

/** A toy language model: logits after a sequence depend on all of it; it likes to repeat itself. */
class ToyModel {
  seq: number[];
  calls = 0;
  constructor(prompt: number[]) {
    this.seq = [...prompt];
  }
  logitsAfter(prefix: readonly number[]): Float32Array {
    let h = 2166136261;
    for (const t of prefix) h = Math.imul(h ^ t, 16777619) >>> 0;
    const out = new Float32Array(VOCAB);
    for (let v = 0; v < VOCAB; v++) out[v] = ((Math.imul(h ^ (v * 2654435761), 2246822519) >>> 0) % 1000) / 250;
    // Strongly prefer the token that followed the previous occurrence of the last token (copying).
    const last = prefix[prefix.length - 1];
    const at = prefix.lastIndexOf(last, prefix.length - 2);
    if (at >= 0 && at + 1 < prefix.length) out[prefix[at + 1]] += 3;
    return out;
  }
  /** Appends `ids`; the logits after each. */
  run(ids: number[]): Float32Array {
    this.calls++;
    const out = new Float32Array(ids.length * VOCAB);
    ids.forEach((id, j) => {
      this.seq.push(id);
      out.set(this.logitsAfter(this.seq), j * VOCAB);
    });
    return out;
  }
}

/** The engine's loop: sample, then the logits after the sampled token (one call each, or through PromptLookup). */
async function generate(prompt: number[], sampling: SamplingOptions, steps: number, lookahead: number): Promise<{ ids: number[]; calls: number; accepted: number }> {
  const model = new ToyModel(prompt.slice(0, -1));
  let logits = model.run([prompt[prompt.length - 1]]);
  const history = [...prompt];
  const sampler = new Sampler(resolveSampling(sampling));
  const lookup = lookahead > 0 ? new PromptLookup({
    run: async (ids) => model.run(ids),
    length: () => model.seq.length,
    truncate: (n) => { model.seq.length = n; },
    maxPositions: () => 16,
  }, VOCAB, lookahead) : undefined;
  const ids: number[] = [];
  for (let s = 0; s < steps; s++) {
    const id = sampler.next(logits, history);
    ids.push(id);
    history.push(id);
    logits = lookup ? await lookup.next(id, history) : model.run([id]);
    // The cache holds exactly the sequence so far, plus at most unconsumed drafts.
    expect(model.seq.slice(0, history.length)).toEqual(history);
  }
  return { ids, calls: model.calls, accepted: lookup?.stats.accepted ?? 0 };
}

describe('PromptLookup', () => {
  const prompt = [3, 17, 4, 22, 9, 3, 17, 4, 22, 9, 41, 3, 17];
  for (const [name, sampling] of [['greedy', { greedy: true }], ['seeded sampling', { temperature: 0.8, topK: 20, seed: 7 }]] as const) {
    it(`gives the same tokens as one call per token (${name}), in fewer calls`, async () => {
      const plain = await generate(prompt, sampling, 60, 0);
      const fast = await generate(prompt, sampling, 60, 6);
      expect(fast.ids).toEqual(plain.ids);
      expect(fast.accepted).toBeGreaterThan(0);
      expect(fast.calls).toBeLessThan(plain.calls);
    });
  }
});
