/**
 * Engine benchmark (a script, not a test): `npm run bench -- [options]`.
 *
 * Measures, over several runs, what a user waits for: package load, image decode+preprocess,
 * vision encode, prefill of a 600-token prompt, decode of 128 tokens at context 600, time to first
 * token for "photo + 20-word question" (cold) and for a 20-word follow-up in the same conversation,
 * plus the machine's memory read bandwidth (a native ReduceSum over 1 GiB through onnxruntime) and
 * decode as a fraction of the bandwidth ceiling (bandwidth / bytes a text-only step reads: the
 * decoder's weights except MAM branch 1 of k/v, which text tokens never touch, plus the KV cache at
 * the decode's mid context). Each run is a fresh process (`--child-run`), so load time, peak RSS
 * while loading and peak RSS of the whole run are those of one engine, as in the app's engine
 * process. Prints a table and saves JSON under bench/results/.
 *
 * On a GPU provider a short prefill and one decode step run first (`warmup_ms`: shader compilation),
 * decode reports CPU milliseconds per step beside wall milliseconds (dispatch-bound or not), and a
 * 32-token greedy follow-up answer reports prompt-lookup's acceptance (GPU decoder only).
 *
 * Options: --package DIR (default: the seeded tiny model, converted on the fly; --decoder gpu
 * converts it with the GPU decoder graph) --provider P
 * --prepacked-cache DIR (load through the opt-in faster-start cache; one unrecorded run builds it first)
 * --threads N (default 2) --runs N (default 3) --prompt-tokens N (600) --decode-tokens N (128)
 * --image FILE (default test/fixtures/extreme_ironing.jpg).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../models/onnx/graph.ts';
import { DataType, attr, decodeModel } from '../models/onnx/proto.ts';
import { writeOnnxModel } from '../models/onnx/writer.ts';
import { convertCheckpoint } from '../models/convert.ts';
import { mulberry32 } from '../src-shared/random.ts';
import { median } from './stats.ts';
import type { ExecutionProviderName } from '../src-shared/engine.ts';
import { Owl2Engine, buildChatPrompt, verifyPackage } from '../src-main/engine/index.ts';
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
    'prepacked-cache': { type: 'string' },
    decoder: { type: 'string', default: 'cpu' },
    /** Internal: run once in this process and print the metrics as JSON. */
    'child-run': { type: 'boolean', default: false },
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

async function packageDir(): Promise<{ dir: string; label: string; temporary: boolean }> {
  if (opt.package) return { dir: resolve(opt.package), label: resolve(opt.package), temporary: false };
  // Converted afresh each time (a few seconds): a cached conversion would silently keep an older graph.
  const dir = await mkdtemp(join(tmpdir(), 'owlery-bench-tiny-'));
  const decoder = opt.decoder === 'gpu' ? 'gpu' : 'cpu';
  await convertCheckpoint(await ensureTinyCheckpoint({ seed: 1 }), join(dir, 'pkg'), { decoder, verify: { run: verifyPackage } });
  return { dir: join(dir, 'pkg'), label: `tiny (seed 1${decoder === 'gpu' ? ', GPU decoder graph' : ''})`, temporary: true };
}

/**
 * Bytes a text-only decode step reads: every decoder initializer except MAM branch 1 of k/v
 * (text tokens never run it), plus the KV cache (K and V, float32; float16 in a GPU package that
 * is not float32) at context `context`.
 */
async function bytesPerTextStep(dir: string, context: number): Promise<{ weights: number; kv: number }> {
  const { readPackage } = await import('../models/package/read.ts');
  const pkg = await readPackage(dir, { verify: false });
  const model = decodeModel(await readFile(pkg.graphPaths.decoder));
  let weights = 0;
  for (const t of model.graph.initializers) {
    if (/\.(k_proj|v_proj|kv)\.multiway\.1\./.test(t.name)) continue;
    weights += t.external?.length ?? t.raw?.length ?? 0;
  }
  const { numLayers, numKvHeads, headDim } = pkg.manifest.config.llm;
  const kvBytes = pkg.manifest.graphs.decoder.variant === 'gpu' && pkg.manifest.quantization.llm !== 'fp32' ? 2 : 4;
  return { weights, kv: 2 * numLayers * context * numKvHeads * headDim * kvBytes };
}

const maxRssMb = (): number => process.resourceUsage().maxRSS / 1024;

/** One run in this process: prints `BENCH_RESULT <json>` with every metric of the run. */
async function childRun(dir: string): Promise<void> {
  const photo = resolve(opt.image);
  const rng = mulberry32(1234);
  const t0 = now();
  const prepackedCacheDir = opt['prepacked-cache'] ? resolve(opt['prepacked-cache']) : undefined;
  const engine = await Owl2Engine.load(dir, { provider, threads, prefixReuse: true, prepackedCacheDir });
  record('load_ms', now() - t0);
  if (prepackedCacheDir && engine.decoderSource.from !== 'prepacked-cache') throw new Error(`the decoder did not load from the faster-start cache: ${JSON.stringify(engine.decoderSource)}`);
  record('peak_rss_after_load_mb', maxRssMb());
  try {
    const tp = now();
    const pixels = await engine.preprocess(photo);
    record('image_decode_preprocess_ms', now() - tp);
    const tv = now();
    await engine.model.embedPixels(pixels);
    record('vision_encode_ms', now() - tv);

    const vocab = engine.config.llm.vocabSize;
    const ids = Array.from({ length: promptTokens }, () => 100 + Math.floor(rng() * (vocab - 100)));
    const inputs = await engine.model.buildInputs(ids, []);
    if (provider !== 'cpu') {
      // Shader compilation for a prefill and a decode step, outside the timed runs.
      const tw = now();
      const warm = engine.model.emptyCache();
      await engine.model.decode(inputs.embeds.subarray(0, 8 * engine.config.llm.hiddenSize), inputs.modality.subarray(0, 8), warm);
      await engine.model.step(ids[0], warm);
      warm.truncate(0);
      record('warmup_ms', now() - tw);
    }
    const tpf = now();
    const cache = engine.model.emptyCache();
    await engine.model.decode(inputs.embeds, inputs.modality, cache);
    record('prefill_tok_per_s', (promptTokens * 1000) / (now() - tpf));
    const td = now();
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < decodeTokens; i++) await engine.model.step(ids[i], cache);
    const cpu = process.cpuUsage(cpu0);
    record('decode_tok_per_s', (decodeTokens * 1000) / (now() - td));
    record('decode_wall_ms_per_step', (now() - td) / decodeTokens);
    record('decode_cpu_ms_per_step', (cpu.user + cpu.system) / 1000 / decodeTokens);
    cache.truncate(0);

    const turn1 = [{ role: 'user' as const, content: QUESTION, images: 1 }];
    const cold = await engine.generate({ prompt: buildChatPrompt(turn1), images: [photo], sampling: { greedy: true, maxNewTokens: 8 } });
    record('ttft_photo_question_cold_ms', cold.stats.timeToFirstTokenMs);
    const turn2 = [...turn1, { role: 'assistant' as const, content: cold.text }, { role: 'user' as const, content: FOLLOW_UP }];
    const follow = await engine.generate({ prompt: buildChatPrompt(turn2), images: [photo], sampling: { greedy: true, maxNewTokens: 1 } });
    record('ttft_follow_up_ms', follow.stats.timeToFirstTokenMs);
    record('follow_up_reused_tokens', follow.stats.reusedPromptTokens);
    if (engine.manifest.graphs.decoder.variant === 'gpu') {
      const answer = await engine.generate({ prompt: buildChatPrompt(turn2), images: [photo], sampling: { greedy: true, maxNewTokens: 32 } });
      const spec = answer.stats.speculation;
      record('follow_up_answer_tok_per_s', answer.stats.decodeTokensPerSecond);
      if (spec) {
        record('lookahead_drafted', spec.drafted);
        record('lookahead_accepted', spec.accepted);
        record('lookahead_tokens_per_call', answer.stats.outputTokens / Math.max(1, spec.calls));
      }
    }
    const again = await engine.generate({ prompt: buildChatPrompt(turn1), images: [photo], sampling: { greedy: true, maxNewTokens: 1 } });
    record('same_photo_new_conversation_vision_encodes', again.stats.imageCount - again.stats.imagesFromCache);
  } finally {
    await engine.dispose();
  }
  record('peak_rss_mb', maxRssMb());
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(results)}\n`);
}

/** Runs `childRun` in a fresh process and merges its metrics (unless `discard`). */
async function runChild(dir: string, discard = false): Promise<void> {
  const args = [...process.execArgv, process.argv[1], ...process.argv.slice(2), '--package', dir, '--child-run'];
  const stdout = await new Promise<string>((ok, fail) => {
    execFile(process.execPath, args, { maxBuffer: 64 * 1024 * 1024 }, (err, out, errOut) => (err ? fail(new Error(`bench run failed: ${err.message}\n${errOut}`)) : ok(out)));
  });
  const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
  if (!line) throw new Error(`bench run printed no result:\n${stdout}`);
  if (discard) return;
  for (const [name, xs] of Object.entries(JSON.parse(line.slice('BENCH_RESULT '.length)) as Record<string, number[]>)) {
    for (const x of xs) record(name, x);
  }
}

async function main(): Promise<void> {
  if (opt['child-run']) return childRun(resolve(opt.package!));
  const { dir, label, temporary } = await packageDir();
  const midContext = promptTokens + Math.floor(decodeTokens / 2);
  const bytes = await bytesPerTextStep(dir, midContext);
  try {
    if (opt['prepacked-cache']) await runChild(dir, true); // builds the cache entry: not a warm load
    for (let run = 0; run < runs; run++) await runChild(dir);
  } finally {
    if (temporary) await rm(dirname(dir), { recursive: true, force: true });
  }
  const bandwidth = await readBandwidthGBs();
  const ceiling = (bandwidth * 1e9) / (bytes.weights + bytes.kv);
  for (const rate of results.decode_tok_per_s ?? []) record('decode_fraction_of_bandwidth_ceiling', rate / ceiling);

  const rows = Object.entries(results).map(([name, xs]) => ({
    name,
    min: Math.min(...xs),
    median: median(xs),
    max: Math.max(...xs),
    n: xs.length,
  }));
  const fmt = (x: number) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 3));
  console.log(`package: ${label}  provider: ${provider}  threads: ${threads}  runs: ${runs} (one process each)${opt['prepacked-cache'] ? '  decoder: faster-start cache' : ''}`);
  console.log(`memory read bandwidth (ReduceSum over 1 GiB, ${threads} threads): ${bandwidth.toFixed(1)} GB/s; a text-only step at context ${midContext} reads ${(bytes.weights / 1e9).toFixed(3)} GB of weights + ${(bytes.kv / 1e9).toFixed(3)} GB of KV cache: ceiling ${ceiling.toFixed(2)} tok/s`);
  console.log(['metric'.padEnd(44), 'min'.padStart(10), 'median'.padStart(10), 'max'.padStart(10)].join(''));
  for (const r of rows) console.log([r.name.padEnd(44), fmt(r.min).padStart(10), fmt(r.median).padStart(10), fmt(r.max).padStart(10)].join(''));
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  await writeFile(file, JSON.stringify({ package: label, provider, threads, runs, promptTokens, decodeTokens, bandwidthGBs: bandwidth, bytesPerTextStep: bytes, decodeCeilingTokPerS: ceiling, cpu: (await import('node:os')).cpus()[0]?.model, results: rows }, null, 2));
  console.log(`saved ${file}`);
}

await main();
