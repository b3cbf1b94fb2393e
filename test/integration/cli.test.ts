/**
 * The `owlery` command line against the official implementation's outputs (test/fixtures/owl2-public):
 * the same commands a user runs, in a child process, compared with exact ids and the fixture's
 * tolerances. Also: bad input exits non-zero with one clear line on stderr.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { readNpy } from '../../models/npy.ts';
import { maxAbsDiff } from '../helpers/arrays.ts';
import { LlamaTokenizer } from '../../src-main/engine/tokenizer/llama-tokenizer.ts';

const run = promisify(execFile);
const FIX = resolve('test/fixtures/owl2-public');
const BIN = resolve('bin/owlery.js');

interface CliResult { code: number; stdout: string; stderr: string }
async function owlery(...args: string[]): Promise<CliResult> {
  return owleryWith({}, ...args);
}
async function owleryWith(env: Record<string, string>, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { maxBuffer: 64 << 20, env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let manifest: any;
let work: string;
let pkg: string;
let pkgF16: string;

const image = (name: string) => join(FIX, manifest.images[name].file);

beforeAll(async () => {
  manifest = JSON.parse(await readFile(join(FIX, 'expected/manifest.json'), 'utf8'));
  work = await mkdtemp(join(tmpdir(), 'owlery-cli-'));
  pkg = join(work, 'pkg');
  const conv = await owlery('convert', join(FIX, 'checkpoint'), pkg);
  expect(conv.stderr).toBe('');
  expect(conv.code).toBe(0);
  // The same checkpoint as PyTorch .bin only (F16 weights): hide the safetensors file.
  const binOnly = join(work, 'bin-only');
  await cp(join(FIX, 'checkpoint'), binOnly, { recursive: true, filter: (src) => !src.endsWith('model.safetensors') });
  pkgF16 = join(work, 'pkg-f16');
  const conv2 = await owlery('convert', binOnly, pkgF16);
  expect(conv2.code).toBe(0);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe('owlery CLI reproduces the official implementation', () => {
  it('tokenize gives the official ids for every fixture prompt', async () => {
    for (const [key, p] of Object.entries<{ prompt: string; ids: number[] }>(manifest.prompts)) {
      const r = await owlery('tokenize', '--model', pkg, '--json', p.prompt);
      expect(r.code, key).toBe(0);
      expect(JSON.parse(r.stdout), key).toEqual(p.ids);
    }
  });

  it('preprocess matches the official pixel values (resize and pad)', async () => {
    for (const name of ['shapes_90x60', 'portrait_rgba_30x70', 'gray_52x36', 'photo_48x48']) {
      for (const aspect of ['resize', 'pad']) {
        const out = join(work, `${name}.${aspect}.npy`);
        const r = await owlery('preprocess', '--model', pkg, '--image', image(name), '--aspect', aspect, '--out', out);
        expect(r.code, r.stderr).toBe(0);
        const got = await readNpy(out);
        const want = await readNpy(join(FIX, manifest.images[name].variants[aspect].pixel_values));
        expect(got.shape).toEqual(want.shape);
        // Every stage is exact (sharp's mozjpeg decodes the fixture JPEG bit-exactly too).
        expect(maxAbsDiff(got.data as Float32Array, want.data as Float32Array), `${name} ${aspect}`).toBeLessThanOrEqual(1e-6);
      }
    }
  });

  it('embed-image matches the official encode_images', async () => {
    for (const name of ['shapes_90x60', 'portrait_rgba_30x70']) {
      const out = join(work, `${name}.embeds.npy`);
      const r = await owlery('embed-image', '--model', pkg, '--image', image(name), '--out', out);
      expect(r.code, r.stderr).toBe(0);
      const got = await readNpy(out);
      const want = await readNpy(join(FIX, manifest.vision[`${name}.resize`].encode_images));
      expect(got.shape).toEqual([1, 7, 96]);
      expect(maxAbsDiff(got.data as Float32Array, want.data as Float32Array)).toBeLessThanOrEqual(3e-4);
    }
  });

  for (const [label, which] of [['safetensors F32', 'f32'], ['pytorch .bin F16', 'f16']] as const) {
    it(`chat --raw-prompt --greedy reproduces every forward case (${label})`, async () => {
      for (const [key, c] of Object.entries<any>(manifest.forward)) { // eslint-disable-line @typescript-eslint/no-explicit-any
        const prompt = manifest.prompts[c.prompt_key].prompt as string;
        const images = (c.images as { image: string }[]).flatMap((i) => ['--image', image(i.image)]);
        const dump = join(work, `${key}.${which}.logits.npy`);
        const r = await owlery('chat', '--model', which === 'f32' ? pkg : pkgF16, '--raw-prompt', '--greedy', '--max-new-tokens', '16',
          '--json', '--dump-logits', dump, ...images, prompt);
        expect(r.code, r.stderr).toBe(0);
        const out = JSON.parse(r.stdout);
        expect(out.prompt_ids, key).toEqual(c.input_ids);
        const expected = which === 'f32' ? c.greedy.ids : c.f16_weights.greedy_ids;
        expect(out.output_ids, key).toEqual(expected);
        expect(out.finish).toBe('length');
        const logits = await readNpy(dump);
        expect(logits.shape).toEqual([16, 32000]);
        const last = await readNpy(join(FIX, which === 'f32' ? c.last_logits : c.f16_weights.last_logits));
        // The first step's logits are the prompt's last logits.
        expect(maxAbsDiff((logits.data as Float32Array).subarray(0, 32000), last.data as Float32Array), key).toBeLessThanOrEqual(2e-4);
        if (which === 'f32' && c.greedy.step_logits) {
          const steps = await readNpy(join(FIX, c.greedy.step_logits));
          expect(maxAbsDiff(logits.data as Float32Array, steps.data as Float32Array), key).toBeLessThanOrEqual(2e-4);
        }
      }
    });
  }

  it('chat builds the official prompt from plain text and a conversation file', async () => {
    const p = manifest.prompts.single_image;
    const r = await owlery('chat', '--model', pkg, '--image', image('shapes_90x60'), '--greedy', '--max-new-tokens', '2', '--json', (p.messages[0][1] as string).replace('<|image|>', ''));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).prompt_ids).toEqual(p.ids);
    const t = manifest.prompts.three_turns_image_in_turn2;
    const conv = {
      messages: (t.messages as [string, string | null][]).filter(([, text]) => text !== null).map(([role, text]) => ({
        role: role === 'USER' ? 'user' : 'assistant',
        content: text!.replace('<|image|>', ''),
        images: role === 'USER' && text!.includes('<|image|>') ? [image('gray_52x36')] : undefined,
      })),
    };
    const file = join(work, 'conv.json');
    await writeFile(file, JSON.stringify(conv));
    const r2 = await owlery('chat', '--model', pkg, '--conversation', file, '--greedy', '--max-new-tokens', '2', '--json');
    expect(r2.code, r2.stderr).toBe(0);
    expect(JSON.parse(r2.stdout).prompt_ids).toEqual(t.ids);
  });

  it('chat fits a conversation file longer than the context window, as the app does, and puts its instructions first', async () => {
    const pairs = Array.from({ length: 60 }, (_, i) => [
      { role: 'user', content: `Question ${i}: ${'tell me about the garden '.repeat(8)}` },
      { role: 'assistant', content: `Answer ${i}: ${'the garden is green '.repeat(8)}` },
    ]).flat();
    const file = join(work, 'long.json');
    await writeFile(file, JSON.stringify({ instructions: 'Answer briefly.', messages: [...pairs, { role: 'user', content: 'And the sky?' }] }));
    const r = await owlery('chat', '--model', pkg, '--conversation', file, '--greedy', '--max-new-tokens', '2', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { prompt_ids: number[]; dropped_pairs: number };
    expect(out.dropped_pairs).toBeGreaterThan(0);
    expect(out.dropped_pairs).toBeLessThan(60);
    const tok = await LlamaTokenizer.fromDir(pkg);
    const text = tok.decode(out.prompt_ids.filter((id) => id >= 0));
    expect(text).toContain('Answer briefly.');
    expect(text).toContain('And the sky?');
    expect(text).toContain(`Question ${60 - 1}:`);
    expect(text).not.toContain('Question 0:');
  });
});

describe('owlery --verbose', () => {
  it('prints timings on stderr and writes cli.log and engine.log in the app\'s logs folder, without the prompt', async () => {
    const data = join(work, 'app-data');
    const r = await owleryWith({ OWLERY_DATA_DIR: data }, 'chat', '--verbose', '--model', pkg, '--image', image('photo_48x48'), '--greedy', '--max-new-tokens', '3', 'Describe the PURPLE-ZEBRA-7 photo.');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/owlery debug: model loaded/);
    expect(r.stderr).toMatch(/owlery debug: answer/);
    const read = async (name: string) => (await readFile(join(data, 'logs', `${name}.log`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { msg: string; name: string });
    expect((await read('cli')).map((l) => l.msg)).toEqual(['owlery chat', 'model loaded', 'answer']);
    expect((await read('engine')).map((l) => l.msg)).toEqual(['model loaded', 'answer']);
    for (const name of ['cli', 'engine']) expect(await readFile(join(data, 'logs', `${name}.log`), 'utf8')).not.toContain('PURPLE-ZEBRA');
    // Without --verbose nothing is written.
    const quiet = join(work, 'quiet-data');
    expect((await owleryWith({ OWLERY_DATA_DIR: quiet }, 'tokenize', '--model', pkg, 'hi')).code).toBe(0);
    await expect(readFile(join(quiet, 'logs', 'cli.log'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('owlery CLI rejects bad input with one clear line', () => {
  const oneLine = (r: CliResult) => {
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    return r.stderr;
  };
  it('names a missing image', async () => {
    expect(oneLine(await owlery('chat', '--model', pkg, '--image', '/nope/missing.jpg', 'hi'))).toMatch(/missing\.jpg/);
  });
  it('names an unreadable image', async () => {
    const bad = join(work, 'bad.jpg');
    await writeFile(bad, 'this is not a jpeg');
    expect(oneLine(await owlery('chat', '--model', pkg, '--image', bad, 'hi'))).toMatch(/bad\.jpg/);
  });
  it('says when a folder is not a model package', async () => {
    expect(oneLine(await owlery('chat', '--model', work, 'hi'))).toMatch(/manifest|package/i);
  });
  it('says when the prompt is longer than the context window', async () => {
    expect(oneLine(await owlery('chat', '--model', pkg, 'word '.repeat(5000)))).toMatch(/context window/);
  });
  it('explains bad options', async () => {
    const r = await owlery('chat', '--model', pkg, '--top-p', 'lots', 'hi');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--top-p/);
  });
});

describe('owlery convert --preset auto', () => {
  it('chooses the form that fits this machine, says which and why, and makes it', async () => {
    const out = join(work, 'pkg-auto');
    const r = await owlery('convert', '--preset', 'auto', join(FIX, 'checkpoint'), out);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const [first] = r.stdout.split('\n');
    const chosen = /^preset auto → (\S+) \(.+\)\. This computer has .* of memory, .* of free disk and (.+?): /.exec(first!);
    expect(chosen, first).not.toBeNull();
    const made = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { preset: string; quantization: Record<string, string> };
    expect(made.preset).toBe(chosen![1]);
    expect(r.stdout).toContain(`preset ${chosen![1]})`);
    // Without a graphics card (the test machines), the laptop form: memory to spare for the tiny model.
    if (chosen![2] === 'no graphics card Owlery can use') {
      expect(first).toMatch(/^preset auto → cpu \(laptop: 4-bit language model, 8-bit vision\)\. .*: the laptop form .* is the one to make/);
      expect(made).toMatchObject({ preset: 'cpu', quantization: { llm: 'int4', vision: 'int8' } });
    }
  });

  it('refuses an unknown preset, naming auto among the choices', async () => {
    const r = await owlery('convert', '--preset', 'fastest', join(FIX, 'checkpoint'), join(work, 'never'));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--preset must be one of cpu, gpu, gpu-int4, reference or auto/);
  });
});
