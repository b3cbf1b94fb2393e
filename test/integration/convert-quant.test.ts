/**
 * Converter around quantization: disk-space check before anything is written (DISK_FULL naming
 * the size needed), size estimate against the real package, progress events with the verifying
 * phase, `--no-verify`, and the CLI's convert flags and `inspect` command.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, readConfig } from '../../models/checkpoint/index.ts';
import { buildPackageGraphs, convertCheckpoint, estimatePackageBytes, freeDiskBytes, renderConvertProgress } from '../../models/convert.ts';
import type { ConvertProgress } from '../../models/convert.ts';
import { FORM_WORDS, sizeLabel } from '../../models/names.ts';
import { presetDecoder, resolvePlan } from '../../models/quant/plan.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { VERIFY } from '../helpers/verify.ts';

const run = promisify(execFile);
const BIN = resolve('bin/owlery.js');
async function owlery(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let work: string;
let ckpt: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-convert-quant-'));
  ckpt = await ensureTinyCheckpoint({ seed: 3 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('disk space', () => {
  it('refuses with DISK_FULL before writing anything, saying how much is needed', async () => {
    const dest = join(work, 'full', 'pkg');
    const err = await convertCheckpoint(ckpt, dest, { verify: VERIFY, preset: 'cpu', freeBytes: 1_000_000 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DISK_FULL' });
    expect((err as Error).message).toMatch(/needs about [\d.]+ MiB.*temporarily, for verification.*976\.6 KiB is free/);
    await expect(readdir(join(work, 'full'))).rejects.toMatchObject({ code: 'ENOENT' }); // nothing created
    // Without verification the float32 reference is not counted.
    const err2 = await convertCheckpoint(ckpt, dest, { preset: 'cpu', freeBytes: 1_000_000, verify: false }).catch((e: unknown) => e);
    expect((err2 as Error).message).not.toMatch(/verification/);
  });

  it('estimates the package from the tensor list within a few percent, never below', async () => {
    const { config } = await readConfig(ckpt);
    const reader = await openCheckpoint(ckpt);
    try {
      for (const preset of ['cpu', 'gpu', 'gpu-int4', 'reference'] as const) {
        const graphs = await buildPackageGraphs(config, reader, resolvePlan(preset), presetDecoder(preset));
        const est = estimatePackageBytes(graphs, 0);
        const m = await convertCheckpoint(ckpt, join(work, `est-${preset}`), { preset, verify: false });
        // Named after the model and the form, not the checkpoint folder (a hash here).
        expect(m.name).toBe(`mPLUG-Owl2 ${sizeLabel(config)} · ${FORM_WORDS[preset]}`);
        const graphFiles = m.files.filter((f) => f.path.includes('.onnx')).reduce((s, f) => s + f.size, 0);
        const estGraphs = Object.values(est.graphs).reduce((a, b) => a + b, 0);
        expect(estGraphs, preset).toBeGreaterThanOrEqual(graphFiles);
        expect(estGraphs, preset).toBeLessThan(graphFiles * 1.1);
        // Data files are exact.
        for (const g of ['vision', 'embed', 'decoder'] as const) {
          const data = m.files.find((f) => f.path === `${g}.onnx.data`)!.size;
          expect(est.graphs[g] - data, `${preset}/${g}`).toBeLessThan(512 * 1024);
          expect(est.graphs[g]).toBeGreaterThan(data);
        }
      }
    } finally {
      await reader.close();
    }
  });

  it('reads the free space of the nearest existing folder', async () => {
    expect(await freeDiskBytes(join(work, 'does', 'not', 'exist'))).toBeGreaterThan(0);
  });
});

describe('progress', () => {
  it('reports each tensor, then verification stages, and ends with done; renders a bar', async () => {
    const events: ConvertProgress[] = [];
    await convertCheckpoint(ckpt, join(work, 'progress'), { verify: VERIFY, preset: 'cpu', onProgress: (p) => events.push(p) });
    const writes = events.filter((p) => p.phase === 'writing-graphs');
    expect(writes).toHaveLength(writes[0].tensorsTotal);
    expect(writes.at(-1)!.bytesDone).toBe(writes.at(-1)!.bytesTotal);
    const stages = events.filter((p) => p.phase === 'verifying').map((p) => p.current);
    expect(stages).toEqual(expect.arrayContaining(['loading the package', 'writing the float32 reference', 'running the vision graph', 'running the decoder']));
    expect(events.findIndex((p) => p.phase === 'verifying')).toBeGreaterThan(events.lastIndexOf(writes.at(-1)!));
    expect(events.at(-1)!.phase).toBe('done');
    const line = renderConvertProgress({ phase: 'writing-graphs', tensorsDone: 3, tensorsTotal: 12, bytesDone: 3 << 20, bytesTotal: 12 << 20, etaSeconds: 75 }, 8);
    expect(line).toBe('writing graphs [##......] 3.0 MiB/12.0 MiB, 3/12 tensors, ETA 1m15s');
  });

  it('skips verification with verify: false', async () => {
    const events: ConvertProgress[] = [];
    const m = await convertCheckpoint(ckpt, join(work, 'no-verify'), { preset: 'cpu', verify: false, onProgress: (p) => events.push(p) });
    expect(m.verification).toBeUndefined();
    expect(events.some((p) => p.phase === 'verifying')).toBe(false);
  });
});

describe('owlery convert / inspect', () => {
  it('converts with a preset and prints the quantization and agreement', async () => {
    const pkg = join(work, 'cli-cpu');
    const r = await owlery('convert', ckpt, pkg, '--preset', 'cpu');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/preset cpu\)/);
    expect(r.stdout).toMatch(/llm +int4 +MatMulNBits 4-bit, block 128, uint8 zero points, accuracy_level 4/);
    expect(r.stdout).toMatch(/vision +int8 +MatMulNBits 8-bit, block 32, symmetric/);
    expect(r.stdout).toMatch(/image embeddings cosine 0\.99\d+/);
    expect(r.stdout).toMatch(/next-token top-1 agreement [\d.]+% over 8 steps/);

    const i = await owlery('inspect', pkg);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/quantization \(preset cpu\):/);
    expect(i.stdout).toMatch(/decoder\.onnx +[\d.]+ MiB/);
    expect(i.stdout).toMatch(/agreement with float32 \(end-to-end\)/);
    const j = await owlery('inspect', pkg, '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ preset: 'cpu', quantization: { llm: 'int4', vision: 'int8' } });
  });

  it('takes --llm/--vision overrides and --no-verify', async () => {
    const pkg = join(work, 'cli-custom');
    const r = await owlery('convert', ckpt, pkg, '--llm', 'int8', '--vision', 'fp16', '--no-verify');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/preset custom/);
    expect(r.stdout).toMatch(/not verified/);
    const j = JSON.parse((await owlery('inspect', pkg, '--json')).stdout) as { quantization: unknown; verification?: unknown };
    expect(j.quantization).toEqual({ vision: 'fp16', llm: 'int8', embed: 'int8' });
    expect(j.verification).toBeUndefined();
  });

  it('rejects unknown presets and precisions as usage errors, and inspect of a non-package', async () => {
    const a = await owlery('convert', ckpt, join(work, 'x'), '--preset', 'tiny4');
    expect(a.code).toBe(2);
    expect(a.stderr).toMatch(/--preset must be one of cpu, gpu, gpu-int4, reference/);
    const b = await owlery('convert', ckpt, join(work, 'x'), '--vision', 'int4');
    expect(b.code).toBe(2);
    expect(b.stderr).toMatch(/--vision must be one of int8, fp16, fp32/);
    const c = await owlery('inspect', ckpt);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/manifest/);
  });
});
