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

describe('fixture checkpoint, pytorch_model.bin (F16 torch zip)', () => {
  it('lists every tensor with its shape; raw F16 bytes and float32 upcast match weights.json', async () => {
    const r = await openCheckpoint(CKPT, { prefer: 'pytorch' });
    try {
      expect(r.format).toBe('pytorch');
      expect(r.files).toEqual(['pytorch_model.bin']);
      expect([...r.tensors.keys()].sort()).toEqual(Object.keys(weights).sort());
      for (const [name, w] of Object.entries(weights)) {
        const info = r.tensors.get(name)!;
        expect(info.shape, name).toEqual(w.shape);
        expect(info.dtype, name).toBe(w.pytorch_model_bin_dtype);
        const raw = await r.readRaw(name);
        expect(sha256(raw), name).toBe(w.sha256_f16_le);
        const f = await r.readFloat32(name);
        expect(f.length).toBe(raw.length / 2);
        // readFloat32 is the exact upcast of the F16 bytes.
        const h = new Uint16Array(raw.buffer, raw.byteOffset, raw.length / 2);
        for (let i = 0; i < h.length; i += Math.max(1, Math.floor(h.length / 257))) {
          expect(f[i]).toBe(f16(h[i]));
        }
        // and it is within half-precision rounding of the F32 values.
        for (let i = 0; i < Math.min(4, f.length); i++) {
          expect(Math.abs(f[i] - w.first4_f32[i])).toBeLessThanOrEqual(Math.abs(w.first4_f32[i]) * 2 ** -11 + 2 ** -25);
        }
      }
    } finally {
      await r.close();
    }
  });
});

/** Independent reference decoding of one IEEE half. */
function f16(h: number): number {
  const s = h >> 15 ? -1 : 1;
  const e = (h >> 10) & 31;
  const m = h & 1023;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}
