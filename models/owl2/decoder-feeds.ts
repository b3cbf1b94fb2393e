/**
 * Running `decoder.onnx` against a caller-owned `DecoderKvCache` with onnxruntime: the cache's
 * valid rows go in as zero-copy tensors and the new K/V that come back are appended. Kept apart
 * from decoder-graph.ts, which builds graphs and does not load onnxruntime.
 */
import * as ort from 'onnxruntime-node';
import { DECODER_IO } from './decoder-graph.ts';
import type { DecoderFeed, DecoderKvCache } from './decoder-graph.ts';

/** One feed as a tensor of its type. */
export function decoderFeedTensor(f: DecoderFeed): ort.Tensor {
  return f.type === 'int64' ? new ort.Tensor('int64', f.data as BigInt64Array, f.dims) : new ort.Tensor('float32', f.data as Float32Array, f.dims);
}

/**
 * One decoder run over the `modality.length` positions after the cache's valid ones (batch 1),
 * appending their K/V to the cache. `extraFetches` (e.g. `hidden.{i}`) are fetched too.
 */
export async function runDecoderStep(
  session: ort.InferenceSession, cache: DecoderKvCache, embeds: Float32Array, modality: BigInt64Array, hiddenSize: number, extraFetches: readonly string[] = [],
): Promise<ort.InferenceSession.ReturnType> {
  const T = modality.length;
  const P = cache.length;
  const feeds: Record<string, ort.Tensor> = {
    [DECODER_IO.inputsEmbeds]: new ort.Tensor('float32', embeds, [1, T, hiddenSize]),
    [DECODER_IO.modality]: new ort.Tensor('int64', modality, [1, T]),
    [DECODER_IO.positionIds]: new ort.Tensor('int64', BigInt64Array.from({ length: T }, (_, i) => BigInt(P + i)), [1, T]),
  };
  for (const f of cache.feeds()) feeds[f.name] = decoderFeedTensor(f);
  const out = await session.run(feeds, [DECODER_IO.logits, ...cache.fetches(), ...extraFetches]);
  cache.append(
    Array.from({ length: cache.layers }, (_, i) => out[DECODER_IO.newKey(i)].data as Float32Array),
    Array.from({ length: cache.layers }, (_, i) => out[DECODER_IO.newValue(i)].data as Float32Array),
    T,
  );
  return out;
}
