/**
 * Hardening round two, the converter's side (issue 12, defects 1–3 and 6):
 *
 * - compressed storage bombs in a PyTorch `.bin`: tensors that all view one gigabyte-sized deflated
 *   storage, storages declaring gigabytes from a few megabytes, entries that inflate past (or
 *   short of) their declared size. Each is refused with a typed error, without inflating what it
 *   declares; a shared storage within the limits converts, inflated once;
 * - config.json with sizes no real LLaMA/ViT checkpoint has, or that do not match the weights:
 *   refused before any work, naming config.json and the field;
 * - a tokenizer.model that is garbage, empty, truncated, of another vocabulary size, or whose
 *   special tokens are not where config.json says: refused before anything is written;
 * - a conversion killed by SIGKILL or SIGTERM: its staging folder is gone after the next
 *   conversion (SIGTERM: at once).
 *
 * The hostile files are built here from seeds (helpers/checkpoints.ts) and stay small on disk.
 * No wall-clock assertions: the bounds are shown by what is refused and by memory; the timings
 * are in bench/hostile-convert-bench.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { convertCheckpoint } from '../../models/convert.ts';
import { PytorchFile } from '../../models/checkpoint/pytorch.ts';
import { writePytorchCheckpoint } from '../../models/checkpoint/write-pytorch.ts';
import type { WritableTensor } from '../../models/checkpoint/write-pytorch.ts';
import { removeDir, tempDir } from '../helpers/chat-env.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { withFirstPieces } from '../helpers/tokenizer-model.ts';
import {
  checkpointFolder, deflatedRepeat, seededBytes, seededFloats, tinyTensors, writeCraftedBin,
} from './helpers/checkpoints.ts';
import type { CraftedStorage, CraftedView } from './helpers/checkpoints.ts';
import { errorOf } from './helpers/errors.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('checkpoint-bounds');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const BIN = resolve('bin/owlery.js');

let work: string;
/** The tiny checkpoint (safetensors): its side files and weights. */
let tiny: string;

beforeAll(async () => {
  work = await tempDir('owlery-bounds-');
  tiny = await ensureTinyCheckpoint({ seed: 1 });
});

afterAll(async () => {
  figures.write();
  await removeDir(work);
});

/** Entries of `dir` that a conversion into it left behind (staging folders, the destination). */
function leftovers(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => n.includes('.partial-') || n === 'pkg') : [];
}

/** Converts `ckpt` into `<ckpt>-out/pkg`; expects a refusal with `code` and every one of `parts`, and nothing left. */
async function expectRefusedConversion(name: string, ckpt: string, code: string, parts: string[], opts: { prefer?: 'pytorch' } = {}): Promise<OwleryError> {
  const outDir = `${ckpt}-out`;
  const err = await errorOf(convertCheckpoint(ckpt, join(outDir, 'pkg'), { verify: false, ...opts }));
  expect(err, name).toBeInstanceOf(OwleryError);
  const e = err as OwleryError;
  expect(e.code, `${name}: ${e.message}`).toBe(code);
  for (const p of parts) expect(e.message, name).toContain(p);
  expect(leftovers(outDir), `${name}: nothing left on disk`).toEqual([]);
  return e;
}

describe('compressed storage bombs in a PyTorch .bin', () => {
  const CATEGORY = 'checkpoint bombs: deflated storages (.bin)';
  let tried = 0;
  let refused = 0;
  let accepted = 0;
  const notes: Record<string, unknown> = {};

  afterAll(() => {
    figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: refused, badInputsAccepted: accepted });
    for (const [k, v] of Object.entries(notes)) figures.note(CATEGORY, k, v);
  });

  /** Every tiny tensor as a view of storage `key` (F32, `numel` elements), at offsets from `offsetOf`. */
  function viewsOf(key: string, numel: number, offsetOf: (i: number, n: number) => number = () => 0): CraftedView[] {
    return tinyTensors().map((t, i) => ({ name: t.name, shape: t.shape, storageKey: key, storageNumel: numel, storageOffset: offsetOf(i, t.numel) }));
  }

  it('every tensor a view of one 1 GiB deflated storage (a 1 MB file): refused at once for its compression ratio, memory bounded', async () => {
    const ckpt = await checkpointFolder(join(work, 'shared-gib'), tiny);
    const storage: CraftedStorage = { key: '0', numel: GiB / 4, entry: { deflated: deflatedRepeat(GiB) } };
    await writeCraftedBin(join(ckpt, 'pytorch_model.bin'), viewsOf('0', GiB / 4), [storage]);
    const fileBytes = statSync(join(ckpt, 'pytorch_model.bin')).size;
    expect(fileBytes).toBeLessThan(2 * MiB);
    const rss = process.memoryUsage().rss;
    tried++;
    await expectRefusedConversion('1 GiB shared storage', ckpt, 'CHECKPOINT_UNSAFE', ['pytorch_model.bin', 'compression ratio']);
    refused++;
    expect(process.memoryUsage().rss - rss).toBeLessThan(256 * MiB);
    notes.sharedGiB = { fileBytes, declared: GiB };
  });

  it('each tensor with its own storage declaring ~40 MB of zeros (~4 GB in all, a 4 MB file): refused at once', async () => {
    const ckpt = await checkpointFolder(join(work, 'declared-4gb'), tiny);
    const tensors = tinyTensors();
    const per = Math.floor((4 * 1e9) / tensors.length / 4 / MiB) * MiB; // elements, a whole number of MiB / 4
    const zeros = deflatedRepeat(per * 4);
    const storages: CraftedStorage[] = tensors.map((_, i) => ({ key: String(i), numel: per, entry: { deflated: zeros } }));
    const views: CraftedView[] = tensors.map((t, i) => ({ name: t.name, shape: t.shape, storageKey: String(i), storageNumel: per, storageOffset: 0 }));
    await writeCraftedBin(join(ckpt, 'pytorch_model.bin'), views, storages);
    const fileBytes = statSync(join(ckpt, 'pytorch_model.bin')).size;
    expect(fileBytes).toBeLessThan(8 * MiB);
    tried++;
    await expectRefusedConversion('~4 GB declared', ckpt, 'CHECKPOINT_UNSAFE', ['pytorch_model.bin', 'compression ratio']);
    refused++;
    notes.declared4GB = { fileBytes, declared: per * 4 * tensors.length };
  });

  it('storages that inflate past, or short of, their declared size: refused naming the entry', async () => {
    // Declared 9 MiB, holds 12 MiB of seeded floats (a ratio the cap allows); the last tensor ends at
    // the declared end, so the whole entry is inflated, and must end there.
    const floats = seededFloats(11, MiB);
    const ckpt = await checkpointFolder(join(work, 'past-declared'), tiny);
    const declared = (9 * MiB) / 4;
    const storage: CraftedStorage = { key: '0', numel: declared, entry: { deflated: { ...deflatedRepeat(12 * MiB, floats), size: 9 * MiB } } };
    const views = viewsOf('0', declared);
    views[views.length - 1].storageOffset = declared - tinyTensors()[views.length - 1].numel;
    await writeCraftedBin(join(ckpt, 'pytorch_model.bin'), views, [storage]);
    tried++;
    await expectRefusedConversion('inflates past its declared size', ckpt, 'CHECKPOINT_INVALID', ['pytorch_model.bin', 'data/0', 'past its declared']);
    refused++;

    // Declared 16 MiB, holds 4 MiB: a tensor beyond 4 MiB cannot be read.
    const short = deflatedRepeat(4 * MiB, floats);
    const ckpt2 = await checkpointFolder(join(work, 'short-of-declared'), tiny);
    const storage2: CraftedStorage = { key: '0', numel: (16 * MiB) / 4, entry: { deflated: { ...short, size: 16 * MiB } } };
    await writeCraftedBin(join(ckpt2, 'pytorch_model.bin'), viewsOf('0', (16 * MiB) / 4, () => (6 * MiB) / 4), [storage2]);
    tried++;
    await expectRefusedConversion('inflates short of its declared size', ckpt2, 'CHECKPOINT_INVALID', ['pytorch_model.bin', 'data/0', 'inflates to only']);
    refused++;
  });

  it('a shared storage within the limits converts, and is inflated once, only as far as its tensors reach', async () => {
    const tensors = tinyTensors();
    const largest = Math.max(...tensors.map((t) => t.numel));
    // 16 MiB storage (F32), each tensor at a seeded offset in its first 12 MiB: the rest is never needed.
    const numel = (16 * MiB) / 4;
    const reach = (12 * MiB) / 4;
    let seed = 7;
    const offsetOf = (_i: number, n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % Math.max(1, reach - n);
    };
    const views = viewsOf('0', numel, offsetOf);
    const span = Math.max(...views.map((v, i) => v.storageOffset + tensors[i].numel)) * 4;
    const ckpt = await checkpointFolder(join(work, 'shared-ok'), tiny);
    const storage: CraftedStorage = { key: '0', numel, entry: { deflated: deflatedRepeat(numel * 4, seededFloats(5, MiB)) } };
    await writeCraftedBin(join(ckpt, 'pytorch_model.bin'), views, [storage]);

    const f = await PytorchFile.open(join(ckpt, 'pytorch_model.bin'));
    try {
      const first = Buffer.from(await f.readRaw(views[0].name));
      for (const v of views) await f.readRaw(v.name);
      for (const v of views) await f.readRaw(v.name); // a second pass (verification re-reads)
      expect(Buffer.from(await f.readRaw(views[0].name)).equals(first)).toBe(true);
      expect(f.inflateStats).toEqual({ runs: 1, bytes: span });
      expect(span).toBeLessThanOrEqual(12 * MiB);
      expect(span).toBeGreaterThan(largest * 4);
    } finally {
      await f.close();
    }
    // Cancelled (Ctrl-C) while a storage inflates: it stops between pieces.
    const stop = new AbortController();
    const g = await PytorchFile.open(join(ckpt, 'pytorch_model.bin'), undefined, stop.signal);
    try {
      stop.abort();
      expect(await errorOf(g.readRaw(views[0].name))).toMatchObject({ code: 'CANCELLED' });
    } finally {
      await g.close();
    }
    tried++;
    const manifest = await convertCheckpoint(ckpt, join(work, 'shared-ok-out', 'pkg'), { verify: false });
    expect(manifest.source.format).toBe('pytorch');
    accepted++;
    notes.sharedWithinLimits = { declared: numel * 4, inflatedOnce: span };
  });

  it('a legitimate .bin with deflated entries converts to the same package as its STORED twin', async () => {
    const stored = await ensureTinyCheckpoint({ seed: 3, format: 'pytorch' });
    const deflated = await checkpointFolder(join(work, 'deflated-legit'), stored);
    // The same tensors, every storage deflated (the writer's own option).
    const src = await PytorchFile.open(join(stored, 'pytorch_model.bin'));
    try {
      const tensors: WritableTensor[] = [];
      for (const [name, info] of src.tensors) tensors.push({ name, dtype: info.dtype, shape: info.shape, data: await src.readRaw(name) });
      await writePytorchCheckpoint(deflated, tensors, { deflate: true });
    } finally {
      await src.close();
    }
    const a = await convertCheckpoint(stored, join(work, 'legit-stored', 'pkg'), { verify: false });
    const b = await convertCheckpoint(deflated, join(work, 'legit-deflated', 'pkg'), { verify: false });
    const graphs = (m: typeof a) => m.files.filter((x) => x.path.endsWith('.onnx.data')).map((x) => x.sha256);
    expect(graphs(b)).toEqual(graphs(a));
  });
});

describe('config.json sizes no real checkpoint has', () => {
  const CATEGORY = 'absurd config.json';
  let tried = 0;
  let refused = 0;
  afterAll(() => figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: refused }));

  const cases: [string, (raw: Record<string, unknown>) => void, string[]][] = [
    ['num_hidden_layers: 1,000,000', (r) => { r.num_hidden_layers = 1_000_000; }, ['num_hidden_layers', '1000000']],
    ['hidden_size: 10,000,000', (r) => { r.hidden_size = 10_000_000; }, ['hidden_size']],
    ['intermediate_size: 2^40', (r) => { r.intermediate_size = 2 ** 40; }, ['intermediate_size']],
    ['vocab_size: 2,000,000', (r) => { r.vocab_size = 2_000_000; }, ['vocab_size']],
    ['num_attention_heads: 100,000', (r) => { r.num_attention_heads = 100_000; r.num_key_value_heads = 100_000; r.hidden_size = 6_400_000; }, ['hidden_size']],
    ['max_position_embeddings: 10^9', (r) => { r.max_position_embeddings = 1e9; }, ['max_position_embeddings']],
    ['visual_model.image_size: 100,352', (r) => { vm(r).image_size = 100_352; va(r).grid_size = 7168; }, ['image_size']],
    ['visual_model.num_hidden_layers: 10,000', (r) => { vm(r).num_hidden_layers = 10_000; }, ['visual_model.num_hidden_layers']],
    ['visual_abstractor.num_learnable_queries: 100,000', (r) => { va(r).num_learnable_queries = 100_000; }, ['num_learnable_queries']],
    ['visual_abstractor.intermediate_size: 10^8', (r) => { va(r).intermediate_size = 1e8; }, ['visual_abstractor.intermediate_size']],
    // Within the ranges, but not the model these weights are: refused before any tensor is read.
    ['num_hidden_layers: 200 for 2-layer weights', (r) => { r.num_hidden_layers = 200; }, ['parameters', 'num_hidden_layers']],
    ['hidden_size: 4096 for hidden-64 weights', (r) => { r.hidden_size = 4096; }, ['parameters']],
  ];

  function vm(r: Record<string, unknown>): Record<string, unknown> {
    return (r.visual_config as Record<string, Record<string, unknown>>).visual_model;
  }
  function va(r: Record<string, unknown>): Record<string, unknown> {
    return (r.visual_config as Record<string, Record<string, unknown>>).visual_abstractor;
  }

  it.each(cases)('%s: refused naming config.json and the field, nothing written', async (name, patch, parts) => {
    const ckpt = await checkpointFolder(join(work, `cfg-${name.replace(/\W+/g, '-')}`), tiny, { patchConfig: patch, keepWeights: true });
    const rss = process.memoryUsage().rss;
    tried++;
    await expectRefusedConversion(name, ckpt, 'CHECKPOINT_INVALID', ['config.json', ...parts]);
    refused++;
    expect(process.memoryUsage().rss - rss, 'no model-sized allocation').toBeLessThan(200 * MiB);
  });
});

describe('tokenizer.model that is not the model\'s tokenizer', () => {
  const CATEGORY = 'garbage tokenizer.model';
  let tried = 0;
  let refused = 0;
  afterAll(() => figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: refused }));

  let real: Uint8Array;
  beforeAll(async () => {
    real = new Uint8Array(await readFile(join(tiny, 'tokenizer.model')));
  });

  const cases: [string, () => { files?: Record<string, Uint8Array>; patch?: (r: Record<string, unknown>) => void }, string[]][] = [
    ['64 kB of seeded random bytes', () => ({ files: { 'tokenizer.model': seededBytes(12, 64 * 1024) } }), ['not a valid SentencePiece model']],
    ['an empty file', () => ({ files: { 'tokenizer.model': new Uint8Array(0) } }), ['not a valid SentencePiece model']],
    ['the real tokenizer cut in half', () => ({ files: { 'tokenizer.model': real.subarray(0, real.length >> 1) } }), ['not a valid SentencePiece model']],
    ['a JSON file', () => ({ files: { 'tokenizer.model': new TextEncoder().encode('{"model": {"type": "BPE"}}') } }), ['not a valid SentencePiece model']],
    ['31,999 pieces for vocab_size 32,000', () => ({ files: { 'tokenizer.model': withFirstPieces(real, 31_999) } }), ['31999', '32000']],
    ['bos_token_id 3 in config.json (a byte piece there)', () => ({ patch: (r) => { r.bos_token_id = 3; } }), ['bos_token_id', '3']],
    ['eos_token_id 0 in config.json (the unknown piece there)', () => ({ patch: (r) => { r.eos_token_id = 0; } }), ['eos_token_id']],
  ];

  it.each(cases)('%s: refused naming tokenizer.model, nothing written', async (name, make, parts) => {
    const { files, patch } = make();
    const ckpt = await checkpointFolder(join(work, `tok-${name.replace(/\W+/g, '-')}`), tiny, { files, patchConfig: patch, keepWeights: true });
    tried++;
    const e = await expectRefusedConversion(name, ckpt, 'TOKENIZER_INVALID', ['tokenizer.model', ...parts]);
    expect(e.message).toContain(ckpt);
    refused++;
  });
});

describe('a conversion killed half-way', () => {
  const CATEGORY = 'killed conversions (owlery convert)';
  let injected = 0;
  let survived = 0;
  afterAll(() => figures.add(CATEGORY, { faultsInjected: injected, faultsSurvived: survived }));

  /** Starts `owlery convert ckpt dst`, kills it with `signal` once its staging folder exists; resolves when it has exited. */
  async function killMidway(ckpt: string, dst: string, signal: NodeJS.Signals): Promise<{ stagingSeen: string[] }> {
    const parent = join(dst, '..');
    const child = spawn(process.execPath, [BIN, 'convert', ckpt, dst], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<void>((res) => child.on('exit', () => res()));
    let seen: string[] = [];
    for (let i = 0; i < 3000 && seen.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      seen = existsSync(parent) ? readdirSync(parent).filter((n) => n.startsWith(`.${'pkg'}.partial-`)) : [];
      // Let it write something into the staging folder first.
      if (seen.length > 0 && readdirSync(join(parent, seen[0])).length === 0) seen = [];
    }
    expect(seen, `the conversion started (stderr: ${stderr})`).not.toEqual([]);
    child.kill(signal);
    await exited;
    return { stagingSeen: seen };
  }

  it('SIGKILL leaves .pkg.partial-PID-*; the next conversion in that folder removes it, and one of a live process is kept', async () => {
    const parent = join(work, 'killed');
    const { stagingSeen } = await killMidway(tiny, join(parent, 'pkg'), 'SIGKILL');
    injected++;
    expect(readdirSync(parent)).toEqual(expect.arrayContaining(stagingSeen)); // what SIGKILL leaves
    // A live process's staging folder (ours) must survive another conversion's clean-up.
    const live = join(parent, `.other.partial-${process.pid}-deadbeef`);
    await mkdir(live);
    await convertCheckpoint(tiny, join(parent, 'second'), { verify: false });
    const after = readdirSync(parent);
    for (const s of stagingSeen) expect(after).not.toContain(s);
    expect(after).toContain(`.other.partial-${process.pid}-deadbeef`);
    expect(after).toContain('second');
    survived++;
  });

  it('SIGTERM: the command cleans up before it exits', async () => {
    const parent = join(work, 'terminated');
    await killMidway(tiny, join(parent, 'pkg'), 'SIGTERM');
    injected++;
    expect(readdirSync(parent).filter((n) => n.includes('.partial-'))).toEqual([]);
    expect(existsSync(join(parent, 'pkg'))).toBe(false);
    survived++;
  });
});
