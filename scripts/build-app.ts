/**
 * Builds the Electron side of the app and the `owlery` command line with esbuild (the renderer is
 * Vite's job: `build:renderer`):
 *
 * | entry | output | format |
 * | --- | --- | --- |
 * | `src-main/app/main.ts` | `out/main/main.js` | ESM (package.json `"type": "module"`; Electron ≥ 28 loads ESM mains) |
 * | `src-main/preload/index.ts` | `out/preload/index.cjs` | CommonJS, one file: a sandboxed preload can `require('electron')` only |
 * | `src-main/engine/engine-worker.ts` | `out/engine/engine-worker.js` | ESM, run by Electron's `utilityProcess` in the app, by `child_process.fork` from the CLI |
 * | `src-main/cli/compiled.ts` | `out/cli/owlery.js` | ESM, run by `bin/owlery.js` on the user's Node; starts `out/engine/engine-worker.js` |
 *
 * Native and ESM-only packages stay external and are loaded from `node_modules` at run time
 * ({@link MAIN_EXTERNALS}, {@link ENGINE_EXTERNALS}, {@link CLI_EXTERNALS}); everything else
 * (src-shared, src-main, models) is bundled, so nothing runs through tsx and no dev dependency is
 * loaded by the app or the CLI. The engine worker and the CLI target the oldest Node the package
 * supports (package.json `engines`), since the CLI forks the worker with the user's Node.
 * Usage: `npm run build:app` (`tsx scripts/build-app.ts [--out DIR] [--minify] [--meta] [--quiet]`).
 * @see docs/release.md, docs/adr/0001-processes.md
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { BuildOptions, Metafile } from 'esbuild';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * Packages the main process loads from `node_modules` instead of the bundle (native add-ons,
 * ESM-only, Electron itself; markdown-it, for the exports, and fast-xml-parser, for XMP sidecars,
 * with their own dependencies, which are not the app's).
 */
export const MAIN_EXTERNALS = ['electron', 'onnxruntime-node', 'better-sqlite3', 'sharp', 'electron-store', 'markdown-it', 'fast-xml-parser'] as const;
/** Packages the engine process loads from `node_modules`. */
export const ENGINE_EXTERNALS = ['onnxruntime-node', 'sharp'] as const;
/**
 * Packages the CLI loads from `node_modules`: the same native add-ons as the engine (conversion
 * verifies with onnxruntime, images decode with sharp), and fast-xml-parser (`owlery describe
 * --sidecars`).
 */
export const CLI_EXTERNALS = [...ENGINE_EXTERNALS, 'fast-xml-parser'] as const;

/** Electron 45's runtimes: Node 22 and Chromium 140. */
const ELECTRON_NODE_TARGET = 'node22';
const CHROME_TARGET = 'chrome140';
/** The oldest Node the package supports (package.json `engines`): the CLI and the engine worker it forks run on the user's Node. */
const USER_NODE_TARGET = 'node20.18';

/** The app's three outputs (packaged by electron-builder), relative to the output folder. */
export const APP_OUTPUTS = {
  main: 'main/main.js',
  preload: 'preload/index.cjs',
  engine: 'engine/engine-worker.js',
} as const;

/** The compiled CLI, relative to the output folder (run by `bin/owlery.js`; not part of the app package). */
export const CLI_OUTPUT = 'cli/owlery.js';
/** The `owlery inspect --placements` child the compiled CLI starts (src-main/engine/gpu/placements-child.ts). */
export const PLACEMENTS_OUTPUT = 'engine/placements-child.js';

/** Every output of {@link buildApp}. */
export type BuildOutput = keyof typeof APP_OUTPUTS | 'cli' | 'placements';

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  /** Output folder (default `<root>/out`). Must be inside the repository so `node_modules` resolves from it. */
  outDir?: string;
  /** Minify (default false: readable stack traces; the bundles are small). */
  minify?: boolean;
  /** Write `build-meta.json` (esbuild's metafiles) next to the outputs (default false). */
  writeMeta?: boolean;
}

/** What {@link buildApp} wrote. */
export interface BuildAppResult {
  /** Absolute paths of the outputs. */
  files: Record<BuildOutput, string>;
  /** esbuild's metafile per output: which inputs went in, which imports stayed external. */
  meta: Record<BuildOutput, Metafile>;
}

// ESM bundles may still contain `require` calls from bundled CommonJS code; give them Node's.
const ESM_REQUIRE_BANNER = "import { createRequire as __owleryCreateRequire } from 'node:module';\nconst require = __owleryCreateRequire(import.meta.url);";

/** Builds main, preload, engine worker and CLI; see the module comment. */
export async function buildApp(opts: BuildAppOptions = {}): Promise<BuildAppResult> {
  const outDir = resolve(opts.outDir ?? join(ROOT, 'out'));
  const files: Record<BuildOutput, string> = {
    main: join(outDir, APP_OUTPUTS.main),
    preload: join(outDir, APP_OUTPUTS.preload),
    engine: join(outDir, APP_OUTPUTS.engine),
    cli: join(outDir, CLI_OUTPUT),
    placements: join(outDir, PLACEMENTS_OUTPUT),
  };
  const common: BuildOptions = {
    absWorkingDir: ROOT,
    bundle: true,
    // Written below, each file atomically: two builds at once (tests) never leave half a file.
    write: false,
    metafile: true,
    minify: opts.minify ?? false,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    // `import type` is erased; explicit `.ts` extensions resolve as written.
    resolveExtensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
  };
  // An ESM bundle for Node of one entry.
  const nodeBundle = (entry: string, outfile: string, target: string, external: readonly string[]): BuildOptions => ({
    ...common,
    entryPoints: [join(ROOT, entry)],
    outfile,
    platform: 'node',
    format: 'esm',
    target,
    external: [...external],
    banner: { js: ESM_REQUIRE_BANNER },
  });
  const [main, preload, engine, placements, cli] = await Promise.all([
    build(nodeBundle('src-main/app/main.ts', files.main, ELECTRON_NODE_TARGET, MAIN_EXTERNALS)),
    build({
      ...common,
      entryPoints: [join(ROOT, 'src-main/preload/index.ts')],
      outfile: files.preload,
      // A sandboxed preload has no Node: build for the browser, so a Node import fails the build.
      platform: 'browser',
      format: 'cjs',
      target: CHROME_TARGET,
      external: ['electron'],
    }),
    build(nodeBundle('src-main/engine/engine-worker.ts', files.engine, USER_NODE_TARGET, ENGINE_EXTERNALS)),
    build(nodeBundle('src-main/engine/gpu/placements-child.ts', files.placements, USER_NODE_TARGET, ENGINE_EXTERNALS)),
    build(nodeBundle('src-main/cli/compiled.ts', files.cli, USER_NODE_TARGET, CLI_EXTERNALS)),
  ]);
  // The engine worker and placements child before the CLI that starts them: a CLI run during a
  // rebuild never finds a new CLI next to an old worker.
  for (const result of [main, preload, engine, placements, cli]) {
    for (const file of result.outputFiles ?? []) await writeAtomic(file.path, file.contents);
  }
  const meta = { main: main.metafile!, preload: preload.metafile!, engine: engine.metafile!, placements: placements.metafile!, cli: cli.metafile! };
  if (opts.writeMeta) await writeAtomic(join(outDir, 'build-meta.json'), JSON.stringify(meta));
  return { files, meta };
}

let tmpCounter = 0;

/** Writes `path` through a temporary file and a rename. */
async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${++tmpCounter}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
}

/** `--out DIR` from the command line, if given. */
function outArg(argv: readonly string[]): string | undefined {
  const i = argv.indexOf('--out');
  return i >= 0 ? argv[i + 1] : undefined;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const started = Date.now();
  buildApp({ outDir: outArg(process.argv.slice(2)), minify: process.argv.includes('--minify'), writeMeta: process.argv.includes('--meta') }).then(
    ({ files }) => {
      // --quiet: errors only (the `owlery` npm script builds before running the CLI, whose stdout may be JSON).
      if (process.argv.includes('--quiet')) return;
      for (const f of Object.values(files)) console.log(`  ${relative(process.cwd(), f)}`);
      console.log(`build:app done in ${Date.now() - started} ms`);
    },
    (err: unknown) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
