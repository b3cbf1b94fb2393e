/**
 * Benchmark helper (a script): rewrites a package's `decoder.onnx` with the current graph builder
 * while keeping its weights, so a large package (the synthetic 7B takes ~20 min to write) can be
 * compared before/after a graph change without converting again.
 *
 *   npx tsx bench/regraph-decoder.ts --from PKG --to DIR [--text-only-kv]
 *
 * DIR gets hard links to every file of PKG except `decoder.onnx` (rebuilt; its initializers point
 * at the same offsets of the same `decoder.onnx.data`, looked up by name in PKG's decoder.onnx)
 * and `manifest.json` (decoder entry and graph inputs/outputs updated). `--text-only-kv` builds
 * the benchmark-only variant without MAM branch 1 for k/v (wrong for image tokens) to measure
 * what the routing costs on text-only steps.
 */
import { copyFile, link, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { TensorInfo } from '../models/checkpoint/types.ts';
import { ONNX_IR_VERSION, ONNX_OPSET } from '../models/onnx/graph.ts';
import { decodeModel, encodeModel } from '../models/onnx/proto.ts';
import type { TensorProtoSpec } from '../models/onnx/proto.ts';
import { MS_DOMAIN } from '../models/onnx/weights.ts';
import type { WeightReader } from '../models/onnx/weights.ts';
import { buildDecoderGraph } from '../models/owl2/decoder-graph.ts';
import type { Owl2Config } from '../models/owl2/config.ts';
import { graphIO } from '../models/convert.ts';
import { linearFormat } from '../models/quant/plan.ts';
import type { LinearFormat } from '../models/quant/plan.ts';
import { sha256File } from '../models/package/files.ts';
import { MANIFEST_FILE, PACKAGE_FORMAT_VERSION } from '../models/package/manifest.ts';
import type { PackageManifest } from '../models/package/manifest.ts';

const { values: opt } = parseArgs({ options: { from: { type: 'string' }, to: { type: 'string' }, 'text-only-kv': { type: 'boolean', default: false } } });
if (!opt.from || !opt.to) throw new Error('usage: tsx bench/regraph-decoder.ts --from PKG --to DIR [--text-only-kv]');
const from = resolve(opt.from);
const to = resolve(opt.to);

/** Shapes of the checkpoint tensors the decoder reads (values are never read). */
function decoderTensors(cfg: Owl2Config): WeightReader {
  const c = cfg.llm;
  const H = c.hiddenSize;
  const m = new Map<string, TensorInfo>();
  const add = (name: string, shape: number[]) => m.set(name, { name, dtype: 'F32', shape, file: 'shapes-only', byteLength: 0 } as TensorInfo);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    for (const n of ['input_layernorm', 'post_attention_layernorm']) for (const b of [0, 1]) add(`${p}.${n}.multiway.${b}.weight`, [H]);
    add(`${p}.self_attn.q_proj.weight`, [c.numHeads * c.headDim, H]);
    add(`${p}.self_attn.o_proj.weight`, [H, c.numHeads * c.headDim]);
    if (c.attentionBias) {
      add(`${p}.self_attn.q_proj.bias`, [c.numHeads * c.headDim]);
      add(`${p}.self_attn.o_proj.bias`, [H]);
    }
    for (const n of ['k_proj', 'v_proj']) {
      for (const b of [0, 1]) {
        add(`${p}.self_attn.${n}.multiway.${b}.weight`, [c.numKvHeads * c.headDim, H]);
        if (c.attentionBias) add(`${p}.self_attn.${n}.multiway.${b}.bias`, [c.numKvHeads * c.headDim]);
      }
    }
    add(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, H]);
    add(`${p}.mlp.up_proj.weight`, [c.intermediateSize, H]);
    add(`${p}.mlp.down_proj.weight`, [H, c.intermediateSize]);
  }
  add('model.norm.weight', [H]);
  add(c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', [c.vocabSize, H]);
  return { tensors: m, readFloat32: () => Promise.reject(new Error('regraph: weights are never read')) } as unknown as WeightReader;
}

const manifest = JSON.parse(await readFile(join(from, MANIFEST_FILE), 'utf8')) as PackageManifest;
const dec = manifest.graphs.decoder;
const old = decodeModel(await readFile(join(from, dec.file)));
const oldInit = new Map(old.graph.initializers.map((t) => [t.name, t]));

const llm = manifest.quantizationDetail?.llm.precision ?? manifest.quantization.llm;
const head = manifest.quantizationDetail?.lmHead.precision ?? llm;
// The block size the package was written with (packages from before the int4 block size changed keep theirs).
const asWritten = (precision: typeof llm, part: 'llm' | 'lmHead'): LinearFormat => {
  const f = linearFormat(precision);
  const blockSize = manifest.quantizationDetail?.[part].blockSize;
  return f.kind === 'matmulnbits' && blockSize ? { ...f, blockSize } : f;
};
const g = buildDecoderGraph(manifest.config, decoderTensors(manifest.config), {
  linear: asWritten(llm, 'llm'), lmHead: asWritten(head, 'lmHead'), textOnlyKv: opt['text-only-kv'],
});

const initializers: TensorProtoSpec[] = [...g.constants];
for (const w of g.weights) {
  const o = oldInit.get(w.name);
  if (!o?.external) throw new Error(`regraph: ${w.name} is not an external initializer of ${dec.file}`);
  if (o.dataType !== w.dataType || o.dims.join() !== w.dims.join()) throw new Error(`regraph: ${w.name} is [${o.dims.join(', ')}] type ${o.dataType} there, [${w.dims.join(', ')}] type ${w.dataType} here`);
  initializers.push({ name: w.name, dataType: w.dataType, dims: [...w.dims], external: { ...o.external, location: basename(dec.data ?? `${dec.file}.data`) } });
}
const usesMs = g.nodes.some((n) => n.domain === MS_DOMAIN);
const bytes = encodeModel({
  irVersion: ONNX_IR_VERSION,
  opsets: [{ domain: '', version: ONNX_OPSET }, ...(usesMs ? [{ domain: MS_DOMAIN, version: 1 }] : [])],
  producerName: 'owlery',
  producerVersion: old.producerName === 'owlery' ? (old.metadata.producer_version ?? '1') : '1',
  graph: { name: g.name, nodes: g.nodes, initializers, inputs: g.inputs, outputs: g.outputs },
  metadata: old.metadata,
});

await rm(to, { recursive: true, force: true });
await mkdir(to, { recursive: true });
for (const name of await readdir(from)) {
  if (name === dec.file || name === MANIFEST_FILE) continue;
  if (name.startsWith('.')) await copyFile(join(from, name), join(to, name)); // the verified stamp: data files keep their mtime
  else await link(join(from, name), join(to, name));
}
await writeFile(join(to, dec.file), bytes);
const entry = manifest.files.find((f) => f.path === dec.file)!;
entry.size = bytes.byteLength;
entry.sha256 = await sha256File(join(to, dec.file));
({ inputs: dec.inputs, outputs: dec.outputs } = graphIO(g));
// The decoder now has the current contract, whatever the package's format version was.
(manifest as { formatVersion: number }).formatVersion = PACKAGE_FORMAT_VERSION;
await writeFile(join(to, MANIFEST_FILE), JSON.stringify(manifest, null, 2));
console.log(`wrote ${to} (${g.nodes.length} decoder nodes, ${g.weights.length} weights${opt['text-only-kv'] ? ', text-only k/v' : ''})`);
