/**
 * Runs a benchmark child process (a TypeScript file, through tsx) and measures it from outside:
 * wall time, and peak RSS polled from `/proc/<pid>/status` (VmHWM) every 200 ms, with an RSS sample
 * every `sampleEveryMs`. The child reports its own numbers (e.g. `resourceUsage().maxRSS`) on stdout.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../', import.meta.url));

/** What {@link runMeasured} saw. */
export interface MeasuredChild {
  code: number | null;
  stdout: string;
  wallMs: number;
  /** Highest VmHWM polled (KiB); 0 where /proc is not available. */
  polledHwmKiB: number;
  /** [seconds since start, RSS MiB] every `sampleEveryMs`. */
  rssSamples: [number, number][];
}

function procStatus(pid: number): { hwmKiB: number; rssKiB: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0);
    return { hwmKiB: kib('VmHWM'), rssKiB: kib('VmRSS') };
  } catch {
    return undefined;
  }
}

/** Runs `node --import tsx <script> ...args` in the repository and measures it (see the module comment). */
export async function runMeasured(script: string, args: readonly string[], opts: { sampleEveryMs?: number; timeoutMs?: number } = {}): Promise<MeasuredChild> {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  let polledHwmKiB = 0;
  const rssSamples: [number, number][] = [];
  const t0 = performance.now();
  let lastSample = -Infinity;
  const every = opts.sampleEveryMs ?? 10_000;
  const timer = setInterval(() => {
    const s = proc.pid === undefined ? undefined : procStatus(proc.pid);
    if (!s) return;
    polledHwmKiB = Math.max(polledHwmKiB, s.hwmKiB);
    const t = performance.now() - t0;
    if (t - lastSample >= every) {
      rssSamples.push([Math.round(t / 1000), Math.round(s.rssKiB / 1024)]);
      lastSample = t;
    }
  }, 200);
  const killer = opts.timeoutMs ? setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs) : undefined;
  const code = await new Promise<number | null>((res) => proc.on('close', res));
  clearInterval(timer);
  if (killer) clearTimeout(killer);
  return { code, stdout, wallMs: performance.now() - t0, polledHwmKiB, rssSamples };
}
