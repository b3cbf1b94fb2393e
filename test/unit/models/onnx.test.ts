import { mkdtemp, readFile, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder, ONNX_IR_VERSION, ONNX_OPSET } from '../../../models/onnx/graph.ts';
import { DataType, attr, decodeModel, encodeModel } from '../../../models/onnx/proto.ts';
import { transpose2d } from '../../../models/onnx/weights.ts';
import { writeOnnxModel } from '../../../models/onnx/writer.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'owlery-onnx-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Deterministic pseudo-random floats in [-1, 1). */
function rand(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

describe('ONNX protobuf encoding', () => {
  it('round-trips attributes, symbolic dims, inline and external tensors', () => {
    const bytes = encodeModel({
      irVersion: 8,
      opsets: [{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }],
      producerName: 'owlery',
      producerVersion: 'test',
      graph: {
        name: 'g',
        nodes: [{
          opType: 'Foo', inputs: ['a', ''], outputs: ['b'], name: 'n0',
          attributes: {
            i: attr.int(-3), f: attr.float(0.5), is: attr.ints([1, -2, 3]), fs: attr.floats([1.5, -2]), s: attr.string('hé'),
            t: attr.tensor({ name: 'c', dataType: DataType.INT64, dims: [1], raw: new Uint8Array(8) }),
          },
        }],
        initializers: [
          { name: 'w', dataType: DataType.FLOAT, dims: [2, 3], external: { location: 'x.onnx.data', offset: 4096, length: 24 } },
          { name: 'k', dataType: DataType.FLOAT, dims: [], raw: new Uint8Array([0, 0, 128, 63]) },
        ],
        inputs: [{ name: 'a', elemType: DataType.FLOAT, dims: ['batch', 3, 42] }],
        outputs: [{ name: 'b', elemType: DataType.INT64, dims: ['batch', 'seq'] }],
      },
      metadata: { key: 'value' },
    });
    const m = decodeModel(bytes);
    expect(m.irVersion).toBe(8);
    expect(m.opsets).toEqual([{ domain: '', version: 17 }, { domain: 'com.microsoft', version: 1 }]);
    expect(m.metadata).toEqual({ key: 'value' });
    const n = m.graph.nodes[0];
    expect(n).toMatchObject({ opType: 'Foo', inputs: ['a', ''], outputs: ['b'], name: 'n0' });
    expect(n.attributes).toMatchObject({ i: -3, f: 0.5, is: [1, -2, 3], fs: [1.5, -2], s: 'hé' });
    expect(n.attributes.t).toMatchObject({ name: 'c', dims: [1], dataType: DataType.INT64 });
    expect(m.graph.initializers[0]).toMatchObject({ name: 'w', dims: [2, 3], external: { location: 'x.onnx.data', offset: 4096, length: 24 } });
    expect(m.graph.initializers[1]).toMatchObject({ name: 'k', dims: [] });
    expect(m.graph.inputs[0]).toEqual({ name: 'a', elemType: DataType.FLOAT, dims: ['batch', 3, 42] });
    expect(m.graph.outputs[0]).toEqual({ name: 'b', elemType: DataType.INT64, dims: ['batch', 'seq'] });
  });
});

describe('GraphBuilder + writeOnnxModel', () => {
  const In = 5;
  const Out = 7;
  const wOutIn = rand(Out * In, 1); // PyTorch Linear layout [out, in]
  const bias = rand(Out, 2);
  const lnW = rand(Out, 3);
  const lnB = rand(Out, 4);
  const rmsW = rand(Out, 5);

  async function build(): Promise<{ path: string; loads: string[] }> {
    const g = new GraphBuilder('test');
    const loads: string[] = [];
    const x = g.input('x', DataType.FLOAT, ['batch', 'seq', In]);
    const w = g.weightF32('w', [In, Out], () => {
      loads.push('w');
      return transpose2d(wOutIn, Out, In);
    });
    const b = g.weightF32('b', [Out], () => bias);
    const y = g.linear(x, w, b);
    g.output(g.layerNorm(y, g.weightF32('lnw', [Out], () => lnW), g.weightF32('lnb', [Out], () => lnB), 1e-5), 'ln', DataType.FLOAT, ['batch', 'seq', Out]);
    g.output(g.rmsNorm(y, g.weightF32('rmsw', [Out], () => rmsW), 1e-6), 'rms', DataType.FLOAT, ['batch', 'seq', Out]);
    g.output(g.quickGelu(y), 'qg', DataType.FLOAT, ['batch', 'seq', Out]);
    const path = join(dir, 'test.onnx');
    const written = await writeOnnxModel(g, path);
    expect(written.tensors).toBe(5);
    return { path, loads };
  }

  it('writes weights to an aligned external data file and a small .onnx', async () => {
    const { path, loads } = await build();
    expect(loads).toEqual(['w']);
    const m = decodeModel(await readFile(path));
    expect(m.irVersion).toBe(ONNX_IR_VERSION);
    expect(m.opsets[0]).toEqual({ domain: '', version: ONNX_OPSET });
    const ext = m.graph.initializers.filter((t) => t.external);
    expect(ext.map((t) => t.name)).toEqual(['w', 'b', 'lnw', 'lnb', 'rmsw']);
    for (const t of ext) {
      expect(t.external!.location).toBe('test.onnx.data');
      expect(t.external!.offset % 4096).toBe(0);
    }
    const data = await readFile(`${path}.data`);
    const w = ext[0].external!;
    const stored = new Float32Array(data.buffer.slice(data.byteOffset + w.offset, data.byteOffset + w.offset + w.length));
    expect(stored).toEqual(transpose2d(wOutIn, Out, In));
    expect((await stat(path)).size).toBeLessThan(4096);
  });

  it('computes what the DSL says, in onnxruntime', async () => {
    const { path } = await build();
    const B = 2;
    const T = 3;
    const x = rand(B * T * In, 9);
    const s = await ort.InferenceSession.create(path);
    const out = await s.run({ x: new ort.Tensor('float32', x, [B, T, In]) });
    await s.release();
    for (let r = 0; r < B * T; r++) {
      const y = new Float64Array(Out);
      for (let o = 0; o < Out; o++) {
        let acc = bias[o];
        for (let i = 0; i < In; i++) acc += x[r * In + i] * wOutIn[o * In + i];
        y[o] = acc;
      }
      const mean = y.reduce((a, v) => a + v, 0) / Out;
      const variance = y.reduce((a, v) => a + (v - mean) ** 2, 0) / Out;
      const ms = y.reduce((a, v) => a + v * v, 0) / Out;
      for (let o = 0; o < Out; o++) {
        const ln = ((y[o] - mean) / Math.sqrt(variance + 1e-5)) * lnW[o] + lnB[o];
        const rms = (y[o] / Math.sqrt(ms + 1e-6)) * rmsW[o];
        const qg = y[o] / (1 + Math.exp(-1.702 * y[o]));
        expect((out.ln.data as Float32Array)[r * Out + o]).toBeCloseTo(ln, 5);
        expect((out.rms.data as Float32Array)[r * Out + o]).toBeCloseTo(rms, 5);
        expect((out.qg.data as Float32Array)[r * Out + o]).toBeCloseTo(qg, 5);
      }
    }
  });

  it('onnxruntime refuses a model whose data file was truncated', async () => {
    const { path } = await build();
    await truncate(`${path}.data`, 100);
    await expect(ort.InferenceSession.create(path)).rejects.toThrow();
  });

  it('stops between tensors when the signal is aborted', async () => {
    const g = new GraphBuilder('abort');
    const ctl = new AbortController();
    const x = g.input('x', DataType.FLOAT, [1]);
    const a = g.weightF32('a', [1], () => {
      ctl.abort();
      return new Float32Array(1);
    });
    g.output(g.add(x, g.add(a, g.weightF32('b', [1], () => new Float32Array(1)))), 'y', DataType.FLOAT, [1]);
    await expect(writeOnnxModel(g, join(dir, 'abort.onnx'), { signal: ctl.signal })).rejects.toMatchObject({ code: 'CANCELLED' });
  });

  it('transpose2d transposes', () => {
    expect([...transpose2d(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3)]).toEqual([1, 4, 2, 5, 3, 6]);
  });
});
