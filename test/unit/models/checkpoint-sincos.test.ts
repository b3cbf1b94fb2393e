import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { openCheckpoint, readConfig } from '../../../models/checkpoint/index.ts';
import { abstractorPosEmbeds, sincos1d, sincos2d } from '../../../models/owl2/sincos.ts';
import { maxAbsDiff } from '../../helpers/arrays.ts';

const CKPT = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint', import.meta.url));

describe('abstractor sin-cos tables', () => {
  it('match the fixture checkpoint\'s stored q_pos_embed / k_pos_embed in every layer', async () => {
    const { config } = await readConfig(CKPT);
    const r = await openCheckpoint(CKPT);
    try {
      for (const precision of ['float32', 'float64'] as const) {
        const t = abstractorPosEmbeds(config.abstractor, { precision });
        for (let l = 0; l < config.abstractor.numLayers; l++) {
          const base = `model.visual_abstractor.encoder.layers.${l}.crossattention.attention`;
          expect(r.tensors.get(`${base}.q_pos_embed`)!.shape).toEqual(t.qShape);
          expect(r.tensors.get(`${base}.k_pos_embed`)!.shape).toEqual(t.kShape);
          expect(maxAbsDiff(t.q, await r.readFloat32(`${base}.q_pos_embed`))).toBeLessThan(1e-6);
          expect(maxAbsDiff(t.k, await r.readFloat32(`${base}.k_pos_embed`))).toBeLessThan(1e-6);
          if (precision === 'float32') {
            // The float32 emulation of the official NumPy code is within one float32 ulp (NumPy's sin/cos
            // are not always correctly rounded).
            expect(maxAbsDiff(t.q, await r.readFloat32(`${base}.q_pos_embed`))).toBeLessThanOrEqual(2 ** -24);
            expect(maxAbsDiff(t.k, await r.readFloat32(`${base}.k_pos_embed`))).toBeLessThanOrEqual(2 ** -24);
          }
        }
      }
    } finally {
      await r.close();
    }
  });

  it('lays out the 2-D table as [zero cls row; raster rows of (sin,cos)(column) ++ (sin,cos)(row)]', () => {
    const d = 8;
    const g = 3;
    const k = sincos2d(d, g, { precision: 'float64' });
    expect(k.length).toBe((1 + g * g) * d);
    expect(Array.from(k.subarray(0, d))).toEqual(new Array(d).fill(0));
    const oneD = sincos1d(d / 2, g, { precision: 'float64' }); // rows for coordinates 0..g-1
    for (let h = 0; h < g; h++) {
      for (let c = 0; c < g; c++) {
        const row = k.subarray((1 + h * g + c) * d, (2 + h * g + c) * d);
        expect(Array.from(row.subarray(0, d / 2))).toEqual(Array.from(oneD.subarray(c * (d / 2), (c + 1) * (d / 2))));
        expect(Array.from(row.subarray(d / 2))).toEqual(Array.from(oneD.subarray(h * (d / 2), (h + 1) * (d / 2))));
      }
    }
    // 1-D definition: ω_i = 10000^(-i/(D/2)).
    const q = sincos1d(4, 3, { precision: 'float64' });
    expect(q[2 * 4 + 1]).toBeCloseTo(Math.sin(2 / 100), 7);
    expect(q[2 * 4 + 3]).toBeCloseTo(Math.cos(2 / 100), 7);
  });

  it('at 7B sizes the float32 (official) and float64 tables differ by a few 1e-6, no more', () => {
    const a = abstractorPosEmbeds({ hiddenSize: 1024, numQueries: 64, gridSize: 32 });
    const b = abstractorPosEmbeds({ hiddenSize: 1024, numQueries: 64, gridSize: 32 }, { precision: 'float64' });
    expect(maxAbsDiff(a.q, b.q)).toBeLessThan(2e-5);
    expect(maxAbsDiff(a.k, b.k)).toBeLessThan(2e-5);
  });
});
