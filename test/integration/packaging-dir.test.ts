/**
 * A real electron-builder pack (`--linux dir` for this machine's arch) of the built app, with a
 * stand-in Electron distribution (the Electron binary cannot be downloaded on build machines):
 * everything electron-builder does to the app itself runs (file selection, node_modules
 * collection, asar, unpacking, pruning, asar integrity); what needs the real binary is switched off
 * here (fuses, better-sqlite3 rebuild for Electron's ABI) and listed in docs/release.md.
 */
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { Arch, Platform, build } from 'electron-builder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_OUTPUTS, buildApp } from '../../scripts/build-app.ts';
import { REPO_ROOT } from '../helpers/tiny-model.ts';

const require = createRequire(import.meta.url);
const asar = require(join(REPO_ROOT, 'node_modules/@electron/asar')) as {
  listPackage(path: string): string[];
  statFile(archive: string, file: string): { files?: unknown };
  extractFile(archive: string, file: string): Buffer;
};
const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const ORT = 'node_modules/onnxruntime-node/bin/napi-v6';

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

describe.skipIf(process.platform !== 'linux' || (process.arch !== 'x64' && process.arch !== 'arm64'))('electron-builder --linux --dir', () => {
  let work: string;
  let resources: string;
  let inAsar: string[];
  let unpacked: string[];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'owlery-pack-'));
    const fakeElectron = join(work, 'electron-dist');
    await mkdir(join(fakeElectron, 'resources'), { recursive: true });
    await mkdir(join(fakeElectron, 'locales'), { recursive: true });
    await writeFile(join(fakeElectron, 'electron'), '#!/bin/sh\necho "stand-in for the Electron binary"\n');
    await chmod(join(fakeElectron, 'electron'), 0o755);
    await writeFile(join(fakeElectron, 'version'), '45.5.0');
    await writeFile(join(fakeElectron, 'LICENSE'), '');
    await writeFile(join(fakeElectron, 'LICENSES.chromium.html'), '');
    await buildApp();
    await build({
      projectDir: REPO_ROOT,
      targets: Platform.LINUX.createTarget('dir', Arch[arch]),
      publish: 'never',
      config: {
        electronDist: fakeElectron,
        // Need the real Electron binary / its headers: see docs/release.md.
        npmRebuild: false,
        electronFuses: null,
        directories: { output: join(work, 'dist') },
      },
    });
    const appOut = join(work, 'dist', arch === 'x64' ? 'linux-unpacked' : 'linux-arm64-unpacked');
    resources = join(appOut, 'resources');
    const archive = join(resources, 'app.asar');
    // Files only (folders are listed too), as forward-slash paths.
    inAsar = asar.listPackage(archive).map((f) => f.replace(/^[/\\]/, '')).filter((f) => asar.statFile(archive, f).files === undefined).map((f) => f.split(sep).join('/'));
    unpacked = (await walk(join(resources, 'app.asar.unpacked'))).map((f) => relative(join(resources, 'app.asar.unpacked'), f).split(sep).join('/'));
  }, 180_000);
  afterAll(async () => rm(work, { recursive: true, force: true }));

  it('packs what the app loads, and package.json points at the bundled main', () => {
    for (const rel of Object.values(APP_OUTPUTS)) expect(inAsar, rel).toContain(`out/${rel}`);
    expect(inAsar).toContain('out/renderer/index.html');
    const pkg = JSON.parse(asar.extractFile(join(resources, 'app.asar'), 'package.json').toString('utf8')) as { main: string; type: string };
    expect(pkg).toMatchObject({ main: 'out/main/main.js', type: 'module' });
  });

  it('packs no sources, tests, build metadata, source maps, dev tools or models', () => {
    const all = [...inAsar, ...unpacked];
    const offenders = all.filter((f) =>
      /^(src-main|src-shared|src-renderer|models|test|scripts|bench|docs|\.cache)\//.test(f) ||
      f === 'out/build-meta.json' ||
      f.endsWith('.map') ||
      /^node_modules\/(tsx|esbuild|@esbuild|vitest|vite|electron|electron-builder|typescript)\//.test(f) ||
      /\.(onnx|onnx_data|safetensors|gguf|pt|pth|ckpt)$/.test(f),
    );
    expect(offenders).toEqual([]);
  });

  it('unpacks the native add-ons with their shared libraries, for this platform and arch only', () => {
    expect(unpacked).toEqual(expect.arrayContaining([
      `${ORT}/linux/${arch}/onnxruntime_binding.node`,
      `${ORT}/linux/${arch}/libonnxruntime.so.1`,
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
      expect.stringMatching(new RegExp(`^node_modules/@img/sharp-linux-${arch}/lib/sharp-linux-${arch}-.*\\.node$`)),
      expect.stringMatching(new RegExp(`^node_modules/@img/sharp-libvips-linux-${arch}/lib/libvips-cpp\\.so`)),
    ]));
    const ortBinaries = [...inAsar, ...unpacked].filter((f) => f.startsWith(`${ORT}/`) && !f.endsWith('/'));
    expect(ortBinaries.filter((f) => !f.startsWith(`${ORT}/linux/${arch}/`))).toEqual([]);
    // Native files are never inside the archive itself (they cannot be loaded from there).
    expect(inAsar.filter((f) => /\.node$|\.so(\.\d+)*$/.test(f) && !unpacked.includes(f))).toEqual([]);
    // Sources and build leftovers of the native modules are not shipped.
    expect(unpacked.filter((f) => /^node_modules\/(better-sqlite3\/(src|deps|build\/Release\/obj)|sharp\/src)\//.test(f))).toEqual([]);
  });
});
