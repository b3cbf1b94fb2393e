/**
 * Batches streamed text so subscribers get one event per ~40 ms instead of one per token
 * (docs/style.md, H5: one IPC message per token would flood the renderer).
 */

/** Default time between two batches, in ms. */
export const DEFAULT_DELTA_INTERVAL_MS = 40;

/**
 * Collects text and hands it to `emit` at most every `intervalMs`: the first piece after a quiet
 * spell starts a timer, and everything that arrives until it fires goes out together.
 * {@link flush} sends what is waiting now (call it before the final event).
 */
export class DeltaBatcher {
  private pending = '';
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  /** `emit` receives each batch (never empty). */
  constructor(
    private readonly emit: (text: string) => void,
    private readonly intervalMs: number = DEFAULT_DELTA_INTERVAL_MS,
  ) {}

  /** Adds streamed text. Ignored after {@link close}. */
  push(text: string): void {
    if (this.closed || text === '') return;
    this.pending += text;
    if (this.timer === null) this.timer = setTimeout(() => this.flush(), this.intervalMs);
  }

  /** Sends the waiting text now, if any. */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending === '') return;
    const text = this.pending;
    this.pending = '';
    this.emit(text);
  }

  /** Sends the waiting text and stops accepting more. */
  close(): void {
    this.flush();
    this.closed = true;
  }
}
