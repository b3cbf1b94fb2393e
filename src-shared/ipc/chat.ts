/**
 * The `chat:` domain: send a message, answer again, edit, continue an answer, stop; the answer
 * streams as `chat:event`s.
 * Photos are stored ones, by hash (from `images.pick`, `images.import` or
 * `images.importFromFolder`): never paths.
 */
import type { ChatEvent, ChatStarted } from '../chat.ts';
import { MAX_IMAGES_PER_MESSAGE, MAX_MESSAGE_BYTES } from '../limits.ts';
import { SETTING_SCHEMAS } from '../settings.ts';
import { v } from '../validate.ts';
import type { Infer } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';
import { attachment, chatOptionsPatch, opaqueId, rowId } from './fields.ts';

const text = v.string({ maxBytes: MAX_MESSAGE_BYTES });
const images = v.array(attachment, { max: MAX_IMAGES_PER_MESSAGE });
const s = SETTING_SCHEMAS;
/** Generation settings one request may override (the rest come from settings), with the settings' bounds. */
const overrides = v.object({
  temperature: v.optional(s.temperature),
  topP: v.optional(s.topP),
  topK: v.optional(s.topK),
  repetitionPenalty: v.optional(s.repetitionPenalty),
  maxNewTokens: v.optional(s.maxNewTokens),
  seed: v.optional(v.int({ min: 0, max: 2 ** 32 - 1 })),
  aspectMode: v.optional(s.aspectMode),
});
/** Generation settings a single request may override (the rest come from settings). */
export type GenerationOverrides = Infer<typeof overrides>;

const sendRequest = v.object({
  /** The conversation to write to; omitted or `null` starts a new one titled after the message. */
  conversationId: v.optional(v.nullable(rowId)),
  text,
  images: v.optional(images),
  /** The message this one follows; omitted: the end of the branch on screen; `null`: a new first message. */
  parentId: v.optional(v.nullable(rowId)),
  overrides: v.optional(overrides),
  /** Instructions and settings of the conversation this send starts (ignored for an existing one). */
  chatOptions: v.optional(chatOptionsPatch),
});
/** Send a user message and stream the answer. */
export type ChatSendRequest = Infer<typeof sendRequest>;

const regenerateRequest = v.object({ messageId: rowId, overrides: v.optional(overrides) });
/** Answer again: beside the answer `messageId`, or under the user message `messageId` (a new branch). */
export type ChatRegenerateRequest = Infer<typeof regenerateRequest>;

const editRequest = v.object({
  messageId: rowId,
  text,
  /** Photos of the edited message; omitted keeps the original's. */
  images: v.optional(images),
  overrides: v.optional(overrides),
});
/** Edit a user message (a new sibling branch) and answer the edited version. */
export type ChatEditRequest = Infer<typeof editRequest>;

const continueRequest = v.object({ messageId: rowId, overrides: v.optional(overrides) });
/** Continue the answer `messageId` after it stopped: what the model writes next is appended to it. */
export type ChatContinueRequest = Infer<typeof continueRequest>;

/** `window.owlery.chat`. */
export const chatApi = defineDomain({
  /** Writes the user message and starts streaming the answer. */
  send: invoke(sendRequest).returns<ChatStarted>(),
  regenerate: invoke(regenerateRequest).returns<ChatStarted>(),
  edit: invoke(editRequest).returns<ChatStarted>(),
  /** Continues an answer that stopped early (the last of its branch), appending to it. */
  continue: invoke(continueRequest).returns<ChatStarted>(),
  /** Stops a streaming answer; it ends with `done { finish: 'cancelled' }`, text kept. */
  cancel: invoke(v.object({ requestId: opaqueId })).returns<{ cancelled: boolean }>(),
  /** Streaming answer events of every request (`phase`, batched `delta`s with `seq`, then `done` or `error`). */
  onEvent: event('chat:event').carries<ChatEvent>(),
});
