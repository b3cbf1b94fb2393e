/**
 * The packaging configuration as electron-builder itself reads it (its config loader, schema
 * validation, macro expansion and file matcher): what goes into the app archive is exactly what
 * the app loads, native modules are unpacked, other platforms' onnxruntime binaries are pruned for
 * every target, models are never packaged, the fuses are set, and "Open with Owlery" is declared
 * for every photo type. A real (Linux, `--dir`) pack is in test/integration/packaging-dir.test.ts.
 *
 * Not verifiable here: installers (AppImage, deb, NSIS, dmg), signing, the fuses inside a real
 * Electron binary, and the rebuild of better-sqlite3 for Electron's ABI (docs/release.md).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { APP_OUTPUTS } from '../../scripts/build-app.ts';
import { REPO_ROOT } from '../helpers/tiny-model.ts';

const require = createRequire(import.meta.url);
const ab = (path: string) => require(join(REPO_ROOT, 'node_modules/app-builder-lib/out', path)) as Record<string, unknown>;

type FileSet = string | { filter?: string[] };
interface PlatformConfig {
  files?: FileSet[];
  target?: { target: string; arch: string[] }[];
  fileAssociations?: { ext: string | string[]; mimeType?: string; role?: string; rank?: string }[];
  [key: string]: unknown;
}
interface BuilderConfig {
  appId: string;
  productName: string;
  asar: boolean;
  files?: FileSet[];
  asarUnpack: string[];
  npmRebuild: boolean;
  publish: unknown;
  electronFuses: Record<string, boolean>;
  linux: PlatformConfig;
  win: PlatformConfig;
  mac: PlatformConfig;
  nsis: { include: string; oneClick: boolean; deleteAppDataOnUninstall: boolean };
  deb?: { depends?: string[] };
  directories: { buildResources: string };
  [key: string]: unknown;
}
type Filter = (file: string, stat: { isDirectory(): boolean; moduleFullFilePath?: string }) => boolean;
interface Matcher {
  createFilter(): Filter;
}

const PHOTO_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heic'];
const ORT = 'node_modules/onnxruntime-node/bin/napi-v6';
const ORT_TARGETS = ['linux/x64', 'linux/arm64', 'win32/x64', 'win32/arm64', 'darwin/arm64'];

let config: BuilderConfig;

beforeAll(async () => {
  const { getConfig, validateConfiguration } = ab('util/config/config.js') as {
    getConfig(dir: string, path: string | null, options: unknown): Promise<BuilderConfig>;
    validateConfiguration(config: BuilderConfig, logger: unknown): Promise<void>;
  };
  config = await getConfig(REPO_ROOT, null, null);
  // electron-builder's own schema check (what `electron-builder` runs before packaging).
  await validateConfiguration(config, { isEnabled: false, add() {} });
});

/** electron-builder's filter for node_modules files of one platform and arch. */
function nodeModuleFilter(platform: 'linux' | 'win' | 'mac', arch: string): (rel: string) => boolean {
  const { getNodeModuleFileMatcher } = ab('fileMatcher.js') as {
    getNodeModuleFileMatcher(appDir: string, dest: string, expand: (p: string) => string, platformOptions: PlatformConfig, packager: unknown): Matcher;
  };
  const { expandMacro } = ab('util/macroExpander.js') as { expandMacro(p: string, arch: string, appInfo: unknown, extra: unknown): string };
  const matcher = getNodeModuleFileMatcher(REPO_ROOT, '/app', (p) => expandMacro(p, arch, { productName: 'Owlery' }, { os: platform }), config[platform], {
    config,
    debugLogger: { isEnabled: false },
  });
  const filter = matcher.createFilter();
  return (rel) => filter(join(REPO_ROOT, rel), { isDirectory: () => false, moduleFullFilePath: rel });
}

/** electron-builder's asarUnpack filter. */
function unpackFilter(): (rel: string) => boolean {
  const { getFileMatchers } = ab('fileMatcher.js') as {
    getFileMatchers(config: BuilderConfig, name: string, dest: string, opts: unknown): Matcher[] | null;
  };
  const matchers = getFileMatchers(config, 'asarUnpack', '/app', {
    macroExpander: (p: string) => p,
    customBuildOptions: {},
    globalOutDir: join(REPO_ROOT, 'dist'),
    defaultSrc: REPO_ROOT,
  });
  const filter = matchers![0]!.createFilter();
  return (rel) => filter(join(REPO_ROOT, rel), { isDirectory: () => false });
}

const patterns = (sets: FileSet[] | undefined): string[] => (sets ?? []).flatMap((s) => (typeof s === 'string' ? [s] : (s.filter ?? [])));

describe('electron-builder.yml', () => {
  it('names the app and packs an asar of exactly what the app loads', async () => {
    expect(config).toMatchObject({ appId: 'app.owlery.desktop', productName: 'Owlery', asar: true, publish: null });
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
    expect(pkg.main).toBe(`out/${APP_OUTPUTS.main}`);
    // No top-level `files`: with one, a platform's `files` would start a second file set that copies
    // the whole project (.cache, sources) into the archive (test/integration/packaging-dir.test.ts).
    expect(patterns(config.files)).toEqual([]);
    for (const platform of ['linux', 'win', 'mac'] as const) {
      const included = patterns(config[platform].files).filter((p) => !p.startsWith('!'));
      expect(included.sort(), platform).toEqual(['out/engine/**', 'out/main/**', 'out/preload/**', 'out/renderer/**', 'package.json']);
      // Every output the app loads is under an included folder.
      for (const rel of [...Object.values(APP_OUTPUTS), 'renderer/index.html']) {
        expect(included.some((p) => p === `out/${rel.split('/')[0]}/**`), `${platform} ${rel}`).toBe(true);
      }
    }
    // The three lists differ only in which onnxruntime-node folders they prune.
    const shared = (platform: 'linux' | 'win' | 'mac') => patterns(config[platform].files).filter((p) => !p.includes('onnxruntime-node/bin/'));
    expect(shared('win')).toEqual(shared('linux'));
    expect(shared('mac')).toEqual(shared('linux'));
  });

  it('never packages models or development tools', () => {
    for (const platform of ['linux', 'win', 'mac'] as const) {
      expect(patterns(config[platform].files), platform).toContain('!**/*.{onnx,onnx_data,safetensors,gguf,pt,pth,ckpt,npy}');
    }
    const linux = nodeModuleFilter('linux', 'x64');
    for (const rel of ['node_modules/x/model.onnx', 'node_modules/x/w.safetensors', 'node_modules/tsx/dist/cli.mjs', 'node_modules/esbuild/lib/main.js', 'node_modules/@esbuild/linux-x64/bin/esbuild']) {
      expect(linux(rel), rel).toBe(false);
    }
    for (const rel of ['node_modules/better-sqlite3/lib/index.js', 'node_modules/sharp/dist/index.mjs', 'node_modules/electron-store/index.js', 'node_modules/onnxruntime-common/dist/cjs/index.js']) {
      expect(linux(rel), rel).toBe(true);
    }
  });

  it('keeps only the target platform and arch of onnxruntime-node, for every target', () => {
    const targets: [('linux' | 'win' | 'mac'), string, string][] = [
      ['linux', 'x64', 'linux/x64'],
      ['linux', 'arm64', 'linux/arm64'],
      ['win', 'x64', 'win32/x64'],
      ['win', 'arm64', 'win32/arm64'],
      ['mac', 'arm64', 'darwin/arm64'],
    ];
    for (const [platform, arch, keep] of targets) {
      const filter = nodeModuleFilter(platform, arch);
      for (const dir of ORT_TARGETS) {
        expect(filter(`${ORT}/${dir}/onnxruntime_binding.node`), `${platform} ${arch}: ${dir}`).toBe(dir === keep);
      }
      expect(filter('node_modules/onnxruntime-node/dist/index.js')).toBe(true);
      expect(filter('node_modules/onnxruntime-node/script/install.js')).toBe(false);
    }
  });

  it('builds the targets it promises: AppImage + deb, NSIS, dmg for arm64 only', () => {
    expect(config.linux.target!.map((t) => t.target).sort()).toEqual(['AppImage', 'deb']);
    // The WebGPU provider needs the Vulkan loader; the rest are electron-builder's defaults, kept.
    expect(config.deb?.depends).toEqual(expect.arrayContaining(['libvulkan1', 'libgtk-3-0', 'libnss3']));
    expect(config.win.target!.map((t) => t.target)).toEqual(['nsis']);
    expect(config.mac.target).toEqual([{ target: 'dmg', arch: ['arm64'] }]);
  });

  it('unpacks native add-ons and the shared libraries next to them', () => {
    const unpacked = unpackFilter();
    for (const rel of [
      `${ORT}/linux/x64/onnxruntime_binding.node`,
      `${ORT}/linux/x64/libonnxruntime.so.1`,
      `${ORT}/win32/x64/onnxruntime.dll`,
      `${ORT}/win32/x64/DirectML.dll`,
      `${ORT}/darwin/arm64/libonnxruntime.1.30.0.dylib`,
      'node_modules/@img/sharp-linux-x64/lib/sharp-linux-x64-0.35.5.node',
      'node_modules/@img/sharp-libvips-linux-x64/lib/libvips-cpp.so.8.18.7',
      'node_modules/@img/sharp-libvips-darwin-arm64/lib/libvips-cpp.8.18.7.dylib',
      'node_modules/better-sqlite3/build/Release/better_sqlite3.node',
    ]) {
      expect(unpacked(rel), rel).toBe(true);
    }
    for (const rel of ['out/main/main.js', 'out/renderer/index.html', 'node_modules/better-sqlite3/lib/index.js']) expect(unpacked(rel), rel).toBe(false);
    expect(config.npmRebuild).toBe(true);
  });

  it('sets the fuses: no RunAsNode (the engine is a utility process), no NODE_OPTIONS or --inspect, asar only and validated', async () => {
    expect(config.electronFuses).toMatchObject({
      runAsNode: false,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
    // With RunAsNode off, child_process.fork cannot work in the app: main must pass the utility process spawner.
    const main = await readFile(join(REPO_ROOT, 'src-main/app/main.ts'), 'utf8');
    expect(main).toContain('engineSpawner: utilityEngineProcess');
  });

  it('offers "Open with Owlery" for every photo type without claiming to be the default', async () => {
    const exts = (p: PlatformConfig) => new Set((p.fileAssociations ?? []).flatMap((a) => (Array.isArray(a.ext) ? a.ext : [a.ext])));
    for (const platform of ['linux', 'mac'] as const) {
      const declared = exts(config[platform]);
      for (const ext of PHOTO_EXTENSIONS) expect(declared.has(ext), `${platform} ${ext}`).toBe(true);
    }
    expect(config.linux.fileAssociations!.every((a) => /^image\//.test(a.mimeType ?? ''))).toBe(true);
    expect(config.mac.fileAssociations!.every((a) => a.role === 'Viewer' && a.rank === 'Alternate')).toBe(true);
    // Windows: OpenWithProgids through the NSIS include, never the extension's default value.
    expect(config.win.fileAssociations).toBeUndefined();
    expect(config.nsis).toMatchObject({ include: 'build/installer.nsh', oneClick: false, deleteAppDataOnUninstall: false });
    const nsh = await readFile(join(REPO_ROOT, 'build/installer.nsh'), 'utf8');
    for (const ext of PHOTO_EXTENSIONS) {
      expect(nsh, ext).toContain(`!insertmacro OwleryOpenWith "${ext}"`);
      expect(nsh, ext).toContain(`!insertmacro OwleryNoLongerOpenWith "${ext}"`);
    }
    expect(nsh).not.toMatch(/WriteRegStr SHELL_CONTEXT "Software\\Classes\\\.\$\{EXT\}" ""/);
  });

  it('has an app icon of at least 512×512 in the build resources', async () => {
    expect(config.directories.buildResources).toBe('build');
    const icon = await sharp(join(REPO_ROOT, 'build/icon.png')).metadata();
    expect(icon.format).toBe('png');
    expect(icon.width).toBeGreaterThanOrEqual(512);
    expect(icon.height).toBe(icon.width);
    for (const size of [16, 32, 48, 64, 128, 256, 512]) {
      const m = await sharp(join(REPO_ROOT, `build/icons/${size}x${size}.png`)).metadata();
      expect([m.width, m.height], `${size}`).toEqual([size, size]);
    }
  });
});
