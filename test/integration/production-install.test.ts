/**
 * What a user's production install does, from a clean copy of the repository (the files git tracks
 * or would track: what a clone of this tree holds):
 *
 * 1. as a dev checkout (the dev dependencies linked in, no build): `bin/owlery.js` runs the
 *    TypeScript sources through tsx, and `npm run build:app` compiles `out/` with the dev toolchain;
 * 2. the dev dependencies go, `npm ci --omit=dev` installs the production ones: tsx, ws and the rest
 *    of the dev tools are absent, and `owlery convert` and `owlery chat` work on the tiny checkpoint
 *    (so the compiled CLI started the compiled engine worker: the tsx bootstrap could not load), with
 *    the same greedy answer as the engine run from the sources;
 * 3. without `out/`, `owlery` says how to build, in one line.
 *
 * The install skips install scripts (`--ignore-scripts`): the only production one that would run
 * compiles better-sqlite3 (~2 min on 2 cores; 12 s without), which the CLI never loads
 * (test/integration/app-build.test.ts checks the CLI bundle's imports); onnxruntime-node's is
 * skipped with `ONNXRUNTIME_NODE_INSTALL=skip` as everywhere in the tests. The packages come from
 * the npm cache that installed this checkout (`--prefer-offline`).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rename, rm, symlink, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_OUTPUT } from '../../scripts/build-app.ts';
import { EngineHost, buildChatPrompt } from '../../src-main/engine/index.ts';
import { REPO_ROOT, ensureTinyCheckpoint } from '../helpers/tiny-model.ts';

const run = promisify(execFile);
const IMAGE = join(REPO_ROOT, 'test/fixtures/owl2-public/images/photo_48x48.jpg');
const win = process.platform === 'win32';

/** The environment of a user's shell: no test runner options, nothing that finds the dev checkout's packages. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ELECTRON_SKIP_BINARY_DOWNLOAD: '1' };
  for (const k of ['NODE_OPTIONS', 'NODE_PATH', 'VITEST', 'VITEST_POOL_ID', 'VITEST_WORKER_ID']) delete env[k];
  return env;
}

interface Result { code: number; stdout: string; stderr: string }

/** Runs `cmd args` in `cwd` like a user's shell would; never throws for a non-zero exit. */
async function sh(cwd: string, cmd: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run(cmd, args, { cwd, env: userEnv(), maxBuffer: 64 << 20, shell: win && cmd === 'npm' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** `node bin/owlery.js ...` in the copy. */
const owlery = (...args: string[]) => sh(copy, process.execPath, ['bin/owlery.js', ...args]);

/** Copies the files git tracks or would track (not ignored) from the repository into `dest`. */
async function copyTree(dest: string): Promise<void> {
  const { stdout } = await run('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO_ROOT, maxBuffer: 16 << 20 });
  for (const rel of new Set(stdout.split('\0').filter(Boolean))) {
    const from = join(REPO_ROOT, rel);
    if (!existsSync(from)) continue; // deleted in the working tree, not yet committed
    await mkdir(dirname(join(dest, rel)), { recursive: true });
    await copyFile(from, join(dest, rel));
  }
}

let work: string;
let copy: string;
let devRun: Result;
let install: Result;
const timings: Record<string, number> = {};

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timings[name] = Math.round(performance.now() - t0);
  }
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'owlery-prod-'));
  copy = join(work, 'owlery');
  await timed('copy', () => copyTree(copy));
  // 1. A dev checkout: the dev dependencies (this checkout's node_modules) linked in, nothing built.
  const modules = join(copy, 'node_modules');
  await symlink(join(REPO_ROOT, 'node_modules'), modules, win ? 'junction' : 'dir');
  try {
    devRun = await timed('sources --help', () => owlery('--help'));
    const build = await timed('build:app', () => sh(copy, 'npm', ['run', '--silent', 'build:app']));
    expect(build.stderr).toBe('');
    expect(build.code).toBe(0);
  } finally {
    // Remove the link itself (never what it points to) before npm ci replaces node_modules.
    await unlink(modules);
  }
  // 2. The production install.
  install = await timed('npm ci --omit=dev', () => sh(copy, 'npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund']));
}, 300_000);

afterAll(async () => {
  // Measured times (ms), for the record: `npx vitest run test/integration/production-install.test.ts`.
  console.log(`production install: ${JSON.stringify(timings)}`);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('a dev checkout of the copy', () => {
  it('runs the CLI from the TypeScript sources through tsx before anything is built', () => {
    expect(devRun.stderr).toBe('');
    expect(devRun.code).toBe(0);
    expect(devRun.stdout).toMatch(/^usage: owlery <command>/);
  });
});

describe('a production install (npm ci --omit=dev) of the built copy', () => {
  it('installs the production dependencies only: no tsx, no ws, no build tools', async () => {
    expect(install.stderr).not.toMatch(/npm error/);
    expect(install.code).toBe(0);
    const pkg = JSON.parse(await readFile(join(copy, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    expect(pkg.dependencies.tsx).toBeUndefined();
    expect(pkg.dependencies.ws).toBeUndefined();
    for (const dep of Object.keys(pkg.dependencies)) expect(existsSync(join(copy, 'node_modules', dep)), dep).toBe(true);
    for (const dev of ['tsx', 'ws', 'esbuild', 'typescript', 'vitest', 'electron', ...Object.keys(pkg.devDependencies)]) {
      expect(existsSync(join(copy, 'node_modules', dev)), dev).toBe(false);
    }
    expect(existsSync(join(copy, 'out', CLI_OUTPUT))).toBe(true);
  });

  it('converts the tiny checkpoint and chats about a photo with the compiled CLI and engine', async () => {
    const pkg = join(work, 'pkg');
    const conv = await timed('convert', async () => owlery('convert', await ensureTinyCheckpoint({ seed: 1 }), pkg));
    expect(conv.stderr).toBe('');
    expect(conv.code).toBe(0);
    expect(conv.stdout).toMatch(/^converted .* → .*pkg \(package mplug-owl2-[0-9a-f]{16}, /);

    const chat = await timed('chat', () => owlery('chat', '--model', pkg, '--image', IMAGE, '--greedy', '--max-new-tokens', '8', '--json', 'Describe'));
    expect(chat.stderr).toBe('');
    expect(chat.code).toBe(0);
    const out = JSON.parse(chat.stdout) as { prompt_ids: number[]; output_ids: number[]; text: string; finish: string };
    expect(out.prompt_ids).toContain(-200);
    expect(out.output_ids.length).toBeGreaterThan(0);
    expect(out.output_ids.length).toBeLessThanOrEqual(8);
    expect(['length', 'eos']).toContain(out.finish);

    // The same request through the engine run from this checkout's sources (tsx bootstrap).
    const host = new EngineHost();
    try {
      await host.load(pkg, { provider: 'cpu' });
      const prompt = buildChatPrompt([{ role: 'user', content: 'Describe', images: 1 }]);
      const want = await host.generate({ prompt, images: [IMAGE], sampling: { greedy: true, maxNewTokens: 8 }, aspect: 'resize' });
      expect(out.prompt_ids).toEqual(want.promptIds);
      expect(out.output_ids).toEqual(want.outputIds);
      expect(out.text).toBe(want.text);
    } finally {
      await host.dispose();
    }
  });

  it('without out/, says in one line how to build instead of failing with a stack trace', async () => {
    await rename(join(copy, 'out'), join(copy, 'out.hidden'));
    try {
      const r = await owlery('--help');
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^owlery: not built: .*owlery\.js is missing; build it with "npm ci && npm run build:app" in /);
    } finally {
      await rename(join(copy, 'out.hidden'), join(copy, 'out'));
    }
  });
});
