/**
 * Execution-provider selection with an ordered fallback that explains itself.
 *
 * onnxruntime-node treats an unavailable provider as a hard error (no silent fallback), so each
 * candidate is tried in turn with a real session, every failure is recorded, and the report says
 * which provider runs and why the others did not (like onnxruntime-common's `resolveBackend`).
 */
import type * as ort from 'onnxruntime-node';
import { OwleryError } from '../../src-shared/errors.ts';
import type { ExecutionProviderName, ProviderAttempt, ProviderReport } from '../../src-shared/engine.ts';

export type ConcreteProvider = Exclude<ExecutionProviderName, 'auto'>;

/** Providers `auto` tries on this platform, best first; the CPU is always last. */
export function autoProviders(platform: NodeJS.Platform = process.platform, arch: string = process.arch): ConcreteProvider[] {
  if (platform === 'win32') return ['dml', 'cpu'];
  if (platform === 'linux' && arch === 'x64') return ['cuda', 'cpu'];
  if (platform === 'darwin') return ['coreml', 'cpu'];
  return ['cpu'];
}

/** Session options for one provider. */
export function providerOptions(provider: ConcreteProvider, threads: number | undefined): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    // Failures are collected into the provider report; onnxruntime's own log would only repeat them on stderr.
    logSeverityLevel: 4,
    graphOptimizationLevel: 'all',
    // Spinning threads burn a core while idle between decode steps for no measurable gain here.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
    // Without the arena, a run's temporaries and outputs go back to the system when it ends
    // instead of staying reserved at their peak: on the 7B `cpu` package the engine's peak RSS
    // drops by ~0.4 GB and neither decode nor prefill gets slower (docs/performance.md).
    enableCpuMemArena: false,
  };
  if (threads && threads > 0) opts.intraOpNumThreads = threads;
  return opts;
}

/**
 * Creates sessions with the first provider that works.
 *
 * `create` builds every session the engine needs with the given options; it is retried with the
 * next provider when it throws. The CPU is the last resort for `auto` only: a provider the user
 * asked for by name either works or fails with a PROVIDER_UNAVAILABLE error that says why.
 */
export async function createWithFallback<T>(
  requested: ExecutionProviderName,
  threads: number | undefined,
  create: (opts: ort.InferenceSession.SessionOptions) => Promise<T>,
): Promise<{ value: T; report: ProviderReport }> {
  const candidates = requested === 'auto' ? autoProviders() : [requested];
  const attempts: ProviderAttempt[] = [];
  for (const provider of candidates) {
    try {
      const value = await create(providerOptions(provider, threads));
      attempts.push({ provider, ok: true });
      return { value, report: { requested, used: provider, attempts } };
    } catch (err) {
      if (err instanceof OwleryError && err.code !== 'PROVIDER_UNAVAILABLE') throw err;
      attempts.push({ provider, ok: false, error: firstLine(err) });
    }
  }
  const why = attempts.map((a) => `${a.provider}: ${a.error}`).join('; ');
  throw new OwleryError('PROVIDER_UNAVAILABLE', `no execution provider could run the model (${why})`, { attempts });
}

/** The first line of an error's message, at most 300 characters (for reports shown to the user). */
export function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0].slice(0, 300);
}
