/**
 * Block quantizers (int4/int8, MatMulNBits layout), float16 conversion, and the quantized graph
 * pieces run in onnxruntime against a pure-TS dequantization reference.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { f16BitsToNumber, f32ToF16Bits } from '../../../models/checkpoint/dtype.ts';
import type { TensorInfo } from '../../../models/checkpoint/types.ts';
import { GraphBuilder } from '../../../models/onnx/graph.ts';
import { DataType } from '../../../models/onnx/proto.ts';
import { linearFrom, MS_DOMAIN } from '../../../models/onnx/weights.ts';
import type { WeightReader } from '../../../models/onnx/weights.ts';
import { writeOnnxModel } from '../../../models/onnx/writer.ts';
import { buildEmbedGraph } from '../../../models/owl2/embed-graph.ts';
import type { Owl2Config } from '../../../models/owl2/config.ts';
import { blockQuantShapes, dequantizeBlockwise, quantizeBlockwise, quantizeBlockwiseInSlices } from '../../../models/quant/blockwise.ts';
import type { BlockQuantParams } from '../../../models/quant/blockwise.ts';
import { float16ToFloat32, float32ToFloat16 } from '../../../models/quant/fp16.ts';
import { embedFormat, linearFormat, resolvePlan } from '../../../models/quant/plan.ts';
import type { LinearFormat } from '../../../models/quant/plan.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-quant-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic values: roughly normal (sum of uniforms) with a few outliers. */
function weights(n: number, seed: number, std = 0.05): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const u = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  for (let i = 0; i < n; i++) out[i] = (u() + u() + u() + u() - 2) * std * Math.sqrt(3);
  for (let i = 0; i < n; i += 97) out[i] *= 6;
  return out;
}

/** A reader over in-memory tensors (a test double for the checkpoint, not the code under test). */
function memReader(tensors: Record<string, { shape: number[]; data: Float32Array }>): WeightReader {
  const infos = new Map<string, TensorInfo>();
  for (const [name, t] of Object.entries(tensors)) infos.set(name, { name, dtype: 'F32', shape: t.shape, file: 'mem', byteLength: t.data.byteLength });
  return { tensors: infos, readFloat32: async (name) => tensors[name].data.slice() };
}

let models = 0;
async function run(g: GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const path = join(dir, `m${models++}.onnx`);
  await writeOnnxModel(g, path, { extraOpsets: [{ domain: MS_DOMAIN, version: 1 }] });
  const s = await ort.InferenceSession.create(path);
  try {
    const out = await s.run(feeds);
    return out[s.outputNames[0]].data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('float16 conversion', () => {
  it('matches the scalar round-to-nearest-even conversion on every class of value', () => {
    const special = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e9, -1e9, 6.1e-5, 6.0e-8, 2.98e-8, 1e-10, Infinity, -Infinity, NaN,
      1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051, 0.1, 1 / 3];
    const vals = Float32Array.from([...special, ...weights(5000, 3, 10), ...weights(2000, 4, 1e-5)]);
    const bits = float32ToFloat16(vals);
    for (let i = 0; i < vals.length; i++) expect(bits[i], `value ${vals[i]}`).toBe(f32ToF16Bits(vals[i]));
    expect(bits[special.indexOf(65520)]).toBe(0x7c00); // overflow → +inf
    expect(bits[special.indexOf(1 + 2 ** -11)]).toBe(0x3c00); // tie → even
    expect(bits[special.indexOf(1 + 3 * 2 ** -11)]).toBe(0x3c02); // tie → even (up)
    const back = float16ToFloat32(bits);
    for (let i = 0; i < vals.length; i++) {
      if (Number.isNaN(vals[i])) expect(back[i]).toBeNaN();
      else expect(back[i]).toBe(f16BitsToNumber(bits[i]));
    }
  });
});

describe('block quantization (MatMulNBits layout)', () => {
  const modes: BlockQuantParams[] = [
    { bits: 4, blockSize: 32, zeroPoints: 'uint8' },
    { bits: 4, blockSize: 32, zeroPoints: 'none' },
    { bits: 8, blockSize: 32, zeroPoints: 'none' },
    { bits: 8, blockSize: 32, zeroPoints: 'uint8' },
    { bits: 4, blockSize: 64, zeroPoints: 'uint8' },
  ];

  it('keeps every value within half a step of the original, padding included', () => {
    const rows = 7;
    const cols = 100; // not a multiple of the block: the last block is padded
    const w = weights(rows * cols, 11);
    for (const p of modes) {
      const q = quantizeBlockwise(w, rows, cols, p);
      const shapes = blockQuantShapes(rows, cols, p);
      expect(q.data.length).toBe(shapes.data.reduce((a, b) => a * b, 1));
      expect(q.scales.length).toBe(rows * shapes.kBlocks);
      expect(q.zeroPointData?.length).toBe(shapes.zeroPoints?.reduce((a, b) => a * b, 1));
      const d = dequantizeBlockwise(q);
      let worst = 0;
      let sq = 0;
      let ref = 0;
      for (let r = 0; r < rows; r++) {
        for (let k = 0; k < cols; k++) {
          const scale = q.scales[r * q.kBlocks + Math.floor(k / p.blockSize)];
          const err = Math.abs(d[r * cols + k] - w[r * cols + k]);
          worst = Math.max(worst, err / scale);
          sq += err ** 2;
          ref += w[r * cols + k] ** 2;
        }
      }
      expect(worst, JSON.stringify(p)).toBeLessThanOrEqual(0.5 + 1e-5);
      // Relative RMS error: ~1/15 of a block's range per step at 4 bits, ~1/255 at 8.
      expect(Math.sqrt(sq / ref), JSON.stringify(p)).toBeLessThan(p.bits === 4 ? 0.15 : 0.01);
      expect(Math.sqrt(sq / ref), JSON.stringify(p)).toBeGreaterThan(0);
    }
  });

  it('packs 4-bit codes low nibble first and zero points per block, as the ORT spec says', () => {
    // One row, 3 blocks of 16 → kBlocks 3, zero points in 2 bytes (block 2 in the low nibble of byte 1).
    const cols = 40;
    const w = new Float32Array(cols);
    // Block 0: 0..15 × 0.1 → min 0, max 1.5, scale 0.1, zp 0, codes = index.
    for (let i = 0; i < 16; i++) w[i] = i * 0.1;
    // Block 1: −1.5..0 → scale 0.1, zp 15, codes = index.
    for (let i = 0; i < 16; i++) w[16 + i] = (i - 15) * 0.1;
    // Block 2 (8 values + 8 padding): −0.4..0.3 → scale 0.7/15, zp = round(0.4·15/0.7) = 9.
    for (let i = 0; i < 8; i++) w[32 + i] = (i - 4) * 0.1;
    const q = quantizeBlockwise(w, 1, cols, { bits: 4, blockSize: 16, zeroPoints: 'uint8' });
    expect(q.kBlocks).toBe(3);
    expect(q.blobSize).toBe(8);
    // Block 0: codes 0,1 → byte 0x10; 2,3 → 0x32; ...
    expect([...q.data.subarray(0, 8)]).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect([...q.data.subarray(8, 16)]).toEqual([0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
    expect(q.zeroPointData!.length).toBe(2);
    expect(q.zeroPointData![0]).toBe(0x00 | (15 << 4)); // block 0 low nibble (0), block 1 high nibble (15)
    expect(q.zeroPointData![1] & 0x0f).toBe(9); // block 2
    // Padding (elements 8..15 of block 2) holds the zero point: bytes 4..7 of the blob are 0x99.
    expect([...q.data.subarray(20, 24)]).toEqual([0x99, 0x99, 0x99, 0x99]);
    expect(q.scales[0]).toBeCloseTo(0.1, 6);
    expect(q.scales[2]).toBeCloseTo(0.7 / 15, 6);
  });

  it('stores 8-bit codes one per byte; symmetric mode centres on 128 and needs no zero points', () => {
    const w = Float32Array.from({ length: 32 }, (_, i) => (i - 16) / 16 * 1.27);
    const q = quantizeBlockwise(w, 1, 32, { bits: 8, blockSize: 32, zeroPoints: 'none' });
    expect(q.zeroPointData).toBeUndefined();
    expect(q.scales[0]).toBeCloseTo(1.27 / 127, 7); // absmax = |w[0]| = 1.27
    expect(q.data[0]).toBe(128 - 127);
    expect(q.data[16]).toBe(128);
    expect(q.data[31]).toBe(128 + Math.round(((15 / 16) * 1.27) / q.scales[0]));
  });

  it('quantizes an all-zero block to exact zeros and refuses non-finite weights by name', () => {
    const q = quantizeBlockwise(new Float32Array(64), 2, 32, { bits: 4, blockSize: 32, zeroPoints: 'uint8' });
    expect([...dequantizeBlockwise(q)].every((v) => v === 0)).toBe(true);
    const bad = new Float32Array(32);
    bad[5] = NaN;
    expect(() => quantizeBlockwise(bad, 1, 32, { bits: 4, blockSize: 32, zeroPoints: 'uint8' }, 'layer.q_proj.weight'))
      .toThrow(/layer\.q_proj\.weight.*\[0, 5\]/);
    expect(() => quantizeBlockwise(bad, 1, 32, { bits: 4, blockSize: 24, zeroPoints: 'uint8' })).toThrow(/power of two/);
  });

  it('in slices (what conversion uses, so Ctrl-C is seen mid-weight): the same bytes, and a cancellation stops it', async () => {
    const rows = 700;
    const cols = 4096; // 2.9 M values: two slices
    const w = new Float32Array(rows * cols);
    for (let i = 0; i < w.length; i++) w[i] = Math.sin(i * 0.37) * (1 + (i % 7));
    for (const p of [{ bits: 4, blockSize: 32, zeroPoints: 'uint8' }, { bits: 8, blockSize: 128, zeroPoints: 'none' }] as const) {
      const whole = quantizeBlockwise(w, rows, cols, p);
      const sliced = await quantizeBlockwiseInSlices(w, rows, cols, p);
      expect(Buffer.from(sliced.data).equals(Buffer.from(whole.data))).toBe(true);
      expect(Buffer.from(sliced.scales.buffer).equals(Buffer.from(whole.scales.buffer))).toBe(true);
      expect(sliced.zeroPointData && Buffer.from(sliced.zeroPointData).equals(Buffer.from(whole.zeroPointData!))).toBe(p.zeroPoints === 'uint8' ? true : undefined);
    }
    const stop = new AbortController();
    const running = quantizeBlockwiseInSlices(w, rows, cols, { bits: 4, blockSize: 32, zeroPoints: 'uint8' }, 'w', stop.signal);
    stop.abort();
    await expect(running).rejects.toMatchObject({ code: 'CANCELLED' });
  });
});

describe('quantized linears in onnxruntime', () => {
  const M = 5;
  const K = 72; // 3 blocks of 32, the last one padded
  const N = 24;
  const w = weights(N * K, 21);
  const bias = weights(N, 22, 0.5);
  const x = weights(M * K, 23, 1);
  const reader = memReader({ 'l.weight': { shape: [N, K], data: w }, 'l.bias': { shape: [N], data: bias } });

  /** x · Wᵀ + b in float64 for a given (dequantized) W. */
  function reference(wd: Float32Array): Float64Array {
    const y = new Float64Array(M * N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = bias[n];
        for (let k = 0; k < K; k++) s += x[m * K + k] * wd[n * K + k];
        y[m * N + n] = s;
      }
    }
    return y;
  }
  function relErr(got: Float32Array, want: Float64Array): number {
    let num = 0;
    let den = 0;
    for (let i = 0; i < want.length; i++) {
      num += (got[i] - want[i]) ** 2;
      den += want[i] ** 2;
    }
    return Math.sqrt(num / den);
  }
  async function runLinear(fmt: LinearFormat): Promise<Float32Array> {
    const g = new GraphBuilder('t');
    const xi = g.input('x', DataType.FLOAT, [M, K]);
    g.output(linearFrom(g, reader, xi, 'l', N, K, true, fmt), 'y', DataType.FLOAT, [M, N]);
    return run(g, { x: new ort.Tensor('float32', x, [M, K]) });
  }

  for (const prec of ['int4', 'int8'] as const) {
    it(`MatMulNBits (${prec}) equals the float matmul over the TS-dequantized weight`, async () => {
      const fmt = linearFormat(prec) as Extract<LinearFormat, { kind: 'matmulnbits' }>;
      const deq = dequantizeBlockwise(quantizeBlockwise(w, N, K, fmt));
      const want = reference(deq);
      // accuracy_level 0: float32 compute, so only float rounding separates the two.
      expect(relErr(await runLinear({ ...fmt, accuracyLevel: 0 }), want)).toBeLessThan(1e-5);
      // accuracy_level 4 (what packages use): activations quantized to int8 per block inside the kernel.
      const fast = relErr(await runLinear(fmt), want);
      expect(fast).toBeLessThan(0.02);
      // ... and the quantization itself is what separates it from the float32 weights.
      const vsFloat = relErr(await runLinear(fmt), reference(w));
      expect(vsFloat).toBeLessThan(prec === 'int4' ? 0.12 : 0.02);
      expect(vsFloat).toBeGreaterThan(prec === 'int4' ? 1e-3 : 1e-5);
    });
  }

  it('uint8 zero points and the symmetric mode both run in ORT and match the reference', async () => {
    for (const zeroPoints of ['uint8', 'none'] as const) {
      for (const bits of [4, 8] as const) {
        const fmt: LinearFormat = { kind: 'matmulnbits', bits, blockSize: 32, zeroPoints, accuracyLevel: 0 };
        const want = reference(dequantizeBlockwise(quantizeBlockwise(w, N, K, fmt)));
        expect(relErr(await runLinear(fmt), want), `${bits}-bit ${zeroPoints}`).toBeLessThan(1e-5);
      }
    }
  });

  it('fp16 weights: MatMul in float16 between casts equals the matmul over fp16-rounded weights', async () => {
    const want = reference(float16ToFloat32(float32ToFloat16(w)));
    // The activations are rounded to float16 too, hence the looser bound.
    expect(relErr(await runLinear(linearFormat('fp16')), want)).toBeLessThan(2e-3);
    expect(relErr(await runLinear(linearFormat('fp32')), reference(w))).toBeLessThan(1e-6);
  });
});

describe('quantized embedding table', () => {
  const V = 50;
  const H = 40; // not a multiple of the block: padded to 64 then sliced
  const table = weights(V * H, 31, 0.02);
  const cfg = { llm: { vocabSize: V, hiddenSize: H } } as unknown as Owl2Config;
  const reader = memReader({ 'model.embed_tokens.weight': { shape: [V, H], data: table } });
  const ids = [0, 7, 49, 7, 3, 12];

  it('int8: Gather + dequantize gives exactly the TS-dequantized rows', async () => {
    const fmt = embedFormat('int8');
    if (fmt.kind !== 'gather-blockwise') throw new Error('expected a block-wise format');
    const deq = dequantizeBlockwise(quantizeBlockwise(table, V, H, fmt));
    const got = await run(buildEmbedGraph(cfg, reader, { table: fmt }), { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [2, 3]) });
    expect(got.length).toBe(ids.length * H);
    for (let t = 0; t < ids.length; t++) {
      for (let h = 0; h < H; h++) expect(got[t * H + h]).toBe(deq[ids[t] * H + h]);
    }
  });

  it('fp16: rows rounded through float16', async () => {
    const rounded = float16ToFloat32(float32ToFloat16(table));
    const got = await run(buildEmbedGraph(cfg, reader, { table: embedFormat('fp16') }), { input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, 6]) });
    for (let t = 0; t < ids.length; t++) {
      for (let h = 0; h < H; h++) expect(got[t * H + h]).toBe(rounded[ids[t] * H + h]);
    }
  });
});

describe('quantization plans', () => {
  it('resolves presets and overrides; embed and lm_head follow --llm unless given', () => {
    expect(resolvePlan('cpu')).toEqual({ vision: 'int8', llm: 'int4', embed: 'int8', lmHead: 'int8' });
    expect(resolvePlan('gpu')).toEqual({ vision: 'fp16', llm: 'fp16', embed: 'fp16', lmHead: 'fp16' });
    expect(resolvePlan()).toEqual({ vision: 'fp32', llm: 'fp32', embed: 'fp32', lmHead: 'fp32' });
    expect(resolvePlan('reference', { llm: 'int4' })).toEqual({ vision: 'fp32', llm: 'int4', embed: 'int8', lmHead: 'int8' });
    expect(resolvePlan('cpu', { llm: 'fp16', vision: 'fp32' })).toEqual({ vision: 'fp32', llm: 'fp16', embed: 'fp16', lmHead: 'fp16' });
    expect(() => resolvePlan('cpu', { vision: 'int4' as never })).toThrow(/vision precision must be one of int8, fp16, fp32/);
    expect(() => resolvePlan('fast' as never)).toThrow(/unknown preset "fast"/);
  });
});
