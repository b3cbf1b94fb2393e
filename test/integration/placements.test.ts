/**
 * `owlery inspect --placements` on WebGPU (lavapipe on machines without a GPU): the GPU decoder
 * graph runs entirely on the WebGPU provider with no Memcpy nodes, while the CPU decoder graph
 * leaves its int64 prep subgraph and its FusedMatMul attention products on the CPU (what the
 * report exists to show). Also through the CLI, as a user runs it.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { convertCheckpoint } from '../../models/convert.ts';
import { placementReport } from '../../src-main/engine/gpu/placements.ts';
import { ensureTinyCheckpoint, REPO_ROOT } from '../helpers/tiny-model.ts';
import { describeWebGpu } from '../helpers/webgpu.ts';

const WEBGPU = 'WebGpuExecutionProvider';
let work: string;
let cpuPkg: string;
let gpuPkg: string;

await describeWebGpu('inspect --placements on WebGPU', () => {
  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'owlery-placements-'));
    const ckpt = await ensureTinyCheckpoint({ seed: 1 });
    cpuPkg = join(work, 'cpu');
    gpuPkg = join(work, 'gpu');
    await convertCheckpoint(ckpt, cpuPkg, { verify: false });
    await convertCheckpoint(ckpt, gpuPkg, { preset: 'gpu-int4', verify: false });
  });

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('puts every node of the GPU decoder on WebGPU, without Memcpy nodes, and counts a decode step\'s kernels', async () => {
    const r = await placementReport(gpuPkg, 'webgpu');
    const d = r.graphs.decoder!;
    expect(d.ok).toBe(true);
    expect(Object.keys(d.nodes)).toEqual([WEBGPU]);
    expect(d.elsewhere).toEqual([]);
    expect([...d.memcpyFromHost, ...d.memcpyToHost]).toEqual([]);
    expect(r.graphs.embed?.nodes[WEBGPU]).toBeGreaterThan(0);
    const step = r.decodeStep as { total: number; kernels: Record<string, number> };
    // One If for the MAM branch; per layer one attention and no copies.
    expect(step.kernels.If).toBe(1);
    expect(step.kernels.GroupQueryAttention).toBe(2);
    expect(step.kernels.MemcpyFromHost ?? 0).toBe(0);
    expect(step.total).toBeLessThan(30);
  });

  it('shows the CPU decoder graph\'s nodes that stay on the CPU and the copies they cause', async () => {
    const r = await placementReport(cpuPkg, 'webgpu');
    const d = r.graphs.decoder!;
    expect(d.nodes.CPUExecutionProvider).toBeGreaterThan(10);
    expect(d.elsewhere.some((n) => n.startsWith('NonZero'))).toBe(true);
    expect(d.elsewhere.some((n) => n.startsWith('FusedMatMul'))).toBe(true);
    expect(d.memcpyFromHost.length).toBeGreaterThan(0);
  });

  it('prints the report from the command line', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin/owlery.js'), 'inspect', '--placements', '--provider', 'webgpu', gpuPkg]);
    expect(stdout).toMatch(/decoder +(\d+) of \1 nodes on WebGpuExecutionProvider; Memcpy nodes: 0 to the device, 0 to the host/);
    expect(stdout).toMatch(/decode step .*: \d+ kernels run: .*GroupQueryAttention 2/);
  });
});
