/**
 * The chat service: turns a user message (with photos) into an engine request built from the
 * stored conversation, streams the answer to subscribers in batches, and saves it as it grows.
 *
 * - The request is the thread from the first message to the one answered (see `history.ts`) as
 *   chat turns, with the photos as files of the image store and their sha256, in order. It is
 *   built when the request reaches the engine (an answer finished meanwhile is part of it); when it
 *   would not leave room for an answer in the model's context window, the engine leaves the oldest
 *   question/answer pairs out of the prompt (never out of the history) until it does.
 * - The answer is created as a `partial` message before generation starts; its text is written at
 *   most `saveIntervalMs` (default 500 ms) plus one batch behind the stream, so a crash or kill
 *   loses at most that much. It ends `complete`, `cancelled` (a normal outcome: the partial text
 *   is kept) or `error` (e.g. the engine process crashed: the partial text is kept, the error is
 *   recorded and reported, and the next request restarts the engine), with the statistics, the
 *   sampling settings and the model package that wrote it.
 * - Regenerating and editing add branches to the message tree; the old ones stay. Editing the first
 *   message retitles the conversation after the edit, unless the user named it.
 * - Continuing an answer (after Stop) reopens it and appends what the model writes next: the
 *   prompt ends inside that answer (the template's turn left open), so the engine reuses the KV
 *   cache of the prefix it already has and only the new text is generated.
 * - A chat's instructions (`Conversation.options`) go into every prompt of that chat (the engine
 *   puts them at the start of the first question it keeps).
 * - One generation at a time per engine: requests wait in a first-in, first-out queue (their
 *   first event is the `queued` phase); beyond `maxQueued` waiting requests, new ones are refused
 *   with `ENGINE_BUSY` before anything is written.
 *
 * Runs unchanged in plain Node (tests, CLI, web harness) and in the Electron main process.
 * @see docs/style.md, H5 (batched events with request ids and stats) and H6 (cancellation)
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type {
  ChatEvent,
  ChatGenerationOptions,
  ChatImageInput,
  ChatOutcome,
  ChatRequestId,
  ChatStarted,
  ContinueRequest,
  EditRequest,
  RegenerateRequest,
  SendRequest,
} from '../../src-shared/chat.ts';
import type { ConversationId, GenerationSettings, Message, MessageId, ModelRef } from '../../src-shared/domain.ts';
import type { FinishReason, GenerationEvent, GenerationStats } from '../../src-shared/engine.ts';
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import { MAX_IMAGES_PER_MESSAGE, MAX_MESSAGE_CHARS } from '../../src-shared/limits.ts';
import { MANIFEST_FILE, sha256File } from '../../models/package/index.ts';
import type { ChatMessage, EngineInfo, GenerateRequest, GenerateResult, HostGenerateOptions, ImageInput } from '../engine/index.ts';
import { toStoreError } from '../store/errors.ts';
import type { ImageStore } from '../store/images.ts';
import type { AnswerWriter, Store } from '../store/store.ts';
import { DEFAULT_DELTA_INTERVAL_MS, DeltaBatcher } from './delta-batcher.ts';
import { threadRequest, titleFromMessage } from './history.ts';
import type { HistoryMessage } from './history.ts';

/** Default longest time streamed text waits before it is saved, in ms. */
export const DEFAULT_SAVE_INTERVAL_MS = 500;
/** Default number of requests that may wait for the engine. */
export const DEFAULT_MAX_QUEUED = 8;

/** What the chat service needs of the engine (the app's `EngineService`, or an `EngineHost` with a model loaded). */
export interface ChatEngine {
  generate(request: GenerateRequest, options?: HostGenerateOptions): Promise<GenerateResult>;
  /** The model the engine process has loaded now. */
  readonly info: EngineInfo | undefined;
}

/** Options for {@link ChatService}. */
export interface ChatServiceOptions {
  store: Store;
  images: ImageStore;
  /** The engine (one loaded model); generations on it run one at a time. */
  engine: ChatEngine;
  /** Time between two `delta` events of a request (default 40 ms). */
  deltaIntervalMs?: number;
  /** Longest time streamed text stays unsaved (default 500 ms). */
  saveIntervalMs?: number;
  /** Requests that may wait behind the running one before new ones get `ENGINE_BUSY` (default 8). */
  maxQueued?: number;
  /** Called after each write of an answer's streamed text to the database, whether a new batch or the save timer wrote it (diagnostics, tests). */
  onSaved?: (info: { requestId: ChatRequestId; messageId: MessageId; chars: number }) => void;
}

/** A photo to attach: stored, with the name it was attached under. */
interface Attachment {
  sha256: string;
  name: string | null;
}

/** Per-request options of {@link ChatService.send}, {@link ChatService.regenerate}, {@link ChatService.edit}. */
export interface RequestOptions {
  /** Receives this request's events, from the first one on. */
  onEvent?: (event: ChatEvent) => void;
}

interface Job {
  started: ChatStarted;
  /** Continue the answer (its text so far is the end of the prompt). */
  continueAnswer: boolean;
  /** Sampling, aspect mode and provider of this request (saved with the answer). */
  settings: GenerationSettings;
  writer: AnswerWriter;
  controller: AbortController;
  onEvent?: (event: ChatEvent) => void;
  seq: number;
  /** Set once the final event was sent. */
  finished: boolean;
  settle: (outcome: ChatOutcome) => void;
}

/** The chat service; see the module comment. */
export class ChatService {
  private readonly store: Store;
  private readonly imageStore: ImageStore;
  private readonly engine: ChatEngine;
  private readonly deltaIntervalMs: number;
  private readonly saveIntervalMs: number;
  private readonly maxQueued: number;
  private readonly onSaved: ChatServiceOptions['onSaved'];
  private readonly listeners = new Set<(event: ChatEvent) => void>();
  private readonly queue: Job[] = [];
  private running: Job | null = null;
  private readonly outcomes = new Map<ChatRequestId, Promise<ChatOutcome>>();
  private model: { dir: string; ref: ModelRef } | null = null;
  private disposed = false;

  /** A chat service over a store, its image store and an engine. */
  constructor(opts: ChatServiceOptions) {
    this.store = opts.store;
    this.imageStore = opts.images;
    this.engine = opts.engine;
    this.deltaIntervalMs = Math.max(0, opts.deltaIntervalMs ?? DEFAULT_DELTA_INTERVAL_MS);
    this.saveIntervalMs = Math.max(0, opts.saveIntervalMs ?? DEFAULT_SAVE_INTERVAL_MS);
    this.maxQueued = Math.max(0, opts.maxQueued ?? DEFAULT_MAX_QUEUED);
    this.onSaved = opts.onSaved;
  }

  /** Receives the events of every request. Returns an unsubscribe function. */
  subscribe(listener: (event: ChatEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Whether a generation is running, and how many requests wait behind it. */
  get queueState(): { running: ChatRequestId | null; queued: number } {
    return { running: this.running?.started.requestId ?? null, queued: this.queue.length };
  }

  /**
   * Saves a user message (and a new conversation when none is given) and queues its answer.
   *
   * Nothing is written when the request is refused: `INVALID_ARGUMENT` (no text and no photos,
   * marker/photo mismatch, too long), `NOT_FOUND` (conversation, parent or stored photo),
   * `ENGINE_BUSY` (queue full), image errors (`IMAGE_UNREADABLE`, …) and store errors.
   */
  async send(req: SendRequest, opts: RequestOptions = {}): Promise<ChatStarted> {
    this.checkOpen();
    const text = checkText(req.text);
    const inputs = checkImages(req.images);
    if (text.trim().length === 0 && inputs.length === 0) {
      throw new OwleryError('INVALID_ARGUMENT', 'Write a message or attach a photo before sending.');
    }
    if ((req.conversationId === undefined || req.conversationId === null) && req.parentId !== undefined && req.parentId !== null) {
      throw new OwleryError('INVALID_ARGUMENT', 'A message that follows another one needs its conversation.');
    }
    this.checkCapacity();
    const attachments = await this.storeImages(inputs);

    const existing = req.conversationId === undefined || req.conversationId === null ? null : this.store.getConversation(req.conversationId);
    let parentId: MessageId | null = null;
    if (existing) {
      parentId = req.parentId === undefined ? existing.activeLeafId : req.parentId;
      if (parentId !== null) this.requireInConversation(parentId, existing.id);
    }
    const history = existing && parentId !== null ? this.historyThrough(existing.id, parentId) : [];
    this.engineRequest([...history, { role: 'user', text, images: attachments }]); // refuse bad input before writing
    this.checkCapacity();

    const settings = this.settingsFor(req);
    const { userMessage, writer } = this.transaction(() => {
      const title = titleFromMessage(text, attachments.map((a) => a.name));
      const conversation = existing ?? this.store.createConversation({ title, options: req.chatOptions });
      if (existing && existing.title === '' && history.length === 0) {
        this.store.renameConversation(existing.id, title, { byUser: false });
      }
      const userMessage = this.store.appendUserMessage({
        conversationId: conversation.id,
        parentId,
        text,
        images: attachments.map((a) => ({ sha256: a.sha256, name: a.name })),
      });
      return { userMessage, writer: this.beginAnswer(conversation.id, userMessage.id, settings) };
    });
    return this.enqueue(userMessage.id, writer, settings, opts);
  }

  /**
   * Answers again: a new answer beside the answer `messageId` (or under the user message
   * `messageId`); the old answer stays as a branch and the new one becomes the branch on screen.
   */
  async regenerate(req: RegenerateRequest, opts: RequestOptions = {}): Promise<ChatStarted> {
    this.checkOpen();
    this.checkCapacity();
    const target = this.store.getMessage(req.messageId);
    let question: Message;
    if (target.role === 'assistant') {
      if (target.parentId === null) throw new OwleryError('INVALID_ARGUMENT', `Answer ${target.id} does not answer a message.`);
      question = this.store.getMessage(target.parentId);
    } else {
      question = target;
    }
    if (question.role !== 'user') throw new OwleryError('INVALID_ARGUMENT', 'Only answers to your messages can be regenerated.');
    this.engineRequest(this.historyThrough(question.conversationId, question.id));
    const settings = this.settingsFor(req);
    const writer = this.beginAnswer(question.conversationId, question.id, settings);
    return this.enqueue(question.id, writer, settings, opts);
  }

  /**
   * Edits a user message and answers the edit: the edit is added beside the original (same
   * parent), so the original and its answers stay as a branch. Photos omitted: the original's.
   */
  async edit(req: EditRequest, opts: RequestOptions = {}): Promise<ChatStarted> {
    this.checkOpen();
    const text = checkText(req.text);
    const original = this.store.getMessage(req.messageId);
    if (original.role !== 'user') throw new OwleryError('INVALID_ARGUMENT', 'Only your own messages can be edited; regenerate an answer instead.');
    const attachments = req.images === undefined
      ? original.images.map((img) => ({ sha256: img.sha256, name: img.name }))
      : await this.storeImages(checkImages(req.images));
    if (text.trim().length === 0 && attachments.length === 0) {
      throw new OwleryError('INVALID_ARGUMENT', 'Write a message or attach a photo before sending.');
    }
    this.checkCapacity();
    const history = original.parentId === null ? [] : this.historyThrough(original.conversationId, original.parentId);
    this.engineRequest([...history, { role: 'user', text, images: attachments }]);
    const settings = this.settingsFor(req);
    const { edited, writer } = this.transaction(() => {
      const edited = this.store.editMessage(original.id, { text, images: attachments });
      // The title follows an edited first message, unless the user named the conversation.
      const conversation = this.store.getConversation(original.conversationId);
      if (original.parentId === null && !conversation.titleSetByUser) {
        this.store.renameConversation(conversation.id, titleFromMessage(text, attachments.map((a) => a.name)), { byUser: false });
      }
      return { edited, writer: this.beginAnswer(original.conversationId, edited.id, settings) };
    });
    return this.enqueue(edited.id, writer, settings, opts);
  }

  /**
   * Continues an answer that stopped early: the answer is reopened and what the model writes next
   * is appended to it (see the module comment). Refused (`INVALID_ARGUMENT`) for a message that is
   * not an answer, has no text, is being written, or is followed by another message.
   */
  async continue(req: ContinueRequest, opts: RequestOptions = {}): Promise<ChatStarted> {
    this.checkOpen();
    this.checkCapacity();
    const answer = this.store.getMessage(req.messageId);
    if (answer.role !== 'assistant' || answer.parentId === null) throw new OwleryError('INVALID_ARGUMENT', 'Only answers can be continued.');
    if (answer.text.trim().length === 0) throw new OwleryError('INVALID_ARGUMENT', 'This answer has no text to continue; regenerate it instead.');
    if (this.isWriting(answer.id)) throw new OwleryError('INVALID_ARGUMENT', 'This answer is still being written.');
    this.engineRequest(this.historyThrough(answer.conversationId, answer.id), { continueAnswer: true });
    const settings = this.settingsFor(req);
    const writer = this.store.continueAnswer(answer.id, { flushIntervalMs: this.saveIntervalMs, onError: () => {} });
    return this.enqueue(answer.parentId, writer, settings, opts, { continueAnswer: true, continuedFrom: writer.text });
  }

  /**
   * Stops a request: a waiting one is dropped, a running one stops between two tokens. Either
   * way it ends with `done` / finish `cancelled`, its partial answer kept. Returns false when the
   * request is unknown or already finished.
   */
  cancel(requestId: ChatRequestId): boolean {
    if (this.running?.started.requestId === requestId) {
      if (this.running.finished) return false;
      this.running.controller.abort();
      return true;
    }
    const i = this.queue.findIndex((j) => j.started.requestId === requestId);
    if (i < 0) return false;
    const [job] = this.queue.splice(i, 1);
    this.finishJob(job, { finish: 'cancelled', stats: null }, null);
    return true;
  }

  /**
   * The outcome of a request (its `done` or `error` event), for requests still known: running,
   * waiting, or among the last 100 finished. Never rejects.
   */
  outcome(requestId: ChatRequestId): Promise<ChatOutcome> {
    const p = this.outcomes.get(requestId);
    if (!p) throw new OwleryError('NOT_FOUND', `There is no chat request ${requestId}.`);
    return p;
  }

  /** Cancels everything, waits for the running request to end, and refuses new requests. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const job of this.queue.splice(0)) this.finishJob(job, { finish: 'cancelled', stats: null }, null);
    const running = this.running;
    if (running) {
      running.controller.abort();
      await this.outcomes.get(running.started.requestId);
    }
  }

  // Internals -------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.disposed) throw new OwleryError('CANCELLED', 'The chat service has been shut down.');
  }

  /** True while a request writes (or waits to write) the answer `messageId`. */
  private isWriting(messageId: MessageId): boolean {
    return [this.running, ...this.queue].some((j) => j !== null && !j.finished && j.started.assistantMessageId === messageId);
  }

  private checkCapacity(): void {
    if (this.queue.length >= this.maxQueued && this.running) {
      throw new OwleryError('ENGINE_BUSY', `The model is busy with ${this.queue.length + 1} requests; wait for one to finish or cancel one.`, {
        queued: this.queue.length,
      });
    }
  }

  private transaction<T>(fn: () => T): T {
    try {
      return this.store.db.transaction(fn).immediate();
    } catch (err) {
      // Store calls inside classify their own failures; BEGIN and COMMIT (a full disk, a lock) are ours.
      throw toStoreError(err, this.store.file);
    }
  }

  private requireInConversation(messageId: MessageId, conversationId: ConversationId): void {
    const m = this.store.getMessage(messageId);
    if (m.conversationId !== conversationId) {
      throw new OwleryError('INVALID_ARGUMENT', `Message ${messageId} belongs to another conversation.`, { messageId });
    }
  }

  /** The thread from the first message down to `messageId` (inclusive), nothing below it. */
  private historyThrough(conversationId: ConversationId, messageId: MessageId): HistoryMessage[] {
    const thread = this.store.getThread(conversationId, messageId).messages;
    const end = thread.findIndex((m) => m.id === messageId);
    if (end < 0) throw new OwleryError('NOT_FOUND', `Message ${messageId} is not in conversation ${conversationId}.`);
    return thread.slice(0, end + 1).map((m) => ({ role: m.role, text: m.text, images: m.images.map((i) => ({ sha256: i.sha256 })) }));
  }

  /**
   * The engine request answering a thread: its turns and its photos as stored files with their
   * sha256 (the engine's embeddings-cache key). Throws when the thread makes no valid prompt
   * (markers that do not match photos, nothing to answer) or a photo is missing from the store.
   * The engine fits the turns to its context window.
   */
  private engineRequest(
    thread: readonly HistoryMessage[],
    opts: { instructions?: string; continueAnswer?: boolean } = {},
  ): { turns: ChatMessage[]; images: ImageInput[]; instructions?: string; continueAnswer?: boolean } {
    const { turns, images } = threadRequest(thread, opts);
    return {
      turns,
      ...(opts.instructions?.trim() ? { instructions: opts.instructions } : {}),
      ...(opts.continueAnswer ? { continueAnswer: true } : {}),
      images: images.map((img) => {
        const record = this.store.getImage(img.sha256);
        if (!record) throw new OwleryError('NOT_FOUND', `A photo of this conversation (${img.sha256.slice(0, 12)}…) is missing from the image store.`);
        return { path: this.imageStore.pathOf(record), sha256: record.sha256 };
      }),
    };
  }

  private async storeImages(inputs: ChatImageInput[]): Promise<Attachment[]> {
    const out: Attachment[] = [];
    for (const input of inputs) {
      const name = input.name ?? null;
      if (input.kind === 'stored') {
        if (!this.store.getImage(input.sha256)) throw new OwleryError('NOT_FOUND', `Photo ${input.sha256} is not stored.`);
        out.push({ sha256: input.sha256, name });
      } else if (input.kind === 'file') {
        const record = await this.imageStore.put(input.path, name === null ? {} : { name });
        out.push({ sha256: record.sha256, name: name ?? input.path.split(/[\\/]/).pop() ?? null });
      } else {
        const record = await this.imageStore.put(input.bytes, name === null ? {} : { name });
        out.push({ sha256: record.sha256, name });
      }
    }
    return out;
  }

  /** A request's settings as saved with its answer: sampling, aspect mode and the provider asked for. */
  private settingsFor(req: ChatGenerationOptions): GenerationSettings {
    const settings: GenerationSettings = { ...req.sampling, aspectMode: req.aspectMode ?? 'resize' };
    const provider = this.engine.info?.provider.requested;
    if (provider) settings.provider = provider;
    return settings;
  }

  private beginAnswer(conversationId: ConversationId, parentId: MessageId, settings: GenerationSettings): AnswerWriter {
    return this.store.beginAnswer(
      { conversationId, parentId, settings, model: this.model?.ref ?? null },
      { flushIntervalMs: this.saveIntervalMs, onError: () => {} },
    );
  }

  private enqueue(
    userMessageId: MessageId,
    writer: AnswerWriter,
    settings: GenerationSettings,
    opts: RequestOptions,
    continuation: { continueAnswer: true; continuedFrom: string } | null = null,
  ): ChatStarted {
    const started: ChatStarted = {
      requestId: randomUUID(),
      conversationId: writer.conversationId,
      userMessageId,
      assistantMessageId: writer.messageId,
      ...(continuation ? { continuedFrom: continuation.continuedFrom } : {}),
    };
    const onSaved = this.onSaved;
    if (onSaved) writer.onDidFlush((chars) => onSaved({ requestId: started.requestId, messageId: writer.messageId, chars }));
    let settle!: (o: ChatOutcome) => void;
    const outcome = new Promise<ChatOutcome>((resolve) => (settle = resolve));
    this.outcomes.set(started.requestId, outcome);
    const job: Job = {
      started,
      continueAnswer: continuation !== null,
      settings,
      writer,
      controller: new AbortController(),
      onEvent: opts.onEvent,
      seq: 0,
      finished: false,
      settle,
    };
    this.queue.push(job);
    this.emit(job, { type: 'phase', requestId: started.requestId, phase: 'queued' });
    queueMicrotask(() => this.pump());
    return started;
  }

  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    const job = this.queue.shift()!;
    this.running = job;
    void this.run(job).finally(() => {
      this.running = null;
      this.pump();
    });
  }

  private async run(job: Job): Promise<void> {
    const { requestId } = job.started;
    const batcher = new DeltaBatcher((text) => {
      this.emit(job, { type: 'delta', requestId, seq: job.seq++, text });
      this.save(job, text);
    }, this.deltaIntervalMs);
    const onEvent = (e: GenerationEvent): void => {
      if (e.type === 'tokens') batcher.push(e.text);
      else if (e.type === 'phase') {
        batcher.flush();
        this.emit(job, { type: 'phase', requestId, phase: e.phase, ...(e.images ? { images: e.images } : {}), ...(e.progress ? { progress: { ...e.progress } } : {}) });
      }
    };
    try {
      // Built now, not when queued: an answer finished meanwhile in the same conversation is part of
      // it, and so are the chat's instructions as they are now.
      const { conversationId, userMessageId, assistantMessageId } = job.started;
      const request = this.engineRequest(this.historyThrough(conversationId, job.continueAnswer ? assistantMessageId : userMessageId), {
        instructions: this.store.getConversation(conversationId).options.instructions,
        continueAnswer: job.continueAnswer,
      });
      if (job.controller.signal.aborted) {
        batcher.close();
        this.finishJob(job, { finish: 'cancelled', stats: null }, null);
        return;
      }
      const { aspectMode, provider: _provider, ...sampling } = job.settings;
      const result = await this.engine.generate({ ...request, sampling, aspect: aspectMode }, { onEvent, signal: job.controller.signal });
      batcher.close();
      // The streamed pieces make up the answer; should the engine's final text hold more, send the rest.
      const streamed = job.writer.text.slice(job.started.continuedFrom?.length ?? 0);
      if (result.text.startsWith(streamed) && result.text.length > streamed.length) {
        const rest = result.text.slice(streamed.length);
        this.emit(job, { type: 'delta', requestId, seq: job.seq++, text: rest });
        job.writer.push(rest);
      }
      await this.refreshModel();
      this.finishJob(job, { finish: result.finish, stats: result.stats }, null);
    } catch (err) {
      batcher.close();
      await this.refreshModel().catch(() => {});
      this.finishJob(job, null, err);
    }
  }

  /** Pushes a batch to the answer's writer (which writes it when the save interval has passed). */
  private save(job: Job, text: string): void {
    try {
      job.writer.push(text);
    } catch {
      // The text stays buffered in the writer and is written with the next batch or at the end.
    }
  }

  /** Ends a job: saves the final status and text, emits `done` or `error`, settles its outcome. */
  private finishJob(job: Job, ok: { finish: FinishReason; stats: GenerationStats | null } | null, err: unknown): void {
    const { requestId } = job.started;
    const settings = this.withProvider(job.settings);
    const model = this.model?.ref ?? null;
    let outcome: ChatOutcome;
    if (ok) {
      try {
        const message = job.writer.finish({ status: ok.finish === 'cancelled' ? 'cancelled' : 'complete', stats: ok.stats, settings, model });
        outcome = { type: 'done', requestId, finish: ok.finish, stats: ok.stats, message };
      } catch (saveErr) {
        outcome = { type: 'error', requestId, error: serializeError(saveErr), message: this.tryGetMessage(job.writer.messageId) };
      }
    } else {
      const error = serializeError(err);
      let message: Message | null;
      try {
        message = job.writer.finish({ status: 'error', error: error.message, settings, model });
      } catch {
        job.writer.dispose();
        message = this.tryGetMessage(job.writer.messageId);
      }
      outcome = { type: 'error', requestId, error, message };
    }
    job.finished = true;
    this.emit(job, outcome);
    job.settle(outcome);
    this.forgetOldOutcomes();
  }

  private withProvider(settings: GenerationSettings): GenerationSettings {
    const provider = this.engine.info?.provider.requested;
    return provider && !settings.provider ? { ...settings, provider } : settings;
  }

  private tryGetMessage(id: MessageId): Message | null {
    try {
      return this.store.getMessage(id);
    } catch {
      return null;
    }
  }

  /** Learns which model package the engine has loaded (its id and manifest hash). */
  private async refreshModel(): Promise<void> {
    const info = this.engine.info;
    if (!info || this.model?.dir === info.dir) return;
    const sha256 = await sha256File(join(info.dir, MANIFEST_FILE));
    this.model = { dir: info.dir, ref: { packageId: info.packageId, sha256 } };
  }

  private emit(job: Job, event: ChatEvent): void {
    for (const fn of [job.onEvent, ...this.listeners]) {
      if (!fn) continue;
      try {
        fn(event);
      } catch {
        // A failing subscriber must not stop the stream or the other subscribers.
      }
    }
  }

  private forgetOldOutcomes(): void {
    const finished = [...this.outcomes.keys()].filter(
      (id) => id !== this.running?.started.requestId && !this.queue.some((j) => j.started.requestId === id),
    );
    for (const id of finished.slice(0, Math.max(0, finished.length - 100))) this.outcomes.delete(id);
  }
}

function checkText(text: unknown): string {
  if (typeof text !== 'string') throw new OwleryError('INVALID_ARGUMENT', 'The message text must be a string.');
  if (text.length > MAX_MESSAGE_CHARS) {
    throw new OwleryError('INVALID_ARGUMENT', `A message can be at most ${MAX_MESSAGE_CHARS.toLocaleString('en')} characters long.`);
  }
  return text;
}

function checkImages(images: unknown): ChatImageInput[] {
  if (images === undefined) return [];
  if (!Array.isArray(images)) throw new OwleryError('INVALID_ARGUMENT', 'Photos must be a list.');
  if (images.length > MAX_IMAGES_PER_MESSAGE) {
    throw new OwleryError('INVALID_ARGUMENT', `A message can carry at most ${MAX_IMAGES_PER_MESSAGE} photos.`);
  }
  images.forEach((img: unknown, i) => {
    const kind = (img as { kind?: unknown } | null)?.kind;
    if (kind !== 'stored' && kind !== 'file' && kind !== 'bytes') {
      throw new OwleryError('INVALID_ARGUMENT', `Photo ${i + 1} must be a stored photo, a file or bytes.`);
    }
  });
  return images as ChatImageInput[];
}
