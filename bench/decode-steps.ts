/**
 * Decode-step micro-benchmark (a script, not a test): the text-only decode step of several
 * packages' `decoder.onnx`, measured round-robin in one process so that machine load hits every
 * package alike.
 *
 *   npx tsx bench/decode-steps.ts [--context 600] [--steps 16] [--rounds 5] [--threads 2] PKG...
 *
 * Each package: load decoder.onnx + embed.onnx, prefill `context` random text tokens once, then per
 * round time `steps` single-token steps (text modality) starting at the same context (the cache is
 * cut back to `context` before every round). Drives the graph directly and accepts both decoder
 * contracts: the current one (caller-owned cache, `past_length`, `new_key.*`) and the earlier one
 * (`present_key.*` fetched and fed back every step), so old and new packages compare in one run.
 * Prints per package the median ms per step over all rounds, and each round's median.
 * `--no-prefill` starts from a zero-filled cache of `context` positions instead (a step costs the
 * same whatever the cached values; saves the prefill when only decode steps are compared).
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { readPackage } from '../models/package/read.ts';
import { DECODER_IO } from '../models/owl2/decoder-graph.ts';
import { DecoderKvCache, decoderFeedTensor } from '../src-main/engine/index.ts';
import { mulberry32 } from '../src-shared/random.ts';
import { median } from './stats.ts';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    context: { type: 'string', default: '600' },
    steps: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: '2' },
    /** Start from a zero-filled cache of `context` positions instead of a real prefill (same attention cost, no prefill wait). */
    'no-prefill': { type: 'boolean', default: false },
  },
});
const context = Number(opt.context);
const steps = Number(opt.steps);
const rounds = Number(opt.rounds);
const threads = Number(opt.threads);

const i64 = (xs: readonly number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(xs, (x) => BigInt(x)), dims);

interface Runner {
  label: string;
  /** Runs T text tokens after the current cache; returns nothing (logits are fetched and dropped). */
  step: (embeds: Float32Array, T: number) => Promise<void>;
  cut: (length: number) => void;
  fill: (length: number) => Promise<void>;
  embed: (ids: number[]) => Promise<Float32Array>;
}

async function open(dir: string): Promise<Runner> {
  const pkg = await readPackage(dir, { verify: false });
  const cfg = pkg.manifest.config.llm;
  const so: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, executionProviders: ['cpu'], graphOptimizationLevel: 'all', extra: { session: { intra_op: { allow_spinning: '0' } } } };
  const decoder = await ort.InferenceSession.create(pkg.graphPaths.decoder, so);
  const embedS = await ort.InferenceSession.create(pkg.graphPaths.embed, so);
  const embed = async (ids: number[]) => (await embedS.run({ input_ids: i64(ids, [1, ids.length]) })).inputs_embeds.data as Float32Array;
  const H = cfg.hiddenSize;
  const base = (embeds: Float32Array, T: number, P: number): Record<string, ort.Tensor> => ({
    [DECODER_IO.inputsEmbeds]: new ort.Tensor('float32', embeds, [1, T, H]),
    [DECODER_IO.modality]: i64(new Array<number>(T).fill(0), [1, T]),
    [DECODER_IO.positionIds]: i64(Array.from({ length: T }, (_, i) => P + i), [1, T]),
  });
  if (decoder.inputNames.includes(DECODER_IO.pastLength)) {
    const kv = new DecoderKvCache(cfg.numLayers, cfg.numKvHeads, cfg.headDim, { maxCapacity: cfg.maxPositions });
    return {
      label: `${dir} (caller-owned cache)`,
      embed,
      cut: (n) => kv.truncate(n),
      fill: async (n) => {
        kv.reserve(n);
        kv.length = n;
      },
      step: async (embeds, T) => {
        const feeds = base(embeds, T, kv.length);
        for (const f of kv.feeds()) feeds[f.name] = decoderFeedTensor(f);
        const out = await decoder.run(feeds, [DECODER_IO.logits, ...kv.fetches()]);
        kv.append(
          Array.from({ length: cfg.numLayers }, (_, i) => out[DECODER_IO.newKey(i)].data as Float32Array),
          Array.from({ length: cfg.numLayers }, (_, i) => out[DECODER_IO.newValue(i)].data as Float32Array),
          T,
        );
      },
    };
  }
  // The earlier contract: past_key/past_value [1, kvH, P, hd] in, present_* [1, kvH, P+T, hd] out.
  let P = 0;
  let keys: Float32Array[] = Array.from({ length: cfg.numLayers }, () => new Float32Array(0));
  let values = keys.slice();
  let saved: { P: number; keys: Float32Array[]; values: Float32Array[] } | undefined;
  return {
    label: `${dir} (cache round-tripped)`,
    embed,
    fill: async (n) => {
      P = n;
      keys = Array.from({ length: cfg.numLayers }, () => new Float32Array(cfg.numKvHeads * n * cfg.headDim));
      values = Array.from({ length: cfg.numLayers }, () => new Float32Array(cfg.numKvHeads * n * cfg.headDim));
      saved = { P, keys, values };
    },
    cut: (n) => {
      // The old engine sliced a copy on prefix reuse; here the prefilled cache is simply kept.
      if (!saved || saved.P !== n) throw new Error('old contract: can only go back to the prefilled context');
      ({ P, keys, values } = saved);
    },
    step: async (embeds, T) => {
      const feeds = base(embeds, T, P);
      const fetches = ['logits'];
      for (let i = 0; i < cfg.numLayers; i++) {
        feeds[`past_key.${i}`] = new ort.Tensor('float32', keys[i], [1, cfg.numKvHeads, P, cfg.headDim]);
        feeds[`past_value.${i}`] = new ort.Tensor('float32', values[i], [1, cfg.numKvHeads, P, cfg.headDim]);
        fetches.push(`present_key.${i}`, `present_value.${i}`);
      }
      const out = await decoder.run(feeds, fetches);
      keys = Array.from({ length: cfg.numLayers }, (_, i) => out[`present_key.${i}`].data as Float32Array);
      values = Array.from({ length: cfg.numLayers }, (_, i) => out[`present_value.${i}`].data as Float32Array);
      P += T;
      if (!saved) saved = { P, keys, values };
    },
  };
}

/** Zero-filled cache of `n` positions in either contract. */
async function fakeContext(r: Runner, n: number): Promise<void> {
  await r.fill(n);
}

const runners: Runner[] = [];
for (const dir of positionals) runners.push(await open(resolve(dir)));
if (!runners.length) throw new Error('usage: tsx bench/decode-steps.ts [options] PKG...');
const rng = mulberry32(99);
const prompt = Array.from({ length: context }, () => 100 + Math.floor(rng() * 30000));
const tokens = Array.from({ length: steps }, () => 100 + Math.floor(rng() * 30000));
const prefillMs: number[] = [];
for (const r of runners) {
  if (opt['no-prefill']) {
    await fakeContext(r, context);
    prefillMs.push(Number.NaN);
    continue;
  }
  const e = await r.embed(prompt);
  const t0 = performance.now();
  await r.step(e, context);
  prefillMs.push(performance.now() - t0);
}
const stepEmbeds = await runners[0].embed(tokens);
const H = stepEmbeds.length / steps;
const times: number[][] = runners.map(() => []);
const roundMedians: number[][] = runners.map(() => []);
for (let round = 0; round < rounds; round++) {
  for (const [k, r] of runners.entries()) {
    r.cut(context);
    const mine: number[] = [];
    for (let s = 0; s < steps; s++) {
      const t0 = performance.now();
      await r.step(stepEmbeds.slice(s * H, (s + 1) * H), 1);
      mine.push(performance.now() - t0);
    }
    times[k].push(...mine);
    roundMedians[k].push(median(mine));
  }
}
console.log(`context ${context}, ${steps} steps × ${rounds} rounds, threads ${threads}`);
for (const [k, r] of runners.entries()) {
  const m = median(times[k]);
  console.log(`${r.label}\n  prefill ${context} tokens ${prefillMs[k].toFixed(0)} ms (${((context * 1000) / prefillMs[k]).toFixed(1)} tok/s); decode median ${m.toFixed(1)} ms/step = ${(1000 / m).toFixed(2)} tok/s; round medians ${roundMedians[k].map((x) => x.toFixed(1)).join(' ')}`);
}
if (runners.length > 1) {
  const m0 = median(times[0]);
  for (let k = 1; k < runners.length; k++) console.log(`ratio ${k} / 0 (ms per step): ${(median(times[k]) / m0).toFixed(3)}`);
}
