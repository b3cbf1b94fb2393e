/**
 * The model package manifest (`manifest.json`, format `owlery-model-package` v1): types and
 * validation. See docs/engine-contract.md for the package layout.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { Owl2Config } from '../owl2/config.ts';

/** `manifest.json`'s `format`. */
export const PACKAGE_FORMAT = 'owlery-model-package';
/**
 * `manifest.json`'s `formatVersion` this code reads and writes. Bumped whenever a graph's contract
 * changes, so that an older package is refused with "convert the checkpoint again" instead of
 * failing inside onnxruntime. 2: the decoder's KV cache is position-major [S, B, kvH, hd] (1:
 * pre-transposed keys with masked capacity). The int4 block size is recorded per package.
 */
export const PACKAGE_FORMAT_VERSION = 2;
/**
 * `formatVersion` of packages whose decoder is the GPU graph (`graphs.decoder.variant: "gpu"`,
 * models/owl2/decoder-graph-gpu.ts): an Owlery that reads only version 2 refuses them with
 * "convert the checkpoint again" instead of feeding them the CPU graph's inputs. This code reads
 * both.
 */
export const GPU_PACKAGE_FORMAT_VERSION = 3;
/** Name of the manifest file in a package folder. */
export const MANIFEST_FILE = 'manifest.json';

/** Weight precision of one component. */
export type Quantization = 'fp32' | 'fp16' | 'int8' | 'int4';

/** A file with its size and checksum. `path` is a plain file name inside the folder. */
export interface FileEntry {
  path: string;
  size: number;
  sha256: string;
}

/** One graph input or output. */
export interface GraphIO {
  name: string;
  dtype: 'float32' | 'int64' | 'float16' | 'int32' | 'bool';
  /** Fixed sizes, or symbolic names (`batch`, `seq`, `past`, `total`). */
  shape: (number | string)[];
}

/** One ONNX graph of the package. */
export interface PackageGraph {
  /** The `.onnx` file. */
  file: string;
  /** Its external data file (same folder). */
  data: string;
  inputs: GraphIO[];
  outputs: GraphIO[];
  /** `gpu`: the decoder made for GPU providers (decoder-graph-gpu.ts); absent: the CPU graph. */
  variant?: 'gpu';
}

/** Names of the package's graphs. */
export type GraphName = 'vision' | 'embed' | 'decoder';
/** Components whose weight precision the manifest records (`llm` is the decoder). */
export type QuantizedComponent = 'vision' | 'llm' | 'embed';

/** Parts whose storage `quantizationDetail` describes (`lmHead`: the decoder's output projection). */
export type DetailedComponent = QuantizedComponent | 'lmHead';

/** Exactly how one part's weights were stored and are computed (docs/engine-contract.md). */
export interface ComponentQuantization {
  precision: Quantization;
  /**
   * `float`: plain weights (MatMul/Gather); `matmulnbits`: `com.microsoft::MatMulNBits`;
   * `gather-blockwise`: block-quantized table read by Gather + dequantization in standard ops.
   */
  method: 'float' | 'matmulnbits' | 'gather-blockwise';
  /** Element type of the stored weights. */
  weightType: 'float32' | 'float16' | 'uint8';
  /** What the matmuls compute in: float16 means on GPU providers (ORT CPU upcasts to float32). */
  compute: 'float32' | 'float16' | 'int8';
  bits?: number;
  blockSize?: number;
  /** `uint8`: asymmetric, packed uint8 zero points; `none`: symmetric (default zero point 2^(bits−1)). */
  zeroPoints?: 'uint8' | 'none';
  /** MatMulNBits `accuracy_level`. */
  accuracyLevel?: number;
  /** Weight tensors of this part stored this way (linears, or the table). */
  tensors: number;
  /** Which tensors, in words. */
  covers: string;
}

/** Agreement of a quantized package with float32 on the verification probe. */
export interface VerificationAgreement {
  /**
   * `end-to-end`: both packages run on the probe (each its own vision and decoder; the decoder
   * teacher-forced with the float32 package's greedy tokens). `layer-wise`: sampled quantized
   * linears against float32 on probe activations (models too large for a float32 reference).
   */
  method: 'end-to-end' | 'layer-wise';
  /** Cosine similarity of the image embeddings (flattened), end-to-end only. */
  imageEmbedsCosine?: number;
  /** Lowest per-token cosine of the image embeddings, end-to-end only. */
  imageEmbedsMinTokenCosine?: number;
  /** Fraction of decode steps whose next-token argmax equals float32's, end-to-end only. */
  top1Agreement?: number;
  /** Decode steps compared (prompt's last position + generated tokens). */
  steps?: number;
  /** Mean cosine of the next-token logits over the steps, end-to-end only. */
  logitsCosine?: number;
  /** Per sampled linear: cosine of its output against float32, layer-wise only. */
  layers?: { tensor: string; precision: Quantization; cosine: number; relError: number }[];
}

/** What post-conversion verification ran and found. */
export interface VerificationReport {
  /** Nothing failed: the package loaded and the probe ran with finite outputs (or was skipped, see `probeSkipped`). */
  ok: boolean;
  /** Why the probe run was skipped (too large for this machine's memory); only the layer-wise comparison ran. */
  probeSkipped?: string;
  /** ISO 8601 time. */
  at: string;
  probe: { image: string; prompt: string; promptTokens: number; decodeSteps: number };
  /** Greedy tokens the package produced on the probe. */
  tokens: number[];
  agreement?: VerificationAgreement;
  /** Wall times in milliseconds (informational). */
  timings?: Record<string, number>;
}

/** `manifest.json`. */
export interface PackageManifest {
  format: typeof PACKAGE_FORMAT;
  formatVersion: typeof PACKAGE_FORMAT_VERSION | typeof GPU_PACKAGE_FORMAT_VERSION;
  family: 'mplug-owl2';
  /** Stable id derived from the source checkpoint's files. */
  id: string;
  /** Human-readable name (`mPLUG-Owl2 7B · 4-bit` unless the user chose one; renamed on the Models screen). */
  name: string;
  converterVersion: string;
  /** ISO 8601 time of conversion. */
  createdAt: string;
  source: { format: 'safetensors' | 'pytorch'; files: FileEntry[] };
  config: Owl2Config;
  quantization: Record<QuantizedComponent, Quantization>;
  /** The preset the precisions came from (`custom` when overridden). Absent in older packages. */
  preset?: string;
  /** Per part, exactly how weights are stored and computed. Absent in older packages. */
  quantizationDetail?: Record<DetailedComponent, ComponentQuantization>;
  /** Post-conversion verification (absent when skipped). */
  verification?: VerificationReport;
  graphs: Record<GraphName, PackageGraph>;
  /** Every file of the package except `manifest.json` itself. */
  files: FileEntry[];
}

const GRAPH_NAMES: readonly GraphName[] = ['vision', 'embed', 'decoder'];
const COMPONENTS: readonly QuantizedComponent[] = ['vision', 'llm', 'embed'];
const QUANTIZATIONS: readonly Quantization[] = ['fp32', 'fp16', 'int8', 'int4'];

const DETAILED: readonly DetailedComponent[] = ['vision', 'llm', 'embed', 'lmHead'];

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function quantizationDetail(v: unknown, where: string): Record<DetailedComponent, ComponentQuantization> {
  const o = obj(v, where, 'quantizationDetail');
  const out = {} as Record<DetailedComponent, ComponentQuantization>;
  for (const c of DETAILED) {
    const key = `quantizationDetail.${c}`;
    const e = obj(o[c], where, key);
    if (!QUANTIZATIONS.includes(e.precision as Quantization)) fail(where, `${key}.precision must be one of ${QUANTIZATIONS.join(', ')}`);
    if (!['float', 'matmulnbits', 'gather-blockwise'].includes(e.method as string)) fail(where, `${key}.method is not known`);
    if (!['float32', 'float16', 'uint8'].includes(e.weightType as string)) fail(where, `${key}.weightType is not known`);
    if (!['float32', 'float16', 'int8'].includes(e.compute as string)) fail(where, `${key}.compute is not known`);
    for (const k of ['bits', 'blockSize', 'accuracyLevel'] as const) {
      if (e[k] !== undefined && !(Number.isInteger(e[k]) && (e[k] as number) >= 0)) fail(where, `${key}.${k} must be a non-negative integer`);
    }
    if (e.zeroPoints !== undefined && e.zeroPoints !== 'uint8' && e.zeroPoints !== 'none') fail(where, `${key}.zeroPoints must be "uint8" or "none"`);
    if (!(Number.isInteger(e.tensors) && (e.tensors as number) >= 0)) fail(where, `${key}.tensors must be a non-negative integer`);
    out[c] = { ...(e as unknown as ComponentQuantization), covers: typeof e.covers === 'string' ? e.covers : '' };
  }
  return out;
}

function verificationReport(v: unknown, where: string): VerificationReport {
  const o = obj(v, where, 'verification');
  if (typeof o.ok !== 'boolean') fail(where, 'verification.ok must be true or false');
  const probe = obj(o.probe, where, 'verification.probe');
  if (!Array.isArray(o.tokens) || o.tokens.some((t) => !Number.isInteger(t))) fail(where, 'verification.tokens must be a list of token ids');
  if (o.agreement !== undefined) {
    const a = obj(o.agreement, where, 'verification.agreement');
    if (a.method !== 'end-to-end' && a.method !== 'layer-wise') fail(where, 'verification.agreement.method must be end-to-end or layer-wise');
    for (const k of ['imageEmbedsCosine', 'imageEmbedsMinTokenCosine', 'top1Agreement', 'steps', 'logitsCosine']) {
      if (a[k] !== undefined && !finite(a[k])) fail(where, `verification.agreement.${k} must be a number`);
    }
    if (a.layers !== undefined && !Array.isArray(a.layers)) fail(where, 'verification.agreement.layers must be a list');
  }
  return { ...(o as unknown as VerificationReport), probe: probe as unknown as VerificationReport['probe'] };
}

/** True for a plain file name (no folders, no `..`), safe to join to the package folder. */
export function isPlainFileName(p: unknown): p is string {
  return typeof p === 'string' && p !== '' && p !== '.' && p !== '..' && !/[\\/\0]/.test(p) && !/^[a-zA-Z]:/.test(p);
}

function fail(where: string, what: string): never {
  throw new OwleryError('PACKAGE_INVALID', `${where}: ${what}`, { file: where });
}

function obj(v: unknown, where: string, key: string): Record<string, unknown> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) fail(where, `${key} must be an object`);
  return v as Record<string, unknown>;
}

function str(o: Record<string, unknown>, key: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string' || v === '') fail(where, `${key} must be a non-empty string`);
  return v;
}

function fileEntries(v: unknown, where: string, key: string): FileEntry[] {
  if (!Array.isArray(v)) fail(where, `${key} must be an array`);
  const seen = new Set<string>();
  return v.map((e, i) => {
    const o = obj(e, where, `${key}[${i}]`);
    if (!isPlainFileName(o.path)) fail(where, `${key}[${i}].path must be a plain file name, got ${JSON.stringify(o.path)}`);
    if (seen.has(o.path)) fail(where, `${key} lists ${o.path} twice`);
    seen.add(o.path);
    if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) fail(where, `${key}[${i}] (${o.path}): size must be a non-negative integer`);
    if (typeof o.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(o.sha256)) fail(where, `${key}[${i}] (${o.path}): sha256 must be 64 lowercase hex digits`);
    return { path: o.path, size: o.size, sha256: o.sha256 };
  });
}

const GRAPH_DTYPES: readonly GraphIO['dtype'][] = ['float32', 'int64', 'float16', 'int32', 'bool'];

function graphIO(v: unknown, where: string, key: string): GraphIO[] {
  if (!Array.isArray(v)) fail(where, `${key} must be an array`);
  return v.map((e, i) => {
    const o = obj(e, where, `${key}[${i}]`);
    const name = str(o, 'name', where);
    if (!GRAPH_DTYPES.includes(o.dtype as GraphIO['dtype'])) fail(where, `${key}[${i}] (${name}): dtype must be one of ${GRAPH_DTYPES.join(', ')}`);
    if (!Array.isArray(o.shape) || o.shape.some((d) => typeof d !== 'string' && !(Number.isInteger(d) && (d as number) >= 0))) {
      fail(where, `${key}[${i}] (${name}): shape must be a list of sizes or names`);
    }
    return { name, dtype: o.dtype as GraphIO['dtype'], shape: o.shape as (number | string)[] };
  });
}

/**
 * Validates a parsed `manifest.json` (structure and types only; files and checksums are checked by
 * `readPackage`). `where` names the file in error messages.
 */
export function validateManifest(raw: unknown, where = MANIFEST_FILE): PackageManifest {
  const m = obj(raw, where, 'the manifest');
  if (m.format !== PACKAGE_FORMAT) fail(where, `format is ${JSON.stringify(m.format)}, expected "${PACKAGE_FORMAT}"`);
  if (m.formatVersion !== PACKAGE_FORMAT_VERSION && m.formatVersion !== GPU_PACKAGE_FORMAT_VERSION) {
    fail(where, `formatVersion ${JSON.stringify(m.formatVersion)} is not supported (this version of Owlery reads ${PACKAGE_FORMAT_VERSION} and ${GPU_PACKAGE_FORMAT_VERSION}); convert the checkpoint again`);
  }
  if (m.family !== 'mplug-owl2') fail(where, `family ${JSON.stringify(m.family)} is not supported`);
  const id = str(m, 'id', where);
  const name = str(m, 'name', where);
  const converterVersion = str(m, 'converterVersion', where);
  const createdAt = str(m, 'createdAt', where);
  if (Number.isNaN(Date.parse(createdAt))) fail(where, 'createdAt is not a date');
  const src = obj(m.source, where, 'source');
  if (src.format !== 'safetensors' && src.format !== 'pytorch') fail(where, 'source.format must be safetensors or pytorch');
  const sourceFiles = fileEntries(src.files, where, 'source.files');
  const config = obj(m.config, where, 'config') as unknown as Owl2Config;
  for (const part of ['llm', 'vision', 'abstractor'] as const) obj((config as unknown as Record<string, unknown>)[part], where, `config.${part}`);
  const q = obj(m.quantization, where, 'quantization');
  const g = obj(m.graphs, where, 'graphs');
  const files = fileEntries(m.files, where, 'files');
  const listed = new Set(files.map((f) => f.path));
  const quantization = {} as Record<QuantizedComponent, Quantization>;
  for (const c of COMPONENTS) {
    if (!QUANTIZATIONS.includes(q[c] as Quantization)) fail(where, `quantization.${c} must be one of ${QUANTIZATIONS.join(', ')}`);
    quantization[c] = q[c] as Quantization;
  }
  const graphs = {} as Record<GraphName, PackageGraph>;
  for (const gn of GRAPH_NAMES) {
    const e = obj(g[gn], where, `graphs.${gn}`);
    for (const k of ['file', 'data'] as const) {
      if (!isPlainFileName(e[k])) fail(where, `graphs.${gn}.${k} must be a plain file name`);
      if (!listed.has(e[k])) fail(where, `graphs.${gn}.${k} (${e[k]}) is not listed in files`);
    }
    graphs[gn] = {
      file: e.file as string,
      data: e.data as string,
      inputs: graphIO(e.inputs, where, `graphs.${gn}.inputs`),
      outputs: graphIO(e.outputs, where, `graphs.${gn}.outputs`),
    };
    if (e.variant !== undefined) {
      if (gn !== 'decoder' || e.variant !== 'gpu') fail(where, `graphs.${gn}.variant ${JSON.stringify(e.variant)} is not supported`);
      graphs[gn].variant = 'gpu';
    }
  }
  const gpuDecoder = graphs.decoder.variant === 'gpu';
  if (gpuDecoder !== (m.formatVersion === GPU_PACKAGE_FORMAT_VERSION)) {
    fail(where, `formatVersion ${String(m.formatVersion)} does not match the decoder (${gpuDecoder ? 'GPU' : 'CPU'} graph); convert the checkpoint again`);
  }
  return {
    format: PACKAGE_FORMAT,
    formatVersion: gpuDecoder ? GPU_PACKAGE_FORMAT_VERSION : PACKAGE_FORMAT_VERSION,
    family: 'mplug-owl2',
    id,
    name,
    converterVersion,
    createdAt,
    source: { format: src.format, files: sourceFiles },
    config,
    quantization,
    ...(m.preset !== undefined ? { preset: str(m, 'preset', where) } : {}),
    ...(m.quantizationDetail !== undefined ? { quantizationDetail: quantizationDetail(m.quantizationDetail, where) } : {}),
    ...(m.verification !== undefined ? { verification: verificationReport(m.verification, where) } : {}),
    graphs,
    files,
  };
}
