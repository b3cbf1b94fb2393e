/**
 * Execution-provider selection with an ordered fallback that explains itself.
 *
 * onnxruntime-node treats an unavailable provider as a hard error (no silent fallback), so each
 * candidate is tried in turn with a real session, every failure is recorded, and the report says
 * which provider runs and why the others did not (like onnxruntime-common's `resolveBackend`).
 */
import type * as ort from 'onnxruntime-node';
import { OwleryError } from '../../src-shared/errors.ts';
import type { ExecutionProviderName, GpuAdapterInfo, ProviderAttempt, ProviderReport } from '../../src-shared/engine.ts';
import type { ProviderMemory } from './gpu/provider-memory.ts';

export type ConcreteProvider = Exclude<ExecutionProviderName, 'auto'>;

/**
 * Providers `auto` tries on this platform, best first; the CPU is always last. Windows: DirectML,
 * WebGPU (D3D12); Linux: CUDA where its add-on and libraries load (x64), WebGPU (Vulkan); macOS
 * (Apple silicon): WebGPU (Metal).
 */
export function autoProviders(platform: NodeJS.Platform = process.platform, arch: string = process.arch): ConcreteProvider[] {
  if (platform === 'win32') return ['dml', 'webgpu', 'cpu'];
  if (platform === 'linux') return arch === 'x64' ? ['cuda', 'webgpu', 'cpu'] : ['webgpu', 'cpu'];
  if (platform === 'darwin' && arch === 'arm64') return ['webgpu', 'cpu'];
  return ['cpu'];
}

/** What `auto` takes into account besides the platform (see {@link createWithFallback}). */
export interface AutoContext {
  /** The adapter WebGPU would run on (gpu/adapter.ts); a software one is skipped by `auto`. */
  adapter?: GpuAdapterInfo;
  /** What happened last time with this package on this adapter (gpu/provider-memory.ts). */
  memory?: ProviderMemory;
  platform?: NodeJS.Platform;
  arch?: string;
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
  auto: AutoContext = {},
): Promise<{ value: T; report: ProviderReport }> {
  let candidates = requested === 'auto' ? autoProviders(auto.platform, auto.arch) : [requested];
  const attempts: ProviderAttempt[] = [];
  const notes: string[] = [];
  if (requested === 'auto' && auto.memory && candidates.includes(auto.memory.provider)) {
    const m = auto.memory;
    if (m.ok) candidates = [m.provider, ...candidates.filter((p) => p !== m.provider)];
    else if (m.provider !== 'cpu') {
      candidates = candidates.filter((p) => p !== m.provider);
      attempts.push({ provider: m.provider, ok: false, error: `failed on this machine before (${m.reason ?? 'unknown'}); choose it explicitly to try again` });
      notes.push(`${m.provider} failed here before, so the model runs without it: ${m.reason ?? 'unknown'}`);
    }
  }
  for (const provider of candidates) {
    if (requested === 'auto' && provider === 'webgpu' && auto.adapter?.software) {
      attempts.push({ provider, ok: false, error: `only a software adapter (${auto.adapter.name}), slower than the CPU provider; choose webgpu explicitly to use it` });
      continue;
    }
    try {
      const value = await create(providerOptions(provider, threads));
      attempts.push({ provider, ok: true });
      const gpu = provider !== 'cpu' && auto.adapter ? { adapter: auto.adapter } : {};
      return { value, report: { requested, used: provider, attempts, ...gpu, ...(notes.length ? { notes } : {}) } };
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
