/**
 * Tiny mPLUG-Owl2 checkpoints for tests, built once per option set into
 * `.cache/tiny/<hash>/` (git-ignored) and reused.
 *
 * The hash covers the options and the source of the factory (models/tiny, the checkpoint writers,
 * dtype conversions, sin-cos tables), so editing the factory rebuilds. Safe when several test
 * processes ask at once: each builds into its own temporary folder and renames it into place; the
 * loser of the race discards its copy.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeTinyCheckpoint } from '../../models/tiny/factory.ts';
import type { TinyCheckpointOptions } from '../../models/tiny/factory.ts';

/** Repository root. */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Where tiny checkpoints are cached. */
export const TINY_CACHE_DIR = join(REPO_ROOT, '.cache', 'tiny');

const FACTORY_SOURCES = ['models/tiny', 'models/checkpoint', 'models/owl2/sincos.ts', 'models/owl2/config.ts'];

function canonical(v: unknown): string {
  if (v === undefined) return 'null';
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`;
}

async function sourceFiles(rel: string): Promise<string[]> {
  const abs = join(REPO_ROOT, rel);
  if ((await stat(abs)).isFile()) return [rel];
  const out: string[] = [];
  for (const e of (await readdir(abs, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory()) out.push(...await sourceFiles(join(rel, e.name)));
    else if (e.name.endsWith('.ts')) out.push(join(rel, e.name));
  }
  return out;
}

let factoryHash: Promise<string> | undefined;

/** Hash of the factory's source code. */
function factorySourceHash(): Promise<string> {
  factoryHash ??= (async () => {
    const h = createHash('sha256');
    for (const root of FACTORY_SOURCES) {
      for (const f of await sourceFiles(root)) h.update(f).update('\0').update(await readFile(join(REPO_ROOT, f))).update('\0');
    }
    return h.digest('hex');
  })();
  return factoryHash;
}

/** Normalised options: defaults filled in, so equal checkpoints share a cache entry. */
function normalise(opts: TinyCheckpointOptions): Required<Omit<TinyCheckpointOptions, 'config'>> & { config: Record<string, unknown> } {
  return { seed: opts.seed, format: opts.format ?? 'safetensors', dtype: opts.dtype ?? 'F32', shards: Math.max(1, opts.shards ?? 1), config: opts.config ?? {} };
}

/** The cache key of an option set (depends on the factory's source too). */
export async function tinyCheckpointKey(opts: TinyCheckpointOptions): Promise<string> {
  return createHash('sha256').update(canonical(normalise(opts))).update(await factorySourceHash()).digest('hex').slice(0, 24);
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Builds (once) and returns the folder of a tiny checkpoint for these options. */
export async function ensureTinyCheckpoint(opts: TinyCheckpointOptions): Promise<string> {
  const key = await tinyCheckpointKey(opts);
  const dir = join(TINY_CACHE_DIR, key);
  if (await exists(dir)) return dir;
  const tmp = join(TINY_CACHE_DIR, `.tmp-${key}-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await writeTinyCheckpoint(tmp, normalise(opts));
    try {
      await rename(tmp, dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM') && (await exists(dir))) return dir; // another process won
      throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dir;
}
