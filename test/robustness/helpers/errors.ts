/** Catching what a hostile input makes a call throw, to assert on it. */

/** The error a promise rejects with (or null when it resolves). */
export async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => null, (e: unknown) => e);
}

/** The error a call throws (or null when it returns). */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
    return null;
  } catch (e) {
    return e;
  }
}
