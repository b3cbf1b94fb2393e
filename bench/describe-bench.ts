/**
 * Describe benchmark (a script, not a test): `npx tsx bench/describe-bench.ts [options]`.
 *
 * Photos per minute when describing a folder — caption and keywords per photo, the fixed prompts
 * of src-main/describe/prompts.ts, greedy — with the engine's prefix reuse on (the app's setting:
 * the instruction is prefilled once for the whole run, and the keywords request reuses the photo's
 * rows from the caption request) and off (every request prefilled from scratch). Each mode has its
 * own engine process (`EngineHost`, as the app and `owlery describe` use), loaded before timing;
 * the two run paired over the same synthetic photos (see `runPaired`), so the comparison holds on
 * a machine whose load changes. Photos per minute counts the describing itself (both requests,
 * image decoding and encoding included). Prints a table and saves JSON under bench/results/.
 *
 * A package with random weights (`owlery synth --preset 7b --quant cpu`) never writes `</s>`, so
 * every answer runs to the prompts' token limits (96 + 80 tokens): a worst case for decoding. The
 * table also shows the prefill work each mode did, which is what prefix reuse saves.
 *
 * Options: --package DIR (default: the seeded tiny model, converted on the fly) --provider P
 * (default cpu) --threads N (default 2) --photos N (default 6) --size WxH (default 1024x768).
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { convertCheckpoint } from '../models/convert.ts';
import type { ExecutionProviderName } from '../src-shared/engine.ts';
import { describePhoto } from '../src-main/describe/describer.ts';
import type { PhotoDescribed } from '../src-main/describe/describer.ts';
import { PROMPT_VERSION } from '../src-main/describe/prompts.ts';
import { EngineHost, verifyPackage } from '../src-main/engine/index.ts';
import { sha256File } from '../models/package/index.ts';
import { makePhoto } from '../test/helpers/chat-env.ts';
import { ensureTinyCheckpoint } from '../test/helpers/tiny-model.ts';
import { median } from './stats.ts';

const { values: opt } = parseArgs({
  options: {
    package: { type: 'string' },
    provider: { type: 'string', default: 'cpu' },
    threads: { type: 'string', default: '2' },
    photos: { type: 'string', default: '6' },
    size: { type: 'string', default: '1024x768' },
  },
});
const provider = opt.provider as ExecutionProviderName;
const threads = Number(opt.threads);
const count = Math.max(2, Number(opt.photos));
const [width, height] = opt.size.split('x').map(Number);

/** One mode's results. */
interface ModeResult {
  prefixReuse: boolean;
  photos: number;
  totalMs: number;
  photosPerMinute: number;
  perPhoto: {
    ms: number;
    captionPrefillMs: number;
    captionPromptTokens: number;
    captionReusedTokens: number;
    keywordsPrefillMs: number;
    keywordsPromptTokens: number;
    keywordsReusedTokens: number;
    imageEncodeMs: number;
    decodeTokPerS: number;
    outputTokens: number;
  }[];
}

type PhotoResult = ModeResult['perPhoto'][number];

async function describeOne(host: EngineHost, path: string): Promise<PhotoResult> {
  const d: PhotoDescribed = await describePhoto(host, path, await sha256File(path));
  const { caption: c, keywords: k } = d.stats;
  return {
    ms: d.ms,
    captionPrefillMs: c.prefillMs,
    captionPromptTokens: c.promptTokens,
    captionReusedTokens: c.reusedPromptTokens,
    keywordsPrefillMs: k.prefillMs,
    keywordsPromptTokens: k.promptTokens,
    keywordsReusedTokens: k.reusedPromptTokens,
    imageEncodeMs: c.imageEncodeMs + c.imageDecodeMs,
    decodeTokPerS: (c.outputTokens + k.outputTokens) / ((c.totalMs - c.timeToFirstTokenMs + k.totalMs - k.timeToFirstTokenMs) / 1000),
    outputTokens: c.outputTokens + k.outputTokens,
  };
}

/**
 * Both modes over the same photos, paired: two engine processes (reuse on, reuse off) loaded side
 * by side, each photo described by one then the other (the order alternating), so a machine whose
 * load changes over minutes slows both modes alike. Each engine sees every photo in order, as a
 * job would.
 */
async function runPaired(pkg: string, photos: string[]): Promise<[ModeResult, ModeResult]> {
  const hosts = [new EngineHost(), new EngineHost()];
  try {
    await hosts[0].load(pkg, { provider, threads, prefixReuse: true });
    await hosts[1].load(pkg, { provider, threads, prefixReuse: false });
    const per: PhotoResult[][] = [[], []];
    for (const [i, path] of photos.entries()) {
      for (const m of i % 2 === 0 ? [0, 1] : [1, 0]) {
        const r = await describeOne(hosts[m], path);
        per[m].push(r);
        process.stderr.write(`  prefix reuse ${m === 0 ? 'on ' : 'off'}: photo ${i + 1}/${photos.length} in ${(r.ms / 1000).toFixed(1)} s\n`);
      }
    }
    const result = (m: number): ModeResult => {
      const totalMs = per[m].reduce((t, r) => t + r.ms, 0);
      return { prefixReuse: m === 0, photos: photos.length, totalMs, photosPerMinute: (photos.length * 60_000) / totalMs, perPhoto: per[m] };
    };
    return [result(0), result(1)];
  } finally {
    await Promise.all(hosts.map((h) => h.dispose()));
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'owlery-describe-bench-'));
  try {
    let pkg = opt.package ? resolve(opt.package) : '';
    let label = pkg;
    if (!pkg) {
      pkg = join(work, 'tiny');
      await convertCheckpoint(await ensureTinyCheckpoint({ seed: 1 }), pkg, { verify: { run: verifyPackage } });
      label = 'tiny (seed 1)';
    }
    const photos: string[] = [];
    for (let i = 0; i < count; i++) {
      const file = join(work, `photo-${i}.jpg`);
      await writeFile(file, await makePhoto(4000 + i, width, height, 'jpeg'));
      photos.push(file);
    }
    const [on, off] = await runPaired(pkg, photos);

    const row = (name: string, f: (m: ModeResult) => string) => console.log(`${name.padEnd(46)}${f(on).padStart(14)}${f(off).padStart(14)}`);
    const med = (m: ModeResult, k: keyof ModeResult['perPhoto'][number]) => median(m.perPhoto.map((p) => p[k]));
    const later = (m: ModeResult, k: keyof ModeResult['perPhoto'][number]) => median(m.perPhoto.slice(1).map((p) => p[k]));
    console.log(`package: ${label}  provider: ${provider}  threads: ${threads}  photos: ${count} × ${width}x${height} JPEG  prompts: ${PROMPT_VERSION}`);
    console.log(`${'metric'.padEnd(46)}${'reuse on'.padStart(14)}${'reuse off'.padStart(14)}`);
    row('photos per minute', (m) => m.photosPerMinute.toFixed(2));
    row('s per photo (median)', (m) => (med(m, 'ms') / 1000).toFixed(2));
    row('prompt tokens prefilled per photo (median)', (m) => median(m.perPhoto.map((p) => p.captionPromptTokens - p.captionReusedTokens + p.keywordsPromptTokens - p.keywordsReusedTokens)).toFixed(0));
    row('prefill ms per photo (median)', (m) => median(m.perPhoto.map((p) => p.captionPrefillMs + p.keywordsPrefillMs)).toFixed(0));
    row('caption prompt tokens / reused (photos 2+)', (m) => `${later(m, 'captionPromptTokens')} / ${later(m, 'captionReusedTokens')}`);
    row('caption prefill ms (photos 2+, median)', (m) => later(m, 'captionPrefillMs').toFixed(0));
    row('keywords prompt tokens / reused (median)', (m) => `${med(m, 'keywordsPromptTokens')} / ${med(m, 'keywordsReusedTokens')}`);
    row('keywords prefill ms (median)', (m) => med(m, 'keywordsPrefillMs').toFixed(0));
    row('image decode + encode ms (median)', (m) => med(m, 'imageEncodeMs').toFixed(0));
    row('decode tok/s (median)', (m) => med(m, 'decodeTokPerS').toFixed(2));
    row('output tokens per photo (median)', (m) => med(m, 'outputTokens').toFixed(0));
    await mkdir('bench/results', { recursive: true });
    const file = `bench/results/describe-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
    await writeFile(file, `${JSON.stringify({ package: label, provider, threads, photos: count, size: opt.size, promptVersion: PROMPT_VERSION, modes: [on, off] }, null, 2)}\n`);
    console.log(`saved ${file}`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
