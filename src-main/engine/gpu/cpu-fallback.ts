/**
 * Moving a model to the CPU when its GPU provider fails while answering (device lost, out of
 * memory, a driver error): the engine is reloaded on the CPU provider with a note in its provider
 * report (shown with every answer's statistics), and the failure is remembered so that `auto` does
 * not pick that provider for this package on this adapter again. A failure before the answer's
 * first token is retried on the CPU at once; after it, the answer so far is kept (the chat service
 * saves what was streamed) and the error says the model now runs on the CPU.
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ErrorCode } from '../../../src-shared/errors.ts';
import { Owl2Engine } from '../mplug-owl2/engine.ts';
import type { EngineLoadOptions } from '../protocol.ts';
import { firstLine } from '../providers.ts';
import { memoryKey, rememberProvider } from './provider-memory.ts';

/** Failures that are the request's, not the device's. */
const REQUEST_ERRORS: ReadonlySet<ErrorCode> = new Set(['INVALID_ARGUMENT', 'CONTEXT_OVERFLOW', 'IMAGE_UNREADABLE', 'IMAGE_TOO_LARGE', 'IMAGE_UNSUPPORTED', 'FILE_NOT_FOUND', 'CANCELLED', 'TOKENIZER_INVALID']);

/** Whether `err`, thrown by a request on `engine`, means its GPU provider failed. */
export function isGpuFailure(engine: Owl2Engine, err: unknown): boolean {
  if (engine.providerReport.used === 'cpu') return false;
  return !(err instanceof OwleryError && REQUEST_ERRORS.has(err.code));
}

/** Reloads the package of `engine` on the CPU after `err`; the old engine is released (best effort). */
export async function reloadOnCpu(engine: Owl2Engine, options: EngineLoadOptions, err: unknown): Promise<Owl2Engine> {
  const failed = engine.providerReport.used;
  const reason = firstLine(err);
  await engine.dispose().catch(() => {});
  const next = await Owl2Engine.load(engine.dir, { ...options, provider: 'cpu', verify: false });
  const note = `${failed} failed while answering (${reason}); the model now runs on the CPU`;
  next.providerReport.notes = [...(next.providerReport.notes ?? []), note];
  if (options.providerMemoryFile) {
    await rememberProvider(options.providerMemoryFile, memoryKey(engine.manifest.id, engine.providerReport.adapter), { provider: failed, ok: false, reason });
  }
  return next;
}

/** The error for a GPU failure after the answer had started. */
export function failedMidAnswer(engine: Owl2Engine, err: unknown): OwleryError {
  return new OwleryError('PROVIDER_UNAVAILABLE', `the GPU failed mid-answer (${firstLine(err)}); the answer so far is kept and the model now runs on the CPU: ask again to continue`, { provider: engine.providerReport.used });
}
