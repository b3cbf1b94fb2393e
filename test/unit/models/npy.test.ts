import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { encodeNpy, parseNpy, readNpy } from '../../../models/npy.ts';

describe('npy', () => {
  it('reads the official fixture arrays with the right shape and values', async () => {
    const a = await readNpy('test/fixtures/owl2-public/expected/forward/single_image.last_logits.npy');
    const manifest = JSON.parse(await readFile('test/fixtures/owl2-public/expected/manifest.json', 'utf8'));
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([32000]);
    expect(a.data.length).toBe(32000);
    const first4 = manifest.forward.single_image.last_logits_first4 as number[];
    first4.forEach((v, i) => expect(a.data[i]).toBeCloseTo(v, 6));
  });

  it('round-trips float32 arrays', () => {
    const data = Float32Array.from([1.5, -2, 3.25, 0, 7, 8]);
    const back = parseNpy(encodeNpy({ dtype: 'float32', shape: [2, 3], data }));
    expect(back.shape).toEqual([2, 3]);
    expect(Array.from(back.data as Float32Array)).toEqual(Array.from(data));
  });
});
