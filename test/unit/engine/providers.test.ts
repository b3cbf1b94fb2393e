/**
 * Provider choice: the `auto` order per OS, software adapters skipped unless asked for by name,
 * the remembered winner tried first and a remembered GPU failure skipped; the adapter found in the
 * Linux sysfs and NVIDIA's proc files; the memory file round trip.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { autoProviders, createWithFallback } from '../../../src-main/engine/providers.ts';
import { LAVAPIPE, describeAdapter, linuxAdapters } from '../../../src-main/engine/gpu/adapter.ts';
import { memoryKey, recallProvider, rememberProvider } from '../../../src-main/engine/gpu/provider-memory.ts';
import type { GpuAdapterInfo } from '../../../src-shared/engine.ts';

const H200: GpuAdapterInfo = { name: 'NVIDIA H200', vendor: 'nvidia', driver: 'nvidia 580.65', memoryBytes: 141 * 2 ** 30, software: false, source: 'test' };

/** `create` that fails for the providers in `broken` (as onnxruntime does for a missing one). */
function creator(broken: string[]) {
  const tried: string[] = [];
  const create = async (so: { executionProviders?: readonly unknown[] }) => {
    const p = String(so.executionProviders?.[0]);
    tried.push(p);
    if (broken.includes(p)) throw new Error(`${p} is not available in this build`);
    return p;
  };
  return { tried, create };
}

describe('auto provider order', () => {
  it('is DirectML, WebGPU, CPU on Windows; CUDA, WebGPU, CPU on Linux x64; WebGPU, CPU on Apple silicon', () => {
    expect(autoProviders('win32', 'x64')).toEqual(['dml', 'webgpu', 'cpu']);
    expect(autoProviders('linux', 'x64')).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(autoProviders('linux', 'arm64')).toEqual(['webgpu', 'cpu']);
    expect(autoProviders('darwin', 'arm64')).toEqual(['webgpu', 'cpu']);
    expect(autoProviders('darwin', 'x64')).toEqual(['cpu']);
  });

  it('falls through a missing CUDA to WebGPU on a real adapter and reports the adapter', async () => {
    const { tried, create } = creator(['cuda']);
    const { value, report } = await createWithFallback('auto', undefined, create, { platform: 'linux', arch: 'x64', adapter: H200 });
    expect(value).toBe('webgpu');
    expect(tried).toEqual(['cuda', 'webgpu']);
    expect(report).toMatchObject({ used: 'webgpu', adapter: { name: 'NVIDIA H200' } });
    expect(report.attempts[0]).toMatchObject({ provider: 'cuda', ok: false, error: 'cuda is not available in this build' });
  });

  it('skips a software adapter under auto but uses it when WebGPU is asked for by name', async () => {
    const auto = creator(['cuda']);
    const { report } = await createWithFallback('auto', undefined, auto.create, { platform: 'linux', arch: 'x64', adapter: LAVAPIPE });
    expect(report.used).toBe('cpu');
    expect(auto.tried).toEqual(['cuda', 'cpu']);
    expect(report.attempts.find((a) => a.provider === 'webgpu')?.error).toMatch(/software adapter \(llvmpipe/);
    expect(report.adapter).toBeUndefined();
    const forced = creator([]);
    expect((await createWithFallback('webgpu', undefined, forced.create, { adapter: LAVAPIPE })).report).toMatchObject({ used: 'webgpu', adapter: { software: true } });
  });

  it('tries the remembered winner first and skips a provider that failed here before, saying why', async () => {
    const first = creator([]);
    await createWithFallback('auto', undefined, first.create, { platform: 'win32', arch: 'x64', adapter: H200, memory: { provider: 'webgpu', ok: true, at: '' } });
    expect(first.tried).toEqual(['webgpu']);
    const again = creator([]);
    const { report } = await createWithFallback('auto', undefined, again.create, {
      platform: 'win32', arch: 'x64', adapter: H200, memory: { provider: 'dml', ok: false, reason: 'device removed', at: '' },
    });
    expect(again.tried).toEqual(['webgpu']);
    expect(report.notes?.[0]).toMatch(/dml failed here before.*device removed/);
  });
});

describe('adapters on Linux', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'owlery-sysfs-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function card(base: string, n: number, vendor: string, driver: string, pci: string, extra: Record<string, string> = {}): Promise<void> {
    const dev = join(base, 'sys/devices/pci', pci);
    await mkdir(join(base, 'sys/bus/pci/drivers', driver), { recursive: true });
    await mkdir(dev, { recursive: true });
    await writeFile(join(dev, 'vendor'), `${vendor}\n`);
    await writeFile(join(dev, 'device'), '0x2335\n');
    for (const [k, v] of Object.entries(extra)) await writeFile(join(dev, k), v);
    await symlink(join(base, 'sys/bus/pci/drivers', driver), join(dev, 'driver'));
    await mkdir(join(base, 'sys/class/drm', `card${n}`), { recursive: true });
    await symlink(dev, join(base, 'sys/class/drm', `card${n}`, 'device'));
  }

  it('finds lavapipe (software) when there is no GPU', async () => {
    expect(await linuxAdapters(join(root, 'empty'), async () => undefined)).toEqual([LAVAPIPE]);
  });

  it('puts a discrete NVIDIA card (name, driver, memory from nvidia-smi) before an integrated Intel GPU', async () => {
    const base = join(root, 'two');
    await card(base, 0, '0x8086', 'i915', '0000:00:02.0');
    await card(base, 1, '0x10de', 'nvidia', '0000:01:00.0');
    await mkdir(join(base, 'proc/driver/nvidia/gpus/0000:01:00.0'), { recursive: true });
    await writeFile(join(base, 'proc/driver/nvidia/gpus/0000:01:00.0/information'), 'Model: \t\t NVIDIA H200\nIRQ: 1\n');
    await writeFile(join(base, 'proc/driver/nvidia/version'), 'NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul\n');
    const list = await linuxAdapters(base, async () => 'NVIDIA H200, 143771, 580.65.06\n');
    expect(list.map((a) => a.vendor)).toEqual(['nvidia', 'intel']);
    expect(list[0]).toMatchObject({ name: 'NVIDIA H200', driver: 'nvidia 580.65.06', memoryBytes: 143771 * 2 ** 20, software: false });
    expect(describeAdapter(list[0])).toBe('NVIDIA H200 (nvidia 580.65.06, 140 GiB)');
  });

  it('reads an AMD card\'s VRAM', async () => {
    const base = join(root, 'amd');
    await card(base, 0, '0x1002', 'amdgpu', '0000:03:00.0', { mem_info_vram_total: String(8 * 2 ** 30) });
    expect((await linuxAdapters(base, async () => undefined))[0]).toMatchObject({ vendor: 'amd', driver: 'amdgpu', memoryBytes: 8 * 2 ** 30 });
  });
});

describe('provider memory', () => {
  it('remembers per package and adapter, and survives a missing or damaged file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'owlery-providers-'));
    try {
      const file = join(dir, 'sub', 'providers.json');
      const key = memoryKey('pkg-1', H200);
      expect(await recallProvider(file, key)).toBeUndefined();
      await rememberProvider(file, key, { provider: 'webgpu', ok: false, reason: 'device lost' });
      expect(await recallProvider(file, key)).toMatchObject({ provider: 'webgpu', ok: false, reason: 'device lost' });
      expect(await recallProvider(file, memoryKey('pkg-1', undefined))).toBeUndefined();
      await writeFile(file, '{not json');
      expect(await recallProvider(file, key)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
