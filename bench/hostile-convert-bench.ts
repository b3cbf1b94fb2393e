/**
 * Hostile-conversion benchmark (issue 12): builds each hostile checkpoint folder the robustness
 * tests use (test/robustness/helpers/checkpoints.ts; built from seeds, a few MB on disk), converts
 * it in a child process as `owlery convert` would (verification on), and records whether it was
 * converted or refused, how, the wall time and the peak RSS (the child's `maxRSS`, cross-checked by
 * polling `/proc/<pid>/status` VmHWM). Targets: every bomb finishes (converted or refused) in < 60 s
 * with peak RSS < 2 GB; absurd configs and garbage tokenizers are refused in < 20 s; nothing is left
 * on disk; the untouched tiny checkpoint still converts.
 *
 *   npx tsx bench/hostile-convert-bench.ts [--dir DIR] [--sigint CHECKPOINT_DIR [--after SECONDS]]
 *
 * `--sigint DIR` also converts the checkpoint in DIR (e.g. the 7B deflated `.bin` that
 * `bench/convert-bench.ts --format bin --deflate 1 --keep` leaves in `.cache/convert-bench/checkpoint`)
 * with the `owlery` command, sends it SIGINT after `--after` seconds (default 90: past hashing the
 * source, while weights are read and written) and measures how long it takes to stop.
 * Prints a table; saves JSON to `bench/results/hostile-convert-<date>.json`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint } from '../models/convert.ts';
import { OwleryError } from '../src-shared/errors.ts';
import { ensureTinyCheckpoint } from '../test/helpers/tiny-model.ts';
import {
  checkpointFolder, deflatedRepeat, seededBytes, seededFloats, tinyTensors, writeCraftedBin,
} from '../test/robustness/helpers/checkpoints.ts';
import type { CraftedView } from '../test/robustness/helpers/checkpoints.ts';
import { runMeasured } from './child-peak.ts';
import { verifyPackage } from '../src-main/engine/index.ts';

const REPO = fileURLToPath(new URL('../', import.meta.url));
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** One hostile case: builds its checkpoint folder. */
interface Case {
  name: string;
  kind: 'bomb' | 'config' | 'tokenizer' | 'control';
  build: (dir: string, tiny: string) => Promise<void>;
}

function views(key: string, numel: number, offset: (numel: number) => number = () => 0): CraftedView[] {
  return tinyTensors().map((t) => ({ name: t.name, shape: t.shape, storageKey: key, storageNumel: numel, storageOffset: offset(t.numel) }));
}

/** A 1 MiB block of zeros with `n` seeded random bytes at its start: deflates about 1 MiB / n : 1. */
function mostlyZeros(seed: number, n: number): Uint8Array {
  const b = new Uint8Array(MiB);
  b.set(seededBytes(seed, n));
  return b;
}

const CASES: Case[] = [
  {
    name: 'every tensor a view of one 1 GiB deflated storage',
    kind: 'bomb',
    build: async (dir, tiny) => {
      await checkpointFolder(dir, tiny);
      await writeCraftedBin(join(dir, 'pytorch_model.bin'), views('0', GiB / 4), [{ key: '0', numel: GiB / 4, entry: { deflated: deflatedRepeat(GiB) } }]);
    },
  },
  {
    name: 'each tensor its own storage, ~4 GB declared in all',
    kind: 'bomb',
    build: async (dir, tiny) => {
      await checkpointFolder(dir, tiny);
      const tensors = tinyTensors();
      const per = Math.floor((4e9 / tensors.length / 4) / MiB) * MiB;
      const zeros = deflatedRepeat(per * 4);
      await writeCraftedBin(join(dir, 'pytorch_model.bin'),
        tensors.map((t, i) => ({ name: t.name, shape: t.shape, storageKey: String(i), storageNumel: per, storageOffset: 0 })),
        tensors.map((_, i) => ({ key: String(i), numel: per, entry: { deflated: zeros } })));
    },
  },
  {
    name: 'one 1 GiB storage shared by every tensor, just under the ratio cap',
    kind: 'bomb',
    build: async (dir, tiny) => {
      await checkpointFolder(dir, tiny);
      const entry = deflatedRepeat(GiB, mostlyZeros(3, 17 * 1024));
      const reach = 64 * MiB / 4;
      let seed = 9;
      await writeCraftedBin(join(dir, 'pytorch_model.bin'), views('0', GiB / 4, (n) => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed % (reach - n);
      }), [{ key: '0', numel: GiB / 4, entry: { deflated: entry } }]);
    },
  },
  {
    name: 'a storage declaring 9 MiB that inflates to 12 MiB',
    kind: 'bomb',
    build: async (dir, tiny) => {
      await checkpointFolder(dir, tiny);
      const v = views('0', 9 * MiB / 4);
      v[v.length - 1].storageOffset = 9 * MiB / 4 - tinyTensors()[v.length - 1].numel;
      await writeCraftedBin(join(dir, 'pytorch_model.bin'), v, [{ key: '0', numel: 9 * MiB / 4, entry: { deflated: { ...deflatedRepeat(12 * MiB, seededFloats(11, MiB)), size: 9 * MiB } } }]);
    },
  },
  { name: 'config.json num_hidden_layers 1,000,000', kind: 'config', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true, patchConfig: (r) => { r.num_hidden_layers = 1_000_000; } }) },
  { name: 'config.json vocab_size 2,000,000', kind: 'config', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true, patchConfig: (r) => { r.vocab_size = 2_000_000; } }) },
  { name: 'config.json of 7B sizes over tiny weights', kind: 'config', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true, patchConfig: (r) => { r.num_hidden_layers = 32; r.hidden_size = 4096; r.intermediate_size = 11008; } }) },
  { name: 'tokenizer.model of 64 kB random bytes', kind: 'tokenizer', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true, files: { 'tokenizer.model': seededBytes(12, 64 * 1024) } }) },
  { name: 'empty tokenizer.model', kind: 'tokenizer', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true, files: { 'tokenizer.model': new Uint8Array(0) } }) },
  {
    name: 'tokenizer.model cut in half',
    kind: 'tokenizer',
    build: async (dir, tiny) => {
      const real = await readFile(join(tiny, 'tokenizer.model'));
      await checkpointFolder(dir, tiny, { keepWeights: true, files: { 'tokenizer.model': real.subarray(0, real.length >> 1) } });
    },
  },
  { name: 'control: the tiny checkpoint as is', kind: 'control', build: async (dir, tiny) => void await checkpointFolder(dir, tiny, { keepWeights: true }) },
];

interface ChildReport {
  converted: boolean;
  code: string | null;
  message: string | null;
  maxRSSKiB: number;
}

/** Child mode: convert, report one JSON line. */
async function child(src: string, dst: string): Promise<void> {
  let report: ChildReport;
  try {
    await convertCheckpoint(src, dst, { verify: { run: verifyPackage } });
    report = { converted: true, code: null, message: null, maxRSSKiB: 0 };
  } catch (err) {
    report = { converted: false, code: err instanceof OwleryError ? err.code : 'INTERNAL', message: (err as Error).message, maxRSSKiB: 0 };
  }
  report.maxRSSKiB = process.resourceUsage().maxRSS;
  process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** Converts `src` with the `owlery` command, sends SIGINT after `afterMs`, and measures how long it takes to exit. */
async function sigintTiming(src: string, dst: string, afterMs: number): Promise<{ stopSeconds: number; exitCode: number | null; leftovers: string[] }> {
  const proc = spawn(process.execPath, [join(REPO, 'bin', 'owlery.js'), 'convert', '--preset', 'cpu', src, dst], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, afterMs));
  const t0 = performance.now();
  proc.kill('SIGINT');
  const exitCode = await new Promise<number | null>((r) => proc.on('close', r));
  const parent = join(dst, '..');
  return { stopSeconds: (performance.now() - t0) / 1000, exitCode, leftovers: readdirSync(parent).filter((n) => n.includes('.partial-')) };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const dir = resolve(argv.includes('--dir') ? argv[argv.indexOf('--dir') + 1] : join(REPO, '.cache', 'hostile-bench'));
  const sigint = argv.includes('--sigint') ? resolve(argv[argv.indexOf('--sigint') + 1]) : null;
  const afterS = argv.includes('--after') ? Number(argv[argv.indexOf('--after') + 1]) : 90;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tiny = await ensureTinyCheckpoint({ seed: 1 });
  const rows: Record<string, unknown>[] = [];
  try {
    for (const [i, c] of CASES.entries()) {
      const ckpt = join(dir, `case-${i}`);
      await c.build(ckpt, tiny);
      const fileBytes = readdirSync(ckpt).reduce((s, f) => s + statSync(join(ckpt, f)).size, 0);
      const out = join(dir, `out-${i}`, 'pkg');
      const r = await runMeasured(fileURLToPath(import.meta.url), ['--child', ckpt, out], { sampleEveryMs: 1000, timeoutMs: 300_000 });
      const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Partial<ChildReport>;
      const peak = Math.max(report.maxRSSKiB ?? 0, r.polledHwmKiB) * 1024;
      const outParent = join(dir, `out-${i}`);
      const left = existsSync(outParent) ? readdirSync(outParent).filter((n) => report.converted ? n.includes('.partial-') : true) : [];
      rows.push({
        case: c.name, kind: c.kind, folderBytes: fileBytes, outcome: report.converted ? 'converted' : `refused ${report.code}`, message: report.message ?? null,
        wallSeconds: r.wallMs / 1000, peakRssBytes: peak, leftOnDisk: left, childExit: r.code,
        pass: r.code === 0 && r.wallMs < (c.kind === 'config' || c.kind === 'tokenizer' ? 20_000 : 60_000) && peak < 2 * 2 ** 30 && left.length === 0 &&
          (c.kind === 'control' ? report.converted === true : c.kind === 'bomb' ? report.converted !== undefined : report.converted === false),
      });
      const last = rows[rows.length - 1];
      console.log(`${c.name}: ${last.outcome} in ${(r.wallMs / 1000).toFixed(2)} s, peak RSS ${(peak / 2 ** 30).toFixed(2)} GiB${report.message ? ` — ${report.message.slice(0, 160)}` : ''}`);
      rmSync(ckpt, { recursive: true, force: true });
      rmSync(outParent, { recursive: true, force: true });
    }
    let interrupt: Record<string, unknown> | null = null;
    if (sigint) {
      const dst = join(dir, 'sigint', 'pkg');
      mkdirSync(join(dir, 'sigint'), { recursive: true });
      interrupt = { checkpoint: sigint, afterSeconds: afterS, ...(await sigintTiming(sigint, dst, afterS * 1000)) };
      console.log(`SIGINT after ${afterS} s of converting ${sigint}: stopped in ${(interrupt.stopSeconds as number).toFixed(2)} s, exit ${String(interrupt.exitCode)}, left ${JSON.stringify(interrupt.leftovers)}`);
    }
    console.log('');
    console.log('| case | folder | outcome | wall | peak RSS | target met |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const r of rows) {
      console.log(`| ${String(r.case)} | ${((r.folderBytes as number) / MiB).toFixed(1)} MiB | ${String(r.outcome)} | ${(r.wallSeconds as number).toFixed(2)} s | ${((r.peakRssBytes as number) / 2 ** 30).toFixed(2)} GiB | ${r.pass ? 'yes' : 'NO'} |`);
    }
    const result = { date: new Date().toISOString(), node: process.version, cases: rows, sigint: interrupt, allPass: rows.every((r) => r.pass) };
    mkdirSync(join(REPO, 'bench', 'results'), { recursive: true });
    const file = join(REPO, 'bench', 'results', `hostile-convert-${result.date.slice(0, 10)}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`saved ${file}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  await child(process.argv[3], process.argv[4]);
} else {
  await main();
}
