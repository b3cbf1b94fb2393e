/**
 * Saving a streamed answer as it grows, so a crash or kill loses at most a fraction of a second of
 * it. Made by `Store.beginAnswer`.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { ConversationId, Message, MessageId } from '../../src-shared/domain.ts';
import type { FinishedAnswer } from './messages.ts';

/** Options for `Store.beginAnswer`. */
export interface AnswerWriterOptions {
  /** Longest time streamed text stays in memory before it is written (default 250 ms). */
  flushIntervalMs?: number;
  /** Called when a timed write fails (the text stays buffered and is retried on the next write). */
  onError?: (err: unknown) => void;
}

/** What an {@link AnswerWriter} writes through (the `Store`). */
export interface AnswerSink {
  appendText(messageId: MessageId, delta: string): void;
  finishMessage(messageId: MessageId, result: FinishedAnswer): Message;
}

/**
 * Saves a streamed answer as it grows: text pushed is written at most `flushIntervalMs` later
 * (a timer covers pauses between tokens), so a crash or kill loses at most that much. A failed
 * write (full disk, lock) keeps the text in memory and retries on the next write; {@link finish}
 * writes everything or throws with nothing lost.
 */
export class AnswerWriter {
  /** The answer being written. */
  readonly messageId: MessageId;
  /** The conversation it belongs to. */
  readonly conversationId: ConversationId;
  private readonly store: AnswerSink;
  private readonly intervalMs: number;
  private readonly onError: (err: unknown) => void;
  private pending = '';
  private saved: string;
  private lastFlush = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private done = false;
  private readonly flushListeners = new Set<(savedChars: number) => void>();

  /** Use `Store.beginAnswer`. */
  constructor(store: AnswerSink, message: Message, opts: AnswerWriterOptions = {}) {
    this.store = store;
    this.messageId = message.id;
    this.conversationId = message.conversationId;
    this.saved = message.text;
    this.intervalMs = Math.max(0, opts.flushIntervalMs ?? 250);
    this.onError = opts.onError ?? (() => {});
    this.lastFlush = Date.now();
  }
  /** All text so far, saved or not. */
  get text(): string {
    return this.saved + this.pending;
  }

  /** Text pushed but not yet written. */
  get unsaved(): string {
    return this.pending;
  }

  /** Adds streamed text; writes it now if the last write is `flushIntervalMs` old, else soon. */
  push(delta: string): void {
    if (this.done) throw new OwleryError('INVALID_ARGUMENT', `Answer ${this.messageId} is finished.`);
    if (delta === '') return;
    this.pending += delta;
    if (Date.now() - this.lastFlush >= this.intervalMs) this.flush();
    else this.schedule();
  }

  /** Writes buffered text now. On failure the text stays buffered and the error is thrown. */
  flush(): void {
    this.clearTimer();
    if (this.pending === '') return;
    const chunk = this.pending;
    this.store.appendText(this.messageId, chunk);
    this.saved += chunk;
    this.pending = '';
    this.lastFlush = Date.now();
    for (const fn of this.flushListeners) fn(this.saved.length);
  }

  /**
   * Calls `fn` after every write of streamed text (from a push or from the timer), with the
   * length of the text saved so far. Returns an unsubscribe function.
   */
  onDidFlush(fn: (savedChars: number) => void): () => void {
    this.flushListeners.add(fn);
    return () => this.flushListeners.delete(fn);
  }

  /**
   * Ends the answer: writes the remaining text and the final status in one transaction. On
   * failure nothing is lost: the text stays buffered and `finish` can be called again.
   */
  finish(result: Omit<FinishedAnswer, 'text'>): Message {
    this.clearTimer();
    const text = this.pending === '' ? undefined : this.saved + this.pending;
    const message = this.store.finishMessage(this.messageId, { ...result, text });
    this.saved = message.text;
    this.pending = '';
    this.done = true;
    return message;
  }

  /** Stops the timer without writing (the answer stays `partial`). */
  dispose(): void {
    this.clearTimer();
    this.done = true;
  }

  private schedule(): void {
    if (this.timer) return;
    const wait = Math.max(0, this.intervalMs - (Date.now() - this.lastFlush));
    this.timer = setTimeout(() => {
      this.timer = null;
      try {
        this.flush();
      } catch (err) {
        this.onError(err);
        if (!this.done) this.schedule();
      }
    }, wait);
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
