/**
 * Which graphics adapter onnxruntime's WebGPU provider will run on, from what the operating system
 * says about the machine's GPUs (onnxruntime-node does not expose Dawn's adapter info).
 *
 * Dawn asks for a high-performance adapter: a discrete GPU before an integrated one, and a software
 * rasterizer (Mesa's lavapipe/llvmpipe on Linux, WARP on Windows, SwiftShader) only when there is
 * nothing else. So: Linux reads `/sys/class/drm/card*` (PCI vendor, kernel driver, VRAM for amdgpu;
 * name, driver version and memory for NVIDIA from `/proc/driver/nvidia` and `nvidia-smi`), and with
 * no GPU there WebGPU can only be lavapipe; Windows asks `Win32_VideoController` through PowerShell;
 * macOS asks `system_profiler`. The result is a best guess and says where it came from.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, realpath } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { basename, join } from 'node:path';
import type { GpuAdapterInfo } from '../../../src-shared/engine.ts';

const VENDORS: Record<string, string> = { '0x10de': 'nvidia', '0x1002': 'amd', '0x8086': 'intel', '0x1af4': 'virtio', '0x15ad': 'vmware', '0x1414': 'microsoft', '0x106b': 'apple', '0x5143': 'qualcomm' };

/** Runs a command with a time limit; its stdout, or undefined when it is missing or fails. */
function run(cmd: string, args: string[], timeoutMs = 4000): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, windowsHide: true, maxBuffer: 4 * 1024 * 1024 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch {
    return undefined;
  }
}

/** The software adapter WebGPU falls back to on Linux (Mesa's lavapipe Vulkan driver). */
export const LAVAPIPE: GpuAdapterInfo = { name: 'llvmpipe (Mesa lavapipe, software Vulkan)', vendor: 'mesa', software: true, source: 'no GPU under /sys/class/drm' };

/**
 * The GPUs under `root`/sys/class/drm, best first (discrete NVIDIA/AMD, then integrated), or
 * lavapipe when there is none. `root` is for tests.
 */
export async function linuxAdapters(root = '/', nvidiaSmi: () => Promise<string | undefined> = () => run('nvidia-smi', ['--query-gpu=name,memory.total,driver_version', '--format=csv,noheader,nounits'])): Promise<GpuAdapterInfo[]> {
  const drm = join(root, 'sys/class/drm');
  let cards: string[] = [];
  try {
    cards = (await readdir(drm)).filter((c) => /^card\d+$/.test(c)).sort();
  } catch {
    // No DRM devices at all (a container or a machine without a GPU).
  }
  const found: (GpuAdapterInfo & { rank: number })[] = [];
  let smi: string[] | undefined;
  for (const card of cards) {
    const dev = join(drm, card, 'device');
    const vendorId = await readText(join(dev, 'vendor'));
    const deviceId = await readText(join(dev, 'device'));
    if (!vendorId) continue;
    let driver = '';
    try {
      driver = basename(await realpath(join(dev, 'driver')));
    } catch {
      // no driver bound
    }
    if (!driver || driver === 'simpledrm' || driver === 'vgem') continue;
    const vendor = VENDORS[vendorId] ?? vendorId;
    const info: GpuAdapterInfo & { rank: number } = { name: `${vendor.toUpperCase()} GPU ${deviceId ?? ''}`.trim(), vendor, driver, software: false, source: `/sys/class/drm/${card}`, rank: 2 };
    if (driver === 'nvidia') {
      info.rank = 0;
      let pci = '';
      try {
        pci = basename(await realpath(dev));
      } catch {
        // keep the generic name
      }
      const information = await readText(join(root, 'proc/driver/nvidia/gpus', pci, 'information'));
      const model = /^Model:\s*(.+)$/m.exec(information ?? '')?.[1];
      if (model) info.name = model.trim();
      const version = /Kernel Module\s+([\d.]+)/.exec((await readText(join(root, 'proc/driver/nvidia/version'))) ?? '')?.[1];
      if (version) info.driver = `nvidia ${version}`;
      smi ??= (await nvidiaSmi())?.trim().split('\n') ?? [];
      const row = smi.map((l) => l.split(',').map((s) => s.trim())).find((r) => r[0] === info.name) ?? smi[found.filter((f) => f.vendor === 'nvidia').length]?.split(',').map((s) => s.trim());
      if (row && Number(row[1]) > 0) info.memoryBytes = Number(row[1]) * 2 ** 20;
      if (row?.[2]) info.driver = `nvidia ${row[2]}`;
    } else if (driver === 'amdgpu' || driver === 'radeon') {
      const vram = Number(await readText(join(dev, 'mem_info_vram_total')));
      if (vram > 0) info.memoryBytes = vram;
      // An APU reports a small carve-out as VRAM; a discrete card has gigabytes.
      info.rank = vram >= 2 ** 31 ? 0 : 1;
    } else if (driver === 'i915' || driver === 'xe') {
      info.rank = 1;
    }
    found.push(info);
  }
  found.sort((a, b) => a.rank - b.rank);
  const out = found.map(({ rank: _rank, ...a }) => a);
  return out.length ? out : [LAVAPIPE];
}

interface CimController { Name?: string; AdapterCompatibility?: string; DriverVersion?: string; AdapterRAM?: number }

/** Windows: the video controllers, best first; WARP ("Microsoft Basic Render Driver") is software. */
export async function windowsAdapters(): Promise<GpuAdapterInfo[]> {
  const json = await run('powershell.exe', ['-NoProfile', '-NonInteractive', '-Command',
    'Get-CimInstance Win32_VideoController | Select-Object Name,AdapterCompatibility,DriverVersion,AdapterRAM | ConvertTo-Json -Compress'], 8000);
  if (!json) return [];
  let rows: CimController[];
  try {
    const parsed = JSON.parse(json) as CimController | CimController[];
    rows = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    return [];
  }
  const adapters = rows.filter((r) => r.Name).map((r): GpuAdapterInfo => ({
    name: r.Name!,
    vendor: (r.AdapterCompatibility ?? '').toLowerCase().replace(/ corporation| inc\.?|advanced micro devices.*/g, (m) => (m.startsWith('advanced') ? 'amd' : '')).trim() || 'unknown',
    driver: r.DriverVersion,
    // Win32_VideoController reports at most 4 GiB (a 32-bit field): a lower bound.
    memoryBytes: r.AdapterRAM && r.AdapterRAM > 0 ? r.AdapterRAM : undefined,
    software: /basic render|basic display|warp/i.test(r.Name!),
    source: 'Win32_VideoController',
  }));
  return adapters.sort((a, b) => Number(a.software) - Number(b.software) || (b.memoryBytes ?? 0) - (a.memoryBytes ?? 0));
}

/** macOS: the GPU (Apple silicon shares the machine's memory). */
export async function macAdapters(): Promise<GpuAdapterInfo[]> {
  const json = await run('system_profiler', ['SPDisplaysDataType', '-json'], 8000);
  try {
    const items = (JSON.parse(json ?? '{}') as { SPDisplaysDataType?: { sppci_model?: string; spdisplays_vendor?: string; spdisplays_vram?: string }[] }).SPDisplaysDataType ?? [];
    return items.filter((i) => i.sppci_model).map((i) => ({
      name: i.sppci_model!,
      vendor: (i.spdisplays_vendor ?? 'apple').replace(/^sppci_vendor_/, '').toLowerCase(),
      memoryBytes: i.spdisplays_vram ? Number.parseInt(i.spdisplays_vram, 10) * 2 ** 30 || undefined : totalmem(),
      software: false,
      source: 'system_profiler',
    }));
  } catch {
    return [];
  }
}

let cached: Promise<GpuAdapterInfo | undefined> | undefined;

/** The adapter WebGPU will most likely use on this machine (undefined when nothing is known), once per process. */
export function likelyWebGpuAdapter(platform: NodeJS.Platform = process.platform): Promise<GpuAdapterInfo | undefined> {
  cached ??= (async () => {
    const list = platform === 'linux' ? await linuxAdapters() : platform === 'win32' ? await windowsAdapters() : platform === 'darwin' ? await macAdapters() : [];
    return list[0];
  })();
  return cached;
}

/** `NVIDIA H200 (nvidia 580.65, 140 GiB)`: one line for the chat stats and the Models screen. */
export function describeAdapter(a: GpuAdapterInfo): string {
  const parts = [a.driver, a.memoryBytes ? `${Math.round(a.memoryBytes / 2 ** 30)} GiB` : undefined, a.software ? 'software' : undefined].filter(Boolean);
  return parts.length ? `${a.name} (${parts.join(', ')})` : a.name;
}
