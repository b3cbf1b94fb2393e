/**
 * Next-token selection: repetition penalty, then greedy or temperature / top-k / top-p sampling,
 * in the order Hugging Face's `generate` applies them (processors, then warpers).
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { SamplingOptions } from '../../../src-shared/engine.ts';
import { mulberry32 } from '../../../src-shared/random.ts';

/** Sampling settings with every default filled in. */
export interface ResolvedSampling {
  greedy: boolean;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  seed: number;
  maxNewTokens: number;
}

/** The official web demo's settings: temperature 0.7, up to 512 new tokens. */
export const DEFAULT_SAMPLING: ResolvedSampling = {
  greedy: false,
  temperature: 0.7,
  topK: 0,
  topP: 1,
  repetitionPenalty: 1,
  seed: 0,
  maxNewTokens: 512,
};

/** Validates options and fills in defaults; a bad value is an INVALID_ARGUMENT error naming it. */
export function resolveSampling(opts: SamplingOptions = {}): ResolvedSampling {
  const r: ResolvedSampling = { ...DEFAULT_SAMPLING, seed: Math.floor(Math.random() * 2 ** 31) };
  const check = (name: string, v: number | undefined, ok: (x: number) => boolean, what: string): number | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) {
      throw new OwleryError('INVALID_ARGUMENT', `${name} must be ${what}, got ${String(v)}`);
    }
    return v;
  };
  r.temperature = check('temperature', opts.temperature, (x) => x >= 0 && x <= 100, 'between 0 and 100') ?? r.temperature;
  r.topK = check('top-k', opts.topK, (x) => Number.isInteger(x) && x >= 0, 'a whole number ≥ 0') ?? r.topK;
  r.topP = check('top-p', opts.topP, (x) => x > 0 && x <= 1, 'in (0, 1]') ?? r.topP;
  r.repetitionPenalty = check('repetition penalty', opts.repetitionPenalty, (x) => x > 0 && x <= 100, 'a positive number') ?? r.repetitionPenalty;
  r.seed = check('seed', opts.seed, (x) => Number.isInteger(x) && x >= 0, 'a whole number ≥ 0') ?? r.seed;
  r.maxNewTokens = check('max new tokens', opts.maxNewTokens, (x) => Number.isInteger(x) && x >= 1, 'a whole number ≥ 1') ?? r.maxNewTokens;
  r.greedy = opts.greedy === true || r.temperature === 0;
  return r;
}

/** Index of the largest value; the first one on ties, as torch.argmax. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let bestVal = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > bestVal) {
      bestVal = values[i];
      best = i;
    }
  }
  return best;
}

/** Applies HF's repetition penalty in place to every token id seen so far. */
export function applyRepetitionPenalty(logits: Float32Array, history: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (const id of history) {
    if (id < 0 || id >= logits.length || seen.has(id)) continue;
    seen.add(id);
    const l = logits[id];
    logits[id] = l < 0 ? l * penalty : l / penalty;
  }
}

/** Picks next tokens for one sequence. Keeps its own RNG so a seed gives the same answer every time. */
export class Sampler {
  private readonly rng: () => number;
  constructor(readonly options: ResolvedSampling) {
    this.rng = mulberry32(options.seed);
  }

  /** Chooses the next token from `logits` (modified in place), given every id so far. */
  next(logits: Float32Array, history: Iterable<number>): number {
    applyRepetitionPenalty(logits, history, this.options.repetitionPenalty);
    if (this.options.greedy) return argmax(logits);
    return this.sample(logits);
  }

  private sample(logits: Float32Array): number {
    const { temperature, topK, topP } = this.options;
    const n = logits.length;
    let ids: number[] = [];
    for (let i = 0; i < n; i++) if (Number.isFinite(logits[i])) ids.push(i);
    if (ids.length === 0) return argmax(logits);
    ids.sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0 && topK < ids.length) ids = ids.slice(0, topK);
    const max = logits[ids[0]];
    const probs = ids.map((i) => Math.exp((logits[i] - max) / temperature));
    let total = probs.reduce((a, b) => a + b, 0);
    let keep = ids.length;
    if (topP < 1) {
      // Keep the smallest prefix whose mass reaches topP (always at least one token), as HF does.
      let cum = 0;
      for (let i = 0; i < ids.length; i++) {
        cum += probs[i] / total;
        if (cum >= topP) {
          keep = i + 1;
          break;
        }
      }
      total = probs.slice(0, keep).reduce((a, b) => a + b, 0);
    }
    let r = this.rng() * total;
    for (let i = 0; i < keep; i++) {
      r -= probs[i];
      if (r <= 0) return ids[i];
    }
    return ids[keep - 1];
  }
}
