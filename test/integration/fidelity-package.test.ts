/**
 * The converter and package reader around the fidelity fixture: checksums and the verified stamp,
 * damaged or edited packages, refusal to overwrite, cancellation, checkpoint validation, and
 * sharded input giving the same package bytes.
 */
import { cp, mkdir, mkdtemp, readFile, readdir, rm, stat, truncate, writeFile, copyFile, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint } from '../../models/checkpoint/index.ts';
import type { WritableTensor } from '../../models/checkpoint/write-common.ts';
import { writeSafetensorsCheckpoint } from '../../models/checkpoint/write-safetensors.ts';
import { convertCheckpoint, expectedCheckpointTensors } from '../../models/convert.ts';
import type { ConvertProgress } from '../../models/convert.ts';
import { parseNpy } from '../../models/npy.ts';
import { parseOwl2Config } from '../../models/owl2/config.ts';
import { MANIFEST_FILE, PACKAGE_FORMAT_VERSION, VERIFIED_STAMP_FILE, readPackage } from '../../models/package/index.ts';
import type { PackageManifest } from '../../models/package/index.ts';
import { VERIFY } from '../helpers/verify.ts';

const FIXTURE = join(import.meta.dirname, '../fixtures/owl2-public');
const CHECKPOINT = join(FIXTURE, 'checkpoint');
const SIDE_FILES = ['config.json', 'tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json', 'preprocessor_config.json'];

let work: string;
let pristine: string;
let manifest: PackageManifest;
let fixtureTensors: WritableTensor[];
let progress: ConvertProgress[] = [];
let copies = 0;

async function copyPackage(): Promise<string> {
  const dir = join(work, `copy-${copies++}`);
  await cp(pristine, dir, { recursive: true });
  return dir;
}

/** A checkpoint folder with the fixture's side files and the given tensors as safetensors. */
async function makeCheckpoint(name: string, tensors: WritableTensor[], opts: { shards?: number; config?: (c: Record<string, unknown>) => void } = {}): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  for (const f of SIDE_FILES) await copyFile(join(CHECKPOINT, f), join(dir, f));
  if (opts.config) {
    const cfg = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    opts.config(cfg);
    await writeFile(join(dir, 'config.json'), JSON.stringify(cfg));
  }
  await writeSafetensorsCheckpoint(dir, tensors, { shards: opts.shards });
  return dir;
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-package-'));
  pristine = join(work, 'pristine');
  progress = [];
  manifest = await convertCheckpoint(CHECKPOINT, pristine, { verify: VERIFY, onProgress: (p) => progress.push(p) });
  const r = await openCheckpoint(CHECKPOINT, { prefer: 'safetensors' });
  try {
    fixtureTensors = [];
    for (const [name, info] of r.tensors) fixtureTensors.push({ name, dtype: info.dtype, shape: info.shape, data: await r.readRaw(name) });
  } finally {
    await r.close();
  }
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('convertCheckpoint', () => {
  it('writes the package layout of the engine contract with a complete manifest', async () => {
    const names = (await readdir(pristine)).sort();
    expect(names).toEqual([
      'config.json', 'decoder.onnx', 'decoder.onnx.data', 'embed.onnx', 'embed.onnx.data', 'generation_config.json',
      'manifest.json', 'preprocessor_config.json', 'special_tokens_map.json', 'tokenizer.model', 'tokenizer_config.json',
      'vision.onnx', 'vision.onnx.data',
    ]);
    expect(manifest).toMatchObject({ format: 'owlery-model-package', formatVersion: PACKAGE_FORMAT_VERSION, family: 'mplug-owl2', name: 'mPLUG-Owl2 6M · full precision' }); // named after the model and the form
    expect(manifest.config).toEqual(parseOwl2Config(JSON.parse(await readFile(join(CHECKPOINT, 'config.json'), 'utf8'))));
    expect(JSON.parse(await readFile(join(pristine, MANIFEST_FILE), 'utf8'))).toEqual(manifest);
    for (const f of manifest.files) expect((await stat(join(pristine, f.path))).size).toBe(f.size);
    expect(manifest.graphs.decoder.inputs.map((i) => i.name)).toEqual([
      'inputs_embeds', 'modality', 'position_ids', 'past_key.0', 'past_value.0', 'past_key.1', 'past_value.1', 'past_key.2', 'past_value.2',
      'past_length',
    ]);
    expect(manifest.graphs.decoder.outputs.map((o) => o.name)).toContain('logits');
    expect(manifest.graphs.vision.outputs.map((o) => o.name).sort()).toEqual(['image_embeds', 'vision_hidden']);
    // Graph protobufs stay small: the weights are in the .data files.
    for (const g of ['vision', 'embed', 'decoder'] as const) {
      expect((await stat(join(pristine, manifest.graphs[g].file))).size).toBeLessThan(256 * 1024);
    }
  });

  it('reports progress up to every tensor written', () => {
    const writes = progress.filter((p) => p.phase === 'writing-graphs');
    expect(writes.length).toBe(writes[0].tensorsTotal);
    expect(writes.at(-1)).toMatchObject({ tensorsDone: writes[0].tensorsTotal });
    expect(writes.at(-1)!.bytesDone).toBe(writes.at(-1)!.bytesTotal);
    expect(progress.at(-1)!.phase).toBe('done');
  });

  it('refuses to overwrite a non-empty destination and leaves it alone', async () => {
    const dest = join(work, 'occupied');
    await mkdir(dest);
    await writeFile(join(dest, 'keep.txt'), 'mine');
    await expect(convertCheckpoint(CHECKPOINT, dest, { verify: VERIFY })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await readdir(dest)).toEqual(['keep.txt']);
  });

  it('converts into an existing empty folder', async () => {
    const dest = join(work, 'empty-dest');
    await mkdir(dest);
    await convertCheckpoint(CHECKPOINT, dest, { verify: VERIFY });
    await expect(readPackage(dest)).resolves.toMatchObject({ verified: true });
  });

  it('leaves nothing behind when cancelled', async () => {
    const parent = join(work, 'cancel');
    await mkdir(parent);
    const ctl = new AbortController();
    const run = convertCheckpoint(CHECKPOINT, join(parent, 'pkg'), { verify: VERIFY,
      signal: ctl.signal,
      onProgress: (p) => { if (p.tensorsDone >= 20) ctl.abort(); },
    });
    await expect(run).rejects.toMatchObject({ code: 'CANCELLED' });
    expect(await readdir(parent)).toEqual([]);
  });

  it('gives byte-identical graphs from a sharded checkpoint', async () => {
    const dir = await makeCheckpoint('sharded', fixtureTensors, { shards: 3 });
    const out = join(work, 'from-sharded');
    const m = await convertCheckpoint(dir, out, { verify: VERIFY });
    expect(m.source.files.map((f) => f.path)).toEqual(['config.json', 'model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    for (const g of ['vision', 'embed', 'decoder'] as const) {
      const a = m.files.find((f) => f.path === `${g}.onnx.data`)!;
      const b = manifest.files.find((f) => f.path === `${g}.onnx.data`)!;
      expect(a.sha256, g).toBe(b.sha256);
    }
  });

  it('computes the abstractor position tables when the checkpoint has no q/k_pos_embed buffers', async () => {
    const dir = await makeCheckpoint('no-pos', fixtureTensors.filter((t) => !/\.(q|k)_pos_embed$/.test(t.name)));
    await convertCheckpoint(dir, join(work, 'no-pos-out'), { verify: VERIFY });
    const pkg = await readPackage(join(work, 'no-pos-out'));
    const session = await ort.InferenceSession.create(pkg.graphPaths.vision);
    try {
      const fixture = JSON.parse(await readFile(join(FIXTURE, 'expected/manifest.json'), 'utf8')) as { vision: Record<string, Record<string, string>> };
      for (const [key, c] of Object.entries(fixture.vision)) {
        const pv = parseNpy(new Uint8Array(await readFile(join(FIXTURE, c.pixel_values))));
        const out = await session.run({ pixel_values: new ort.Tensor('float32', pv.data as Float32Array, pv.shape) });
        const want = parseNpy(new Uint8Array(await readFile(join(FIXTURE, c.encode_images)))).data as Float32Array;
        const got = out.image_embeds.data as Float32Array;
        let diff = 0;
        for (let i = 0; i < want.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
        expect(diff, key).toBeLessThanOrEqual(3e-4);
      }
    } finally {
      await session.release();
    }
  });

  it('names a tensor with the wrong shape, with both shapes', async () => {
    const key = 'model.layers.1.self_attn.k_proj.multiway.1.weight';
    const tensors = fixtureTensors.map((t) => (t.name === key ? { ...t, shape: [48, 192] } : t));
    const dir = await makeCheckpoint('bad-shape', tensors);
    await expect(convertCheckpoint(dir, join(work, 'bad-shape-out'), { verify: VERIFY })).rejects.toMatchObject({
      code: 'CHECKPOINT_INVALID',
      message: expect.stringMatching(new RegExp(`${key.replaceAll('.', '\\.')}.*\\[48, 192\\].*\\[96, 96\\]`)),
    });
    await expect(stat(join(work, 'bad-shape-out'))).rejects.toThrow();
  });

  it('names a missing tensor', async () => {
    const key = 'model.visual_abstractor.encoder.layers.1.crossattention.normk.bias';
    const dir = await makeCheckpoint('missing', fixtureTensors.filter((t) => t.name !== key));
    await expect(convertCheckpoint(dir, join(work, 'missing-out'), { verify: VERIFY })).rejects.toMatchObject({
      code: 'CHECKPOINT_INVALID', message: expect.stringContaining(key),
    });
  });

  it('names an unexpected tensor', async () => {
    const extra: WritableTensor = { name: 'model.layers.0.self_attn.mystery.weight', dtype: 'F32', shape: [2], data: new Uint8Array(8) };
    const dir = await makeCheckpoint('extra', [...fixtureTensors, extra]);
    await expect(convertCheckpoint(dir, join(work, 'extra-out'), { verify: VERIFY })).rejects.toMatchObject({
      code: 'CHECKPOINT_INVALID', message: expect.stringContaining(extra.name),
    });
  });

  it('refuses other models by their config', async () => {
    const dir = await makeCheckpoint('qwen', fixtureTensors, { config: (c) => { c.architectures = ['MPLUGOwl2QWenForCausalLM']; } });
    await expect(convertCheckpoint(dir, join(work, 'qwen-out'), { verify: VERIFY })).rejects.toMatchObject({ code: 'CHECKPOINT_UNSUPPORTED' });
  });

  it('knows every tensor of the fixture checkpoint, and requires all its parameters', () => {
    const cfg = manifest.config;
    const { required, optional } = expectedCheckpointTensors(cfg);
    const names = new Set(fixtureTensors.map((t) => t.name));
    for (const k of required.keys()) expect(names.has(k), k).toBe(true);
    for (const t of fixtureTensors) expect(required.has(t.name) || optional.has(t.name), t.name).toBe(true);
    expect(required.size).toBe(140 - 7); // 7 buffers: 3 inv_freq, 2 × (q_pos_embed, k_pos_embed)
  });
});

describe('readPackage', () => {
  it('verifies checksums once, then trusts the stamp while sizes and mtimes hold', async () => {
    const dir = await copyPackage();
    let hashed = 0;
    const first = await readPackage(dir, { onBytes: (n) => { hashed += n; } });
    expect(first.verified).toBe(true);
    expect(hashed).toBe(manifest.files.reduce((s, f) => s + f.size, 0));
    expect((await readdir(dir))).toContain(VERIFIED_STAMP_FILE);
    hashed = 0;
    await readPackage(dir, { onBytes: (n) => { hashed += n; } });
    expect(hashed).toBe(0);
    await readPackage(dir, { force: true, onBytes: (n) => { hashed += n; } });
    expect(hashed).toBeGreaterThan(0);
  });

  it('rejects a truncated .onnx.data, naming the file, even without verification', async () => {
    const dir = await copyPackage();
    const entry = manifest.files.find((f) => f.path === 'decoder.onnx.data')!;
    await truncate(join(dir, 'decoder.onnx.data'), entry.size - 4096);
    for (const verify of [true, false]) {
      await expect(readPackage(dir, { verify })).rejects.toMatchObject({
        code: 'PACKAGE_INVALID', message: expect.stringContaining('decoder.onnx.data'),
      });
    }
  });

  it('rejects a same-size corruption after the stamp was written, naming the file', async () => {
    const dir = await copyPackage();
    await readPackage(dir);
    const fh = await open(join(dir, 'vision.onnx.data'), 'r+');
    try {
      const b = Buffer.alloc(1);
      await fh.read(b, 0, 1, 5000);
      b[0] ^= 0xff;
      await fh.write(b, 0, 1, 5000);
      const later = new Date(Date.now() + 5000);
      await fh.utimes(later, later);
    } finally {
      await fh.close();
    }
    await expect(readPackage(dir)).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringContaining('vision.onnx.data') });
  });

  it('rejects an edited manifest checksum, naming the file it describes', async () => {
    const dir = await copyPackage();
    await readPackage(dir); // stamp written for the genuine checksums
    const m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as PackageManifest;
    m.files.find((f) => f.path === 'embed.onnx.data')!.sha256 = '0'.repeat(64);
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
    await expect(readPackage(dir)).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringContaining('embed.onnx.data') });
  });

  it('rejects an edited manifest config, naming manifest.json', async () => {
    const dir = await copyPackage();
    const m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as PackageManifest;
    m.config.llm.numLayers = 2;
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
    await expect(readPackage(dir)).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringContaining(MANIFEST_FILE) });
  });

  it('rejects unknown format versions, paths outside the folder and missing files', async () => {
    const edit = async (f: (m: Record<string, unknown>) => void): Promise<string> => {
      const dir = await copyPackage();
      const m = JSON.parse(await readFile(join(dir, MANIFEST_FILE), 'utf8')) as Record<string, unknown>;
      f(m);
      await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(m));
      return dir;
    };
    // A package written by an older Owlery (another decoder contract) is refused with what to do.
    await expect(readPackage(await edit((m) => { m.formatVersion = PACKAGE_FORMAT_VERSION - 1; }))).rejects.toMatchObject({
      code: 'PACKAGE_INVALID', message: expect.stringMatching(/manifest\.json.*formatVersion.*convert the checkpoint again/),
    });
    await expect(readPackage(await edit((m) => { (m.files as { path: string }[])[0].path = '../escape'; }))).rejects.toMatchObject({
      code: 'PACKAGE_INVALID', message: expect.stringContaining('../escape'),
    });
    const dir = await copyPackage();
    await rm(join(dir, 'tokenizer.model'));
    await expect(readPackage(dir)).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringContaining('tokenizer.model') });
    await rm(join(dir, MANIFEST_FILE));
    await expect(readPackage(dir)).rejects.toMatchObject({ code: 'PACKAGE_INVALID', message: expect.stringContaining(MANIFEST_FILE) });
  });
});
