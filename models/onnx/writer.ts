/**
 * Writes a `GraphBuilder` as an ONNX model: `<name>.onnx` (graph + small constants) and
 * `<name>.onnx.data` (every weight, streamed one tensor at a time at aligned offsets), as
 * onnxruntime expects external data: same folder, `location` relative to the model file.
 */
import { open, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { ONNX_IR_VERSION, ONNX_OPSET, numel } from './graph.ts';
import type { GraphBuilder } from './graph.ts';
import { dataTypeSize, encodeModel } from './proto.ts';
import type { TensorProtoSpec } from './proto.ts';

/** Options of `writeOnnxModel`. */
export interface WriteOnnxOptions {
  /** Alignment of each tensor in the data file (default 4096). */
  align?: number;
  /** Extra opsets, e.g. `{ domain: 'com.microsoft', version: 1 }`. */
  extraOpsets?: { domain: string; version: number }[];
  /** Stored in ModelProto.metadata_props. */
  metadata?: Record<string, string>;
  producerVersion?: string;
  /** Called after each weight is written. */
  onTensor?: (name: string, bytes: number) => void;
  signal?: AbortSignal;
}

/** What was written. */
export interface WrittenOnnx {
  onnxPath: string;
  dataPath: string;
  onnxBytes: number;
  dataBytes: number;
  tensors: number;
}

/** Throws `CANCELLED` when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new OwleryError('CANCELLED', 'conversion cancelled');
}

/**
 * Writes `graph` to `onnxPath` with its weights in `onnxPath + '.data'`. Peak memory is one
 * weight at a time (plus what its `load()` needs) and the small graph protobuf.
 */
export async function writeOnnxModel(graph: GraphBuilder, onnxPath: string, opts: WriteOnnxOptions = {}): Promise<WrittenOnnx> {
  const align = opts.align ?? 4096;
  const dataPath = `${onnxPath}.data`;
  const location = basename(dataPath);
  const initializers: TensorProtoSpec[] = [...graph.constants];
  const fh = await open(dataPath, 'w');
  let offset = 0;
  try {
    for (const w of graph.weights) {
      throwIfAborted(opts.signal);
      const bytes = await w.load();
      const expected = numel(w.dims) * dataTypeSize(w.dataType);
      if (bytes.byteLength !== expected) {
        throw new OwleryError('INTERNAL', `weight ${w.name}: ${bytes.byteLength} bytes, expected ${expected}`);
      }
      offset = Math.ceil(offset / align) * align;
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, bytes.byteLength - done, offset + done);
        done += bytesWritten;
      }
      initializers.push({ name: w.name, dataType: w.dataType, dims: w.dims, external: { location, offset, length: bytes.byteLength } });
      offset += bytes.byteLength;
      opts.onTensor?.(w.name, bytes.byteLength);
    }
  } finally {
    await fh.close();
  }
  const model = encodeModel({
    irVersion: ONNX_IR_VERSION,
    opsets: [{ domain: '', version: ONNX_OPSET }, ...(opts.extraOpsets ?? [])],
    producerName: 'owlery',
    producerVersion: opts.producerVersion ?? '1',
    graph: { name: graph.name, nodes: graph.nodes, initializers, inputs: graph.inputs, outputs: graph.outputs },
    metadata: opts.metadata,
  });
  await writeFile(onnxPath, model);
  return { onnxPath, dataPath, onnxBytes: model.byteLength, dataBytes: offset, tensors: graph.weights.length };
}
