/**
 * Writer for safetensors files, single or sharded with a `model.safetensors.index.json`.
 *
 * Output is deterministic: tensors in sorted-name order, compact JSON header with `__metadata__`
 * first, space-padded to a multiple of 8 bytes.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkWritable, shardFileName, splitShards, writeShardIndex } from './write-common.ts';
import type { WritableTensor } from './write-common.ts';

export type { WritableTensor } from './write-common.ts';

/** Encodes tensors as the bytes of one safetensors file. */
export function encodeSafetensors(tensors: readonly WritableTensor[], metadata: Record<string, string> = { format: 'pt' }): Uint8Array {
  checkWritable(tensors);
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of sorted) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }
  let json = JSON.stringify(header);
  const jsonBytes = new TextEncoder().encode(json);
  const padded = Math.ceil(jsonBytes.length / 8) * 8;
  json += ' '.repeat(padded - jsonBytes.length);
  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(new TextEncoder().encode(json), 8);
  let p = 8 + padded;
  for (const t of sorted) {
    out.set(t.data, p);
    p += t.data.byteLength;
  }
  return out;
}

/** Writes one safetensors file. */
export async function writeSafetensors(path: string, tensors: readonly WritableTensor[], metadata?: Record<string, string>): Promise<void> {
  await writeFile(path, encodeSafetensors(tensors, metadata));
}

/**
 * Writes a checkpoint's weights into `dir`: `model.safetensors` when `shards` ≤ 1, otherwise
 * `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`. Returns the file names.
 */
export async function writeSafetensorsCheckpoint(
  dir: string,
  tensors: readonly WritableTensor[],
  options: { shards?: number; metadata?: Record<string, string> } = {},
): Promise<string[]> {
  checkWritable(tensors);
  const shards = options.shards ?? 1;
  if (shards <= 1) {
    await writeSafetensors(join(dir, 'model.safetensors'), tensors, options.metadata);
    return ['model.safetensors'];
  }
  const groups = splitShards(tensors, shards);
  const weightMap = new Map<string, string>();
  const files: string[] = [];
  let total = 0;
  for (let i = 0; i < groups.length; i++) {
    const name = shardFileName('model', 'safetensors', i, groups.length);
    await writeSafetensors(join(dir, name), groups[i], options.metadata);
    for (const t of groups[i]) {
      weightMap.set(t.name, name);
      total += t.data.byteLength;
    }
    files.push(name);
  }
  await writeShardIndex(join(dir, 'model.safetensors.index.json'), weightMap, total);
  return ['model.safetensors.index.json', ...files];
}
