import { mkdir, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OwleryError } from '../../../src-shared/errors.ts';
import { float32ToRaw } from '../../../models/checkpoint/dtype.ts';
import { openCheckpoint, readConfig } from '../../../models/checkpoint/index.ts';
import { writePytorchCheckpoint } from '../../../models/checkpoint/write-pytorch.ts';
import { writeSafetensorsCheckpoint } from '../../../models/checkpoint/write-safetensors.ts';
import type { WritableTensor } from '../../../models/checkpoint/write-safetensors.ts';

const FIXTURE_CONFIG = fileURLToPath(new URL('../../fixtures/owl2-public/checkpoint/config.json', import.meta.url));

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'owlery-shard-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function freshDir(): Promise<string> {
  const d = join(root, `c${n++}`);
  await mkdir(d);
  return d;
}

async function expectOwleryError(p: Promise<unknown>, code: string, ...parts: string[]): Promise<OwleryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err, `expected ${code}`).toBeInstanceOf(OwleryError);
  const e = err as OwleryError;
  expect(e.code, e.message).toBe(code);
  for (const part of parts) expect(e.message).toContain(part);
  return e;
}

const tensors: WritableTensor[] = Array.from({ length: 7 }, (_, i) => {
  const v = Float32Array.from({ length: 40 * (i + 1) }, (_, j) => Math.cos(j + i));
  return { name: `model.layers.${i}.w`, dtype: 'F32', shape: [i + 1, 40], data: float32ToRaw(v, 'F32') };
});

describe('sharded checkpoints', () => {
  for (const format of ['safetensors', 'pytorch'] as const) {
    it(`${format}: 3 shards with an index read back as one checkpoint`, async () => {
      const dir = await freshDir();
      const files = format === 'safetensors' ? await writeSafetensorsCheckpoint(dir, tensors, { shards: 3 }) : await writePytorchCheckpoint(dir, tensors, { shards: 3 });
      const stem = format === 'safetensors' ? 'model' : 'pytorch_model';
      const ext = format === 'safetensors' ? 'safetensors' : 'bin';
      expect(files).toEqual([`${stem}.${ext}.index.json`, ...[1, 2, 3].map((i) => `${stem}-0000${i}-of-00003.${ext}`)]);
      const index = JSON.parse(await readFile(join(dir, files[0]), 'utf8')) as { metadata: { total_size: number }; weight_map: Record<string, string> };
      expect(index.metadata.total_size).toBe(tensors.reduce((a, t) => a + t.data.length, 0));
      expect(new Set(Object.values(index.weight_map)).size).toBe(3);
      const r = await openCheckpoint(dir);
      try {
        expect(r.format).toBe(format);
        expect(r.files).toEqual(files);
        expect([...r.tensors.keys()].sort()).toEqual(tensors.map((t) => t.name).sort());
        for (const t of tensors) {
          expect(r.tensors.get(t.name)!.file).toBe(index.weight_map[t.name]);
          expect(Buffer.compare(Buffer.from(await r.readRaw(t.name)), Buffer.from(t.data))).toBe(0);
        }
      } finally {
        await r.close();
      }
    });

    it(`${format}: a missing shard names the shard and the index`, async () => {
      const dir = await freshDir();
      const files = format === 'safetensors' ? await writeSafetensorsCheckpoint(dir, tensors, { shards: 2 }) : await writePytorchCheckpoint(dir, tensors, { shards: 2 });
      await unlink(join(dir, files[2]));
      await expectOwleryError(openCheckpoint(dir), 'FILE_NOT_FOUND', files[2], files[0]);
    });

    it(`${format}: a tensor listed in the index but missing from its shard names both`, async () => {
      const dir = await freshDir();
      const files = format === 'safetensors' ? await writeSafetensorsCheckpoint(dir, tensors, { shards: 2 }) : await writePytorchCheckpoint(dir, tensors, { shards: 2 });
      const indexPath = join(dir, files[0]);
      const index = JSON.parse(await readFile(indexPath, 'utf8')) as { weight_map: Record<string, string> };
      index.weight_map['model.ghost.weight'] = files[1];
      await writeFile(indexPath, JSON.stringify(index));
      await expectOwleryError(openCheckpoint(dir), 'CHECKPOINT_INVALID', '"model.ghost.weight"', files[1], files[0]);
    });

    it(`${format}: a shard cut in half`, async () => {
      const dir = await freshDir();
      const files = format === 'safetensors' ? await writeSafetensorsCheckpoint(dir, tensors, { shards: 2 }) : await writePytorchCheckpoint(dir, tensors, { shards: 2 });
      const shard = join(dir, files[2]);
      await truncate(shard, Math.floor((await readFile(shard)).length / 2));
      await expectOwleryError(openCheckpoint(dir), 'CHECKPOINT_INVALID', shard, 'truncated');
    });
  }

  it('an index pointing outside the folder is refused', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../../etc/passwd' } }));
    await expectOwleryError(openCheckpoint(dir), 'CHECKPOINT_UNSAFE', '../../etc/passwd');
  });

  it('an index that is not JSON or has no weight_map', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'pytorch_model.bin.index.json'), '{ nope');
    await expectOwleryError(openCheckpoint(dir), 'CHECKPOINT_INVALID', 'pytorch_model.bin.index.json', 'not valid JSON');
    await writeFile(join(dir, 'pytorch_model.bin.index.json'), '{"metadata": {}}');
    await expectOwleryError(openCheckpoint(dir), 'CHECKPOINT_INVALID', 'weight_map');
  });
});

describe('format selection', () => {
  it('prefers safetensors when both exist, unless told otherwise', async () => {
    const dir = await freshDir();
    await writeSafetensorsCheckpoint(dir, tensors);
    await writePytorchCheckpoint(dir, tensors, { shards: 2 });
    const a = await openCheckpoint(dir);
    expect(a.format).toBe('safetensors');
    expect(a.files).toEqual(['model.safetensors']);
    await a.close();
    const b = await openCheckpoint(dir, { prefer: 'pytorch' });
    expect(b.format).toBe('pytorch');
    expect(b.files[0]).toBe('pytorch_model.bin.index.json');
    await b.close();
    await unlink(join(dir, 'model.safetensors'));
    const c = await openCheckpoint(dir, { prefer: 'safetensors' });
    expect(c.format).toBe('pytorch');
    await c.close();
  });

  it('an empty folder, a missing folder, and an unknown tensor name', async () => {
    const dir = await freshDir();
    await expectOwleryError(openCheckpoint(dir), 'FILE_NOT_FOUND', 'model.safetensors', 'pytorch_model.bin');
    await expectOwleryError(openCheckpoint(join(dir, 'absent')), 'FILE_NOT_FOUND', 'absent');
    await writeSafetensorsCheckpoint(dir, tensors);
    const r = await openCheckpoint(dir);
    await expectOwleryError(r.readFloat32('nope'), 'CHECKPOINT_INVALID', '"nope"');
    await r.close();
  });
});

describe('readConfig', () => {
  async function withConfig(patch: (c: Record<string, unknown>) => void): Promise<string> {
    const dir = await freshDir();
    const c = JSON.parse(await readFile(FIXTURE_CONFIG, 'utf8')) as Record<string, unknown>;
    patch(c);
    await writeFile(join(dir, 'config.json'), JSON.stringify(c));
    return dir;
  }

  it('mPLUG-Owl v1 and the Qwen-based mPLUG-Owl2.1 are "not supported yet"', async () => {
    const v1 = await withConfig((c) => {
      c.model_type = 'mplug-owl';
      c.architectures = ['MplugOwlForConditionalGeneration'];
    });
    await expectOwleryError(readConfig(v1), 'CHECKPOINT_UNSUPPORTED', 'mPLUG-Owl (version 1)', 'not supported yet', 'config.json');
    const q = await withConfig((c) => {
      c.architectures = ['MPLUGOwl2QWenForCausalLM'];
      c.model_type = 'mplug_owl2_1';
    });
    await expectOwleryError(readConfig(q), 'CHECKPOINT_UNSUPPORTED', 'Qwen', 'not supported yet');
  });

  it('a missing or broken config.json', async () => {
    const dir = await freshDir();
    await expectOwleryError(readConfig(dir), 'FILE_NOT_FOUND', 'config.json');
    await writeFile(join(dir, 'config.json'), '[1,');
    await expectOwleryError(readConfig(dir), 'CHECKPOINT_INVALID', 'not valid JSON');
  });
});
