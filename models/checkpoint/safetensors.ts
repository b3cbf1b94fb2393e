/**
 * Reader for the safetensors format: an 8-byte little-endian header length N, N bytes of JSON
 * (`{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}`), then the
 * data area; offsets are relative to the start of the data area.
 *
 * The header is validated before any tensor is trusted: its length against the file size and a
 * 100 MB limit, every dtype and shape, every offset range inside the data area, ranges that do not
 * overlap, and shape × element size = byte length. Tensor data is read on demand with positioned
 * reads; the file is never loaded whole.
 */
import { basename } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { DTYPE_SIZE, isCheckpointDType, numel } from './dtype.ts';
import { openFile, readAt } from './io.ts';
import type { OpenFile, TensorFile } from './io.ts';
import type { CheckpointDType, TensorInfo } from './types.ts';

/** Largest JSON header accepted (the 7B checkpoints' headers are well under 1 MB). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** dtypes safetensors knows but this project does not read. */
const KNOWN_UNSUPPORTED = new Set(['F8_E4M3', 'F8_E5M2', 'U16', 'U32', 'U64', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2', 'C64']);

/** One entry of a validated safetensors header. */
export interface SafetensorsEntry {
  name: string;
  dtype: CheckpointDType;
  shape: number[];
  /** Byte range relative to the data area, `[begin, end)`. */
  begin: number;
  end: number;
}

/** A validated safetensors header. */
export interface SafetensorsHeader {
  /** `__metadata__` (string → string), empty when absent. */
  metadata: Record<string, string>;
  /** Entries in header order. */
  entries: SafetensorsEntry[];
  /** Absolute file offset of the data area (8 + header length). */
  dataStart: number;
}

function invalid(file: string, msg: string, tensor?: string): OwleryError {
  return new OwleryError('CHECKPOINT_INVALID', `${file}: ${tensor !== undefined ? `tensor "${tensor}": ` : ''}${msg}`,
    tensor !== undefined ? { path: file, tensor } : { path: file });
}

/**
 * Validates the header length field (`lengthField`, the file's first 8 bytes as a u64) against the
 * file size and the header size limit, and returns it as a number.
 */
export function checkSafetensorsHeaderLength(lengthField: bigint, fileSize: number, file: string): number {
  if (lengthField > BigInt(SAFETENSORS_MAX_HEADER_BYTES)) {
    throw invalid(file, `header length ${lengthField} exceeds the ${SAFETENSORS_MAX_HEADER_BYTES}-byte limit; not a valid safetensors file`);
  }
  const n = Number(lengthField);
  if (n < 2) throw invalid(file, `header length ${n} is too small for a JSON header`);
  if (8 + n > fileSize) {
    throw invalid(file, `header length ${n} runs past the end of the file (file size ${fileSize}); the file is truncated or not safetensors`);
  }
  return n;
}

/**
 * Parses and validates the JSON header bytes of a safetensors file whose data area holds
 * `dataSize` bytes.
 */
export function parseSafetensorsHeader(json: Uint8Array, dataSize: number, file: string): Omit<SafetensorsHeader, 'dataStart'> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(json);
  } catch {
    throw invalid(file, 'header is not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(file, `header is not valid JSON (${(err as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw invalid(file, 'header is not a JSON object');
  const metadata: Record<string, string> = {};
  const entries: SafetensorsEntry[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid(file, '__metadata__ is not an object');
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') throw invalid(file, `__metadata__.${k} is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw invalid(file, 'entry is not an object', name);
    const e = value as Record<string, unknown>;
    const dtype = e.dtype;
    if (!isCheckpointDType(dtype)) {
      if (typeof dtype === 'string' && KNOWN_UNSUPPORTED.has(dtype)) {
        throw new OwleryError('CHECKPOINT_UNSUPPORTED', `${file}: tensor "${name}": dtype ${dtype} is not supported`, { path: file, tensor: name });
      }
      throw invalid(file, `unknown dtype ${JSON.stringify(dtype)}`, name);
    }
    const shape = e.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(file, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`, name);
    }
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw invalid(file, `data_offsets ${JSON.stringify(offs)} is not a pair of non-negative integers`, name);
    }
    const [begin, end] = offs as [number, number];
    if (end < begin) throw invalid(file, `data_offsets [${begin}, ${end}] end before they begin`, name);
    if (end > dataSize) {
      throw invalid(file, `data_offsets [${begin}, ${end}] lie beyond the data area (${dataSize} bytes); the file is truncated or the header is corrupt`, name);
    }
    const expected = numel(shape as number[]) * DTYPE_SIZE[dtype];
    if (!Number.isSafeInteger(expected) || expected !== end - begin) {
      throw invalid(file, `shape [${(shape as number[]).join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] hold ${end - begin}`, name);
    }
    entries.push({ name, dtype, shape: [...(shape as number[])], begin, end });
  }
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: SafetensorsEntry | undefined;
  for (const cur of sorted) {
    if (last && cur.begin < last.end) {
      throw invalid(file, `data_offsets [${cur.begin}, ${cur.end}] overlap tensor "${last.name}" [${last.begin}, ${last.end}]`, cur.name);
    }
    last = cur;
  }
  return { metadata, entries };
}

/** Reads and validates the header of an open safetensors file. */
export async function readSafetensorsHeader(f: OpenFile): Promise<SafetensorsHeader> {
  if (f.size < 8) throw invalid(f.path, `file is ${f.size} bytes, too short for a safetensors header`);
  const lenBytes = await readAt(f, 0, 8, 'the header length');
  const lengthField = new DataView(lenBytes.buffer).getBigUint64(0, true);
  const n = checkSafetensorsHeaderLength(lengthField, f.size, f.path);
  const json = await readAt(f, 8, n, 'the JSON header');
  if (json[0] !== 0x7b) throw invalid(f.path, 'header does not start with "{"; not a safetensors file');
  const dataStart = 8 + n;
  return { ...parseSafetensorsHeader(json, f.size - dataStart, f.path), dataStart };
}

/** An open safetensors file. */
export class SafetensorsFile implements TensorFile {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  private readonly ranges: Map<string, SafetensorsEntry>;
  private readonly dataStart: number;

  private constructor(private readonly f: OpenFile, header: SafetensorsHeader, displayName: string) {
    this.metadata = header.metadata;
    this.ranges = new Map(header.entries.map((e) => [e.name, e]));
    this.tensors = new Map(header.entries.map((e) => [e.name, {
      name: e.name, dtype: e.dtype, shape: e.shape, file: displayName, byteLength: e.end - e.begin,
    }]));
    this.dataStart = header.dataStart;
  }

  /** Path of the file, as opened. */
  get path(): string {
    return this.f.path;
  }

  /**
   * Opens and validates a safetensors file. `displayName` (default: the file's base name) is what
   * `TensorInfo.file` reports.
   */
  static async open(path: string, displayName = basename(path)): Promise<SafetensorsFile> {
    const f = await openFile(path, 'safetensors file');
    try {
      return new SafetensorsFile(f, await readSafetensorsHeader(f), displayName);
    } catch (err) {
      await f.handle.close();
      throw err;
    }
  }

  /** The tensor's bytes as stored. */
  async readRaw(name: string): Promise<Uint8Array> {
    const e = this.ranges.get(name);
    if (!e) throw new OwleryError('CHECKPOINT_INVALID', `${this.f.path}: no tensor "${name}"`, { path: this.f.path, tensor: name });
    return readAt(this.f, this.dataStart + e.begin, e.end - e.begin, `tensor "${name}"`);
  }

  /** Closes the file handle. */
  async close(): Promise<void> {
    await this.f.handle.close();
  }
}
