/**
 * The fixed, versioned prompts that describe a photo, and the engine requests made of them.
 *
 * A photo costs two requests on one conversation, both greedy (deterministic):
 * 1. caption: `USER: <instruction> <|image|> ASSISTANT:` — the instruction comes before the photo,
 *    so every photo's prompt starts with the same tokens, and the engine reuses their KV cache
 *    from the previous request (`Owl2Engine`'s prefix reuse): the instruction prefix is prefilled
 *    once per job, not once per photo;
 * 2. keywords: the caption turn, its answer, then `USER: <keywords instruction> ASSISTANT:` — a
 *    follow-up whose whole prefix (instruction, photo, caption) is the previous request's, so only
 *    the keyword question is prefilled.
 *
 * Changing a prompt's text or the decoding settings changes what the model writes: bump
 * {@link PROMPT_VERSION} then, so photos described with the old prompts are described again.
 */
import type { DescriptionSettings } from '../../src-shared/describe.ts';
import type { GenerateRequest, ImageInput } from '../engine/index.ts';
import { IMAGE_MARKER } from '../engine/index.ts';

/** Version of the prompts and settings below; stored with every description. */
export const PROMPT_VERSION = 'describe-v1';

/** The caption question; the photo follows it (see the module comment). */
export const CAPTION_INSTRUCTION =
  'You are writing captions for a private photo library. Look at the photo below and describe it in one or two plain sentences: ' +
  'the main subject, what is happening, and the setting. Do not guess who people are. Photo:';

/** The follow-up asking for keywords. */
export const KEYWORDS_INSTRUCTION =
  'Now list 5 to 15 keywords for this photo: single words or short phrases for the subjects, objects, place, activity, colours and mood, ' +
  'separated by commas, in lower case, with no other text.';

/** Token limits of the two answers. */
export const CAPTION_MAX_TOKENS = 96;
export const KEYWORDS_MAX_TOKENS = 80;

/** Aspect mode the photos are preprocessed with (the official quick start's). */
export const DESCRIBE_ASPECT = 'resize';

/** The settings stored with a description (the provider that ran it is filled in per photo). */
export function describeSettings(provider: string | null): DescriptionSettings {
  return { greedy: true, captionMaxTokens: CAPTION_MAX_TOKENS, keywordsMaxTokens: KEYWORDS_MAX_TOKENS, aspectMode: DESCRIBE_ASPECT, provider };
}

/** The caption request for one photo. */
export function captionRequest(image: ImageInput): GenerateRequest {
  return {
    turns: [{ role: 'user', content: `${CAPTION_INSTRUCTION} ${IMAGE_MARKER}`, images: 1 }],
    images: [image],
    sampling: { greedy: true, maxNewTokens: CAPTION_MAX_TOKENS },
    aspect: DESCRIBE_ASPECT,
  };
}

/** The keywords request: the caption exchange (the model's raw answer, as written) and the keyword question. */
export function keywordsRequest(image: ImageInput, rawCaption: string): GenerateRequest {
  return {
    turns: [
      { role: 'user', content: `${CAPTION_INSTRUCTION} ${IMAGE_MARKER}`, images: 1 },
      { role: 'assistant', content: rawCaption },
      { role: 'user', content: KEYWORDS_INSTRUCTION },
    ],
    images: [image],
    sampling: { greedy: true, maxNewTokens: KEYWORDS_MAX_TOKENS },
    aspect: DESCRIBE_ASPECT,
  };
}
