import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openCheckpoint, readConfig } from '../../../models/checkpoint/index.ts';

const FIXTURE = fileURLToPath(new URL('../../fixtures/owl2-public/', import.meta.url));
const CKPT = `${FIXTURE}checkpoint`;

interface WeightEntry {
  shape: number[];
  kind: 'parameter' | 'buffer';
  safetensors_dtype: string;
  pytorch_model_bin_dtype: string;
  sha256_f32_le: string;
  sha256_f16_le: string;
  first4_f32: number[];
}
const weights = JSON.parse(readFileSync(`${FIXTURE}expected/weights.json`, 'utf8')) as Record<string, WeightEntry>;

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('fixture checkpoint, model.safetensors (F32)', () => {
  it('lists every tensor of weights.json with its shape and dtype, and every F32 byte matches', async () => {
    const r = await openCheckpoint(CKPT);
    try {
      expect(r.format).toBe('safetensors');
      expect(r.files).toEqual(['model.safetensors']);
      expect([...r.tensors.keys()].sort()).toEqual(Object.keys(weights).sort());
      for (const [name, w] of Object.entries(weights)) {
        const info = r.tensors.get(name)!;
        expect(info.shape, name).toEqual(w.shape);
        expect(info.dtype, name).toBe(w.safetensors_dtype);
        expect(info.file).toBe('model.safetensors');
        const raw = await r.readRaw(name);
        expect(sha256(raw), name).toBe(w.sha256_f32_le);
        const f = await r.readFloat32(name);
        expect(Array.from(f.subarray(0, 4)), name).toEqual(w.first4_f32.slice(0, f.length));
      }
    } finally {
      await r.close();
    }
  });

  it('reads config.json through parseOwl2Config', async () => {
    const { config, raw } = await readConfig(CKPT);
    expect(raw.model_type).toBe('mplug_owl2');
    expect(config.llm.hiddenSize).toBe(96);
    expect(config.abstractor.numQueries).toBe(6);
  });
});
