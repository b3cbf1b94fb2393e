/**
 * A restricted unpickler for PyTorch state dicts.
 *
 * Python's pickle can call any importable function while loading, which is how malicious
 * checkpoints run code. This reader never executes anything from the file: it understands the
 * opcodes a state dict uses (protocol 2 to 5), resolves `GLOBAL`/`STACK_GLOBAL` only against a short
 * allow-list (`collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`,
 * `torch._utils._rebuild_parameter`, the `torch.*Storage` classes, `torch.<dtype>`), and interprets
 * `REDUCE` of those few callables itself. Any other global, or any other opcode, fails with
 * `CHECKPOINT_UNSAFE` naming it and the file.
 *
 * Its work is bounded too: at most {@link MAX_PICKLE_OPS} opcodes (a 7B shard's state dict needs
 * some 20,000), so a small compressed `data.pkl` of millions of MARK or EMPTY_LIST opcodes (a
 * "pickle bomb": 250 kB that would allocate gigabytes and abort the process) is refused early.
 */
import { OwleryError } from '../../src-shared/errors.ts';
import type { CheckpointDType } from './types.ts';

/** Storage classes and the element type they hold. */
export const STORAGE_DTYPES: Readonly<Record<string, CheckpointDType>> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

/** `torch.<dtype>` names a pickle may reference (newer torch versions put them in metadata). */
const TORCH_DTYPES = new Set(['float32', 'float', 'float16', 'half', 'bfloat16', 'float64', 'double', 'int64', 'long', 'int32', 'int', 'int16', 'short', 'int8', 'uint8', 'bool']);

/** A reference to a global the allow-list accepts. */
export class PickleGlobal {
  constructor(readonly module: string, readonly name: string) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** A storage resolved from a persistent id `('storage', StorageClass, key, location, numel)`. */
export interface StorageRef {
  kind: 'storage';
  dtype: CheckpointDType;
  /** Entry name under `<prefix>/data/`. */
  key: string;
  location: string;
  /** Number of elements. */
  numel: number;
}

/** A tensor built by `_rebuild_tensor_v2`: a view into a storage. */
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  /** Offset into the storage, in elements. */
  offset: number;
  shape: number[];
  stride: number[];
}

/** A pickled dict (plain `dict` or `OrderedDict`), in insertion order. */
export class PickleDict {
  readonly map = new Map<unknown, unknown>();
  /** State applied by `BUILD` (e.g. a state dict's `_metadata`), kept but unused. */
  state: unknown;
}

/** A tuple (kept distinct from lists only by type). */
export class PickleTuple {
  constructor(readonly items: unknown[]) {}
}

function isAllowedGlobal(module: string, name: string): boolean {
  if (module === 'collections' && name === 'OrderedDict') return true;
  if (module === 'torch._utils' && (name === '_rebuild_tensor_v2' || name === '_rebuild_parameter')) return true;
  if (module === 'torch' && (Object.prototype.hasOwnProperty.call(STORAGE_DTYPES, name) || TORCH_DTYPES.has(name))) return true;
  return false;
}

const OPCODE_NAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

/** Most opcodes one `data.pkl` may run (~25 per tensor: 80,000 tensors' worth; about 100 MB of values at worst). */
export const MAX_PICKLE_OPS = 2_000_000;

function toInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return undefined;
}

/**
 * Unpickles `data` (the bytes of `data.pkl`) with the restricted rules above. `file` names the
 * checkpoint in errors. Persistent ids must be storage references.
 */
export function restrictedUnpickle(data: Uint8Array, file: string): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const invalid = (msg: string): OwleryError =>
    new OwleryError('CHECKPOINT_INVALID', `${file}: data.pkl: ${msg} (at byte ${pos})`, { path: file });
  const unsafe = (msg: string, extra: Record<string, unknown>): OwleryError =>
    new OwleryError('CHECKPOINT_UNSAFE', `${file}: refusing to load: ${msg}. Nothing from the file was executed.`, { path: file, ...extra });

  const need = (n: number): void => {
    if (pos + n > data.length) throw invalid('unexpected end of pickle data');
  };
  const u8 = (): number => { need(1); return data[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(data.length)) throw invalid(`length ${v} exceeds the pickle size`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => { need(n); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const text = (n: number): string => {
    try {
      return utf8.decode(bytes(n));
    } catch {
      throw invalid('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw invalid('unterminated line');
    const s = new TextDecoder('latin1').decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw invalid('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw invalid('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw invalid('MARK expected');
    stack = prev;
    return items;
  };
  const longFromBytes = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return toInt(v) ?? v;
  };
  const global = (module: string, name: string): PickleGlobal => {
    if (!isAllowedGlobal(module, name)) {
      throw unsafe(`the pickle references the global ${module}.${name}, which a state dict never needs`, { global: `${module}.${name}` });
    }
    return new PickleGlobal(module, name);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (!(target instanceof PickleDict)) throw invalid('SETITEM(S) on something that is not a dict');
    if (items.length % 2) throw invalid('odd number of items for SETITEMS');
    for (let i = 0; i < items.length; i += 2) target.map.set(items[i], items[i + 1]);
  };
  const persistentLoad = (pid: unknown): StorageRef => {
    const t = pid instanceof PickleTuple ? pid.items : undefined;
    if (!t || t[0] !== 'storage' || t.length !== 5) throw invalid(`unsupported persistent id ${describe(pid)}`);
    const [, type, key, location, n] = t;
    if (!(type instanceof PickleGlobal) || type.module !== 'torch' || !STORAGE_DTYPES[type.name]) {
      throw invalid(`persistent id names ${describe(type)}, not a torch storage class`);
    }
    const numel = toInt(n);
    if (typeof key !== 'string' || typeof location !== 'string' || numel === undefined || numel < 0) {
      throw invalid(`malformed storage reference ${describe(pid)}`);
    }
    return { kind: 'storage', dtype: STORAGE_DTYPES[type.name], key, location, numel };
  };
  const intList = (v: unknown, what: string): number[] => {
    const items = v instanceof PickleTuple ? v.items : Array.isArray(v) ? v : undefined;
    const out = items?.map(toInt);
    if (!out || out.some((x) => x === undefined || x < 0)) throw invalid(`${what} is not a tuple of non-negative integers: ${describe(v)}`);
    return out as number[];
  };
  const reduce = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PickleGlobal)) throw unsafe(`REDUCE of ${describe(fn)}, which is not an allowed callable`, {});
    const a = args instanceof PickleTuple ? args.items : undefined;
    if (!a) throw invalid(`REDUCE arguments of ${fn.qualified} are not a tuple`);
    switch (fn.qualified) {
      case 'collections.OrderedDict': {
        const d = new PickleDict();
        if (a.length > 0) throw invalid('OrderedDict called with arguments');
        return d;
      }
      case 'torch._utils._rebuild_tensor_v2': {
        if (a.length < 6) throw invalid(`_rebuild_tensor_v2 called with ${a.length} arguments`);
        const [storage, offset, size, stride] = a;
        if (!storage || (storage as StorageRef).kind !== 'storage') throw invalid('_rebuild_tensor_v2 without a storage');
        const off = toInt(offset);
        if (off === undefined || off < 0) throw invalid(`bad storage offset ${describe(offset)}`);
        const t: TensorRef = { kind: 'tensor', storage: storage as StorageRef, offset: off, shape: intList(size, 'size'), stride: intList(stride, 'stride') };
        if (t.shape.length !== t.stride.length) throw invalid('size and stride have different lengths');
        return t;
      }
      case 'torch._utils._rebuild_parameter': {
        if (a.length < 1 || !a[0] || (a[0] as TensorRef).kind !== 'tensor') throw invalid('_rebuild_parameter without a tensor');
        return a[0];
      }
      default:
        throw unsafe(`the pickle calls ${fn.qualified}, which a state dict never needs`, { global: fn.qualified });
    }
  };

  need(1);
  for (let ops = 1; ; ops++) {
    if (ops > MAX_PICKLE_OPS) {
      throw unsafe(`data.pkl runs more than ${MAX_PICKLE_OPS.toLocaleString('en')} operations, far more than a state dict needs (it may be built to exhaust memory)`, { limit: MAX_PICKLE_OPS });
    }
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto > 5) throw invalid(`unsupported pickle protocol ${proto}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing is transparent for an in-memory read
      case 0x2e: { // STOP
        const result = pop();
        if (stack.length !== 0 || marks.length !== 0) throw invalid('data left on the stack at STOP');
        return result;
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(longFromBytes(bytes(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = i32();
        if (n < 0 || n > 64) throw invalid(`LONG4 of ${n} bytes`);
        stack.push(longFromBytes(bytes(n)));
        break;
      }
      case 0x47: { // BINFLOAT (big endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      }
      case 0x58: stack.push(text(u32())); break; // BINUNICODE
      case 0x8c: stack.push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(text(u64())); break; // BINUNICODE8
      case 0x54: { // BINSTRING (Python 2 str): read as latin-1 text
        const n = i32();
        if (n < 0) throw invalid('negative BINSTRING length');
        stack.push(new TextDecoder('latin1').decode(bytes(n)));
        break;
      }
      case 0x55: stack.push(new TextDecoder('latin1').decode(bytes(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x29: stack.push(new PickleTuple([])); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); stack.push(new PickleTuple(items)); break; } // TUPLE
      case 0x85: stack.push(new PickleTuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(new PickleTuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(new PickleTuple([a, b, c])); break; } // TUPLE3
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x61: { // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) throw invalid('APPEND to something that is not a list');
        l.push(v);
        break;
      }
      case 0x65: { // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw invalid('APPENDS to something that is not a list');
        for (const item of items) l.push(item); // not push(...items): too many arguments overflow the stack
        break;
      }
      case 0x7d: stack.push(new PickleDict()); break; // EMPTY_DICT
      case 0x64: { const d = new PickleDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const idx = op === 0x68 ? u8() : u32();
        if (!memo.has(idx)) throw invalid(`memo key ${idx} is not defined`);
        stack.push(memo.get(idx));
        break;
      }
      case 0x63: { // GLOBAL
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw invalid('STACK_GLOBAL operands are not strings');
        stack.push(global(module, name));
        break;
      }
      case 0x51: stack.push(persistentLoad(pop())); break; // BINPERSID
      case 0x69: { // INST: imports and calls module.name; never allowed, but name the global in the refusal
        const module = line();
        const name = line();
        throw unsafe(`pickle opcode INST calls the global ${module}.${name}, which a state dict never needs`, { global: `${module}.${name}`, opcode: 'INST' });
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(reduce(fn, args)); break; } // REDUCE
      case 0x62: { // BUILD: only dict state (a state dict's `_metadata`) and tensor state are accepted
        const state = pop();
        const obj = top();
        if (obj instanceof PickleDict) obj.state = state;
        else if (!(obj && (obj as TensorRef).kind === 'tensor')) throw unsafe(`BUILD on ${describe(obj)}`, {});
        break;
      }
      default: {
        const name = OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
        pos = opPos;
        throw unsafe(`pickle opcode ${name} (0x${op.toString(16).padStart(2, '0')}) at byte ${opPos} is not allowed in a state dict`, { opcode: name });
      }
    }
    if (pos >= data.length) throw invalid('pickle data ends without STOP');
  }
}

/** Short description of an unpickled value for error messages. */
function describe(v: unknown, depth = 0): string {
  if (v instanceof PickleGlobal) return v.qualified;
  if (v instanceof PickleTuple) {
    if (depth > 2 || v.items.length > 8) return 'tuple(…)';
    return `(${v.items.map((x) => describe(x, depth + 1)).join(', ')})`;
  }
  if (v instanceof PickleDict) return 'dict';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (v && typeof v === 'object' && 'kind' in v) return String((v as { kind: string }).kind);
  return String(v);
}
