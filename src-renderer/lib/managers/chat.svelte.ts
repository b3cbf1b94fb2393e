/**
 * The conversation on screen and the answers streaming into it.
 *
 * - The thread shown is main's active branch (`conversations:get`); switching branches, editing
 *   and regenerating change it in main, and the thread is reloaded from there.
 * - Streaming answers are tracked per request id from the first `chat:event`, so events that
 *   arrive before `chat:send` resolves are not lost; deltas are applied in `seq` order. While an
 *   answer streams its text comes from the stream; when it ends, the saved message from the
 *   `done`/`error` event replaces the thread's copy (also when a thread loaded meanwhile still had
 *   the partial text).
 * - Continuing an answer streams only what is added: the stream's `base` is the answer's text
 *   before, and the shown text is `base` followed by the stream.
 * - A failed answer shows its error itself (the message says "The answer failed: …"); the error
 *   line above the composer is for failures that have no answer to show them (one message per
 *   failure).
 * - The chat's own options (instructions, temperature, answer length) are the conversation's; a
 *   new chat keeps them as a draft that its first message saves with the conversation.
 * - Renames and retitles (`conversations:changed` for the conversation on screen) reload it, so
 *   the header follows them.
 * - Answers the user started are read out through the {@link Announcer} in batches.
 * @see docs/style.md, H5 (typed streamed events) and H6 (cancelling is not an error)
 */
import { SvelteMap } from 'svelte/reactivity';
import type { ChatEvent, ChatPhase, ChatRequestId, ChatStarted } from '../../../src-shared/chat.ts';
import { DEFAULT_CHAT_OPTIONS } from '../../../src-shared/domain.ts';
import type { ChatOptions, Conversation, ConversationId, Message, MessageId, Thread, ThreadMessage } from '../../../src-shared/domain.ts';
import type { PhaseProgress } from '../../../src-shared/engine.ts';
import type { ErrorCode } from '../../../src-shared/errors.ts';
import { imageUrl, thumbnailUrl } from '../../../src-shared/ipc/index.ts';
import type { ChatOptionsPatch, ImageAttachmentRef, OwleryClient } from '../../../src-shared/ipc/index.ts';
import { describeError, errorCode } from '../errors.ts';
import type { Announcer, AnswerReader } from './announcer.svelte.ts';
import { AttachmentsManager } from './attachments.svelte.ts';

/** One answer being streamed. */
export class AnswerStream {
  readonly requestId: ChatRequestId;
  conversationId = $state<ConversationId | null>(null);
  assistantMessageId = $state<MessageId | null>(null);
  phase = $state<ChatPhase | null>(null);
  /** Photos the current phase works on (reading or looking at photos). */
  phaseImages = $state(0);
  /** How far the current phase has come, when the engine knows (photos, prefill chunks). */
  phaseProgress = $state<PhaseProgress | null>(null);
  /** When the current phase began here (`performance.now()`), for its elapsed seconds. */
  phaseSince = $state(performance.now());
  text = $state('');
  /** Continue: the answer's text before this request (shown in front of {@link text}). */
  base = $state('');
  finished = $state(false);
  /** Set once this window started the request (its answer is announced). */
  reader: AnswerReader | null = null;
  nextSeq = 0;
  /** Deltas that arrived ahead of a missing one, by `seq`. */
  readonly early = new Map<number, string>();

  constructor(requestId: ChatRequestId) {
    this.requestId = requestId;
  }
}

/** State and actions of the chat view. */
export class ChatManager {
  conversationId = $state<ConversationId | null>(null);
  conversation = $state<Conversation | null>(null);
  messages = $state<ThreadMessage[]>([]);
  loading = $state(false);
  /** A send, edit or regenerate is on its way to main (before its answer starts streaming). */
  submitting = $state(false);
  /** The last failure, shown above the composer until the next action. */
  error = $state<string | null>(null);
  errorCode = $state<ErrorCode | null>(null);
  /** Options of the new chat on screen, saved with it when its first message is sent. */
  draftOptions = $state<ChatOptions>({ ...DEFAULT_CHAT_OPTIONS });
  readonly streams = new SvelteMap<ChatRequestId, AnswerStream>();

  readonly #client: OwleryClient;
  readonly #announcer: Announcer | null;
  /** Final versions of answers that ended, by id (a thread loaded meanwhile may be older). */
  readonly #finals = new Map<MessageId, Message>();
  /** Requests whose answer ended (their `done` may arrive before `chat:send` resolves). */
  readonly #ended = new Set<ChatRequestId>();
  #loadToken = 0;

  constructor(client: OwleryClient, announcer: Announcer | null = null) {
    this.#client = client;
    this.#announcer = announcer;
  }

  /** Follows `chat:event`s and changes to the conversation on screen; returns a stop function. */
  start(): () => void {
    const offs = [
      this.#client.chat.onEvent((e) => this.handleEvent(e)),
      this.#client.conversations.onChange((e) => {
        if (this.conversationId !== null && e.ids.includes(this.conversationId) && (e.reason === 'updated' || e.reason === 'restored')) void this.reload();
      }),
    ];
    return () => offs.forEach((off) => off());
  }

  /** The options of the chat on screen (the draft's for a new chat). */
  get options(): ChatOptions {
    return this.conversation?.options ?? this.draftOptions;
  }

  /** Changes the chat's instructions and settings (a new chat's draft until its first message). */
  async setOptions(patch: ChatOptionsPatch): Promise<boolean> {
    if (this.conversationId === null) {
      this.draftOptions = { ...this.draftOptions, ...patch };
      return true;
    }
    try {
      this.conversation = await this.#client.conversations.setOptions({ id: this.conversationId, options: patch });
      return true;
    } catch (err) {
      this.#fail(err);
      return false;
    }
  }

  /** The unfinished answer of the conversation on screen, if any. */
  get activeStream(): AnswerStream | null {
    for (const s of this.streams.values()) {
      if (!s.finished && s.conversationId !== null && s.conversationId === this.conversationId) return s;
    }
    return null;
  }

  /** True while an answer is on its way in the conversation on screen. */
  get generating(): boolean {
    return this.submitting || this.activeStream !== null;
  }

  /** The unfinished stream writing `messageId`, if any. */
  streamFor(messageId: MessageId): AnswerStream | null {
    for (const s of this.streams.values()) if (!s.finished && s.assistantMessageId === messageId) return s;
    return null;
  }

  /** A message's text as it should show now (streamed text while it streams). */
  textOf(message: Message): string {
    const s = this.streamFor(message.id);
    const streamed = s ? s.base + s.text : '';
    return s && streamed.length >= message.text.length ? streamed : message.text;
  }

  /** Shows an empty new conversation (created by main on the first send). */
  newChat(): void {
    ++this.#loadToken;
    this.conversationId = null;
    this.conversation = null;
    this.messages = [];
    this.loading = false;
    this.draftOptions = { ...DEFAULT_CHAT_OPTIONS };
    this.clearError();
  }

  /** Shows a conversation; with `messageId`, the branch through that message. */
  async open(id: ConversationId, messageId?: MessageId | null): Promise<void> {
    if (id !== this.conversationId) {
      this.conversationId = id;
      this.messages = [];
      this.conversation = null;
    }
    this.clearError();
    if (messageId != null) {
      await this.#load(() => this.#client.conversations.selectBranch({ messageId }));
    } else {
      await this.reload();
    }
  }

  /** Reloads the thread on screen. */
  reload(): Promise<void> {
    const id = this.conversationId;
    if (id === null) return Promise.resolve();
    return this.#load(() => this.#client.conversations.get({ id }));
  }

  /** Sends a message (with photos); resolves `true` once it is written and the answer started. */
  async send(text: string, images: ImageAttachmentRef[] = []): Promise<boolean> {
    const draft = this.conversationId === null ? this.draftOptions : null;
    const chatOptions = draft && (draft.instructions || draft.temperature !== null || draft.maxNewTokens !== null) ? { chatOptions: { ...draft } } : {};
    return (
      (await this.#start(() =>
        this.#client.chat.send({ conversationId: this.conversationId, text, ...(images.length ? { images } : {}), ...chatOptions }),
      )) !== null
    );
  }

  /** Answers again beside an answer (or under a user message): a new branch. Resolves to what started, or `null`. */
  regenerate(messageId: MessageId): Promise<ChatStarted | null> {
    return this.#start(() => this.#client.chat.regenerate({ messageId }));
  }

  /** Replaces a user message by an edited copy (a new branch; `images` omitted keeps its photos) and answers it. */
  edit(messageId: MessageId, text: string, images?: ImageAttachmentRef[]): Promise<ChatStarted | null> {
    return this.#start(() => this.#client.chat.edit({ messageId, text, ...(images ? { images } : {}) }));
  }

  /** A photo tray for editing `message`, holding its photos (add and remove them, then `edit`). */
  editTray(message: Message, imageBase: string): AttachmentsManager {
    const tray = new AttachmentsManager(this.#client);
    tray.addStored(message.images.map((img) => ({ ...img, url: imageUrl(img.sha256, imageBase), thumbnailUrl: thumbnailUrl(img.sha256, imageBase) })));
    return tray;
  }

  /** Continues an answer that stopped early: what the model writes next is appended to it. */
  continue(messageId: MessageId): Promise<ChatStarted | null> {
    return this.#start(() => this.#client.chat.continue({ messageId }));
  }

  /** Stops the answer streaming in the conversation on screen. */
  async stop(): Promise<void> {
    const s = this.activeStream;
    if (!s) return;
    try {
      await this.#client.chat.cancel({ requestId: s.requestId });
    } catch (err) {
      this.#fail(err);
    }
  }

  /** Shows the previous (`-1`) or next (`+1`) alternative of a message. */
  async showSibling(message: ThreadMessage, step: -1 | 1): Promise<void> {
    const target = message.siblingIds[message.siblingIndex + step];
    if (target === undefined) return;
    await this.#load(() => this.#client.conversations.selectBranch({ messageId: target }));
  }

  /** Clears the error line. */
  clearError(): void {
    this.error = null;
    this.errorCode = null;
  }

  /** Applies one streamed event (public for tests; {@link start} wires it). */
  handleEvent(e: ChatEvent): void {
    if (this.#ended.has(e.requestId)) return;
    const s = this.#stream(e.requestId);
    switch (e.type) {
      case 'phase':
        if (s.phase !== e.phase) s.phaseSince = performance.now();
        s.phase = e.phase;
        s.phaseImages = e.images ?? 0;
        s.phaseProgress = e.progress ?? null;
        break;
      case 'delta':
        if (e.seq < s.nextSeq) break;
        s.early.set(e.seq, e.text);
        while (s.early.has(s.nextSeq)) {
          s.text += s.early.get(s.nextSeq)!;
          s.early.delete(s.nextSeq++);
        }
        s.reader?.update(s.text);
        break;
      case 'done':
        this.#finish(s, e.message);
        s.reader?.finish(e.finish === 'cancelled' ? 'Answer stopped.' : e.finish === 'length' ? 'Answer cut at the length limit.' : undefined);
        break;
      case 'error':
        this.#finish(s, e.message);
        s.reader?.finish(`The answer failed: ${e.error.message}`);
        // A saved answer shows its own error; only a failure without one needs the error line.
        if (s.conversationId === this.conversationId && !e.message) {
          this.error = e.error.message;
          this.errorCode = e.error.code;
        }
        break;
    }
  }

  #stream(requestId: ChatRequestId): AnswerStream {
    let s = this.streams.get(requestId);
    if (!s) {
      s = new AnswerStream(requestId);
      this.streams.set(requestId, s);
    }
    return s;
  }

  #finish(s: AnswerStream, message: Message | null): void {
    s.finished = true;
    this.#ended.add(s.requestId);
    if (this.#ended.size > 500) this.#ended.delete(this.#ended.values().next().value!);
    if (message) {
      s.assistantMessageId ??= message.id;
      s.conversationId ??= message.conversationId;
      this.#finals.set(message.id, message);
      this.messages = this.messages.map((m) => (m.id === message.id ? { ...m, ...message } : m));
    }
    this.streams.delete(s.requestId);
  }

  async #start(call: () => Promise<ChatStarted>): Promise<ChatStarted | null> {
    this.clearError();
    this.submitting = true;
    try {
      const started = await call();
      if (!this.#ended.has(started.requestId)) {
        const s = this.#stream(started.requestId);
        s.conversationId = started.conversationId;
        s.assistantMessageId = started.assistantMessageId;
        s.base = started.continuedFrom ?? '';
        if (this.#announcer) {
          this.#announcer.say('Owlery is answering.');
          s.reader = this.#announcer.stream();
          if (s.text) s.reader.update(s.text);
        }
      }
      if (this.conversationId === null) this.conversationId = started.conversationId;
      if (started.conversationId === this.conversationId) await this.reload();
      return started;
    } catch (err) {
      this.#fail(err);
      return null;
    } finally {
      this.submitting = false;
    }
  }

  async #load(get: () => Promise<Thread>): Promise<void> {
    const token = ++this.#loadToken;
    this.loading = true;
    try {
      const thread = await get();
      if (token !== this.#loadToken) return;
      if (this.conversationId !== null && thread.conversation.id !== this.conversationId) return;
      this.conversationId = thread.conversation.id;
      this.conversation = thread.conversation;
      this.messages = thread.messages.map((m) => {
        const final = this.#finals.get(m.id);
        return final && m.status === 'partial' ? { ...m, ...final } : m;
      });
    } catch (err) {
      if (token === this.#loadToken) this.#fail(err);
    } finally {
      if (token === this.#loadToken) this.loading = false;
    }
  }

  #fail(err: unknown): void {
    this.error = describeError(err);
    this.errorCode = errorCode(err);
    this.#announcer?.say(this.error);
  }
}
