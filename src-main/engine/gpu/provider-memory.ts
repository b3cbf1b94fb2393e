/**
 * What `auto` learned on this machine, per model package and adapter: the provider that ran it,
 * or the GPU provider that failed (at load, mid-answer or by crashing the engine process), so the
 * next start goes straight to what works. One small JSON file in the app's cache folder; best
 * effort (an unreadable or unwritable file only costs a re-probe).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ExecutionProviderName, GpuAdapterInfo } from '../../../src-shared/engine.ts';

type Concrete = Exclude<ExecutionProviderName, 'auto'>;

/** One remembered outcome. */
export interface ProviderMemory {
  provider: Concrete;
  /** true: it ran the model; false: it failed (`reason`), so `auto` skips it. */
  ok: boolean;
  reason?: string;
  at: string;
}

/** The key of a package on an adapter (a new GPU or driver re-probes). */
export function memoryKey(packageId: string, adapter: GpuAdapterInfo | undefined): string {
  return `${packageId}|${adapter ? `${adapter.name}|${adapter.driver ?? ''}` : 'no-gpu'}`;
}

async function readAll(file: string): Promise<Record<string, ProviderMemory>> {
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, ProviderMemory>) : {};
  } catch {
    return {};
  }
}

/** The remembered outcome for `key`, if any. */
export async function recallProvider(file: string, key: string): Promise<ProviderMemory | undefined> {
  const m = (await readAll(file))[key];
  return m && typeof m.provider === 'string' && typeof m.ok === 'boolean' ? m : undefined;
}

/** Records an outcome (atomically; errors ignored). */
export async function rememberProvider(file: string, key: string, m: Omit<ProviderMemory, 'at'>): Promise<void> {
  try {
    const all = await readAll(file);
    all[key] = { ...m, at: new Date().toISOString() };
    await mkdir(dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(all, null, 1)}\n`);
    await rename(tmp, file);
  } catch {
    // best effort
  }
}
