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
 *
 * Two things the official template has no slot for, done the same way wherever a prompt is built:
 * - Per-chat instructions (a "system prompt"): the template has no system turn, so the instructions
 *   open the first user turn of the prompt, after that turn's leading image markers and before its
 *   text, separated by a blank line (`<|image|>Answer in French.\n\nWhat is this?`). When old turns
 *   are left out to fit the context window, they move to the first turn kept.
 * - Continuing an answer (after Stop): the answer is the last turn, left open — `ASSISTANT: text`
 *   without the closing `</s>` — so the model goes on writing it.
 */
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ChatMessage } from '../protocol.ts';
import { IMAGE_MARKER } from '../tokenizer/llama-tokenizer.ts';

/**
 * One turn of a conversation; `text: null` is the open assistant turn the model is to complete, and
 * `open: true` on a final assistant turn with text leaves it unclosed (the model continues it).
 */
export interface ConversationTurn {
  role: 'user' | 'assistant';
  text: string | null;
  open?: boolean;
}

/** How {@link buildChatPrompt} renders a chat beyond its turns. */
export interface ChatPromptOptions {
  /** Per-chat instructions, put at the start of the first user turn (see the module comment). */
  instructions?: string;
  /** The chat ends with an answer to continue: render it open (no `</s>`), add no new turn. */
  continueAnswer?: boolean;
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
    if ((turn.text === null || turn.open) && (turn.role !== 'assistant' || i !== turns.length - 1)) {
      throw new OwleryError('INVALID_ARGUMENT', `Conversation turn ${i + 1} is open; only a final assistant turn may be.`);
    }
    const role = ROLE_NAMES[turn.role];
    out += turn.text ? `${role}: ${turn.text}${turn.open ? '' : SEPARATORS[i % 2]}` : `${role}:`;
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
 * A user turn's text with per-chat instructions in front (after the turn's leading image markers,
 * if it starts with some), separated by a blank line. Blank instructions change nothing.
 */
export function withInstructions(text: string, instructions: string | undefined): string {
  const clean = instructions?.trim() ?? '';
  if (!clean) return text;
  let markers = 0;
  while (text.startsWith(IMAGE_MARKER, markers * IMAGE_MARKER.length)) markers++;
  const head = IMAGE_MARKER.repeat(markers);
  const rest = text.slice(head.length);
  return `${head}${clean}${rest ? `\n\n${rest}` : ''}`;
}

/**
 * Builds the prompt for a chat: places each message's image markers (`placeImageMarkers`), puts
 * the instructions into the first user turn, renders the turns with the `mplug_owl2` template and,
 * when the last message is the user's, appends the open `ASSISTANT:` turn for the model to
 * complete. With `continueAnswer`, the chat ends with the answer to continue, rendered open.
 *
 * Throws `OwleryError('INVALID_ARGUMENT')` for an empty chat, roles that do not alternate starting
 * with the user, images on an assistant message, marker/image count mismatches, a user message
 * with neither text nor images (the official web demo refuses those too), or `continueAnswer` on a
 * chat that does not end with an answer that has text.
 */
export function buildChatPrompt(messages: readonly ChatMessage[], opts: ChatPromptOptions = {}): string {
  if (messages.length === 0) throw new OwleryError('INVALID_ARGUMENT', 'A chat prompt needs at least one message.');
  const turns: ConversationTurn[] = messages.map((m, i) => {
    const images = m.images ?? 0;
    if (m.role === 'assistant' && images !== 0) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${i + 1} is from the assistant and cannot carry images.`);
    }
    if (m.role === 'user' && m.content.length === 0 && images === 0) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${i + 1} has neither text nor images.`);
    }
    const text = placeImageMarkers(m.content, images);
    return { role: m.role, text: i === 0 && m.role === 'user' ? withInstructions(text, opts.instructions) : text };
  });
  const last = turns[turns.length - 1];
  if (opts.continueAnswer) {
    if (last.role !== 'assistant' || !last.text?.trim()) {
      throw new OwleryError('INVALID_ARGUMENT', 'Only an answer that has text can be continued.');
    }
    // Trailing whitespace would end the prompt with a lone space token the model never saw there.
    last.text = last.text.trimEnd();
    last.open = true;
  } else if (last.role === 'user') {
    turns.push({ role: 'assistant', text: null });
  }
  return renderConversation(turns);
}
