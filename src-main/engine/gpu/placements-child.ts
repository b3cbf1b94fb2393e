/**
 * Child process of `owlery inspect --placements` (placements.ts), one per graph so that each
 * process's stderr is exactly one session's log: creates a graph's session of a package on one
 * provider with onnxruntime's log at its verbose level (on stderr, where the parent reads the node
 * placements and the Memcpy nodes onnxruntime inserted), or (`profile`) runs the decoder for a
 * prefill and one decode step with session profiling on. Prints one JSON line on stdout.
 *
 *   placements-bootstrap.js <package-dir> <provider> vision|embed|decoder|profile
 */
import { readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { readPackage } from '../../../models/package/read.ts';
import type { GraphName } from '../../../models/package/manifest.ts';
import { providerOptions, type ConcreteProvider } from '../providers.ts';
import { DecoderKvCache, runDecoderStep } from '../mplug-owl2/kv-cache.ts';
import { GpuDecoder } from './gpu-decoder.ts';


const [dir, provider, what] = process.argv.slice(2) as [string, ConcreteProvider, GraphName | 'profile'];
const pkg = await readPackage(dir, { verify: false });

/** Creates one graph's session with onnxruntime's verbose log on stderr. */
async function createSession(name: GraphName): Promise<{ ok: boolean; error?: string }> {
  ort.env.logLevel = 'verbose';
  try {
    const s = await ort.InferenceSession.create(pkg.graphPaths[name], { ...providerOptions(provider, undefined), logSeverityLevel: 0, logVerbosityLevel: 0 });
    await s.release();
    return { ok: true };
  } catch (err) {
    return { ok: false, error: String((err as Error).message ?? err).split('\n')[0] };
  }
}

/** A prefill of 8 text positions, then one decode step, with profiling: the kernels of the last run. */
async function profileDecodeStep(): Promise<{ kernels: Record<string, number>; total: number }> {
  const prefix = join(tmpdir(), `owlery-placements-${process.pid}`);
  const so = { ...providerOptions(provider, undefined), enableProfiling: true, profileFilePrefix: prefix };
  const llm = pkg.manifest.config.llm;
  const H = llm.hiddenSize;
  const embeds = (T: number): Float32Array => Float32Array.from({ length: T * H }, (_, i) => Math.sin(i) * 0.1);
  let session: { endProfiling(): void; release(): Promise<void> };
  if (pkg.manifest.graphs.decoder.variant === 'gpu') {
    const d = await GpuDecoder.create(pkg.graphPaths.decoder, so, llm);
    const cache = d.emptyCache();
    await d.decode(embeds(8), new BigInt64Array(8), cache);
    await d.decode(embeds(1), new BigInt64Array(1), cache);
    cache.release();
    session = d;
  } else {
    const s = await ort.InferenceSession.create(pkg.graphPaths.decoder, so);
    const cache = new DecoderKvCache(llm.numLayers, llm.numKvHeads, llm.headDim);
    await runDecoderStep(s, cache, embeds(8), new BigInt64Array(8), H);
    await runDecoderStep(s, cache, embeds(1), new BigInt64Array(1), H);
    session = s;
  }
  session.endProfiling();
  await session.release();
  const files = (await readdir(tmpdir())).filter((f) => f.startsWith(`owlery-placements-${process.pid}`)).map((f) => join(tmpdir(), f));
  const file = files[0];
  if (!file) throw new Error('onnxruntime wrote no profile');
  try {
    if (files.length !== 1) throw new Error(`expected one profile, onnxruntime wrote ${files.length}`);
    const events = JSON.parse(await readFile(file, 'utf8')) as { cat?: string; name: string; ts: number; dur: number; args?: { op_name?: string } }[];
    const runs = events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts);
    const last = runs[runs.length - 1];
    const kernels: Record<string, number> = {};
    let total = 0;
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time') || e.ts < last.ts || e.ts > last.ts + last.dur) continue;
      const op = e.args?.op_name ?? '?';
      kernels[op] = (kernels[op] ?? 0) + 1;
      total++;
    }
    return { kernels, total };
  } finally {
    for (const f of files) await rm(f, { force: true });
  }
}

if (what === 'profile') {
  let out: unknown;
  try {
    out = await profileDecodeStep();
  } catch (err) {
    out = { error: String((err as Error).message ?? err).split('\n')[0] };
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
} else {
  process.stdout.write(`${JSON.stringify(await createSession(what))}\n`);
}
