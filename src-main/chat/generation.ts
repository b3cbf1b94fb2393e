/**
 * A chat request's generation settings: the app's settings (sampling, aspect mode), then the
 * chat's own settings (`Conversation.options`), then the request's overrides. The one place they
 * are merged; the chat service saves the result with the answer.
 */
import type { ChatGenerationOptions } from '../../src-shared/chat.ts';
import type { ChatOptions } from '../../src-shared/domain.ts';
import type { GenerationOverrides } from '../../src-shared/ipc/index.ts';
import { samplingFromSettings } from '../../src-shared/settings.ts';
import type { Settings } from '../../src-shared/settings.ts';

/** Sampling options and aspect mode for a chat request: settings, the chat's, then the request's overrides. */
export function generationFor(
  settings: Settings,
  overrides: GenerationOverrides = {},
  chat: Partial<ChatOptions> | null = null,
): Required<ChatGenerationOptions> {
  const own: GenerationOverrides = {};
  if (chat?.temperature !== undefined && chat.temperature !== null) own.temperature = chat.temperature;
  if (chat?.maxNewTokens !== undefined && chat.maxNewTokens !== null) own.maxNewTokens = chat.maxNewTokens;
  const { aspectMode, ...sampling } = { ...own, ...overrides };
  const merged = { ...samplingFromSettings(settings), ...sampling };
  if (sampling.temperature !== undefined) merged.greedy = sampling.temperature === 0;
  return { sampling: merged, aspectMode: aspectMode ?? settings.aspectMode };
}
