/**
 * From stored messages to the engine's input: the thread from the first message to the one being
 * answered becomes the chat turns the engine renders with the `mplug_owl2` template (and fits to
 * its context window), plus their photos in marker order.
 *
 * The stored tree can hold turns the template cannot express as they are, so the thread is
 * normalised first:
 * - `system` messages are left out (the `mplug_owl2` template has no system prompt);
 * - an answer with no text (it failed or was cancelled before its first token) is left out, and
 *   so is its effect: the question it did not answer is merged with the next one;
 * - consecutive messages of the same role (a question whose answer was left out, then another
 *   question) are joined with a blank line, their photos kept in order.
 *
 * A thread being continued ends with the answer to continue instead of a question.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { MessageImage, MessageRole } from '../../src-shared/domain.ts';
import { buildChatPrompt, placeImageMarkers } from '../engine/index.ts';
import type { ChatMessage, ChatPromptOptions } from '../engine/index.ts';

/** A message of the thread, as far as the prompt is concerned. */
export interface HistoryMessage {
  role: MessageRole;
  text: string;
  images: readonly Pick<MessageImage, 'sha256'>[];
}

/** A thread ready for the engine. */
export interface ThreadRequest<I> {
  /** Alternating turns, ending with the question to answer. */
  turns: ChatMessage[];
  /** The photos, in the order of their markers in the turns. */
  images: I[];
}

/** One turn of the normalised thread: a user's question (with photos) or an answer. */
export interface PromptTurn<I> {
  role: 'user' | 'assistant';
  /** The text, with the user's image markers placed. */
  text: string;
  images: I[];
}

/**
 * Normalises a thread into alternating turns (see the module comment), ending with the user's
 * question (or, with `continueAnswer`, with the answer to continue after its question). Throws
 * `OwleryError('INVALID_ARGUMENT')` when there is nothing to answer, or when a message's
 * `<|image|>` markers do not match its photos.
 */
export function threadTurns<I extends Pick<MessageImage, 'sha256'>>(
  thread: readonly (HistoryMessage & { images: readonly I[] })[],
  opts: { continueAnswer?: boolean } = {},
): PromptTurn<I>[] {
  const turns: { role: 'user' | 'assistant'; parts: string[]; images: I[] }[] = [];
  for (const m of thread) {
    if (m.role === 'system') continue;
    if (m.role === 'assistant' && m.text.length === 0) continue;
    // Place markers per message first, so photos stay next to the text they came with when merged.
    const text = m.role === 'user' ? placeImageMarkers(m.text, m.images.length) : m.text;
    const last = turns[turns.length - 1];
    if (last && last.role === m.role) {
      last.parts.push(text);
      last.images.push(...m.images);
    } else {
      turns.push({ role: m.role, parts: [text], images: [...m.images] });
    }
  }
  if (opts.continueAnswer) {
    if (turns.length < 2 || turns[turns.length - 1].role !== 'assistant') {
      throw new OwleryError('INVALID_ARGUMENT', 'There is no answer to continue: the conversation must end with an answer that has text.');
    }
  } else if (turns.length === 0 || turns[turns.length - 1].role !== 'user') {
    throw new OwleryError('INVALID_ARGUMENT', 'There is no question to answer: the conversation must end with a message from you.');
  }
  // A thread that starts with an answer (e.g. after a system message) has no question before it.
  if (turns[0].role === 'assistant') turns.shift();
  return turns.map((t) => ({
    role: t.role,
    text: t.parts.filter((p) => p.length > 0).join('\n\n'),
    images: t.role === 'user' ? t.images : [],
  }));
}

/**
 * The engine request for a thread (see {@link threadTurns}), with the chat's instructions and
 * whether the last answer is continued. Throws `OwleryError('INVALID_ARGUMENT')` for a thread that
 * makes no valid prompt, so a request can be refused before anything is saved.
 */
export function threadRequest<I extends Pick<MessageImage, 'sha256'>>(
  thread: readonly (HistoryMessage & { images: readonly I[] })[],
  opts: ChatPromptOptions = {},
): ThreadRequest<I> {
  const turns = threadTurns(thread, opts);
  const messages: ChatMessage[] = turns.map((t) => ({ role: t.role, content: t.text, images: t.images.length }));
  buildChatPrompt(messages, opts);
  return { turns: messages, images: turns.flatMap((t) => t.images) };
}

/** Longest automatic title, in characters (before the ellipsis). */
export const TITLE_CHARS = 60;

/**
 * A conversation title from its first message: whitespace collapsed, image markers dropped, cut
 * at a word boundary to about {@link TITLE_CHARS} characters with an ellipsis. Falls back to the
 * first photo's name, then "Photo", then "New conversation".
 */
export function titleFromMessage(text: string, imageNames: readonly (string | null)[] = []): string {
  const clean = text.replace(/<\|image\|>/g, ' ').replace(/[\p{Cc}\p{Zl}\p{Zp}\s]+/gu, ' ').trim();
  if (clean.length === 0) {
    const name = imageNames.find((n) => n && n.trim().length > 0);
    if (name) return cut(name.trim());
    return imageNames.length > 0 ? 'Photo' : 'New conversation';
  }
  return cut(clean);
}

function cut(s: string): string {
  const chars = Array.from(s); // code points, so a surrogate pair is never split
  if (chars.length <= TITLE_CHARS) return s;
  const head = chars.slice(0, TITLE_CHARS).join('');
  const space = head.lastIndexOf(' ');
  const base = space >= TITLE_CHARS * 0.6 ? head.slice(0, space) : head;
  return `${base.replace(/[\s.,;:!?-]+$/u, '')}…`;
}
