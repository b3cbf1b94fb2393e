/**
 * Vitest global setup (node project): builds the renderer into `out/renderer/` with Vite when the
 * build is missing or older than its sources, so the browser tests always drive the code in the
 * tree. "Older" is decided by a hash of the sources (renderer, shared contracts, Vite config,
 * lockfile), kept beside the build, not by file times (a fresh clone has new times everywhere).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The build the harness serves. */
export const RENDERER_BUILD_DIR = join(REPO_ROOT, 'out', 'renderer');
const HASH_FILE = join(REPO_ROOT, 'out', '.renderer-source-hash');
const SOURCES = ['src-renderer', 'src-shared', 'vite.config.ts', 'package-lock.json'];

async function files(path: string): Promise<string[]> {
  const entries = await readdir(path, { withFileTypes: true }).catch(() => null);
  if (!entries) return existsSync(path) ? [path] : [];
  const out: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(path, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** sha256 over the renderer's sources (paths and contents). */
export async function rendererSourceHash(): Promise<string> {
  const h = createHash('sha256');
  for (const root of SOURCES) {
    for (const f of await files(join(REPO_ROOT, root))) h.update(relative(REPO_ROOT, f)).update('\0').update(await readFile(f)).update('\0');
  }
  return h.digest('hex');
}

/** Builds the renderer unless the build matches the sources; returns whether it built. */
export async function ensureRendererBuilt(): Promise<boolean> {
  const hash = await rendererSourceHash();
  const current = await readFile(HASH_FILE, 'utf8').catch(() => '');
  if (current.trim() === hash && existsSync(join(RENDERER_BUILD_DIR, 'index.html'))) return false;
  const { build } = await import('vite');
  await build({ configFile: join(REPO_ROOT, 'vite.config.ts'), logLevel: 'error' });
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  await writeFile(HASH_FILE, `${hash}\n`);
  return true;
}

/** Vitest global setup entry. */
export default async function setup(): Promise<void> {
  await ensureRendererBuilt();
}
