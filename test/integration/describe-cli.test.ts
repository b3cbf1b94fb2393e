/**
 * `owlery describe` as a user runs it (a child process on the tiny model): one JSON line per
 * photo, sidecars, a state file that makes a second run skip what is done, Ctrl-C that stops
 * cleanly and resumes, a partial state line (a kill during a write) dropped, and usage errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseKeywords } from '../../src-main/describe/text.ts';
import { makePhoto, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';

const run = promisify(execFile);
const BIN = resolve('bin/owlery.js');
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

interface CliResult { code: number; stdout: string; stderr: string }
async function owlery(cwd: string, ...args: string[]): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { cwd, maxBuffer: 16 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

interface Line { path: string; sha256?: string; caption?: string; keywords?: string[]; ms?: number; skipped?: true; error?: { code: string; message: string } }
const lines = (stdout: string): Line[] => stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);

let work: string;
let pkg: string;
let photos: string;
let files: string[];

beforeAll(async () => {
  work = await tempDir('owlery-describe-cli-');
  pkg = await tinyPackage(work);
  photos = join(work, 'photos');
  await mkdir(join(photos, 'sub'), { recursive: true });
  files = [];
  for (let i = 0; i < 8; i++) {
    const file = join(photos, i >= 6 ? 'sub' : '', `p${i}.${i % 2 ? 'jpg' : 'png'}`);
    await writeFile(file, await makePhoto(800 + i, 40 + i * 4, 44, i % 2 ? 'jpeg' : 'png'));
    files.push(file);
  }
  await writeFile(join(photos, 'broken.jpg'), 'not a jpeg');
});

afterAll(async () => {
  await removeDir(work);
});

describe('owlery describe', () => {
  it('prints one JSON line per photo, writes sidecars, and a second run skips what is done', async () => {
    const cwd = join(work, 'run1');
    await mkdir(cwd);
    const first = await owlery(cwd, 'describe', '--model', pkg, '--recursive', '--sidecars', '--json', photos);
    expect(first.code).toBe(1); // one photo failed
    const out = lines(first.stdout);
    const all = [join(photos, 'broken.jpg'), ...files].sort();
    expect(out.map((l) => l.path)).toEqual(all);
    const broken = out.find((l) => l.path.endsWith('broken.jpg'))!;
    expect(broken.error!.code).toMatch(/^IMAGE_/);
    for (const f of files) {
      const l = out.find((x) => x.path === f)!;
      expect(l.sha256).toBe(sha(await readFile(f)));
      expect(l.caption!.length).toBeGreaterThan(0);
      expect(l.keywords).toEqual(parseKeywords(l.keywords!.join(', ')));
      expect(l.ms).toBeGreaterThan(0);
      expect((await stat(`${f}.xmp`)).isFile()).toBe(true);
    }
    expect(first.stderr).toMatch(/8 described \([\d.]+ photos\/min\), 0 already described, 1 failed/);

    const again = await owlery(cwd, 'describe', '--model', pkg, '--recursive', '--json', photos);
    const second = lines(again.stdout);
    expect(second.filter((l) => l.skipped).map((l) => l.path)).toEqual(files.slice().sort());
    for (const l of second.filter((x) => x.skipped)) expect(l).toEqual({ ...out.find((x) => x.path === l.path), skipped: true });
    expect(again.stderr).toMatch(/0 described, 8 already described, 1 failed/);
  });

  it('stops on Ctrl-C with a clean state file, and the next run continues; a partial last state line is dropped', async () => {
    const cwd = join(work, 'run2');
    await mkdir(cwd);
    const child = spawn(process.execPath, [BIN, 'describe', '--model', pkg, '--recursive', '--json', photos], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && lines(stdout).filter((l) => l.caption).length >= 2) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(code).toBe(130);
    expect(stderr).toMatch(/interrupted: \d+ described/);
    const done = lines(stdout).filter((l) => l.caption);
    expect(done.length).toBeGreaterThanOrEqual(2);
    expect(done.length).toBeLessThan(8);
    const stateFile = join(cwd, 'owlery-describe.state.jsonl');
    const state = (await readFile(stateFile, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { path?: string });
    expect(state.slice(1).map((e) => e.path)).toEqual(done.map((l) => l.path));

    // A kill in the middle of a write leaves a partial line: the next run drops it and goes on.
    await appendFile(stateFile, '{"path":"/half/writ');
    const rest = await owlery(cwd, 'describe', '--model', pkg, '--recursive', '--json', photos);
    expect(rest.code).toBe(1);
    const next = lines(rest.stdout);
    expect(next.filter((l) => l.skipped).map((l) => l.path)).toEqual(done.map((l) => l.path));
    expect(next.filter((l) => l.caption && !l.skipped)).toHaveLength(8 - done.length);
    const finalState = (await readFile(stateFile, 'utf8')).split('\n');
    expect(finalState.at(-1)).toBe('');
    expect(finalState.slice(0, -1).every((l) => JSON.parse(l))).toBe(true);
    expect(finalState).toHaveLength(1 + 8 + 1);
  });

  it('refuses bad input with one clear line', async () => {
    const cwd = join(work, 'run3');
    await mkdir(cwd);
    const noModel = await owlery(cwd, 'describe', photos);
    expect(noModel).toMatchObject({ code: 2, stderr: expect.stringMatching(/--model DIR is required/) });
    const noDir = await owlery(cwd, 'describe', '--model', pkg);
    expect(noDir).toMatchObject({ code: 2, stderr: expect.stringMatching(/at least one folder/) });
    const naming = await owlery(cwd, 'describe', '--model', pkg, '--sidecars', '--sidecar-name', 'x.xmp', photos);
    expect(naming).toMatchObject({ code: 2, stderr: expect.stringMatching(/--sidecar-name must be/) });
    const missing = await owlery(cwd, 'describe', '--model', pkg, join(work, 'nope'));
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^owlery: error: The folder .*nope does not exist/)]);
    await writeFile(join(cwd, 'not-state.jsonl'), 'hello\n');
    const badState = await owlery(cwd, 'describe', '--model', pkg, '--state', 'not-state.jsonl', photos);
    expect(badState).toMatchObject({ code: 1, stderr: expect.stringMatching(/not an owlery describe state file/) });
  });
});
