/**
 * The app build (`npm run build:app`): main, preload and engine worker land where the app and
 * electron-builder expect them; the sandboxed preload is one CommonJS file that needs nothing but
 * `electron`; main, the engine and the CLI load native modules from node_modules instead of
 * bundling them, and nothing they load at run time is a dev dependency (tsx, ws, ...); and the
 * compiled engine worker, started the way the engine host starts it, answers a generate request on
 * the tiny model under plain Node (no tsx). The compiled CLI in a production install:
 * test/integration/production-install.test.ts.
 *
 * Not covered here (no Electron binary on build machines): the same bundles inside Electron.
 * @see scripts/build-app.ts, docs/release.md
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import vm from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Metafile } from 'esbuild';
import { convertCheckpoint } from '../../models/convert.ts';
import { APP_OUTPUTS, CLI_EXTERNALS, CLI_OUTPUT, ENGINE_EXTERNALS, MAIN_EXTERNALS } from '../../scripts/build-app.ts';
import type { BuildOutput } from '../../scripts/build-app.ts';
import { API } from '../../src-shared/ipc/index.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { buildChatPrompt } from '../../src-main/engine/mplug-owl2/prompt.ts';
import { REPO_ROOT, ensureTinyCheckpoint } from '../helpers/tiny-model.ts';
import { VERIFY } from '../helpers/verify.ts';

const run = promisify(execFile);
const OUT = join(REPO_ROOT, 'out');
const NATIVE = ['better-sqlite3', 'onnxruntime-node', 'onnxruntime-common', 'sharp', '@img/', 'bindings', 'node-gyp-build'];

let meta: Record<BuildOutput, Metafile>;
const text: Record<keyof typeof APP_OUTPUTS, string> = { main: '', preload: '', engine: '' };

/** Bare (package) imports an output kept external. */
function externalImports(m: Metafile): string[] {
  const out = new Set<string>();
  for (const o of Object.values(m.outputs)) for (const i of o.imports) if (i.external) out.add(i.path);
  return [...out].sort();
}

const isBuiltin = (id: string) => id.startsWith('node:') || builtinModules.includes(id);

beforeAll(async () => {
  // The npm script itself, as `npm start` and `npm run dist` run it.
  await run('npm', ['run', '--silent', 'build:app', '--', '--meta'], { cwd: REPO_ROOT, env: { ...process.env, NODE_OPTIONS: '' }, shell: process.platform === 'win32' });
  meta = JSON.parse(await readFile(join(OUT, 'build-meta.json'), 'utf8')) as typeof meta;
  for (const key of Object.keys(APP_OUTPUTS) as (keyof typeof APP_OUTPUTS)[]) text[key] = await readFile(join(OUT, APP_OUTPUTS[key]), 'utf8');
}, 120_000);

describe('npm run build:app', () => {
  it('writes main, preload and engine worker where package.json and the app look for them', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string; scripts: Record<string, string> };
    expect(pkg.main).toBe(`out/${APP_OUTPUTS.main}`);
    expect(pkg.scripts.start).toMatch(/build:app.*electron \.$/);
    for (const rel of Object.values(APP_OUTPUTS)) expect((await stat(join(OUT, rel))).size, rel).toBeGreaterThan(1000);
    const mainTs = await readFile(join(REPO_ROOT, 'src-main/app/main.ts'), 'utf8');
    expect(mainTs).toContain("join(appRoot, 'out', 'preload', 'index.cjs')");
    expect(mainTs).toContain("join(appRoot, 'out', 'engine', 'engine-worker.js')");
  });

  it('bundles the preload into one CommonJS file that requires only electron', () => {
    const code = text.preload;
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    expect(code).not.toMatch(/\bimport\s*\(/);
    const required = [...code.matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)].map((m) => m[1]);
    expect([...new Set(required)]).toEqual(['electron']);
    expect(externalImports(meta.preload)).toEqual(['electron']);
  });

  it('the preload bundle runs in a bare context and exposes exactly window.owlery', () => {
    const exposed = new Map<string, unknown>();
    const channels: string[] = [];
    const electron = {
      contextBridge: { exposeInMainWorld: (name: string, api: unknown) => exposed.set(name, api) },
      ipcRenderer: {
        on: (channel: string) => channels.push(channel),
        invoke: async () => ({ ok: true, value: null }),
      },
    };
    const module = { exports: {} };
    const sandbox = {
      module,
      exports: module.exports,
      console,
      require: (id: string) => {
        if (id === 'electron') return electron;
        throw new Error(`a sandboxed preload cannot require ${id}`);
      },
    };
    vm.runInNewContext(text.preload, sandbox, { filename: 'index.cjs' });
    expect([...exposed.keys()]).toEqual(['owlery']);
    expect(Object.keys(exposed.get('owlery') as object).sort()).toEqual(Object.keys(API).sort());
    expect(channels).toEqual(['owlery:event']);
  });

  it('main loads native modules from node_modules and bundles everything else', async () => {
    const bundledPackages = Object.keys(meta.main.inputs).filter((i) => i.includes('node_modules/'));
    for (const native of NATIVE) expect(bundledPackages.filter((i) => i.includes(`node_modules/${native}`)), native).toEqual([]);
    expect(text.main).not.toMatch(/\.node["']/);
    expect(text.main).not.toContain('process.dlopen');
    const packages = externalImports(meta.main).filter((id) => !isBuiltin(id));
    expect(packages.every((id) => (MAIN_EXTERNALS as readonly string[]).includes(id)), packages.join(', ')).toBe(true);
    expect(packages).toEqual(expect.arrayContaining(['better-sqlite3', 'electron', 'electron-store', 'sharp']));
    // What stays external must be shipped: a runtime dependency (electron is the runtime itself).
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    for (const id of packages.filter((p) => p !== 'electron')) expect(pkg.dependencies[id], id).toBeDefined();
  });

  it('the engine worker imports only onnxruntime-node, sharp and Node built-ins', () => {
    const packages = externalImports(meta.engine).filter((id) => !isBuiltin(id));
    expect(packages).toEqual([...ENGINE_EXTERNALS].sort());
    expect(Object.keys(meta.engine.inputs).filter((i) => i.includes('node_modules/'))).toEqual([]);
    expect(text.engine).not.toContain('tsx');
  });

  it('the CLI imports only onnxruntime-node, sharp, fast-xml-parser and Node built-ins (not better-sqlite3: a production install needs no compiled add-on of its own)', async () => {
    expect((await stat(join(OUT, CLI_OUTPUT))).size).toBeGreaterThan(1000);
    const packages = externalImports(meta.cli).filter((id) => !isBuiltin(id));
    expect(packages).toEqual([...CLI_EXTERNALS].sort());
    expect(Object.keys(meta.cli.inputs).filter((i) => i.includes('node_modules/'))).toEqual([]);
    // Built from the compiled entry, which hands the engine host the compiled worker next to it.
    expect(Object.keys(meta.cli.inputs)).toContain('src-main/cli/compiled.ts');
    expect(Object.keys(meta.cli.inputs)).not.toContain('src-main/engine/engine-worker-bootstrap.js');
  });

  it('nothing the app or the CLI loads at run time is a dev dependency: tsx and ws are development tools only', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    for (const tool of ['tsx', 'ws']) {
      expect(pkg.dependencies[tool], tool).toBeUndefined();
      expect(pkg.devDependencies[tool], tool).toBeDefined();
    }
    const packageName = (path: string) => /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
    for (const [output, m] of Object.entries(meta)) {
      const loaded = new Set([
        ...externalImports(m).filter((id) => !isBuiltin(id)).map((id) => id.split('/').slice(0, id.startsWith('@') ? 2 : 1).join('/')),
        ...Object.keys(m.inputs).map(packageName).filter((n) => n !== undefined),
      ]);
      // Electron is the runtime of main and preload, not a package they install.
      loaded.delete('electron');
      expect([...loaded].filter((id) => pkg.dependencies[id] === undefined), output).toEqual([]);
    }
  });
});

describe('the compiled engine worker under plain Node', () => {
  let work: string;
  let pkgDir: string;
  let host: EngineHost | undefined;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'owlery-build-engine-'));
    pkgDir = join(work, 'pkg');
    await convertCheckpoint(await ensureTinyCheckpoint({ seed: 1 }), pkgDir, { verify: VERIFY });
  });
  afterAll(async () => {
    await host?.dispose();
    await rm(work, { recursive: true, force: true });
  });

  it('loads the tiny package and streams a generate result over the host protocol', async () => {
    // The engine host's own spawner (child_process.fork, V8 serialization), pointed at the bundle.
    host = new EngineHost(pathToFileURL(join(OUT, APP_OUTPUTS.engine)));
    const info = await host.load(pkgDir, { provider: 'cpu' });
    expect(info.provider.used).toBe('cpu');
    const streamed: number[] = [];
    const result = await host.generate(
      { prompt: buildChatPrompt([{ role: 'user', content: 'Hello there' }]), sampling: { greedy: true, maxNewTokens: 5 } },
      { onEvent: (e) => { if (e.type === 'tokens') streamed.push(...e.ids); } },
    );
    expect(result.outputIds.length).toBeGreaterThan(0);
    expect(result.outputIds.length).toBeLessThanOrEqual(5);
    expect(['length', 'eos']).toContain(result.finish);
    expect(streamed).toEqual(result.outputIds);
    expect(typeof result.text).toBe('string');
    expect(host.enginePid).toBeGreaterThan(0);
  });
});
