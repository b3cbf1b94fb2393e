/**
 * Comparing numeric arrays in tests.
 */

/**
 * The largest absolute element-wise difference between two arrays of the same length. A NaN
 * anywhere counts as an infinite difference (so it can never pass a tolerance), and arrays of
 * different lengths are an error, not a small number.
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`arrays differ in length: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
