/**
 * MatMulNBits layout micro-benchmark (a script, not a test): which 4-bit block layout reads the
 * fewest bytes per decoded token on this CPU, and what it does to prefill.
 *
 *   npx tsx bench/matmulnbits-bench.ts [--layers 8] [--steps 24] [--rounds 4] [--prefill 600] [--out DIR]
 *
 * Writes one graph per variant (LLaMA-2-7B-shaped layers: q, k, v, o 4096×4096, gate/up
 * 4096→11008, down 11008→4096, all `com.microsoft::MatMulNBits` at accuracy_level 4, random codes,
 * scales and zero points; speed does not depend on the values), loads them all in one process and
 * times single-token steps (M = 1) round-robin, then one prefill of `--prefill` rows each. Prints
 * ms per step, the implied bytes read per step from onnxruntime's resident size after loading,
 * and the same scaled to 32 layers.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph.ts';
import { attr, DataType } from '../models/onnx/proto.ts';
import { MS_DOMAIN } from '../models/onnx/weights.ts';
import { writeOnnxModel } from '../models/onnx/writer.ts';
import { mulberry32 } from '../src-shared/random.ts';
import { median } from './stats.ts';

const { values: opt } = parseArgs({
  options: {
    layers: { type: 'string', default: '8' },
    steps: { type: 'string', default: '24' },
    rounds: { type: 'string', default: '4' },
    prefill: { type: 'string', default: '600' },
    out: { type: 'string', default: '/tmp/owlery-mnb-bench' },
    variants: { type: 'string', default: 'b32,b64,b128,b32-fused,b128-fused' },
  },
});
const layers = Number(opt.layers);
const H = 4096;
const F = 11008;

interface Variant { name: string; block: number; fused: boolean; zp: boolean }
const parseVariant = (s: string): Variant => {
  const m = /^b(\d+)(-fused)?(-sym)?$/.exec(s);
  if (!m) throw new Error(`variant ${s}: expected b<block>[-fused][-sym]`);
  return { name: s, block: Number(m[1]), fused: Boolean(m[2]), zp: !m[3] };
};
const variants = opt.variants.split(',').map(parseVariant);

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  const out = new Uint8Array(n);
  const u32 = new Uint32Array(out.buffer, 0, n >> 2);
  for (let i = 0; i < u32.length; i++) u32[i] = (rng() * 2 ** 32) >>> 0;
  return out;
}

async function build(v: Variant, path: string): Promise<void> {
  const g = new GraphBuilder(`mnb-${v.name}`);
  let seed = 1;
  const linear = (x: string, name: string, K: number, N: number): string => {
    const kBlocks = Math.ceil(K / v.block);
    const s = seed++;
    const data = g.weight(`${name}.q`, DataType.UINT8, [N, kBlocks, v.block / 2], () => randomBytes(N * kBlocks * (v.block / 2), s));
    const scales = g.weightF32(`${name}.s`, [N * kBlocks], () => {
      const rng = mulberry32(s + 1000);
      return Float32Array.from({ length: N * kBlocks }, () => 1e-3 * rng());
    });
    const inputs = [x, data, scales];
    if (v.zp) inputs.push(g.weight(`${name}.z`, DataType.UINT8, [N, Math.ceil(kBlocks / 2)], () => randomBytes(N * Math.ceil(kBlocks / 2), s + 2000)));
    return g.node('MatMulNBits', inputs, {
      K: attr.int(K), N: attr.int(N), bits: attr.int(4), block_size: attr.int(v.block), accuracy_level: attr.int(4),
    }, MS_DOMAIN);
  };
  const x = g.input('x', DataType.FLOAT, [1, 'T', H]);
  let h = x;
  for (let l = 0; l < layers; l++) {
    let attn: string;
    if (v.fused) {
      const [q, k, vv] = g.split(linear(h, `l${l}.qkv`, H, 3 * H), 2, [H, H, H]);
      attn = g.add(g.add(q, k), vv);
    } else {
      attn = g.add(g.add(linear(h, `l${l}.q`, H, H), linear(h, `l${l}.k`, H, H)), linear(h, `l${l}.v`, H, H));
    }
    const o = linear(attn, `l${l}.o`, H, H);
    let gate: string; let up: string;
    if (v.fused) [gate, up] = g.split(linear(o, `l${l}.gu`, H, 2 * F), 2, [F, F]);
    else [gate, up] = [linear(o, `l${l}.gate`, H, F), linear(o, `l${l}.up`, H, F)];
    h = linear(g.mul(g.silu(gate), up), `l${l}.down`, F, H);
  }
  g.output(h, 'y', DataType.FLOAT, [1, 'T', H]);
  await writeOnnxModel(g, path, { extraOpsets: [{ domain: MS_DOMAIN, version: 1 }] });
}

const rssBytes = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;

await mkdir(opt.out, { recursive: true });
const sessions: { v: Variant; s: ort.InferenceSession; bytes: number; loadMs: number }[] = [];
for (const v of variants) {
  const path = join(opt.out, `${v.name}-L${layers}.onnx`);
  if (!existsSync(path)) await build(v, path);
  const before = rssBytes();
  const t0 = performance.now();
  const s = await ort.InferenceSession.create(path, {
    executionProviders: ['cpu'], intraOpNumThreads: 2, graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } },
  });
  sessions.push({ v, s, loadMs: performance.now() - t0, bytes: rssBytes() - before });
}
const x1 = new ort.Tensor('float32', Float32Array.from({ length: H }, (_, i) => Math.sin(i)), [1, 1, H]);
const times = sessions.map(() => [] as number[]);
for (let r = 0; r < Number(opt.rounds); r++) {
  for (const [k, { s }] of sessions.entries()) {
    for (let i = 0; i < Number(opt.steps); i++) {
      const t0 = performance.now();
      await s.run({ x: x1 });
      times[k].push(performance.now() - t0);
    }
  }
}
const T = Number(opt.prefill);
const xp = new ort.Tensor('float32', Float32Array.from({ length: T * H }, (_, i) => Math.sin(i)), [1, T, H]);
const prefill: number[] = [];
for (const { s } of sessions) {
  const t0 = performance.now();
  await s.run({ x: xp });
  prefill.push(performance.now() - t0);
}
console.log(`${layers} layers (7B shapes), M=1 steps ${opt.steps} × ${opt.rounds} rounds, 2 threads`);
console.log('variant          load s  resident MB  ms/step  ms/step×32/L  GB/s(resident)  prefill ms  prefill tok/s×L/32');
for (const [k, { v, bytes, loadMs }] of sessions.entries()) {
  const m = median(times[k]);
  console.log(
    `${v.name.padEnd(16)} ${(loadMs / 1000).toFixed(1).padStart(6)} ${(bytes / 2 ** 20).toFixed(0).padStart(11)} ${m.toFixed(2).padStart(8)} ${((m * 32) / layers).toFixed(1).padStart(13)} ${(bytes / m / 1e6).toFixed(1).padStart(15)} ${prefill[k].toFixed(0).padStart(11)} ${((T * 1000) / (prefill[k] * (32 / layers))).toFixed(1).padStart(18)}`,
  );
}
