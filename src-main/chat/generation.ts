/**
 * A chat request's generation settings: the app's settings (sampling, aspect mode), then the
 * request's own overrides. The one place they are merged; the chat service saves the result with
 * the answer.
 */
import type { ChatGenerationOptions } from '../../src-shared/chat.ts';
import type { GenerationOverrides } from '../../src-shared/ipc/index.ts';
import { samplingFromSettings } from '../../src-shared/settings.ts';
import type { Settings } from '../../src-shared/settings.ts';

/** Sampling options and aspect mode for a chat request: settings, then the request's overrides. */
export function generationFor(settings: Settings, overrides: GenerationOverrides = {}): Required<ChatGenerationOptions> {
  const { aspectMode, ...sampling } = overrides;
  const merged = { ...samplingFromSettings(settings), ...sampling };
  if (sampling.temperature !== undefined) merged.greedy = sampling.temperature === 0;
  return { sampling: merged, aspectMode: aspectMode ?? settings.aspectMode };
}
