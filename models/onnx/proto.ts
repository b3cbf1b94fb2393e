/**
 * ONNX protobuf messages (ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
 * ValueInfoProto) encoded with the project's minimal protobuf writer, and a small decoder for
 * reading a model back (tests, `owlery inspect`).
 *
 * Field numbers follow onnx/onnx `onnx/onnx.proto` (IR version 8/9). Only the fields Owlery writes
 * are covered.
 */
import { ProtoWriter, fieldString, fixedFloat32, protoFields } from '../protobuf.ts';

/** `TensorProto.DataType` values used by Owlery. */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
} as const;
/** A `TensorProto.DataType` value. */
export type DataTypeCode = (typeof DataType)[keyof typeof DataType];

/** Bytes per element of each data type (BOOL and UINT8 are one byte). */
export function dataTypeSize(t: DataTypeCode): number {
  switch (t) {
    case DataType.FLOAT: case DataType.INT32: return 4;
    case DataType.INT64: case DataType.DOUBLE: return 8;
    case DataType.FLOAT16: return 2;
    default: return 1;
  }
}

/** Where an external tensor's bytes live, relative to the model file's folder. */
export interface ExternalRef {
  location: string;
  offset: number;
  length: number;
}

/** A tensor as written into a TensorProto: inline raw bytes, or a reference to the external data file. */
export interface TensorProtoSpec {
  name: string;
  dataType: DataTypeCode;
  dims: readonly number[];
  raw?: Uint8Array;
  external?: ExternalRef;
}

/** A node attribute with its ONNX type spelled out (JS numbers do not say int or float). */
export type Attr =
  | { type: 'int'; value: number | bigint }
  | { type: 'float'; value: number }
  | { type: 'ints'; value: readonly (number | bigint)[] }
  | { type: 'floats'; value: readonly number[] }
  | { type: 'string'; value: string }
  | { type: 'tensor'; value: TensorProtoSpec }
  /** A subgraph (`If`'s branches): it may read every value of the enclosing graph by name. */
  | { type: 'graph'; value: GraphSpec };

/** Attribute constructors: `{ axis: attr.int(-1), epsilon: attr.float(1e-5) }`. */
export const attr = {
  int: (value: number | bigint): Attr => ({ type: 'int', value }),
  float: (value: number): Attr => ({ type: 'float', value }),
  ints: (value: readonly (number | bigint)[]): Attr => ({ type: 'ints', value }),
  floats: (value: readonly number[]): Attr => ({ type: 'floats', value }),
  string: (value: string): Attr => ({ type: 'string', value }),
  tensor: (value: TensorProtoSpec): Attr => ({ type: 'tensor', value }),
  graph: (value: GraphSpec): Attr => ({ type: 'graph', value }),
};

/** A node of the graph. */
export interface NodeSpec {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  attributes?: Readonly<Record<string, Attr>>;
}

/** One dimension: a fixed size or a symbolic name (`dim_param`). */
export type Dim = number | string;

/** A typed graph input or output. */
export interface ValueInfoSpec {
  name: string;
  elemType: DataTypeCode;
  dims: readonly Dim[];
  doc?: string;
}

/** A graph: the model's main graph, or a subgraph attribute. */
export interface GraphSpec {
  name: string;
  nodes: readonly NodeSpec[];
  initializers: readonly TensorProtoSpec[];
  inputs: readonly ValueInfoSpec[];
  outputs: readonly ValueInfoSpec[];
}

/** A whole model. */
export interface ModelSpec {
  irVersion: number;
  opsets: readonly { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  graph: GraphSpec;
  metadata?: Readonly<Record<string, string>>;
}

// Field numbers from onnx.proto.
const ATTR_TYPE = { float: 1, int: 2, string: 3, tensor: 4, graph: 5, floats: 6, ints: 7 } as const;

function stringEntry(key: string, value: string): ProtoWriter {
  return new ProtoWriter().string(1, key).string(2, value);
}

/** Encodes a TensorProto. */
export function encodeTensor(t: TensorProtoSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.varint(1, d);
  w.varint(2, t.dataType);
  w.string(8, t.name);
  if (t.external) {
    w.message(13, stringEntry('location', t.external.location));
    w.message(13, stringEntry('offset', String(t.external.offset)));
    w.message(13, stringEntry('length', String(t.external.length)));
    w.varint(14, 1); // data_location = EXTERNAL
  } else {
    w.bytes(9, t.raw ?? new Uint8Array(0));
  }
  return w;
}

function encodeAttribute(name: string, a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (a.type) {
    case 'float': w.float(2, a.value); break;
    case 'int': w.varint(3, a.value); break;
    case 'string': w.string(4, a.value); break;
    case 'tensor': w.message(5, encodeTensor(a.value)); break;
    case 'graph': w.message(6, encodeGraph(a.value)); break;
    case 'floats': w.packedFloats(7, a.value); break;
    case 'ints': w.packedVarints(8, a.value); break;
  }
  w.varint(20, ATTR_TYPE[a.type]);
  return w;
}

function encodeNode(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const [k, v] of Object.entries(n.attributes ?? {})) w.message(5, encodeAttribute(k, v));
  if (n.domain) w.string(7, n.domain);
  return w;
}

function encodeValueInfo(v: ValueInfoSpec): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of v.dims) {
    const dim = new ProtoWriter();
    if (typeof d === 'number') dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoWriter().varint(1, v.elemType).message(2, shape);
  const type = new ProtoWriter().message(1, tensorType);
  const w = new ProtoWriter().string(1, v.name).message(2, type);
  if (v.doc) w.string(3, v.doc);
  return w;
}

function encodeGraph(graph: GraphSpec): ProtoWriter {
  const g = new ProtoWriter();
  for (const n of graph.nodes) g.message(1, encodeNode(n));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, encodeTensor(t));
  for (const i of graph.inputs) g.message(11, encodeValueInfo(i));
  for (const o of graph.outputs) g.message(12, encodeValueInfo(o));
  return g;
}

/** Serialises a ModelProto. Initializers should be external or small: this builds the bytes in memory. */
export function encodeModel(m: ModelSpec): Uint8Array {
  const g = encodeGraph(m.graph);
  const w = new ProtoWriter();
  w.varint(1, m.irVersion);
  w.string(2, m.producerName);
  w.string(3, m.producerVersion);
  w.message(7, g);
  for (const op of m.opsets) {
    const o = new ProtoWriter();
    if (op.domain) o.string(1, op.domain);
    o.varint(2, op.version);
    w.message(8, o);
  }
  for (const [k, v] of Object.entries(m.metadata ?? {})) w.message(14, stringEntry(k, v));
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Decoding (for tests and inspection; never used on the inference path).

/** A tensor as read back: raw bytes are kept only for inline tensors. */
export interface DecodedTensor {
  name: string;
  dataType: number;
  dims: number[];
  raw?: Uint8Array;
  external?: ExternalRef;
}

/** A node as read back. */
export interface DecodedNode {
  opType: string;
  domain: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, number | number[] | string | DecodedTensor>;
}

/** A model as read back. */
export interface DecodedModel {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  producerName: string;
  metadata: Record<string, string>;
  graph: {
    name: string;
    nodes: DecodedNode[];
    initializers: DecodedTensor[];
    inputs: ValueInfoSpec[];
    outputs: ValueInfoSpec[];
  };
}

function decodeVarints(bytes: Uint8Array): number[] {
  const out: number[] = [];
  let v = 0n;
  let shift = 0n;
  for (const b of bytes) {
    v |= BigInt(b & 0x7f) << shift;
    if (b & 0x80) shift += 7n;
    else {
      out.push(Number(BigInt.asIntN(64, v)));
      v = 0n;
      shift = 0n;
    }
  }
  return out;
}

function decodeTensor(buf: Uint8Array): DecodedTensor {
  const t: DecodedTensor = { name: '', dataType: 0, dims: [] };
  const ext: Record<string, string> = {};
  let location = 0;
  for (const f of protoFields(buf)) {
    if (f.field === 1) {
      if (f.bytes) t.dims.push(...decodeVarints(f.bytes));
      else t.dims.push(Number(BigInt.asIntN(64, f.varint!)));
    } else if (f.field === 2) t.dataType = Number(f.varint);
    else if (f.field === 8) t.name = fieldString(f);
    else if (f.field === 9) t.raw = f.bytes;
    else if (f.field === 13) {
      let k = '';
      let v = '';
      for (const e of protoFields(f.bytes!)) {
        if (e.field === 1) k = fieldString(e);
        else if (e.field === 2) v = fieldString(e);
      }
      ext[k] = v;
    } else if (f.field === 14) location = Number(f.varint);
  }
  if (location === 1) {
    t.external = { location: ext.location ?? '', offset: Number(ext.offset ?? 0), length: Number(ext.length ?? -1) };
  }
  return t;
}

function decodeAttribute(buf: Uint8Array): [string, number | number[] | string | DecodedTensor] {
  let name = '';
  let value: number | number[] | string | DecodedTensor = 0;
  const floats: number[] = [];
  const ints: number[] = [];
  let type = 0;
  for (const f of protoFields(buf)) {
    switch (f.field) {
      case 1: name = fieldString(f); break;
      case 2: value = fixedFloat32(f); break;
      case 3: value = Number(BigInt.asIntN(64, f.varint!)); break;
      case 4: value = fieldString(f); break;
      case 5: value = decodeTensor(f.bytes!); break;
      case 7:
        if (f.bytes) {
          const dv = new DataView(f.bytes.buffer, f.bytes.byteOffset, f.bytes.byteLength);
          for (let i = 0; i + 4 <= f.bytes.byteLength; i += 4) floats.push(dv.getFloat32(i, true));
        } else floats.push(fixedFloat32(f));
        break;
      case 8:
        if (f.bytes) ints.push(...decodeVarints(f.bytes));
        else ints.push(Number(BigInt.asIntN(64, f.varint!)));
        break;
      case 20: type = Number(f.varint); break;
    }
  }
  if (type === ATTR_TYPE.floats) value = floats;
  if (type === ATTR_TYPE.ints) value = ints;
  return [name, value];
}

function decodeValueInfo(buf: Uint8Array): ValueInfoSpec {
  let name = '';
  let elemType = 0;
  const dims: Dim[] = [];
  for (const f of protoFields(buf)) {
    if (f.field === 1) name = fieldString(f);
    else if (f.field === 2) {
      for (const tf of protoFields(f.bytes!)) {
        if (tf.field !== 1) continue;
        for (const tt of protoFields(tf.bytes!)) {
          if (tt.field === 1) elemType = Number(tt.varint);
          else if (tt.field === 2) {
            for (const d of protoFields(tt.bytes!)) {
              if (d.field !== 1) continue;
              let dim: Dim = '?';
              for (const df of protoFields(d.bytes!)) {
                if (df.field === 1) dim = Number(df.varint);
                else if (df.field === 2) dim = fieldString(df);
              }
              dims.push(dim);
            }
          }
        }
      }
    }
  }
  return { name, elemType: elemType as DataTypeCode, dims };
}

/** Decodes a ModelProto (the graph part Owlery writes). */
export function decodeModel(buf: Uint8Array): DecodedModel {
  const m: DecodedModel = {
    irVersion: 0,
    opsets: [],
    producerName: '',
    metadata: {},
    graph: { name: '', nodes: [], initializers: [], inputs: [], outputs: [] },
  };
  for (const f of protoFields(buf)) {
    if (f.field === 1) m.irVersion = Number(f.varint);
    else if (f.field === 2) m.producerName = fieldString(f);
    else if (f.field === 8) {
      const op = { domain: '', version: 0 };
      for (const o of protoFields(f.bytes!)) {
        if (o.field === 1) op.domain = fieldString(o);
        else if (o.field === 2) op.version = Number(o.varint);
      }
      m.opsets.push(op);
    } else if (f.field === 14) {
      let k = '';
      let v = '';
      for (const e of protoFields(f.bytes!)) {
        if (e.field === 1) k = fieldString(e);
        else if (e.field === 2) v = fieldString(e);
      }
      m.metadata[k] = v;
    } else if (f.field === 7) {
      for (const gf of protoFields(f.bytes!)) {
        if (gf.field === 2) m.graph.name = fieldString(gf);
        else if (gf.field === 5) m.graph.initializers.push(decodeTensor(gf.bytes!));
        else if (gf.field === 11) m.graph.inputs.push(decodeValueInfo(gf.bytes!));
        else if (gf.field === 12) m.graph.outputs.push(decodeValueInfo(gf.bytes!));
        else if (gf.field === 1) {
          const n: DecodedNode = { opType: '', domain: '', name: '', inputs: [], outputs: [], attributes: {} };
          for (const nf of protoFields(gf.bytes!)) {
            if (nf.field === 1) n.inputs.push(fieldString(nf));
            else if (nf.field === 2) n.outputs.push(fieldString(nf));
            else if (nf.field === 3) n.name = fieldString(nf);
            else if (nf.field === 4) n.opType = fieldString(nf);
            else if (nf.field === 7) n.domain = fieldString(nf);
            else if (nf.field === 5) {
              const [k, v] = decodeAttribute(nf.bytes!);
              n.attributes[k] = v;
            }
          }
          m.graph.nodes.push(n);
        }
      }
    }
  }
  return m;
}
