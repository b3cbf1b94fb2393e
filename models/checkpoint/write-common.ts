/**
 * Shared by the checkpoint writers: the tensor-to-write type, shard splitting and the Hugging Face
 * shard index (`*.index.json`).
 */
import { writeFile } from 'node:fs/promises';
import { OwleryError } from '../../src-shared/errors.ts';
import { DTYPE_SIZE, numel } from './dtype.ts';
import type { CheckpointDType } from './types.ts';

/** A tensor to write: its raw little-endian bytes in `dtype`. */
export interface WritableTensor {
  name: string;
  dtype: CheckpointDType;
  shape: number[];
  data: Uint8Array;
}

/** Checks that a tensor's byte length matches shape × dtype, and that names are unique. */
export function checkWritable(tensors: readonly WritableTensor[]): void {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (seen.has(t.name)) throw new OwleryError('INVALID_ARGUMENT', `tensor "${t.name}" is given twice`);
    seen.add(t.name);
    const want = numel(t.shape) * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== want) {
      throw new OwleryError('INVALID_ARGUMENT', `tensor "${t.name}": shape [${t.shape.join(', ')}] of ${t.dtype} needs ${want} bytes, got ${t.data.byteLength}`);
    }
  }
}

/**
 * Splits tensors, in the given order, into `count` contiguous groups of roughly equal byte size
 * (every group non-empty; `count` is clamped to the number of tensors).
 */
export function splitShards<T extends { data: Uint8Array }>(tensors: readonly T[], count: number): T[][] {
  const n = Math.max(1, Math.min(Math.floor(count), tensors.length));
  const total = tensors.reduce((a, t) => a + t.data.byteLength, 0);
  const groups: T[][] = [];
  let acc = 0;
  let cur: T[] = [];
  tensors.forEach((t, i) => {
    cur.push(t);
    acc += t.data.byteLength;
    const remainingTensors = tensors.length - i - 1;
    const remainingGroups = n - groups.length - 1;
    if (remainingGroups > 0 && (acc >= (total * (groups.length + 1)) / n || remainingTensors === remainingGroups)) {
      groups.push(cur);
      cur = [];
    }
  });
  if (cur.length) groups.push(cur);
  return groups;
}

/** Hugging Face shard file name, e.g. `model-00001-of-00003.safetensors`. */
export function shardFileName(stem: string, ext: string, index: number, count: number): string {
  const pad = (x: number): string => String(x).padStart(5, '0');
  return `${stem}-${pad(index + 1)}-of-${pad(count)}.${ext}`;
}

/** Writes a shard index in the Hugging Face layout (keys sorted, two-space indent). */
export async function writeShardIndex(path: string, weightMap: Map<string, string>, totalSize: number): Promise<void> {
  const sorted: Record<string, string> = {};
  for (const k of [...weightMap.keys()].sort()) sorted[k] = weightMap.get(k)!;
  const index = { metadata: { total_size: totalSize }, weight_map: sorted };
  await writeFile(path, `${JSON.stringify(index, null, 2)}\n`);
}
