/**
 * Engine benchmark (a script, not a test): `npm run bench -- [options]`.
 *
 * Measures, over several runs, what a user waits for: package load, image decode+preprocess,
 * vision encode, prefill of a 600-token prompt, decode of 128 tokens at context 600, time to first
 * token for "photo + 20-word question" (cold) and for a 20-word follow-up in the same conversation,
 * plus the machine's memory read bandwidth (a native ReduceSum over 1 GiB through onnxruntime) and
 * decode as a fraction of the bandwidth ceiling (weight bytes read per token / bandwidth).
 * Prints a table and saves JSON under bench/results/.
 *
 * Options: --package DIR (default: the seeded tiny model, converted on the fly) --provider P
 * --threads N (default 2) --runs N (default 3) --prompt-tokens N (600) --decode-tokens N (128)
 * --image FILE (default test/fixtures/extreme_ironing.jpg).
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph.ts';
import { DataType, attr } from '../models/onnx/proto.ts';
import { writeOnnxModel } from '../models/onnx/writer.ts';
import { convertCheckpoint } from '../models/convert.ts';
import { mulberry32 } from '../src-shared/random.ts';
import type { ExecutionProviderName } from '../src-shared/engine.ts';
import { Owl2Engine } from '../src-main/engine/owl2-engine.ts';
import { buildChatPrompt } from '../src-main/engine/prompt.ts';
import { ensureTinyCheckpoint } from '../test/helpers/tiny-model.ts';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' },
    provider: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    'prompt-tokens': { type: 'string', default: '600' },
    'decode-tokens': { type: 'string', default: '128' },
    image: { type: 'string', default: 'test/fixtures/extreme_ironing.jpg' },
  },
});
const runs = Math.max(3, Number(opt.runs));
const threads = Number(opt.threads);
const provider = opt.provider as ExecutionProviderName;
const promptTokens = Number(opt['prompt-tokens']);
const decodeTokens = Number(opt['decode-tokens']);

type Series = number[];
const results: Record<string, Series> = {};
const record = (name: string, v: number) => (results[name] ??= []).push(v);
const now = () => performance.now();

const QUESTION = 'What is the man in the yellow shirt doing, and why is it unusual to see this on a busy city street today?';
const FOLLOW_UP = 'Is the taxi behind him moving or parked, and what colour are the other cars on the street around them?';

async function readBandwidthGBs(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'owlery-bw-'));
  try {
    const g = new GraphBuilder('bandwidth');
    const x = g.input('x', DataType.FLOAT, ['n']);
    g.output(g.node('ReduceSum', [x], { keepdims: attr.int(0) }), 'sum', DataType.FLOAT, []);
    await writeOnnxModel(g, join(dir, 'bw.onnx'));
    const session = await ort.InferenceSession.create(join(dir, 'bw.onnx'), { intraOpNumThreads: threads, executionProviders: ['cpu'] });
    const data = new Float32Array(256 * 1024 * 1024).fill(1); // 1 GiB
    const t = new ort.Tensor('float32', data, [data.length]);
    const speeds: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = now();
      await session.run({ x: t });
      speeds.push(data.byteLength / 1e9 / ((now() - t0) / 1000));
    }
    await session.release();
    return median(speeds);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function packageDir(): Promise<{ dir: string; label: string }> {
  if (opt.package) return { dir: resolve(opt.package), label: resolve(opt.package) };
  const dir = join(tmpdir(), 'owlery-bench-tiny');
  if (!(await stat(join(dir, 'manifest.json')).catch(() => undefined))) {
    await rm(dir, { recursive: true, force: true });
    await convertCheckpoint(await ensureTinyCheckpoint({ seed: 1 }), dir);
  }
  return { dir, label: 'tiny (seed 1)' };
}

async function weightBytesPerToken(dir: string): Promise<number> {
  // Every decoder weight is read once per generated token (the KV cache is extra).
  const { readPackage } = await import('../models/package/read.ts');
  const pkg = await readPackage(dir, { verify: false });
  const data = pkg.manifest.files.find((f) => f.path === pkg.manifest.graphs.decoder.data);
  return data?.size ?? 0;
}

async function main(): Promise<void> {
  const { dir, label } = await packageDir();
  const photo = resolve(opt.image);
  const rng = mulberry32(1234);
  const decoderBytes = await weightBytesPerToken(dir);
  const decodeRates: number[] = [];
  for (let run = 0; run < runs; run++) {
    const t0 = now();
    const engine = await Owl2Engine.load(dir, { provider, threads, prefixReuse: true });
    record('load_ms', now() - t0);
    try {
      const tp = now();
      const pixels = await engine.preprocess(photo);
      record('image_decode_preprocess_ms', now() - tp);
      const tv = now();
      await engine.embedPixels(pixels);
      record('vision_encode_ms', now() - tv);

      const vocab = engine.config.llm.vocabSize;
      const ids = Array.from({ length: promptTokens }, () => 100 + Math.floor(rng() * (vocab - 100)));
      const inputs = await engine.buildInputs(ids, []);
      const tpf = now();
      let { cache } = await engine.decode(inputs.embeds, inputs.modality, engine.emptyCache());
      record('prefill_tok_per_s', (promptTokens * 1000) / (now() - tpf));
      const text = new BigInt64Array(1);
      const td = now();
      for (let i = 0; i < decodeTokens; i++) {
        ({ cache } = await engine.decode(await engine.embedTokens([ids[i]]), text, cache));
      }
      const decodeRate = (decodeTokens * 1000) / (now() - td);
      record('decode_tok_per_s', decodeRate);
      decodeRates.push(decodeRate);

      const turn1 = [{ role: 'user' as const, content: QUESTION, images: 1 }];
      const cold = await engine.generate({ prompt: buildChatPrompt(turn1), images: [photo], sampling: { greedy: true, maxNewTokens: 8 } });
      record('ttft_photo_question_cold_ms', cold.stats.timeToFirstTokenMs);
      const turn2 = [...turn1, { role: 'assistant' as const, content: cold.text }, { role: 'user' as const, content: FOLLOW_UP }];
      const follow = await engine.generate({ prompt: buildChatPrompt(turn2), images: [photo], sampling: { greedy: true, maxNewTokens: 1 } });
      record('ttft_follow_up_ms', follow.stats.timeToFirstTokenMs);
      record('follow_up_reused_tokens', follow.stats.reusedPromptTokens);
      const again = await engine.generate({ prompt: buildChatPrompt(turn1), images: [photo], sampling: { greedy: true, maxNewTokens: 1 } });
      record('same_photo_new_conversation_vision_encodes', again.stats.imageCount - again.stats.imagesFromCache);
    } finally {
      await engine.dispose();
    }
  }
  // Peak RSS of the engine work, read before the bandwidth probe allocates its 1 GiB buffer.
  record('peak_rss_mb', process.resourceUsage().maxRSS / 1024);
  const bandwidth = await readBandwidthGBs();
  for (const rate of decodeRates) {
    if (decoderBytes && bandwidth) record('decode_fraction_of_bandwidth_ceiling', rate / ((bandwidth * 1e9) / decoderBytes));
  }

  const rows = Object.entries(results).map(([name, xs]) => ({
    name,
    min: Math.min(...xs),
    median: median(xs),
    max: Math.max(...xs),
    n: xs.length,
  }));
  const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 3));
  console.log(`package: ${label}  provider: ${provider}  threads: ${threads}  runs: ${runs}`);
  console.log(`memory read bandwidth (ReduceSum over 1 GiB, ${threads} threads): ${bandwidth.toFixed(1)} GB/s; decoder weights ${(decoderBytes / 1e9).toFixed(3)} GB`);
  console.log(['metric'.padEnd(44), 'min'.padStart(10), 'median'.padStart(10), 'max'.padStart(10)].join(''));
  for (const r of rows) console.log([r.name.padEnd(44), fmt(r.min).padStart(10), fmt(r.median).padStart(10), fmt(r.max).padStart(10)].join(''));
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, JSON.stringify({ package: label, provider, threads, runs, promptTokens, decodeTokens, bandwidthGBs: bandwidth, decoderBytes, cpu: (await import('node:os')).cpus()[0]?.model, results: rows }, null, 2));
  console.log(`saved ${file}`);
}

await main();
