/**
 * Hugging Face mPLUG-Owl2 checkpoint folder (or an open `CheckpointReader`) → Owlery model package
 * (docs/engine-contract.md).
 *
 * Parses config.json (refusing other models and sizes no real checkpoint has), opens the checkpoint
 * (safetensors or PyTorch .bin, single or sharded), checks the model size config.json implies and
 * tokenizer.model against the config (convert-inputs.ts), then every expected tensor and its shape, resolves the
 * precision plan (preset `cpu`/`gpu`/`reference` plus overrides), checks the destination's free
 * disk space against the size estimated from the tensor list, streams the three graphs' weights
 * tensor by tensor (quantized or converted on the fly) into `vision.onnx`, `embed.onnx` and
 * `decoder.onnx` (each with its `.onnx.data`), copies the tokenizer and config files, verifies the
 * package (probe run; agreement with float32 for quantized packages, models/verify.ts) and writes
 * `manifest.json` with sizes, checksums, quantization detail and verification results. Everything
 * happens in a staging folder next to the destination that is renamed into place at the end;
 * failure or cancellation leaves nothing behind.
 */
import { createHash } from 'node:crypto';
import { copyFile, mkdir, stat, statfs, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { OwleryError } from '../src-shared/errors.ts';
import { openCheckpoint, readConfig } from './checkpoint/index.ts';
import { checkConversionInputs } from './convert-inputs.ts';
import type { CheckpointReader } from './checkpoint/types.ts';
import { numel } from './onnx/graph.ts';
import type { GraphBuilder } from './onnx/graph.ts';
import { DataType, dataTypeSize } from './onnx/proto.ts';
import { throwIfAborted, writeOnnxModel } from './onnx/writer.ts';
import { MS_DOMAIN } from './onnx/weights.ts';
import type { Owl2Config } from './owl2/config.ts';
import { buildDecoderGraph } from './owl2/decoder-graph.ts';
import { buildGpuDecoderGraph } from './owl2/decoder-graph-gpu.ts';
import { buildEmbedGraph } from './owl2/embed-graph.ts';
import { ABSTRACTOR_PREFIX, VISION_PREFIX, buildVisionGraph } from './owl2/vision-graph.ts';
import { createPackageStaging, hashFiles, writeManifest } from './package/write.ts';
import { modelDisplayName } from './names.ts';
import { humanBytes } from './package/summary.ts';
import { isFile } from './package/files.ts';
import { GPU_PACKAGE_FORMAT_VERSION, PACKAGE_FORMAT, PACKAGE_FORMAT_VERSION } from './package/manifest.ts';
import type {
  ComponentQuantization, DetailedComponent, FileEntry, GraphIO, GraphName, PackageGraph, PackageManifest,
} from './package/manifest.ts';
import { PRESETS, decoderLinearFormat, embedFormat, linearFormat, presetDecoder, resolvePlan } from './quant/plan.ts';
import type { DecoderVariant, LinearFormat, PlanOverrides, PresetName, QuantizationPlan } from './quant/plan.ts';
import { isQuantized, readImageNorm } from './verify.ts';
import type { GraphPaths, PackageVerifier, VerifyOptions } from './verify.ts';

/** Version of this converter, recorded in each manifest. */
export const CONVERTER_VERSION = '1.0.0';

/** Files copied from the checkpoint when present; `required` ones must exist. */
export const COPIED_FILES: readonly { name: string; required: boolean }[] = [
  { name: 'config.json', required: true },
  { name: 'tokenizer.model', required: true },
  { name: 'tokenizer_config.json', required: false },
  { name: 'special_tokens_map.json', required: false },
  { name: 'preprocessor_config.json', required: false },
  { name: 'generation_config.json', required: false },
];

/** Progress of a conversion. `bytesDone`/`bytesTotal` refer to the current phase. */
export interface ConvertProgress {
  phase: 'hashing-source' | 'writing-graphs' | 'copying' | 'checksumming' | 'verifying' | 'done';
  /** Weights written so far, over all three graphs. */
  tensorsDone: number;
  tensorsTotal: number;
  bytesDone: number;
  bytesTotal: number;
  /** Current file, tensor or verification stage. */
  current?: string;
  /** Estimated seconds left in the current phase (from its rate so far), when known. */
  etaSeconds?: number;
}

/** Options of `convertCheckpoint`. */
export interface ConvertOptions {
  onProgress?: (p: ConvertProgress) => void;
  signal?: AbortSignal;
  /** Weight format to read when the folder holds both (default safetensors). */
  prefer?: 'safetensors' | 'pytorch';
  /** Package name in the manifest (default: the model's human name, `mPLUG-Owl2 7B · 4-bit`). */
  name?: string;
  /** Precision preset (default `reference`: float32 everywhere). */
  preset?: PresetName;
  /** Overrides of the preset's precisions (`embed`/`lmHead` follow `llm` unless given). */
  precision?: PlanOverrides;
  /** Which decoder graph to write (default: `gpu` for the `gpu` presets, else `cpu`; models/quant/plan.ts). */
  decoder?: DecoderVariant;
  /**
   * Verify the package after writing it: the verifier to run (the engine's `verifyPackage`,
   * src-main/engine: models/ never loads onnxruntime) and its options; or `false` to skip.
   */
  verify: false | (VerifyOptions & { run: PackageVerifier });
  /**
   * Free space to assume at the destination instead of asking the file system (tests, or a
   * caller that knows better).
   */
  freeBytes?: number;
}

/** Expected checkpoint tensors with their shapes, from the config. */
export interface ExpectedTensors {
  /** Parameters that must be present. */
  required: Map<string, number[]>;
  /** Known tensors that may be present (buffers, a tied lm_head); checked when they are. */
  optional: Map<string, number[]>;
}

/** Every tensor an mPLUG-Owl2 checkpoint holds for `cfg`, with its shape. */
export function expectedCheckpointTensors(cfg: Owl2Config): ExpectedTensors {
  const required = new Map<string, number[]>();
  const optional = new Map<string, number[]>();
  const c = cfg.llm;
  const H = c.hiddenSize;
  required.set('model.embed_tokens.weight', [c.vocabSize, H]);
  (c.tieWordEmbeddings ? optional : required).set('lm_head.weight', [c.vocabSize, H]);
  required.set('model.norm.weight', [H]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const lin = (key: string, out: number, inF: number, bias: boolean): void => {
      required.set(`${key}.weight`, [out, inF]);
      if (bias) required.set(`${key}.bias`, [out]);
    };
    for (const m of [0, 1]) {
      required.set(`${p}.input_layernorm.multiway.${m}.weight`, [H]);
      required.set(`${p}.post_attention_layernorm.multiway.${m}.weight`, [H]);
      lin(`${p}.self_attn.k_proj.multiway.${m}`, c.numKvHeads * c.headDim, H, c.attentionBias);
      lin(`${p}.self_attn.v_proj.multiway.${m}`, c.numKvHeads * c.headDim, H, c.attentionBias);
    }
    lin(`${p}.self_attn.q_proj`, c.numHeads * c.headDim, H, c.attentionBias);
    lin(`${p}.self_attn.o_proj`, H, c.numHeads * c.headDim, c.attentionBias);
    lin(`${p}.mlp.gate_proj`, c.intermediateSize, H, false);
    lin(`${p}.mlp.up_proj`, c.intermediateSize, H, false);
    lin(`${p}.mlp.down_proj`, H, c.intermediateSize, false);
    optional.set(`${p}.self_attn.rotary_emb.inv_freq`, [c.headDim / 2]);
  }

  const v = cfg.vision;
  const Hv = v.hiddenSize;
  const vp = VISION_PREFIX;
  const ln = (key: string, dim: number): void => {
    required.set(`${key}.weight`, [dim]);
    required.set(`${key}.bias`, [dim]);
  };
  const linB = (key: string, out: number, inF: number): void => {
    required.set(`${key}.weight`, [out, inF]);
    required.set(`${key}.bias`, [out]);
  };
  required.set(`${vp}.embeddings.cls_token`, [1, 1, Hv]);
  required.set(`${vp}.embeddings.patch_embed.weight`, [Hv, 3, v.patchSize, v.patchSize]);
  required.set(`${vp}.embeddings.position_embedding`, [1, v.numTokens, Hv]);
  ln(`${vp}.embeddings.pre_layernorm`, Hv);
  for (let i = 0; i < v.numLayers; i++) {
    const p = `${vp}.encoder.layers.${i}`;
    ln(`${p}.input_layernorm`, Hv);
    ln(`${p}.post_attention_layernorm`, Hv);
    linB(`${p}.self_attn.query_key_value`, 3 * Hv, Hv);
    linB(`${p}.self_attn.dense`, Hv, Hv);
    linB(`${p}.mlp.fc1`, v.intermediateSize, Hv);
    linB(`${p}.mlp.fc2`, Hv, v.intermediateSize);
  }
  ln(`${vp}.post_layernorm`, Hv);

  const a = cfg.abstractor;
  const Ha = a.hiddenSize;
  const ap = ABSTRACTOR_PREFIX;
  required.set(`${ap}.query_embeds`, [1, a.numQueries, Ha]);
  linB(`${ap}.visual_fc`, H, Ha);
  required.set(`${ap}.vit_eos`, [1, 1, H]);
  for (let i = 0; i < a.numLayers; i++) {
    const p = `${ap}.encoder.layers.${i}.crossattention`;
    linB(`${p}.attention.query`, Ha, Ha);
    linB(`${p}.attention.key`, Ha, a.encoderHiddenSize);
    linB(`${p}.attention.value`, Ha, a.encoderHiddenSize);
    optional.set(`${p}.attention.q_pos_embed`, [a.numQueries, Ha]);
    optional.set(`${p}.attention.k_pos_embed`, [a.gridSize * a.gridSize + 1, Ha]);
    ln(`${p}.norm1`, a.encoderHiddenSize);
    ln(`${p}.normk`, a.encoderHiddenSize);
    linB(`${p}.output.out_proj`, a.encoderHiddenSize, a.encoderHiddenSize);
    ln(`${p}.output.norm2`, a.encoderHiddenSize);
    linB(`${p}.output.mlp.w1`, a.intermediateSize, Ha);
    linB(`${p}.output.mlp.w3`, a.intermediateSize, Ha);
    linB(`${p}.output.mlp.w2`, Ha, a.intermediateSize);
    ln(`${p}.output.mlp.ffn_ln`, a.intermediateSize);
  }
  return { required, optional };
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Checks that the checkpoint holds exactly the expected tensors with the expected shapes and
 * floating-point dtypes. Throws `CHECKPOINT_INVALID` naming the tensor.
 */
export function checkCheckpointTensors(cfg: Owl2Config, reader: Pick<CheckpointReader, 'tensors'>): void {
  const { required, optional } = expectedCheckpointTensors(cfg);
  const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;
  for (const [name, shape] of required) {
    const info = reader.tensors.get(name);
    if (!info) {
      throw new OwleryError('CHECKPOINT_INVALID', `the checkpoint has no tensor "${name}" (expected shape ${fmt(shape)} for this config.json)`, { tensor: name });
    }
  }
  for (const [name, info] of reader.tensors) {
    const shape = required.get(name) ?? optional.get(name);
    if (!shape) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `${info.file}: unexpected tensor "${name}" ${fmt(info.shape)}: not part of mPLUG-Owl2 as described by config.json`, { tensor: name });
    }
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new OwleryError('CHECKPOINT_INVALID',
        `${info.file}: tensor "${name}" has shape ${fmt(info.shape)}, expected ${fmt(shape)} for this config.json`, { tensor: name });
    }
    if (!FLOAT_DTYPES.has(info.dtype)) {
      throw new OwleryError('CHECKPOINT_INVALID', `${info.file}: tensor "${name}" has dtype ${info.dtype}, expected a floating-point type`, { tensor: name });
    }
  }
}

/** A graph's inputs and outputs as the manifest lists them. */
export function graphIO(g: GraphBuilder): { inputs: GraphIO[]; outputs: GraphIO[] } {
  const dtypes: Partial<Record<number, GraphIO['dtype']>> = {
    [DataType.INT64]: 'int64', [DataType.INT32]: 'int32', [DataType.BOOL]: 'bool', [DataType.FLOAT16]: 'float16',
  };
  const io = (v: GraphBuilder['inputs'][number]): GraphIO => ({ name: v.name, dtype: dtypes[v.elemType] ?? 'float32', shape: [...v.dims] });
  return { inputs: g.inputs.map(io), outputs: g.outputs.map(io) };
}

function weightBytes(g: GraphBuilder): number {
  return g.weights.reduce((s, w) => s + numel(w.dims) * dataTypeSize(w.dataType), 0);
}

/** Alignment of tensors in the `.onnx.data` files. */
const DATA_ALIGN = 4096;

/** Bytes `writeOnnxModel` will put in a graph's data file (weights at aligned offsets). */
function dataFileBytes(g: GraphBuilder): number {
  let offset = 0;
  for (const w of g.weights) offset = Math.ceil(offset / DATA_ALIGN) * DATA_ALIGN + numel(w.dims) * dataTypeSize(w.dataType);
  return offset;
}

/** Upper bound of a graph's `.onnx` protobuf (nodes, names and inline constants). */
function protoBytesBound(g: GraphBuilder): number {
  const consts = g.constants.reduce((s, c) => s + (c.raw?.byteLength ?? 0) + 64 + c.name.length, 0);
  return 64 * 1024 + g.nodes.length * 512 + g.weights.length * 256 + consts;
}


/** The three graphs for a plan (and decoder variant), weights still lazy. */
export async function buildPackageGraphs(
  config: Owl2Config, reader: Pick<CheckpointReader, 'tensors' | 'readFloat32'>, plan: QuantizationPlan, decoder: DecoderVariant = 'cpu',
): Promise<[GraphName, GraphBuilder][]> {
  const llm = { linear: decoderLinearFormat(plan.llm, decoder), lmHead: decoderLinearFormat(plan.lmHead, decoder) };
  return [
    ['vision', await buildVisionGraph(config, reader, { linear: linearFormat(plan.vision) })],
    ['embed', buildEmbedGraph(config, reader, { table: embedFormat(plan.embed) })],
    ['decoder', decoder === 'gpu' ? buildGpuDecoderGraph(config, reader, llm) : buildDecoderGraph(config, reader, llm)],
  ];
}

function detailOf(precision: ComponentQuantization['precision'], fmt: LinearFormat | ReturnType<typeof embedFormat>, tensors: number, covers: string): ComponentQuantization {
  if (fmt.kind === 'float') {
    const fp16 = fmt.weightType === 'fp16';
    return { precision, method: 'float', weightType: fp16 ? 'float16' : 'float32', compute: fp16 ? 'float16' : 'float32', tensors, covers };
  }
  if (fmt.kind === 'matmulnbits') {
    return {
      precision, method: 'matmulnbits', weightType: 'uint8', compute: fmt.accuracyLevel === 4 ? 'int8' : 'float32',
      bits: fmt.bits, blockSize: fmt.blockSize, zeroPoints: fmt.zeroPoints, accuracyLevel: fmt.accuracyLevel, tensors, covers,
    };
  }
  return { precision, method: 'gather-blockwise', weightType: 'uint8', compute: 'float32', bits: fmt.bits, blockSize: fmt.blockSize, zeroPoints: fmt.zeroPoints, tensors, covers };
}

/** What the manifest records for a plan: per part, the storage, compute and which tensors. */
export function quantizationDetail(config: Owl2Config, plan: QuantizationPlan, decoder: DecoderVariant = 'cpu'): Record<DetailedComponent, ComponentQuantization> {
  const c = config.llm;
  const visionLinears = config.vision.numLayers * 4 + config.abstractor.numLayers * 7 + 1;
  return {
    vision: detailOf(plan.vision, linearFormat(plan.vision), visionLinears,
      'vision encoder query_key_value/dense/fc1/fc2, abstractor query/key/value/out_proj/w1/w2/w3, visual_fc; patch conv, embeddings, norms and biases stay float32'),
    llm: decoder === 'gpu'
      ? gpuDetail(detailOf(plan.llm, decoderLinearFormat(plan.llm, 'gpu'), c.numLayers * 6,
        'per layer: q_proj packed with branch 0 of k_proj/v_proj, branch 1 of k_proj/v_proj packed, o_proj, gate_proj, up_proj, down_proj; norms in the activation type'), plan.llm)
      : detailOf(plan.llm, linearFormat(plan.llm), c.numLayers * 9,
        'q_proj, o_proj, gate_proj, up_proj, down_proj and both MAM branches of k_proj/v_proj in every layer; norms stay float32'),
    embed: detailOf(plan.embed, embedFormat(plan.embed), 1, 'model.embed_tokens.weight (embed.onnx)'),
    lmHead: (decoder === 'gpu' ? (d: ComponentQuantization) => gpuDetail(d, plan.llm) : (d: ComponentQuantization) => d)(
      detailOf(plan.lmHead, decoderLinearFormat(plan.lmHead, decoder), 1, c.tieWordEmbeddings ? 'lm_head (tied: model.embed_tokens.weight)' : 'lm_head.weight')),
  };
}

/** The GPU decoder computes in its activation type (float16 unless the LLM is float32): MatMulNBits' scales are stored in it too. */
function gpuDetail(d: ComponentQuantization, llm: QuantizationPlan['llm']): ComponentQuantization {
  const act = llm === 'fp32' ? 'float32' : 'float16';
  return d.method === 'matmulnbits' ? { ...d, compute: act } : { ...d, weightType: act, compute: act };
}

/** Bytes a conversion needs at the destination, by part. */
export interface PackageSizeEstimate {
  /** Everything: graphs, copied files, manifest, verification scratch. */
  total: number;
  /** `.onnx` + `.onnx.data` per graph. */
  graphs: Record<GraphName, number>;
  /** Copied tokenizer/config files. */
  sideFiles: number;
  /** Float32 reference graphs written temporarily for an end-to-end verification (0 when none). */
  verification: number;
}

/** Estimates the package size of already-built graphs (exact for the data files, bounded for the rest). */
export function estimatePackageBytes(graphs: readonly [GraphName, GraphBuilder][], sideFiles: number, verification = 0): PackageSizeEstimate {
  const per = {} as Record<GraphName, number>;
  for (const [name, g] of graphs) per[name] = dataFileBytes(g) + protoBytesBound(g);
  const manifest = 256 * 1024;
  const total = Object.values(per).reduce((a, b) => a + b, 0) + sideFiles + manifest + verification;
  return { total, graphs: per, sideFiles, verification };
}

/** Free bytes for unprivileged writes on the file system holding `dir` (or its nearest existing parent). */
export async function freeDiskBytes(dir: string): Promise<number> {
  let p = resolve(dir);
  for (;;) {
    try {
      const st = await statfs(p);
      return Number(st.bavail) * Number(st.bsize);
    } catch (err) {
      const parent = dirname(p);
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw err;
      p = parent;
    }
  }
}

const PHASE_LABELS: Record<ConvertProgress['phase'], string> = {
  'hashing-source': 'checksumming the checkpoint',
  'writing-graphs': 'writing graphs',
  copying: 'copying files',
  checksumming: 'checksumming the package',
  verifying: 'verifying',
  done: 'done',
};

/**
 * One line of conversion progress for a terminal: phase, a bar of `width` cells, bytes, tensors
 * and the ETA, e.g. `writing graphs [#########.........] 1.2 GiB/3.6 GiB, 120/452 tensors, ETA 1m05s`.
 */
export function renderConvertProgress(p: ConvertProgress, width = 24): string {
  const label = PHASE_LABELS[p.phase];
  if (p.phase === 'verifying' || p.phase === 'copying' || p.phase === 'done') return `${label}${p.current ? `: ${p.current}` : ''}`;
  const frac = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : 0;
  const filled = Math.round(frac * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const tensors = p.phase === 'writing-graphs' ? `, ${p.tensorsDone}/${p.tensorsTotal} tensors` : '';
  const eta = p.etaSeconds === undefined ? '' : `, ETA ${p.etaSeconds >= 60 ? `${Math.floor(p.etaSeconds / 60)}m${String(p.etaSeconds % 60).padStart(2, '0')}s` : `${p.etaSeconds}s`}`;
  return `${label} ${bar} ${humanBytes(p.bytesDone)}/${humanBytes(p.bytesTotal)}${tensors}${eta}`;
}

/**
 * Rough memory onnxruntime's CPU provider needs for the package: float16 weights are held as
 * float32 there (see docs/engine-contract.md), the others as stored, ×1.35 for prepacked copies and
 * activations (a 5.2 GiB 7B int4 package measured ~7.6 GiB RSS running the probe), plus 512 MiB.
 */
export function runtimeBytes(graphs: readonly [GraphName, GraphBuilder][]): number {
  let n = 512 * 2 ** 20;
  for (const [, g] of graphs) {
    for (const w of g.weights) n += numel(w.dims) * (w.dataType === DataType.FLOAT16 ? 4 : dataTypeSize(w.dataType)) * 1.35;
  }
  return Math.round(n);
}

/** Rate-based ETA for one phase. */
class Eta {
  private start = 0;
  private phase = '';
  at(phase: string, done: number, total: number): number | undefined {
    const now = performance.now();
    if (phase !== this.phase) {
      this.phase = phase;
      this.start = now;
      return undefined;
    }
    const elapsed = (now - this.start) / 1000;
    if (done <= 0 || elapsed < 0.5 || total <= done) return total <= done ? 0 : undefined;
    return Math.round(((total - done) * elapsed) / done);
  }
}

/**
 * Tokenizer/config files that go into the package next to the graphs (`COPIED_FILES`). Each one is
 * taken from `files` when present there, else from `dir`. `config.json` falls back to the raw
 * config given to `convertFromReader` when neither has it.
 */
export interface SideFiles {
  /** Folder holding the files (a checkpoint folder). */
  dir?: string;
  /** In-memory files by name; take precedence over `dir`. */
  files?: Readonly<Record<string, Uint8Array>>;
}

/** Options of `convertFromReader`, on top of `ConvertOptions`. */
export interface ConvertFromReaderOptions extends ConvertOptions {
  /**
   * Provenance recorded as `manifest.source.files` (and hashed into the package id) instead of
   * hashing the reader's files in `sideFiles.dir`. Use for readers with no files on disk
   * (e.g. synthetic weights): describe what determines the weights.
   */
  sourceFiles?: FileEntry[];
  /** Package name when `opts.name` is not given (default: the model's human name, `mPLUG-Owl2 7B · 4-bit`). */
  defaultName?: string;
}

function sha256Bytes(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/**
 * Converts an already-open checkpoint into a package at `packageDir` (absent or an empty folder).
 * `config` is `rawConfig` parsed (`parseOwl2Config`). The reader stays open: the caller closes it.
 * Source provenance is `opts.sourceFiles` when given, else the sizes and checksums of `config.json`
 * and `reader.files` in `sideFiles.dir` (config.json from memory when there is no folder).
 * Returns the manifest written.
 */
export async function convertFromReader(
  reader: CheckpointReader,
  config: Owl2Config,
  rawConfig: object,
  sideFiles: SideFiles,
  packageDir: string,
  opts: ConvertFromReaderOptions,
): Promise<PackageManifest> {
  const { signal } = opts;
  const srcDir = sideFiles.dir === undefined ? undefined : resolve(sideFiles.dir);
  const memFiles = sideFiles.files ?? {};
  const configBytes = new TextEncoder().encode(`${JSON.stringify(rawConfig, null, 2)}\n`);
  /** Where each side file comes from: bytes, or a path. */
  const sources = new Map<string, Uint8Array | string>();
  for (const f of COPIED_FILES) {
    const mem = Object.hasOwn(memFiles, f.name) ? memFiles[f.name] : undefined;
    if (mem) sources.set(f.name, mem);
    else if (srcDir !== undefined && (await isFile(join(srcDir, f.name)))) sources.set(f.name, join(srcDir, f.name));
    else if (f.name === 'config.json') sources.set(f.name, configBytes);
    else if (f.required) {
      const where = srcDir === undefined ? `${f.name} is missing (not among the side files given)` : `${join(srcDir, f.name)} is missing`;
      throw new OwleryError('FILE_NOT_FOUND', `${where}; the checkpoint folder needs it`, { path: srcDir === undefined ? f.name : join(srcDir, f.name) });
    }
  }
  throwIfAborted(signal);
  // Before any work: the weights config.json implies, and tokenizer.model (convert-inputs.ts).
  await checkConversionInputs({ config, required: expectedCheckpointTensors(config).required, reader, tokenizer: sources.get('tokenizer.model')!, configFile: sources.get('config.json') });
  checkCheckpointTensors(config, reader);
  const plan = resolvePlan(opts.preset ?? 'reference', opts.precision);
  const presetName = Object.entries(PRESETS).find(([, p]) => (Object.keys(p) as (keyof QuantizationPlan)[]).every((k) => p[k] === plan[k]))?.[0] ?? 'custom';
  const decoder = opts.decoder ?? presetDecoder(opts.preset ?? 'reference');
  const graphs = await buildPackageGraphs(config, reader, plan, decoder);
  const verify = opts.verify;
  const { run: verifier, ...verifyOpts }: Partial<VerifyOptions & { run: PackageVerifier }> = verify === false ? {} : verify;

  // 0. Disk space, before anything is written.
  let sideBytes = 0;
  for (const from of sources.values()) sideBytes += typeof from === 'string' ? (await stat(from)).size : from.byteLength;
  let referenceGraphs: [GraphName, GraphBuilder][] | undefined;
  let referenceBytes = 0;
  if (verify !== false && isQuantized(plan) && verifyOpts.compare !== 'none' && verifyOpts.compare !== 'layer-wise') {
    referenceGraphs = await buildPackageGraphs(config, reader, resolvePlan('reference'));
    referenceBytes = estimatePackageBytes(referenceGraphs, 0).total;
    if (verifyOpts.compare !== 'end-to-end' && referenceBytes > (verifyOpts.referenceMaxBytes ?? 4 * 2 ** 30)) {
      referenceGraphs = undefined; // layer-wise instead: no float32 copy is written
    }
  }
  const estimate = estimatePackageBytes(graphs, sideBytes, referenceGraphs ? referenceBytes : 0);
  const dest = resolve(packageDir);
  const free = opts.freeBytes ?? (await freeDiskBytes(dirname(dest)));
  if (estimate.total > free) {
    throw new OwleryError('DISK_FULL',
      `not enough disk space for the package at ${dest}: it needs about ${humanBytes(estimate.total)}` +
      `${estimate.verification ? ` (${humanBytes(estimate.verification)} of it temporarily, for verification)` : ''}, ` +
      `and ${humanBytes(free)} is free there`, { path: dest, needed: estimate.total, free });
  }

  let staging;
  try {
    staging = await createPackageStaging(packageDir);
    const tensorsTotal = graphs.reduce((s, [, g]) => s + g.weights.length, 0);
    let tensorsDone = 0;
    const eta = new Eta();
    const progress = (phase: ConvertProgress['phase'], bytesDone: number, bytesTotal: number, current?: string): void => {
      if (!opts.onProgress) return;
      const etaSeconds = eta.at(phase, bytesDone, bytesTotal);
      opts.onProgress({ phase, tensorsDone, tensorsTotal, bytesDone, bytesTotal, current, ...(etaSeconds !== undefined ? { etaSeconds } : {}) });
    };

    // 1. Source checksums (provenance; also gives the package a stable id).
    let sourceFiles: FileEntry[];
    if (opts.sourceFiles) {
      sourceFiles = opts.sourceFiles.map((f) => ({ ...f }));
    } else {
      sourceFiles = [];
      const cfgSrc = sources.get('config.json')!;
      const onDisk = srcDir === undefined ? [] : [...(typeof cfgSrc === 'string' ? ['config.json'] : []), ...reader.files];
      if (typeof cfgSrc !== 'string') sourceFiles.push({ path: 'config.json', size: cfgSrc.byteLength, sha256: sha256Bytes(cfgSrc) });
      const sourceSizes = await Promise.all(onDisk.map(async (n) => (await stat(join(srcDir!, n))).size));
      const sourceTotal = sourceSizes.reduce((s, n) => s + n, 0);
      let hashed = 0;
      for (const n of onDisk) {
        progress('hashing-source', hashed, sourceTotal, n);
        sourceFiles.push(...(await hashFiles(srcDir!, [n], { signal, onBytes: (b) => { hashed += b; } })));
      }
      progress('hashing-source', hashed, sourceTotal);
    }

    // 2. Graphs, weight by weight.
    const bytesTotal = graphs.reduce((s, [, g]) => s + weightBytes(g), 0);
    let bytesDone = 0;
    const graphEntries = {} as Record<GraphName, PackageGraph>;
    const packageFiles: string[] = [];
    const needsMs = (g: GraphBuilder): boolean => g.nodes.some((n) => n.domain === MS_DOMAIN);
    for (const [name, g] of graphs) {
      const file = `${name}.onnx`;
      await writeOnnxModel(g, join(staging.dir, file), {
        signal,
        align: DATA_ALIGN,
        producerVersion: CONVERTER_VERSION,
        metadata: { 'owlery.graph': name, 'owlery.family': 'mplug-owl2' },
        extraOpsets: needsMs(g) ? [{ domain: MS_DOMAIN, version: 1 }] : undefined,
        onTensor: (tensor, bytes) => {
          tensorsDone++;
          bytesDone += bytes;
          progress('writing-graphs', bytesDone, bytesTotal, tensor);
        },
      });
      graphEntries[name] = { file, data: `${file}.data`, ...graphIO(g), ...(name === 'decoder' && decoder === 'gpu' ? { variant: 'gpu' as const } : {}) };
      packageFiles.push(file, `${file}.data`);
    }

    // 3. Tokenizer and config files.
    for (const [name, from] of sources) {
      throwIfAborted(signal);
      progress('copying', 0, 0, name);
      if (typeof from === 'string') await copyFile(from, join(staging.dir, name));
      else await writeFile(join(staging.dir, name), from);
      packageFiles.push(name);
    }

    // 4. Package checksums and manifest.
    const outSizes = await Promise.all(packageFiles.map(async (n) => (await stat(join(staging!.dir, n))).size));
    const outTotal = outSizes.reduce((s, n) => s + n, 0);
    let outHashed = 0;
    const files: FileEntry[] = [];
    for (const n of packageFiles) {
      progress('checksumming', outHashed, outTotal, n);
      files.push(...(await hashFiles(staging.dir, [n], { signal, onBytes: (b) => { outHashed += b; } })));
    }
    const idHash = createHash('sha256');
    for (const f of sourceFiles) idHash.update(`${f.path}\0${f.sha256}\0`);
    // Quantized packages get their own id: the engine keys caches by it.
    if (presetName !== 'reference') idHash.update(`plan\0${plan.vision}\0${plan.llm}\0${plan.embed}\0${plan.lmHead}\0`);
    if (decoder === 'gpu') idHash.update('decoder\0gpu\0');
    const manifest: PackageManifest = {
      format: PACKAGE_FORMAT,
      formatVersion: decoder === 'gpu' ? GPU_PACKAGE_FORMAT_VERSION : PACKAGE_FORMAT_VERSION,
      family: 'mplug-owl2',
      id: `mplug-owl2-${idHash.digest('hex').slice(0, 16)}`,
      name: opts.name ?? opts.defaultName ?? modelDisplayName(config, presetName as PresetName | 'custom'),
      converterVersion: CONVERTER_VERSION,
      createdAt: new Date().toISOString(),
      source: { format: reader.format, files: sourceFiles },
      config,
      quantization: { vision: plan.vision, llm: plan.llm, embed: plan.embed },
      preset: presetName,
      quantizationDetail: quantizationDetail(config, plan, decoder),
      graphs: graphEntries,
      files,
    };

    // 5. Verification: load the package and run the probe (and compare with float32).
    if (verifier) {
      throwIfAborted(signal);
      const paths: GraphPaths = {
        vision: join(staging.dir, graphEntries.vision.file),
        embed: join(staging.dir, graphEntries.embed.file),
        decoder: join(staging.dir, graphEntries.decoder.file),
        decoderVariant: decoder,
      };
      const norm = await readImageNorm(join(staging.dir, 'preprocessor_config.json'));
      const refGraphs = referenceGraphs;
      manifest.verification = await verifier({
        graphs: paths,
        config,
        plan,
        imageMean: norm.mean,
        imageStd: norm.std,
        reader,
        referenceBytes: refGraphs ? referenceBytes : undefined,
        runtimeBytes: runtimeBytes(graphs),
        writeReference: refGraphs ? async (dir) => {
          await mkdir(dir, { recursive: true });
          const out = {} as Record<GraphName, string>;
          for (const [name, g] of refGraphs) {
            out[name] = join(dir, `${name}.onnx`);
            await writeOnnxModel(g, out[name], { signal, align: DATA_ALIGN });
          }
          return out;
        } : undefined,
        workDir: join(staging.dir, '.verify'),
      }, { ...verifyOpts, signal, onStage: (stage) => progress('verifying', 0, 0, stage) });
    }

    throwIfAborted(signal);
    await writeManifest(staging.dir, manifest);
    await staging.commit();
    progress('done', outTotal, outTotal);
    return manifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOSPC') {
      throw new OwleryError('DISK_FULL', `not enough disk space to write the package next to ${dest} (about ${humanBytes(estimate.total)} needed)`, { path: dest });
    }
    throw err;
  } finally {
    await staging?.discard();
  }
}

/**
 * Converts the checkpoint in `checkpointDir` into a package at `packageDir`, which must not exist
 * or be an empty folder. Returns the manifest written. A thin wrapper over `convertFromReader`.
 */
export async function convertCheckpoint(checkpointDir: string, packageDir: string, opts: ConvertOptions): Promise<PackageManifest> {
  const src = resolve(checkpointDir);
  const { config, raw } = await readConfig(src);
  for (const f of COPIED_FILES) {
    if (f.required && !(await isFile(join(src, f.name)))) {
      throw new OwleryError('FILE_NOT_FOUND', `${join(src, f.name)} is missing; the checkpoint folder needs it`, { path: join(src, f.name) });
    }
  }
  throwIfAborted(opts.signal);
  const reader = await openCheckpoint(src, { prefer: opts.prefer, signal: opts.signal });
  try {
    return await convertFromReader(reader, config, raw, { dir: src }, packageDir, opts);
  } finally {
    await reader.close();
  }
}
