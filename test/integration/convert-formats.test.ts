/**
 * The seeded tiny checkpoint written as PyTorch `.bin` (F32, F16, BF16, sharded) and as sharded
 * safetensors converts to packages whose fp32 graphs are identical to the safetensors path of the
 * same precision: the reader a checkpoint arrives in never changes what the engine computes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { convertCheckpoint } from '../../models/convert.ts';
import type { PackageManifest } from '../../models/package/manifest.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-formats-'));
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const graphSums = (m: PackageManifest) =>
  Object.fromEntries(m.files.filter((f) => f.path.endsWith('.onnx') || f.path.endsWith('.onnx.data')).map((f) => [f.path, f.sha256]));

async function convert(label: string, opts: Parameters<typeof ensureTinyCheckpoint>[0]): Promise<PackageManifest> {
  const ckpt = await ensureTinyCheckpoint(opts);
  return convertCheckpoint(ckpt, join(work, label), { verify: false });
}

describe('checkpoint format does not change the converted model', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as const) {
    it(`${dtype}: .bin, sharded .bin and sharded safetensors give the same graphs as one safetensors file`, async () => {
      const base = await convert(`st-${dtype}`, { seed: 3, format: 'safetensors', dtype });
      const variants = [
        await convert(`bin-${dtype}`, { seed: 3, format: 'pytorch', dtype }),
        await convert(`bin-sharded-${dtype}`, { seed: 3, format: 'pytorch', dtype, shards: 2 }),
        await convert(`st-sharded-${dtype}`, { seed: 3, format: 'safetensors', dtype, shards: 3 }),
      ];
      expect(base.source.format).toBe('safetensors');
      expect(variants.map((v) => v.source.format)).toEqual(['pytorch', 'pytorch', 'safetensors']);
      for (const v of variants) expect(graphSums(v)).toEqual(graphSums(base));
    });
  }

  it('F16 weights give other numbers than F32 (the comparison above can fail)', async () => {
    const f32 = await convert('st-F32-again', { seed: 3, format: 'safetensors', dtype: 'F32' });
    const f16 = await convert('st-F16-again', { seed: 3, format: 'safetensors', dtype: 'F16' });
    expect(graphSums(f16)['decoder.onnx.data']).not.toBe(graphSums(f32)['decoder.onnx.data']);
  });
});
