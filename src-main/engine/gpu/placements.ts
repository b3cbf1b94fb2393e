/**
 * `owlery inspect --placements [--provider P] PKG`: where onnxruntime puts each graph's nodes on a
 * provider, which Memcpy nodes it inserts between providers, and how many kernels one decode step
 * runs. onnxruntime-node has no API for placements, so child processes (placements-child.ts)
 * create the sessions with onnxruntime's verbose log on their stderr, which is parsed here, and
 * profile one decode step (its kernel events).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { GraphName } from '../../../models/package/manifest.ts';
import type { ConcreteProvider } from '../providers.ts';

/** One graph's session on the provider. */
export interface GraphPlacement {
  ok: boolean;
  error?: string;
  /** Nodes per execution provider (onnxruntime's names, e.g. `WebGpuExecutionProvider`), after its graph optimizations. */
  nodes: Record<string, number>;
  /** The nodes not on the requested provider, `OpType (node name)` (at most 200). */
  elsewhere: string[];
  /** Memcpy nodes onnxruntime inserted: copies to the device after these values, and to the host before these nodes. */
  memcpyFromHost: string[];
  memcpyToHost: string[];
}

/** What `inspect --placements` reports. */
export interface PlacementReport {
  provider: ConcreteProvider;
  /** onnxruntime's name of the requested provider. */
  providerEp: string;
  graphs: Partial<Record<GraphName, GraphPlacement>>;
  /** Kernels the decoder ran for one decode step (a text token after an 8-token prefill), by op type. */
  decodeStep?: { total: number; kernels: Record<string, number> } | { error: string };
}

const EP_NAMES: Record<ConcreteProvider, string> = {
  cpu: 'CPUExecutionProvider', cuda: 'CUDAExecutionProvider', dml: 'DmlExecutionProvider', coreml: 'CoreMLExecutionProvider', webgpu: 'WebGpuExecutionProvider',
};

/** onnxruntime colours its log lines on a terminal. */
const ANSI_COLOUR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Parses one session's verbose onnxruntime log. */
export function parsePlacementLog(text: string, providerEp: string): Omit<GraphPlacement, 'ok' | 'error'> {
  const nodes: Record<string, number> = {};
  const elsewhere: string[] = [];
  const memcpyFromHost: string[] = [];
  const memcpyToHost: string[] = [];
  let ep = '';
  for (const raw of text.split('\n')) {
    const line = raw.replace(ANSI_COLOUR, '');
    const placed = /(?:All nodes|Node\(s\)) placed on \[(\w+)\]\. Number of nodes: (\d+)/.exec(line);
    if (placed) {
      ep = placed[1];
      nodes[ep] = (nodes[ep] ?? 0) + Number(placed[2]);
      continue;
    }
    const node = /VerifyEachNodeIsAssignedToAnEp\]\s+(\S+) \((.*)\)\s*$/.exec(line);
    if (node && ep && ep !== providerEp && elsewhere.length < 200) elsewhere.push(`${node[1]} (${node[2]})`);
    const from = /Add MemcpyFromHost after (\S+) for/.exec(line);
    if (from) memcpyFromHost.push(from[1]);
    const to = /Add MemcpyToHost before (\S+) for/.exec(line);
    if (to) memcpyToHost.push(to[1]);
  }
  return { nodes, elsewhere, memcpyFromHost, memcpyToHost };
}

/** Runs one child; returns its last stdout line parsed, and its stderr. */
async function runChild(dir: string, provider: ConcreteProvider, what: GraphName | 'profile', childEntry: URL): Promise<{ result: unknown; stderr: string }> {
  const entry = fileURLToPath(childEntry);
  const child = spawn(process.execPath, [entry, dir, provider, what], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  try {
    return { result: JSON.parse(stdout.trim().split('\n').pop() ?? ''), stderr };
  } catch {
    const tail = stderr.split('\n').filter((l) => /error/i.test(l)).slice(-1)[0] ?? `exit code ${code}`;
    throw new OwleryError('PROVIDER_UNAVAILABLE', `could not inspect ${what} on ${provider}: ${tail.trim().slice(0, 300)}`);
  }
}

/** Runs the children (one per graph, then the profiled decode step) and collects the report. */
/**
 * Runs the children (`childEntry`: default the tsx bootstrap next to this file, for running from
 * sources; the compiled CLI passes the compiled child, out/engine/placements-child.js).
 */
export async function placementReport(dir: string, provider: ConcreteProvider, childEntry: URL = new URL('./placements-bootstrap.js', import.meta.url)): Promise<PlacementReport> {
  const providerEp = EP_NAMES[provider];
  const graphs: PlacementReport['graphs'] = {};
  for (const name of ['vision', 'embed', 'decoder'] as GraphName[]) {
    const { result, stderr } = await runChild(dir, provider, name, childEntry);
    const session = result as { ok: boolean; error?: string };
    graphs[name] = { ok: session.ok, ...(session.error ? { error: session.error } : {}), ...parsePlacementLog(stderr, providerEp) };
  }
  const decodeStep = (await runChild(dir, provider, 'profile', childEntry)).result as PlacementReport['decodeStep'];
  return { provider, providerEp, graphs, decodeStep };
}

/** The report as lines of text. */
export function describePlacements(r: PlacementReport): string[] {
  const out = [`node placements on ${r.provider} (${r.providerEp}), after onnxruntime's graph optimizations:`];
  for (const [name, g] of Object.entries(r.graphs)) {
    if (!g.ok) {
      out.push(`  ${name.padEnd(8)} session failed: ${g.error}`);
      continue;
    }
    const total = Object.values(g.nodes).reduce((a, b) => a + b, 0);
    const onIt = g.nodes[r.providerEp] ?? 0;
    const others = Object.entries(g.nodes).filter(([ep]) => ep !== r.providerEp).map(([ep, n]) => `${n} on ${ep}`);
    out.push(`  ${name.padEnd(8)} ${onIt} of ${total} nodes on ${r.providerEp}${others.length ? `, ${others.join(', ')}` : ''}; ` +
      `Memcpy nodes: ${g.memcpyFromHost.length} to the device, ${g.memcpyToHost.length} to the host`);
    if (g.elsewhere.length) out.push(`           elsewhere: ${g.elsewhere.slice(0, 12).join(', ')}${g.elsewhere.length > 12 ? `, … (${g.elsewhere.length})` : ''}`);
    const copies = [...g.memcpyFromHost.map((v) => `→device after ${v}`), ...g.memcpyToHost.map((v) => `→host before ${v}`)];
    if (copies.length) out.push(`           copies: ${copies.slice(0, 8).join(', ')}${copies.length > 8 ? `, … (${copies.length})` : ''}`);
  }
  const d = r.decodeStep;
  if (d && 'error' in d) out.push(`  decode step: not profiled (${d.error})`);
  else if (d) {
    const ops = Object.entries(d.kernels).sort((a, b) => b[1] - a[1]).map(([op, n]) => `${op} ${n}`).join(', ');
    out.push(`  decode step (1 text token after 8): ${d.total} kernels run: ${ops}`);
  }
  return out;
}
