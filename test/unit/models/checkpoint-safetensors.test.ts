import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import { float32ToRaw, roundThrough } from '../../../models/checkpoint/dtype.ts';
import { openCheckpoint } from '../../../models/checkpoint/index.ts';
import { SafetensorsFile, SAFETENSORS_MAX_HEADER_BYTES } from '../../../models/checkpoint/safetensors.ts';
import { encodeSafetensors, writeSafetensors } from '../../../models/checkpoint/write-safetensors.ts';
import type { WritableTensor } from '../../../models/checkpoint/write-safetensors.ts';

const FIXTURE_CKPT = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint/', import.meta.url));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-st-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function expectOwleryError(p: Promise<unknown>, code: string, ...parts: string[]): Promise<OwleryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(OwleryError);
  const e = err as OwleryError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) expect(e.message).toContain(part);
  return e;
}

/** A file with a hand-written JSON header and `dataBytes` bytes of data. */
async function craft(name: string, header: unknown, dataBytes: number, lengthField?: bigint): Promise<string> {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, lengthField ?? BigInt(json.length), true);
  out.set(json, 8);
  const path = join(dir, name);
  await writeFile(path, out);
  return path;
}

function f32(name: string, values: number[], shape = [values.length]): WritableTensor {
  return { name, dtype: 'F32', shape, data: float32ToRaw(Float32Array.from(values), 'F32') };
}

describe('safetensors writer and reader', () => {
  it('re-encodes the fixture model.safetensors byte for byte', async () => {
    const r = await openCheckpoint(FIXTURE_CKPT);
    try {
      const tensors: WritableTensor[] = [];
      for (const [name, info] of r.tensors) tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await r.readRaw(name) });
      const original = await readFile(join(FIXTURE_CKPT, 'model.safetensors'));
      expect(Buffer.compare(Buffer.from(encodeSafetensors(tensors)), original)).toBe(0);
    } finally {
      await r.close();
    }
  });

  it('round trips F32, F16, BF16, integer and empty tensors with metadata', async () => {
    const vals = Float32Array.from([0, -0, 1, -2.5, 3.14159, 65504, 1e-8, -1e-30, 123456.789, 7e-5]);
    const path = join(dir, 'round.safetensors');
    await writeSafetensors(path, [
      { name: 'a.f32', dtype: 'F32', shape: [2, 5], data: float32ToRaw(vals, 'F32') },
      { name: 'b.f16', dtype: 'F16', shape: [10], data: float32ToRaw(vals, 'F16') },
      { name: 'c.bf16', dtype: 'BF16', shape: [5, 2], data: float32ToRaw(vals, 'BF16') },
      { name: 'd.i64', dtype: 'I64', shape: [3], data: new Uint8Array(BigInt64Array.from([1n, -2n, 3n]).buffer) },
      { name: 'e.empty', dtype: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    ], { format: 'pt', note: 'x' });
    const f = await SafetensorsFile.open(path);
    try {
      expect(f.metadata).toEqual({ format: 'pt', note: 'x' });
      expect(f.tensors.get('c.bf16')).toMatchObject({ dtype: 'BF16', shape: [5, 2], byteLength: 20, file: 'round.safetensors' });
      expect(Buffer.from(await f.readRaw('a.f32'))).toEqual(Buffer.from(vals.buffer));
      expect((await f.readRaw('e.empty')).length).toBe(0);
    } finally {
      await f.close();
    }
    await writeFile(join(dir, 'model.safetensors'), await readFile(path));
    const r = await openCheckpoint(dir);
    try {
      expect(await r.readFloat32('a.f32')).toEqual(vals);
      expect(await r.readFloat32('b.f16')).toEqual(roundThrough(vals, 'F16'));
      expect(await r.readFloat32('c.bf16')).toEqual(roundThrough(vals, 'BF16'));
      expect(Array.from(await r.readFloat32('d.i64'))).toEqual([1, -2, 3]);
    } finally {
      await r.close();
      await rm(join(dir, 'model.safetensors'));
    }
  });
});

describe('crafted and damaged safetensors files are refused with specific errors', () => {
  it('huge header length', async () => {
    const p = await craft('huge.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 2n ** 62n);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', p, 'header length', 'exceeds', String(SAFETENSORS_MAX_HEADER_BYTES));
  });

  it('header length past the end of the file', async () => {
    const p = await craft('past.safetensors', { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 4, 10_000n);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', p, 'runs past the end of the file');
  });

  it('overlapping offsets', async () => {
    const p = await craft('overlap.safetensors', {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    }, 16);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', p, 'overlap', '"a"', '"b"');
  });

  it('overlap hidden behind an empty tensor', async () => {
    const p = await craft('overlap2.safetensors', {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    }, 16);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', 'overlap', '"b"');
  });

  it('offsets beyond the file', async () => {
    const p = await craft('beyond.safetensors', { a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', p, '"a"', 'beyond the data area');
  });

  it('shape × dtype size not equal to the byte range', async () => {
    const p = await craft('size.safetensors', { a: { dtype: 'F16', shape: [3, 3], data_offsets: [0, 16] } }, 16);
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', '"a"', 'shape [3, 3] of F16 needs 18 bytes', 'hold 16');
  });

  it('negative or fractional shapes, bad dtypes, unsupported dtypes, bad JSON', async () => {
    const neg = await craft('neg.safetensors', { a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4);
    await expectOwleryError(SafetensorsFile.open(neg), 'CHECKPOINT_INVALID', 'shape');
    const bad = await craft('dtype.safetensors', { a: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, 4);
    await expectOwleryError(SafetensorsFile.open(bad), 'CHECKPOINT_INVALID', 'unknown dtype "F33"');
    const f8 = await craft('f8.safetensors', { a: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, 4);
    await expectOwleryError(SafetensorsFile.open(f8), 'CHECKPOINT_UNSUPPORTED', 'F8_E4M3');
    const json = await craft('json.safetensors', '{"a": {"dtype": "F32",', 4);
    await expectOwleryError(SafetensorsFile.open(json), 'CHECKPOINT_INVALID', 'not valid JSON');
    const meta = await craft('meta.safetensors', { __metadata__: { format: 3 } }, 0);
    await expectOwleryError(SafetensorsFile.open(meta), 'CHECKPOINT_INVALID', '__metadata__.format');
  });

  it('a shard cut in half', async () => {
    const p = join(dir, 'cut.safetensors');
    await writeSafetensors(p, [f32('x', Array.from({ length: 64 }, (_, i) => i)), f32('y', [1, 2, 3, 4])]);
    const size = (await readFile(p)).length;
    await truncate(p, Math.floor(size / 2));
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', p, 'truncated');
  });

  it('a file too short to hold a header, and a missing file', async () => {
    const p = join(dir, 'short.safetensors');
    await writeFile(p, new Uint8Array(3));
    await expectOwleryError(SafetensorsFile.open(p), 'CHECKPOINT_INVALID', 'too short');
    await expectOwleryError(SafetensorsFile.open(join(dir, 'nope.safetensors')), 'FILE_NOT_FOUND', 'nope.safetensors');
  });
});
