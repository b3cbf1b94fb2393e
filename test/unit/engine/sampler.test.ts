import { describe, expect, it } from 'vitest';
import { Sampler, applyRepetitionPenalty, argmax, resolveSampling } from '../../../src-main/engine/generation/sampler.ts';
import { StopStringStream } from '../../../src-main/engine/generation/stopping.ts';

function logits(values: number[]): Float32Array {
  return Float32Array.from(values);
}

describe('sampling', () => {
  it('greedy picks the first maximum, like torch.argmax', () => {
    expect(argmax([1, 5, 5, 2])).toBe(1);
    const s = new Sampler(resolveSampling({ greedy: true }));
    expect(s.next(logits([0.1, 3, 2.9]), [])).toBe(1);
  });

  it('temperature 0 means greedy', () => {
    expect(resolveSampling({ temperature: 0 }).greedy).toBe(true);
  });

  it('applies the repetition penalty the way Hugging Face does (divide positive, multiply negative)', () => {
    const l = logits([2, -2, 1]);
    applyRepetitionPenalty(l, [0, 1, 1], 2);
    expect(Array.from(l)).toEqual([1, -4, 1]);
    // With the penalty, greedy moves away from a repeated token.
    const s = new Sampler(resolveSampling({ greedy: true, repetitionPenalty: 3 }));
    expect(s.next(logits([3, 2]), [0])).toBe(1);
  });

  it('is reproducible for a seed and varies across seeds', () => {
    const draw = (seed: number) => {
      const s = new Sampler(resolveSampling({ temperature: 1, seed }));
      return Array.from({ length: 50 }, () => s.next(logits([1, 1, 1, 1, 1, 1, 1, 1]), []));
    };
    expect(draw(7)).toEqual(draw(7));
    expect(draw(7)).not.toEqual(draw(8));
  });

  it('top-k 1 and a tiny top-p both reduce to the most likely token', () => {
    const l = [0.5, 2, 1.9, -1];
    for (const opts of [{ topK: 1 }, { topP: 0.01 }]) {
      const s = new Sampler(resolveSampling({ temperature: 1, seed: 3, ...opts }));
      for (let i = 0; i < 20; i++) expect(s.next(logits(l), [])).toBe(1);
    }
  });

  it('top-k 2 never picks outside the two most likely tokens', () => {
    const s = new Sampler(resolveSampling({ temperature: 5, topK: 2, seed: 1 }));
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) seen.add(s.next(logits([0, 1, 3, 2.5]), []));
    expect([...seen].sort()).toEqual([2, 3]);
  });

  it('rejects nonsense settings with a message naming the setting', () => {
    expect(() => resolveSampling({ topP: 0 })).toThrow(/top-p/);
    expect(() => resolveSampling({ maxNewTokens: 0 })).toThrow(/max new tokens/);
    expect(() => resolveSampling({ temperature: -1 })).toThrow(/temperature/);
    expect(() => resolveSampling({ topK: 1.5 })).toThrow(/top-k/);
  });
});

describe('StopStringStream', () => {
  it('holds back a tail that could become </s> and stops when it does', () => {
    const s = new StopStringStream();
    expect(s.push('Hello </')).toEqual({ text: 'Hello ', stopped: false });
    expect(s.push('s')).toEqual({ text: '', stopped: false });
    expect(s.push('>tail')).toEqual({ text: '', stopped: true });
    expect(s.fullText).toBe('Hello ');
  });

  it('releases held text when it turns out not to be the stop string', () => {
    const s = new StopStringStream();
    expect(s.push('a <').text).toBe('a ');
    expect(s.push('b').text).toBe('<b');
    expect(s.push('<').text).toBe('');
    expect(s.flush()).toBe('<');
    expect(s.fullText).toBe('a <b<');
  });
});
