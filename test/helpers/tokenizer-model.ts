/** Variants of a SentencePiece `tokenizer.model` for tests, made from a real one. */
import { ProtoWriter, protoFields } from '../../models/protobuf.ts';

/**
 * The model with only its first `n` vocabulary pieces (LLaMA's first 259 are `<unk>`, `<s>`, `</s>`
 * and the 256 byte pieces, so any `n` ≥ 259 is still a complete byte-fallback tokenizer whose
 * ids stay below `n`); every other field is kept as it is.
 */
export function withFirstPieces(model: Uint8Array, n: number): Uint8Array {
  const w = new ProtoWriter();
  let pieces = 0;
  for (const f of protoFields(model)) {
    if (f.field === 1 && pieces++ >= n) continue;
    w.bytes(f.field, f.bytes!);
  }
  return w.finish();
}
