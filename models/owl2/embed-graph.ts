/**
 * `embed.onnx`: token ids → token embeddings (a Gather over `model.embed_tokens.weight`).
 * Image placeholders (−200) must be spliced out by the caller before this graph runs.
 */
import { GraphBuilder } from '../onnx/graph.ts';
import { DataType } from '../onnx/proto.ts';
import { checkpointWeight } from '../onnx/weights.ts';
import type { WeightReader } from '../onnx/weights.ts';
import type { Owl2Config } from './config.ts';

/** Graph input/output names of `embed.onnx`. */
export const EMBED_IO = { inputIds: 'input_ids', inputsEmbeds: 'inputs_embeds' } as const;

/** Builds `embed.onnx`; the embedding table is streamed when the model is written. */
export function buildEmbedGraph(cfg: Owl2Config, r: WeightReader): GraphBuilder {
  const { vocabSize, hiddenSize } = cfg.llm;
  const g = new GraphBuilder('owl2_embed');
  const ids = g.input(EMBED_IO.inputIds, DataType.INT64, ['batch', 'seq']);
  const table = checkpointWeight(g, r, 'model.embed_tokens.weight', [vocabSize, hiddenSize]);
  g.output(g.gather(table, ids, 0), EMBED_IO.inputsEmbeds, DataType.FLOAT, ['batch', 'seq', hiddenSize]);
  return g;
}
