/**
 * The fixed, versioned prompts that describe a photo, and the engine requests made of them.
 *
 * A photo costs two requests, both greedy (deterministic), both
 * `USER: <instruction>\n<|image|>\n<question> ASSISTANT:`, with the same fixed instruction first:
 * 1. caption: the question asks for one or two sentences;
 * 2. keywords: the question asks for a comma-separated list.
 * The engine reuses the KV cache of the previous request's common prefix (`Owl2Engine`'s prefix
 * reuse), so the instruction is prefilled once for a whole job (every request starts with it), and
 * the keywords request also reuses the photo's rows from the caption request: per photo, only the
 * image rows and the two short questions are prefilled. Token for token, not text for text — the
 * prompt text before and after the image is tokenized separately, so the shared part always
 * tokenizes the same.
 *
 * Changing a prompt's text or the decoding settings changes what the model writes: bump
 * {@link PROMPT_VERSION} then, so photos described with the old prompts are described again.
 */
import type { DescriptionSettings } from '../../src-shared/describe.ts';
import type { GenerateRequest, ImageInput } from '../engine/index.ts';
import { IMAGE_MARKER } from '../engine/index.ts';

/** Version of the prompts and settings below; stored with every description. */
export const PROMPT_VERSION = 'describe-v1';

/** The instruction every request starts with; the photo follows it (see the module comment). */
export const INSTRUCTION =
  'You are cataloguing a private photo library. Answer only about what is visible in the photo; ' +
  'do not guess who the people are or exactly where it was taken. Photo:';

/** The caption question, after the photo. */
export const CAPTION_QUESTION =
  'Describe this photo in one or two plain sentences: the main subject, what is happening, and the setting.';

/** The keywords question, after the photo. */
export const KEYWORDS_QUESTION =
  'List 5 to 15 keywords for this photo: single words or short phrases for the subjects, objects, place, activity, ' +
  'colours and mood, separated by commas, in lower case, with no other text.';

/** Token limits of the two answers. */
export const CAPTION_MAX_TOKENS = 96;
export const KEYWORDS_MAX_TOKENS = 80;

/** Aspect mode the photos are preprocessed with (the official quick start's). */
export const DESCRIBE_ASPECT = 'resize';

/** The settings stored with a description (the provider that ran it is filled in per photo). */
export function describeSettings(provider: string | null): DescriptionSettings {
  return { greedy: true, captionMaxTokens: CAPTION_MAX_TOKENS, keywordsMaxTokens: KEYWORDS_MAX_TOKENS, aspectMode: DESCRIBE_ASPECT, provider };
}

/** One request about one photo: the instruction, the photo, the question. */
function photoRequest(image: ImageInput, question: string, maxNewTokens: number): GenerateRequest {
  return {
    turns: [{ role: 'user', content: `${INSTRUCTION}\n${IMAGE_MARKER}\n${question}`, images: 1 }],
    images: [image],
    sampling: { greedy: true, maxNewTokens },
    aspect: DESCRIBE_ASPECT,
    // Seen once per job: the memory cache serves the keywords request; the disk is not filled.
    persistImageEmbeddings: false,
  };
}

/** The caption request for one photo. */
export function captionRequest(image: ImageInput): GenerateRequest {
  return photoRequest(image, CAPTION_QUESTION, CAPTION_MAX_TOKENS);
}

/** The keywords request for one photo. */
export function keywordsRequest(image: ImageInput): GenerateRequest {
  return photoRequest(image, KEYWORDS_QUESTION, KEYWORDS_MAX_TOKENS);
}
