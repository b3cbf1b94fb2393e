/**
 * A minimal Protocol Buffers wire-format reader and writer.
 *
 * Enough for the two protobuf files Owlery touches: SentencePiece's `tokenizer.model` (read) and
 * ONNX `ModelProto` (written by the graph builders, read back by `owlery inspect` and tests).
 * No schema compiler: callers walk fields by number.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** One field as it appears on the wire. */
export interface ProtoField {
  field: number;
  wire: number;
  /** Varint value (as bigint to keep 64-bit values exact). */
  varint?: bigint;
  /** Bytes of a length-delimited field (sub-message, string, packed array). */
  bytes?: Uint8Array;
  /** Fixed 32/64-bit payload as raw little-endian bytes. */
  fixed?: Uint8Array;
}

/** Sequential reader over a protobuf message. */
export class ProtoReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.buf.length;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new Error('protobuf: truncated varint');
      const b = this.buf[this.pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new Error('protobuf: varint too long');
    }
  }

  /** Reads the next field, or returns undefined at the end. */
  next(): ProtoField | undefined {
    if (this.done) return undefined;
    const key = Number(this.varint());
    const field = key >>> 3;
    const wire = key & 7;
    switch (wire) {
      case WIRE_VARINT:
        return { field, wire, varint: this.varint() };
      case WIRE_I64:
        return { field, wire, fixed: this.take(8) };
      case WIRE_I32:
        return { field, wire, fixed: this.take(4) };
      case WIRE_LEN: {
        const len = Number(this.varint());
        return { field, wire, bytes: this.take(len) };
      }
      default:
        throw new Error(`protobuf: unsupported wire type ${wire} (field ${field})`);
    }
  }

  private take(n: number): Uint8Array {
    if (n < 0 || this.pos + n > this.buf.length) throw new Error('protobuf: truncated field');
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** Iterates over all fields of a message. */
export function* protoFields(buf: Uint8Array): Generator<ProtoField> {
  const r = new ProtoReader(buf);
  for (let f = r.next(); f; f = r.next()) yield f;
}

/** Decodes a fixed32 field as float32. */
export function fixedFloat32(f: ProtoField): number {
  const b = f.fixed!;
  return new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
}

const utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
/** Decodes a length-delimited field as UTF-8 text. */
export function fieldString(f: ProtoField): string {
  return utf8.decode(f.bytes!);
}

/**
 * Builds a protobuf message. Nested messages are written by passing another writer's bytes.
 * Parts are kept as a list of chunks so large tensors are not copied until `finish()`.
 */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private scratch: number[] = [];
  private size = 0;

  private flushScratch(): void {
    if (this.scratch.length) {
      this.chunks.push(Uint8Array.from(this.scratch));
      this.size += this.scratch.length;
      this.scratch = [];
    }
  }

  private rawVarint(v: bigint | number): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.scratch.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.scratch.push(Number(x));
  }

  private key(field: number, wire: number): void {
    this.rawVarint((field << 3) | wire);
  }

  /** int32/int64/uint64/enum/bool field. Negative numbers use 10-byte two's complement, as protobuf does. */
  varint(field: number, v: number | bigint | boolean): this {
    this.key(field, WIRE_VARINT);
    this.rawVarint(typeof v === 'boolean' ? (v ? 1 : 0) : v);
    return this;
  }

  float(field: number, v: number): this {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    this.scratch.push(...b);
    return this;
  }

  /** Length-delimited bytes (string, sub-message, raw tensor data). */
  bytes(field: number, data: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.rawVarint(data.length);
    this.flushScratch();
    this.chunks.push(data);
    this.size += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }

  message(field: number, sub: ProtoWriter): this {
    return this.bytes(field, sub.finish());
  }

  /** Packed repeated varints (e.g. tensor dims). */
  packedVarints(field: number, values: readonly (number | bigint)[]): this {
    const w = new ProtoWriter();
    for (const v of values) w.rawVarint(v);
    return this.bytes(field, w.finish());
  }

  /** Packed repeated floats. */
  packedFloats(field: number, values: readonly number[]): this {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }

  finish(): Uint8Array {
    this.flushScratch();
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
