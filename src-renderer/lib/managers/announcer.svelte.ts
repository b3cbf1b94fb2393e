/**
 * What screen readers hear: one polite live region (`LiveAnnouncer.svelte`) fed by
 * {@link Announcer.say}, and {@link Announcer.stream} for answers, which batches streamed text
 * into whole sentences at most every few seconds (never per token) and says the rest when the
 * answer ends.
 */

/** Longest stretch of an answer said at once, in characters. */
const MAX_CHUNK = 600;

/** A streamed answer being read out in batches. */
export interface AnswerReader {
  /** The answer's whole text so far. */
  update(text: string): void;
  /** Says what is left, and how the answer ended. */
  finish(ending?: string): void;
}

/** The live region's text, and the pacing of streamed answers. */
export class Announcer {
  /** What the live region holds now. */
  message = $state('');
  readonly #intervalMs: number;

  /** `intervalMs`: shortest time between two batches of a streaming answer. */
  constructor(intervalMs = 4000) {
    this.#intervalMs = intervalMs;
  }

  /** Puts `text` in the live region (again, if it is the same text). */
  say(text: string): void {
    const clean = text.replace(/\s+/g, ' ').trim();
    if (!clean) return;
    // A changed node is what screen readers notice: alternate a zero-width suffix for repeats.
    this.message = clean === this.message ? `${clean}\u200b` : clean;
  }

  /** Starts reading out a streaming answer. */
  stream(): AnswerReader {
    let said = 0;
    let latest = '';
    let last = 0;
    const sayUpTo = (end: number) => {
      const chunk = latest.slice(said, end).trim();
      said = end;
      last = Date.now();
      if (chunk) this.say(chunk.length > MAX_CHUNK ? `${chunk.slice(0, MAX_CHUNK)}…` : chunk);
    };
    return {
      update: (text) => {
        latest = text;
        if (Date.now() - last < this.#intervalMs) return;
        // Whole sentences only: up to the last sentence end in the unsaid text.
        const rest = latest.slice(said);
        const m = /^[\s\S]*[.!?…:](\s|$)|^[\s\S]*\n/.exec(rest);
        if (m && m[0].trim()) sayUpTo(said + m[0].length);
      },
      finish: (ending) => {
        const rest = latest.slice(said).trim();
        said = latest.length;
        const parts = [rest.length > MAX_CHUNK ? `${rest.slice(0, MAX_CHUNK)}…` : rest, ending ?? ''].filter(Boolean);
        if (parts.length) this.say(parts.join(' '));
      },
    };
  }
}
