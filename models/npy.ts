/**
 * Reading and writing NumPy `.npy` files (format 1.0, C order, little endian).
 *
 * Used by the CLI (`preprocess`, `embed-image`, `--dump-logits`) and by the fidelity tests that
 * read the official implementation's expected arrays.
 */
import { readFile, writeFile } from 'node:fs/promises';

export type NpyArray =
  | { dtype: 'float32'; shape: number[]; data: Float32Array }
  | { dtype: 'float64'; shape: number[]; data: Float64Array }
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int64'; shape: number[]; data: BigInt64Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array };

const DESCR: Record<NpyArray['dtype'], string> = {
  float32: '<f4',
  float64: '<f8',
  uint8: '|u1',
  int64: '<i8',
  int32: '<i4',
};

/** Parses the bytes of an `.npy` file. */
export function parseNpy(buf: Uint8Array): NpyArray {
  const magic = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];
  if (buf.length < 10 || magic.some((b, i) => buf[i] !== b)) throw new Error('not a .npy file (bad magic)');
  const major = buf[6];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(buf.subarray(start, start + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`bad .npy header: ${header}`);
  if (fortran === 'True') throw new Error('fortran-order .npy files are not supported');
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = start + headerLen;
  // Copy (Buffer#slice would be a view whose .buffer is the whole file, header included).
  const bytes = Uint8Array.prototype.slice.call(buf, dataStart, dataStart + count * itemSize(descr)).buffer;
  switch (descr) {
    case '<f4': return { dtype: 'float32', shape, data: new Float32Array(bytes) };
    case '<f8': return { dtype: 'float64', shape, data: new Float64Array(bytes) };
    case '|u1': return { dtype: 'uint8', shape, data: new Uint8Array(bytes) };
    case '<i8': return { dtype: 'int64', shape, data: new BigInt64Array(bytes) };
    case '<i4': return { dtype: 'int32', shape, data: new Int32Array(bytes) };
    default: throw new Error(`unsupported .npy dtype ${descr}`);
  }
}

function itemSize(descr: string): number {
  return Number(descr.slice(2));
}

/** Serialises an array to `.npy` bytes. */
export function encodeNpy(arr: NpyArray): Uint8Array {
  const shape = arr.shape.length === 1 ? `(${arr.shape[0]},)` : `(${arr.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[arr.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + arr.data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(arr.data.buffer, arr.data.byteOffset, arr.data.byteLength), 10 + header.length);
  return out;
}

/** Reads an `.npy` file. */
export async function readNpy(path: string): Promise<NpyArray> {
  return parseNpy(await readFile(path));
}

/** Writes a float32 array as `.npy`. */
export async function writeNpyFloat32(path: string, data: Float32Array, shape: number[]): Promise<void> {
  await writeFile(path, encodeNpy({ dtype: 'float32', shape, data }));
}
