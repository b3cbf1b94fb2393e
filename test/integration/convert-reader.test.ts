/**
 * `convertFromReader`: converting from an already-open reader with in-memory side files gives the
 * same graphs as `convertCheckpoint` on the folder; provenance entries and missing side files.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, readConfig } from '../../models/checkpoint/index.ts';
import { convertCheckpoint, convertFromReader } from '../../models/convert.ts';
import { readPackage } from '../../models/package/index.ts';
import type { PackageManifest } from '../../models/package/index.ts';
import { ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { VERIFY } from '../helpers/verify.ts';

let work: string;
let ckpt: string;
let fromDir: PackageManifest;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-convert-reader-'));
  ckpt = await ensureTinyCheckpoint({ seed: 11 });
  fromDir = await convertCheckpoint(ckpt, join(work, 'from-dir'), { verify: VERIFY });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

const sha = (m: PackageManifest, path: string): string | undefined => m.files.find((f) => f.path === path)?.sha256;

describe('convertFromReader', () => {
  it('matches convertCheckpoint when given the reader and the side files in memory', async () => {
    const { config, raw } = await readConfig(ckpt);
    const reader = await openCheckpoint(ckpt);
    const files: Record<string, Uint8Array> = {};
    for (const n of ['tokenizer.model', 'tokenizer_config.json', 'special_tokens_map.json']) files[n] = await readFile(join(ckpt, n));
    let m: PackageManifest;
    try {
      m = await convertFromReader(reader, config, raw, { files }, join(work, 'from-reader'), { verify: VERIFY,
        sourceFiles: [{ path: 'synthetic-seed-11', size: 0, sha256: '0'.repeat(64) }],
        defaultName: 'synthetic',
      });
      // The caller still owns the reader: it must remain usable.
      expect((await reader.readFloat32('model.norm.weight')).length).toBe(config.llm.hiddenSize);
    } finally {
      await reader.close();
    }
    for (const g of ['vision.onnx', 'vision.onnx.data', 'embed.onnx', 'embed.onnx.data', 'decoder.onnx', 'decoder.onnx.data', 'tokenizer.model']) {
      expect(sha(m, g), g).toBe(sha(fromDir, g));
    }
    expect(m.name).toBe('synthetic');
    expect(m.source.files).toEqual([{ path: 'synthetic-seed-11', size: 0, sha256: '0'.repeat(64) }]);
    expect(m.id).not.toBe(fromDir.id);
    // config.json was written from the raw config.
    const written = JSON.parse(await readFile(join(work, 'from-reader', 'config.json'), 'utf8')) as unknown;
    expect(written).toEqual(raw);
    await expect(readPackage(join(work, 'from-reader'))).resolves.toBeTruthy();
  });

  it('refuses when a required side file is missing', async () => {
    const { config, raw } = await readConfig(ckpt);
    const reader = await openCheckpoint(ckpt);
    try {
      await expect(convertFromReader(reader, config, raw, {}, join(work, 'no-tokenizer'), { verify: VERIFY }))
        .rejects.toMatchObject({ code: 'FILE_NOT_FOUND', message: expect.stringContaining('tokenizer.model') });
    } finally {
      await reader.close();
    }
  });
});
