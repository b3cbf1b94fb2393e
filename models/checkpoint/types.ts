/**
 * What every checkpoint reader (safetensors, PyTorch `.bin`, single or sharded) offers the converter.
 *
 * Readers never load the whole checkpoint: tensors are listed from headers/indices and each one is
 * read on demand, so conversion runs tensor by tensor in bounded memory.
 */

/** Element types found in checkpoints. */
export type CheckpointDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

export interface TensorInfo {
  /** State-dict key, e.g. `model.layers.0.self_attn.q_proj.weight`. */
  name: string;
  dtype: CheckpointDType;
  shape: number[];
  /** File the tensor lives in (for error messages and progress). */
  file: string;
  /** Size in bytes in the file. */
  byteLength: number;
}

export interface CheckpointReader {
  /** Every tensor in the checkpoint, by name. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** Which format was read: "safetensors" or "pytorch". */
  readonly format: 'safetensors' | 'pytorch';
  /** Files the reader uses, relative to the checkpoint folder. */
  readonly files: readonly string[];
  /** The tensor's raw little-endian bytes as stored (dtype per `TensorInfo.dtype`). */
  readRaw(name: string): Promise<Uint8Array>;
  /** The tensor converted to float32 (F16/BF16/F64 upcast or rounded exactly as IEEE does). */
  readFloat32(name: string): Promise<Float32Array>;
  /** The cancellation the reader was opened with: reads stop on it, and so may work on what they return (quantizing). */
  readonly signal?: AbortSignal;
  close(): Promise<void>;
}
