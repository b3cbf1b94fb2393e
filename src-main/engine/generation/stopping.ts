/**
 * Streams decoded answer text while watching for the stop string.
 *
 * The official stopping criterion also stops when the decoded text ends with `</s>` (the model can
 * spell it out of several pieces), so any tail that could still become `</s>` is held back until
 * it is known not to.
 */
export class StopStringStream {
  private text = '';
  private emitted = 0;
  private stopped = false;

  constructor(private readonly stop: string = '</s>') {}

  /** Adds decoded text; returns what can be shown now and whether the stop string was reached. */
  push(chunk: string): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    this.text += chunk;
    const at = this.text.indexOf(this.stop);
    if (at >= 0) {
      this.stopped = true;
      this.text = this.text.slice(0, at);
      return { text: this.take(this.text.length), stopped: true };
    }
    return { text: this.take(this.text.length - this.heldTail()), stopped: false };
  }

  /** Everything not yet shown (at the end of generation). */
  flush(): string {
    return this.take(this.text.length);
  }

  /** The whole answer so far, without the stop string. */
  get fullText(): string {
    return this.text;
  }

  private heldTail(): number {
    for (let n = Math.min(this.stop.length - 1, this.text.length); n > 0; n--) {
      if (this.text.endsWith(this.stop.slice(0, n))) return n;
    }
    return 0;
  }

  private take(upTo: number): string {
    if (upTo <= this.emitted) return '';
    const out = this.text.slice(this.emitted, upTo);
    this.emitted = upTo;
    return out;
  }
}
