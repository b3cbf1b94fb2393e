/**
 * JSON text the way Hugging Face's `save_pretrained` writes it with Python's `json.dumps(obj,
 * indent=2, sort_keys=True) + "\n"`: sorted keys, two-space indent, `", "`/`": "` separators, and
 * floats in Python's `repr` (`1e-05`, `10000.0`). Floats are marked with `PyFloat` so integers and
 * floats with integral values stay distinct, as in Python.
 */

/** A number Python would hold as a `float` (written `10000.0`, `1e-05`). */
export class PyFloat {
  constructor(readonly value: number) {}
}

/** Shorthand for `new PyFloat(v)`. */
export function pyFloat(v: number): PyFloat {
  return new PyFloat(v);
}

/** Python's `repr(float)`: shortest round-tripping digits, exponent form below 1e-4 or from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [mant, expText] = x.toExponential().split('e');
  const exp = Number(expText);
  const neg = mant.startsWith('-');
  const digits = mant.replace('-', '').replace('.', '');
  let s: string;
  if (exp < -4 || exp >= 16) {
    const m = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    s = `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  } else if (exp >= digits.length - 1) {
    s = `${digits}${'0'.repeat(exp - digits.length + 1)}.0`;
  } else if (exp >= 0) {
    s = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  } else {
    s = `0.${'0'.repeat(-exp - 1)}${digits}`;
  }
  return neg ? `-${s}` : s;
}

function encode(v: unknown, indent: string): string {
  if (v === null || v === undefined) return 'null';
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) return pyFloatRepr(v);
    return String(v);
  }
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'string') return JSON.stringify(v).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (v.length === 0) return '[]';
    return `[\n${v.map((x) => inner + encode(x, inner)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v as Record<string, unknown>).sort();
  if (keys.length === 0) return '{}';
  return `{\n${keys.map((k) => `${inner}${JSON.stringify(k)}: ${encode((v as Record<string, unknown>)[k], inner)}`).join(',\n')}\n${indent}}`;
}

/** Serialises like `json.dumps(obj, indent=2, sort_keys=True) + "\n"`. */
export function pyJson(obj: unknown): string {
  return `${encode(obj, '')}\n`;
}

/** Deep-merges `patch` into `base` (objects merge, everything else replaces); returns a new object. */
export function deepMerge<T>(base: T, patch: unknown): T {
  if (patch === undefined) return base;
  if (!patch || typeof patch !== 'object' || Array.isArray(patch) || patch instanceof PyFloat) return patch as T;
  if (!base || typeof base !== 'object' || Array.isArray(base) || base instanceof PyFloat) return patch as T;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) out[k] = deepMerge(out[k], v);
  return out as T;
}
