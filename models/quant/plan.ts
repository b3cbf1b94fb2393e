/**
 * What precision each part of a package gets, and exactly how each precision is stored and
 * computed in the ONNX graphs (docs/engine-contract.md, "Quantized graphs").
 *
 * - `int4`: `com.microsoft::MatMulNBits`, 4 bits, block 128 along K, asymmetric with packed uint8
 *   zero points (onnxruntime's fast CPU path; float zero points would fall back to the slow one),
 *   accuracy_level 4 (activations quantized to int8 per block inside the kernel, int32 accumulate).
 *   Block 128, not 32: onnxruntime's int8-compute packing keeps a float32 scale and a float32 block
 *   sum per block, so block 32 costs ~7 bits per weight in memory and in bytes read per decoded
 *   token, block 128 ~4.3 (`bench/matmulnbits-bench.ts`: 7B-shaped layers decode 1.7× faster,
 *   prefill 1.36× faster, docs/performance.md). Asymmetric round-to-nearest at group size 128 is
 *   the usual 4-bit LLaMA setting (AWQ/GPTQ's group size).
 * - `int8`: `MatMulNBits`, 8 bits, block 32, symmetric (no zero-point input), accuracy_level 4.
 *   Measured on onnxruntime 1.30 CPU against DynamicQuantizeMatMul, DynamicQuantizeLinear +
 *   MatMulInteger and per-channel QDQ (which ORT rewrites into this very MatMulNBits): as fast
 *   within noise, and unlike the per-tensor dynamic activation quantization it keeps its accuracy
 *   with outlier activation channels.
 * - `fp16`: float16 weights `[K, N]`; the float32 activations are cast to float16 for the MatMul
 *   and the result back to float32 (norms, softmax, residual stream stay float32). GPU providers
 *   run the MatMul in float16; onnxruntime's CPU provider rewrites it to a float32 MatMul over
 *   weights upcast at session creation (correct; float32 memory use).
 * - `fp32`: plain float32 MatMul.
 *
 * Embedding tables: `int8` is the same block-wise symmetric 8-bit layout read through a Gather of
 * codes and scales and a dequantization in standard ops; `fp16` is a Gather over a float16 table
 * then a Cast; int4 is not offered for embeddings.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { BlockQuantParams } from './blockwise.ts';

/** Precision of a component's weights. */
export type Precision = 'fp32' | 'fp16' | 'int8' | 'int4';

/** Parts of a package whose precision is chosen separately. */
export interface QuantizationPlan {
  /** Vision encoder and abstractor linears (incl. visual_fc); the patch conv stays float32. */
  vision: Exclude<Precision, 'int4'>;
  /** Decoder linears: q/o/gate/up/down and both MAM branches of k/v. */
  llm: Precision;
  /** Token embedding table (`embed.onnx`). */
  embed: Exclude<Precision, 'int4'>;
  /** Output projection (`lm_head`, or the tied embedding). */
  lmHead: Exclude<Precision, 'int4'>;
}

/** Named presets. */
export type PresetName = 'cpu' | 'gpu' | 'gpu-int4' | 'reference';

/**
 * The presets: `cpu` (4-bit LLM, 8-bit vision), `gpu` (fp16), `gpu-int4` (4-bit LLM for 6–8 GB
 * cards, fp16 vision and embeddings, 8-bit lm_head), `reference` (fp32).
 */
export const PRESETS: Readonly<Record<PresetName, Readonly<QuantizationPlan>>> = {
  cpu: { vision: 'int8', llm: 'int4', embed: 'int8', lmHead: 'int8' },
  gpu: { vision: 'fp16', llm: 'fp16', embed: 'fp16', lmHead: 'fp16' },
  'gpu-int4': { vision: 'fp16', llm: 'int4', embed: 'fp16', lmHead: 'int8' },
  reference: { vision: 'fp32', llm: 'fp32', embed: 'fp32', lmHead: 'fp32' },
};

/** Every preset name, for option parsing. */
export const PRESET_NAMES: readonly PresetName[] = ['cpu', 'gpu', 'gpu-int4', 'reference'];

/**
 * Which `decoder.onnx` a package gets: `cpu` (decoder-graph.ts: the engine-owned KV cache read in
 * place, measured fastest on the CPU provider) or `gpu` (decoder-graph-gpu.ts: GroupQueryAttention,
 * no int64 ops, the KV cache kept on the device by the engine).
 */
export type DecoderVariant = 'cpu' | 'gpu';
/** Every decoder variant, for option parsing. */
export const DECODER_VARIANTS: readonly DecoderVariant[] = ['cpu', 'gpu'];

/** The decoder variant a preset gets unless asked otherwise: the GPU graph for the `gpu` presets. */
export function presetDecoder(preset: PresetName): DecoderVariant {
  return preset === 'gpu' || preset === 'gpu-int4' ? 'gpu' : 'cpu';
}
/** Precisions accepted per part. */
export const PRECISIONS = {
  llm: ['int4', 'int8', 'fp16', 'fp32'],
  vision: ['int8', 'fp16', 'fp32'],
  embed: ['int8', 'fp16', 'fp32'],
  lmHead: ['int8', 'fp16', 'fp32'],
} as const satisfies Record<keyof QuantizationPlan, readonly Precision[]>;

/** Overrides on top of a preset. */
export type PlanOverrides = Partial<QuantizationPlan>;

/**
 * The plan for a preset and overrides. When `llm` is overridden and `embed`/`lmHead` are not, they
 * follow it (int4 → int8 for both, since 4-bit embeddings and output heads cost too much accuracy
 * for their size).
 */
export function resolvePlan(preset: PresetName = 'reference', overrides: PlanOverrides = {}): QuantizationPlan {
  const base = PRESETS[preset];
  if (!base) throw new OwleryError('INVALID_ARGUMENT', `unknown preset "${String(preset)}"; use one of ${PRESET_NAMES.join(', ')}`);
  const plan: QuantizationPlan = { ...base };
  if (overrides.llm !== undefined) {
    plan.llm = overrides.llm;
    const follow = overrides.llm === 'int4' ? 'int8' : overrides.llm;
    plan.embed = follow;
    plan.lmHead = follow;
  }
  if (overrides.vision !== undefined) plan.vision = overrides.vision;
  if (overrides.embed !== undefined) plan.embed = overrides.embed;
  if (overrides.lmHead !== undefined) plan.lmHead = overrides.lmHead;
  for (const k of Object.keys(PRECISIONS) as (keyof QuantizationPlan)[]) {
    if (!(PRECISIONS[k] as readonly string[]).includes(plan[k])) {
      throw new OwleryError('INVALID_ARGUMENT', `${k} precision must be one of ${PRECISIONS[k].join(', ')}, got "${String(plan[k])}"`);
    }
  }
  return plan;
}

/** How a Linear layer's weight is stored and multiplied. */
export type LinearFormat =
  | { kind: 'float'; weightType: 'fp32' | 'fp16' }
  | ({ kind: 'matmulnbits'; accuracyLevel: number } & BlockQuantParams);

/** Block size of the 4-bit LLM linears (see the header for why 128). */
export const INT4_BLOCK_SIZE = 128;
/** Block size of the 8-bit tensors (vision linears, lm_head, embedding table). */
export const INT8_BLOCK_SIZE = 32;
/** MatMulNBits accuracy_level used: 4 = int8 activations, int32 accumulation (fast CPU path). */
export const QUANT_ACCURACY_LEVEL = 4;

/**
 * Block size of the 4-bit LLM linears in the GPU decoder: 32, symmetric (no zero points), the form
 * onnxruntime's WebGPU provider fuses gate, up and SiLU into one MatMulNBitsMlp kernel for
 * (measured on an H200: prefill 4,674 vs 3,111 tok/s with block 128 and zero points).
 */
export const GPU_INT4_BLOCK_SIZE = 32;

/**
 * The Linear format of a precision in a decoder variant: the GPU decoder's int4 is block 32 without
 * zero points; everything else is as {@link linearFormat}.
 */
export function decoderLinearFormat(p: Precision, variant: DecoderVariant): LinearFormat {
  if (variant === 'gpu' && p === 'int4') return { kind: 'matmulnbits', bits: 4, blockSize: GPU_INT4_BLOCK_SIZE, zeroPoints: 'none', accuracyLevel: QUANT_ACCURACY_LEVEL };
  return linearFormat(p);
}

/** The Linear format of a precision. */
export function linearFormat(p: Precision): LinearFormat {
  switch (p) {
    case 'fp32': return { kind: 'float', weightType: 'fp32' };
    case 'fp16': return { kind: 'float', weightType: 'fp16' };
    case 'int8': return { kind: 'matmulnbits', bits: 8, blockSize: INT8_BLOCK_SIZE, zeroPoints: 'none', accuracyLevel: QUANT_ACCURACY_LEVEL };
    case 'int4': return { kind: 'matmulnbits', bits: 4, blockSize: INT4_BLOCK_SIZE, zeroPoints: 'uint8', accuracyLevel: QUANT_ACCURACY_LEVEL };
  }
}

/** How the embedding table is stored and read. */
export type EmbedFormat =
  | { kind: 'float'; weightType: 'fp32' | 'fp16' }
  | ({ kind: 'gather-blockwise' } & BlockQuantParams);

/** The embedding format of a precision. */
export function embedFormat(p: Exclude<Precision, 'int4'>): EmbedFormat {
  if (p === 'int8') return { kind: 'gather-blockwise', bits: 8, blockSize: INT8_BLOCK_SIZE, zeroPoints: 'none' };
  return { kind: 'float', weightType: p };
}
