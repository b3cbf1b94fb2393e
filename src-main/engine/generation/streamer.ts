/**
 * Generated ids → the text a user sees: the tokenizer's incremental decoder (which holds back
 * bytes of an unfinished character) followed by the stop-string watch (which holds back what could
 * still become `</s>`).
 */
import type { StreamDecoder } from '../tokenizer/llama-tokenizer.ts';
import { StopStringStream } from './stopping.ts';

/** See the module comment. */
export class TextStreamer {
  private readonly stream: StopStringStream;

  constructor(private readonly decoder: StreamDecoder, stop = '</s>') {
    this.stream = new StopStringStream(stop);
  }

  /** Adds one id; returns the text that can be shown now and whether the stop string was reached. */
  push(id: number): { text: string; stopped: boolean } {
    return this.stream.push(this.decoder.push(id));
  }

  /** Ends the stream: the text still held back (empty when the stop string ended it). */
  end(): string {
    const tail = this.stream.push(this.decoder.flush());
    return tail.text + (tail.stopped ? '' : this.stream.flush());
  }

  /** The whole answer so far, without the stop string. */
  get text(): string {
    return this.stream.fullText;
  }
}
