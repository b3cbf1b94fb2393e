/**
 * mulberry32: a small, fast 32-bit PRNG with exactly reproducible integer arithmetic.
 *
 * One implementation for everything seeded in Owlery: sampling with a seed, the tiny-model
 * factory's weights, benchmark data. Returns floats in [0, 1).
 */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
