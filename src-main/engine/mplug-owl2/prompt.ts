/**
 * mPLUG-Owl2's chat template (`conv_templates['mplug_owl2']` in the official `conversation.py`):
 * separator style TWO_NO_SYS, no system prompt, roles `USER` / `ASSISTANT`, `sep = " "` after a user
 * message and `sep2 = "</s>"` after an assistant message. A conversation renders as
 * `USER: <|image|>Describe the image. ASSISTANT:` and, after a reply,
 * `…ASSISTANT: reply</s>USER: next question ASSISTANT:`.
 *
 * Image markers follow the official CLI / README quick start and the web demo: when a message comes
 * with images and the user did not write `<|image|>` markers, one marker per image is put at the very
 * start of the message (no space, text untouched).
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ChatMessage } from '../protocol.ts';
import { IMAGE_MARKER } from '../tokenizer/llama-tokenizer.ts';

/** One turn of a conversation; `text: null` is the open assistant turn the model is to complete. */
export interface ConversationTurn {
  role: 'user' | 'assistant';
  text: string | null;
}


const ROLE_NAMES = { user: 'USER', assistant: 'ASSISTANT' } as const;
const SEPARATORS = [' ', '</s>'] as const;

/**
 * Renders turns with the `mplug_owl2` template, exactly as `Conversation.get_prompt()` does:
 * `ROLE: text` plus `" "` after even-indexed turns and `"</s>"` after odd-indexed ones, and a bare
 * `ROLE:` for a turn whose text is `null` (or empty: the official code tests the text's truthiness).
 *
 * Turns must alternate user/assistant starting with the user, and only the last turn may be open
 * (`text: null`, assistant); otherwise throws `OwleryError('INVALID_ARGUMENT')`.
 */
export function renderConversation(turns: readonly ConversationTurn[]): string {
  let out = '';
  turns.forEach((turn, i) => {
    const expected = i % 2 === 0 ? 'user' : 'assistant';
    if (turn.role !== expected) {
      throw new OwleryError(
        'INVALID_ARGUMENT',
        `Conversation turn ${i + 1} is from the ${turn.role}, but turns must alternate user/assistant starting with the user.`,
      );
    }
    if (turn.text === null && (turn.role !== 'assistant' || i !== turns.length - 1)) {
      throw new OwleryError('INVALID_ARGUMENT', `Conversation turn ${i + 1} has no text; only a final assistant turn may be open.`);
    }
    const role = ROLE_NAMES[turn.role];
    out += turn.text ? `${role}: ${turn.text}${SEPARATORS[i % 2]}` : `${role}:`;
  });
  return out;
}

/** Counts non-overlapping `<|image|>` markers in text. */
export function countImageMarkers(text: string): number {
  return text.split(IMAGE_MARKER).length - 1;
}

/**
 * Returns the message text with its image markers: `imageCount` markers put in front of the text
 * when the text has none, or the text unchanged when the user placed markers themselves (their
 * number must then equal `imageCount`). Throws `OwleryError('INVALID_ARGUMENT')` on a mismatch or
 * a count that is not a non-negative integer.
 */
export function placeImageMarkers(text: string, imageCount: number): string {
  if (!Number.isInteger(imageCount) || imageCount < 0) {
    throw new OwleryError('INVALID_ARGUMENT', `Image count must be a non-negative integer, got ${imageCount}.`);
  }
  const present = countImageMarkers(text);
  if (present === 0) return IMAGE_MARKER.repeat(imageCount) + text;
  if (present !== imageCount) {
    throw new OwleryError(
      'INVALID_ARGUMENT',
      `The message contains ${present} ${IMAGE_MARKER} marker${present === 1 ? '' : 's'} but ${imageCount} image${
        imageCount === 1 ? ' is' : 's are'
      } attached; write one marker per image, or none to put them all at the start.`,
    );
  }
  return text;
}

/**
 * Builds the prompt for a chat: places each message's image markers (`placeImageMarkers`), renders
 * the turns with the `mplug_owl2` template and, when the last message is the user's, appends the open
 * `ASSISTANT:` turn for the model to complete.
 *
 * Throws `OwleryError('INVALID_ARGUMENT')` for an empty chat, roles that do not alternate starting
 * with the user, images on an assistant message, marker/image count mismatches, or a user message
 * with neither text nor images (the official web demo refuses those too).
 */
export function buildChatPrompt(messages: readonly ChatMessage[]): string {
  if (messages.length === 0) throw new OwleryError('INVALID_ARGUMENT', 'A chat prompt needs at least one message.');
  const turns: ConversationTurn[] = messages.map((m, i) => {
    const images = m.images ?? 0;
    if (m.role === 'assistant' && images !== 0) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${i + 1} is from the assistant and cannot carry images.`);
    }
    if (m.role === 'user' && m.content.length === 0 && images === 0) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${i + 1} has neither text nor images.`);
    }
    return { role: m.role, text: placeImageMarkers(m.content, images) };
  });
  if (messages[messages.length - 1].role === 'user') turns.push({ role: 'assistant', text: null });
  return renderConversation(turns);
}
