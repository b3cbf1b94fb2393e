/**
 * The forms a checkpoint can be converted into, before converting: for each precision preset, how
 * much disk the package takes (and needs while converting), how much memory running it takes on
 * the CPU and on a GPU, and a human name for the model it makes ("mPLUG-Owl2 7B · 4-bit").
 *
 * The sizes come from the same graphs the converter writes (weights are never read: they stay
 * lazy), so they are the converter's own estimate; without a checkpoint at hand (a download not
 * started yet) they come from the config alone, as if every expected tensor were there.
 */
import { OwleryError } from '../src-shared/errors.ts';
import type { CheckpointReader, TensorInfo } from './checkpoint/types.ts';
import { buildPackageGraphs, estimatePackageBytes, expectedCheckpointTensors, runtimeBytes } from './convert.ts';
import { modelDisplayName } from './names.ts';
import { numel } from './onnx/graph.ts';
import { dataTypeSize } from './onnx/proto.ts';
import type { Owl2Config } from './owl2/config.ts';
import { isQuantized } from './verify.ts';
import { PRESET_NAMES, presetDecoder, resolvePlan } from './quant/plan.ts';
import type { PresetName } from './quant/plan.ts';

/** What one form of a model costs. */
export interface FormEstimate {
  preset: PresetName;
  /** The package on disk. */
  diskBytes: number;
  /** Free disk the conversion needs at the destination (the package, plus verification scratch). */
  convertBytes: number;
  /** Memory running it on the CPU takes (float16 weights are held as float32 there). */
  memoryBytes: number;
  /** Device memory running it on a GPU takes (weights as stored, plus room for activations and the cache). */
  gpuMemoryBytes: number;
  /** The model's human name in this form. */
  name: string;
}

/** The longest a float32 reference may be for a quantized package to be verified against it end to end (the converter's default). */
const REFERENCE_MAX_BYTES = 4 * 2 ** 30;
/** Device memory beyond the weights on a GPU: activations, the KV cache of a long chat, the runtime. */
const GPU_OVERHEAD_BYTES = 1.5 * 2 ** 30;

/** A reader that lists the tensors a config expects (float32) and reads none: for estimates only. */
export function configOnlyReader(config: Owl2Config): Pick<CheckpointReader, 'tensors' | 'readFloat32'> {
  const tensors = new Map<string, TensorInfo>();
  for (const [name, shape] of expectedCheckpointTensors(config).required) {
    tensors.set(name, { name, dtype: 'F32', shape, file: 'config.json', byteLength: numel(shape) * 4 });
  }
  return {
    tensors,
    readFloat32: (name) => Promise.reject(new OwleryError('INTERNAL', `${name}: an estimate reads no weights`)),
  };
}

export { FORM_WORDS, languageModelParameters, modelDisplayName, sizeLabel } from './names.ts';

/**
 * What each preset's package would cost, for a config (and the checkpoint's reader when one is
 * open: its tensor list then decides, optional tensors included). Reads no weights.
 */
export async function estimateForms(config: Owl2Config, reader?: Pick<CheckpointReader, 'tensors' | 'readFloat32'>): Promise<FormEstimate[]> {
  const source = reader ?? configOnlyReader(config);
  const reference = await buildPackageGraphs(config, source, resolvePlan('reference'));
  const referenceBytes = estimatePackageBytes(reference, 0).total;
  const out: FormEstimate[] = [];
  // Smallest first, as the forms are offered.
  for (const preset of ['cpu', 'gpu-int4', 'gpu', 'reference'].filter((p) => (PRESET_NAMES as readonly string[]).includes(p)) as PresetName[]) {
    const plan = resolvePlan(preset);
    const graphs = preset === 'reference' ? reference : await buildPackageGraphs(config, source, plan, presetDecoder(preset));
    const scratch = isQuantized(plan) && referenceBytes <= REFERENCE_MAX_BYTES ? referenceBytes : 0;
    const stored = graphs.reduce((n, [, g]) => n + g.weights.reduce((m, w) => m + numel(w.dims) * dataTypeSize(w.dataType), 0), 0);
    out.push({
      preset,
      diskBytes: estimatePackageBytes(graphs, 0).total,
      convertBytes: estimatePackageBytes(graphs, 0, scratch).total,
      memoryBytes: runtimeBytes(graphs),
      gpuMemoryBytes: Math.round(stored * 1.1 + GPU_OVERHEAD_BYTES),
      name: modelDisplayName(config, preset),
    });
  }
  return out;
}
