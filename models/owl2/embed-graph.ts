/**
 * `embed.onnx`: token ids → token embeddings (a Gather over `model.embed_tokens.weight`).
 * Image placeholders (−200) must be spliced out by the caller before this graph runs.
 *
 * The table is float32, float16 (Gather, then Cast to float32), or block-quantized 8-bit in
 * MatMulNBits' layout (`[V, kBlocks, blockSize]` codes and `[V, kBlocks]` scales, symmetric, zero
 * point 128): Gather the rows' codes and scales, `(code − 128) · scale` in float32, drop the padding.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/proto.ts';
import { blockQuantizedWeights, checkpointWeight, requireTensor } from '../onnx/weights.ts';
import type { WeightReader } from '../onnx/weights.ts';
import { bytesOf } from '../onnx/graph.ts';
import { float32ToFloat16 } from '../quant/fp16.ts';
import type { EmbedFormat } from '../quant/plan.ts';
import type { Owl2Config } from './config.ts';

/** Graph input/output names of `embed.onnx`. */
export const EMBED_IO = { inputIds: 'input_ids', inputsEmbeds: 'inputs_embeds' } as const;

/** Table format of `embed.onnx` (default float32). */
export interface EmbedGraphOptions {
  table?: EmbedFormat;
}

const TABLE = 'model.embed_tokens.weight';

/** Builds `embed.onnx`; the embedding table is streamed when the model is written. */
export function buildEmbedGraph(cfg: Owl2Config, r: WeightReader, opts: EmbedGraphOptions = {}): GraphBuilder {
  const { vocabSize, hiddenSize } = cfg.llm;
  const fmt = opts.table ?? { kind: 'float', weightType: 'fp32' };
  const g = new GraphBuilder('owl2_embed');
  const ids = g.input(EMBED_IO.inputIds, DataType.INT64, ['batch', 'seq']);
  let out: string;
  if (fmt.kind === 'float' && fmt.weightType === 'fp32') {
    out = g.gather(checkpointWeight(g, r, TABLE, [vocabSize, hiddenSize]), ids, 0);
  } else if (fmt.kind === 'float') {
    requireTensor(r, TABLE, [vocabSize, hiddenSize]);
    const table = g.weight(TABLE, DataType.FLOAT16, [vocabSize, hiddenSize], async () => bytesOf(float32ToFloat16(await r.readFloat32(TABLE))));
    out = g.cast(g.gather(table, ids, 0), DataType.FLOAT);
  } else {
    if (fmt.bits !== 8) throw new OwleryError('INVALID_ARGUMENT', `embed.onnx: ${fmt.bits}-bit embedding tables are not supported`);
    const q = blockQuantizedWeights(g, r, TABLE, vocabSize, hiddenSize, fmt);
    const kBlocks = Math.ceil(hiddenSize / fmt.blockSize);
    const codes = g.cast(g.gather(q.data, ids, 0), DataType.FLOAT); // [B, T, kBlocks, blockSize]
    const centred = q.zeroPoints
      ? g.sub(codes, g.unsqueeze(g.cast(g.gather(q.zeroPoints, ids, 0), DataType.FLOAT), [3]))
      : g.sub(codes, g.scalarF32(128));
    const scaled = g.mul(centred, g.unsqueeze(g.gather(q.scales, ids, 0), [3])); // scales [B, T, kBlocks, 1]
    out = g.reshape(scaled, [0, 0, kBlocks * fmt.blockSize]);
    if (kBlocks * fmt.blockSize !== hiddenSize) out = g.slice(out, [0], [hiddenSize], [2]);
  }
  g.output(out, EMBED_IO.inputsEmbeds, DataType.FLOAT, ['batch', 'seq', hiddenSize]);
  return g;
}
