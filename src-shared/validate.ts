/**
 * A small runtime validator for data that crosses a trust boundary (IPC payloads, settings files,
 * WebSocket frames). No dependency: a schema is an object with a `parse` method that returns the
 * value typed (a fresh copy holding only the known keys) or throws an `OwleryError` with code
 * `INVALID_ARGUMENT` naming the offending path (`payload.images[2].name`).
 *
 * Runs anywhere: no Node, Electron or DOM APIs. Kept over valibot by measurement (preload bundle
 * 10.2 KB minified with it, 16.7 KB with valibot): docs/adr/0002-ipc-contract.md.
 */
import { OwleryError } from './errors.ts';

/** A runtime schema producing values of type `T`. */
export interface Schema<T> {
  /** Checks `value` and returns a clean copy of it; throws `INVALID_ARGUMENT` otherwise. */
  parse(value: unknown, path?: string): T;
  /** A short human-readable description, used in error messages. */
  readonly description: string;
  /** True when the key may be absent in an object (see {@link v.optional}). */
  readonly optional?: boolean;
}

/** The type a schema produces. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

/** Throws the validator's `INVALID_ARGUMENT` error for `path`. */
export function invalid(path: string, message: string): never {
  throw new OwleryError('INVALID_ARGUMENT', `${path}: ${message}`, { path });
}

/** Number of bytes `s` takes in UTF-8 (lone surrogates count as 3, like TextEncoder's U+FFFD). */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v === 'object' ? 'an object' : typeof v;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** Options of {@link v.string}. */
export interface StringOptions {
  /** Fewest characters (UTF-16 units); default 0. */
  min?: number;
  /** Most characters (UTF-16 units). */
  max?: number;
  /** Most UTF-8 bytes. */
  maxBytes?: number;
  /** A pattern the whole string must match (anchor it yourself). */
  pattern?: RegExp;
  /** Shown instead of the pattern in messages, e.g. `a sha256 (64 lowercase hex digits)`. */
  patternName?: string;
}

/** Options of {@link v.number} and {@link v.int}. */
export interface NumberOptions {
  min?: number;
  max?: number;
}

/** Schema constructors. */
export const v = {
  /** A string, optionally bounded and matched against a pattern. Strings never exceed `max` or `maxBytes`. */
  string(opts: StringOptions = {}): Schema<string> {
    const desc = opts.patternName ?? 'a string';
    return {
      description: desc,
      parse(value, path = 'value') {
        if (typeof value !== 'string') invalid(path, `expected ${desc}, got ${describe(value)}`);
        if (opts.min !== undefined && value.length < opts.min) {
          invalid(path, opts.min === 1 ? 'must not be empty' : `must be at least ${opts.min} characters`);
        }
        if (opts.max !== undefined && value.length > opts.max) invalid(path, `must be at most ${opts.max} characters`);
        if (opts.maxBytes !== undefined && value.length > opts.maxBytes / 3 && utf8Length(value) > opts.maxBytes) {
          invalid(path, `must be at most ${opts.maxBytes} bytes of UTF-8`);
        }
        if (opts.pattern && !opts.pattern.test(value)) invalid(path, `expected ${desc}`);
        return value;
      },
    };
  },

  /** A finite number within bounds. */
  number(opts: NumberOptions = {}): Schema<number> {
    return {
      description: 'a number',
      parse(value, path = 'value') {
        if (typeof value !== 'number' || !Number.isFinite(value)) invalid(path, `expected a finite number, got ${describe(value)}`);
        if (opts.min !== undefined && value < opts.min) invalid(path, `must be ≥ ${opts.min}`);
        if (opts.max !== undefined && value > opts.max) invalid(path, `must be ≤ ${opts.max}`);
        return value;
      },
    };
  },

  /** A safe integer within bounds. */
  int(opts: NumberOptions = {}): Schema<number> {
    return {
      description: 'an integer',
      parse(value, path = 'value') {
        if (typeof value !== 'number' || !Number.isSafeInteger(value)) invalid(path, `expected an integer, got ${describe(value)}`);
        if (opts.min !== undefined && value < opts.min) invalid(path, `must be ≥ ${opts.min}`);
        if (opts.max !== undefined && value > opts.max) invalid(path, `must be ≤ ${opts.max}`);
        return value;
      },
    };
  },

  /** `true` or `false`. */
  boolean(): Schema<boolean> {
    return {
      description: 'a boolean',
      parse(value, path = 'value') {
        if (typeof value !== 'boolean') invalid(path, `expected a boolean, got ${describe(value)}`);
        return value;
      },
    };
  },

  /** One of the given literal values. */
  enum<const T extends string | number | boolean>(values: readonly T[]): Schema<T> {
    const desc = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
    return {
      description: desc,
      parse(value, path = 'value') {
        if (!values.includes(value as T)) invalid(path, `expected ${desc}`);
        return value as T;
      },
    };
  },

  /** Exactly `undefined` or `null` (a request without a payload). Returns `undefined`. */
  none(): Schema<void> {
    return {
      description: 'nothing',
      parse(value, path = 'value') {
        if (value !== undefined && value !== null) invalid(path, `expected no payload, got ${describe(value)}`);
        return undefined;
      },
    };
  },

  /** A `Uint8Array` of bounded size (returned as is, not copied). */
  bytes(opts: { min?: number; max: number }): Schema<Uint8Array> {
    return {
      description: 'bytes',
      parse(value, path = 'value') {
        if (!(value instanceof Uint8Array)) invalid(path, `expected bytes (Uint8Array), got ${describe(value)}`);
        if (opts.min !== undefined && value.byteLength < opts.min) invalid(path, `must be at least ${opts.min} bytes`);
        if (value.byteLength > opts.max) invalid(path, `must be at most ${opts.max} bytes`);
        return value;
      },
    };
  },

  /** An array of at most `max` items. */
  array<T>(item: Schema<T>, opts: { min?: number; max: number }): Schema<T[]> {
    return {
      description: `a list of ${item.description}`,
      parse(value, path = 'value') {
        if (!Array.isArray(value)) invalid(path, `expected a list, got ${describe(value)}`);
        if (value.length > opts.max) invalid(path, `must have at most ${opts.max} items`);
        if (opts.min !== undefined && value.length < opts.min) invalid(path, `must have at least ${opts.min} item${opts.min === 1 ? '' : 's'}`);
        return value.map((x, i) => item.parse(x, `${path}[${i}]`));
      },
    };
  },

  /** `null` or a value of `inner`. */
  nullable<T>(inner: Schema<T>): Schema<T | null> {
    return {
      description: `${inner.description} or null`,
      parse(value, path = 'value') {
        return value === null ? null : inner.parse(value, path);
      },
    };
  },

  /** A key that may be absent (or `undefined`); used inside {@link v.object}. */
  optional<T>(inner: Schema<T>): Schema<T | undefined> & { readonly optional: true } {
    return {
      description: `${inner.description} (optional)`,
      optional: true,
      parse(value, path = 'value') {
        return value === undefined ? undefined : inner.parse(value, path);
      },
    };
  },

  /**
   * A plain object with exactly the given keys (unknown keys are refused, so typos and smuggled
   * fields surface). Keys whose schema is {@link v.optional} may be absent; when every key is
   * optional, `undefined` stands for `{}` (a call that passes no options).
   */
  object<S extends Record<string, Schema<unknown>>>(shape: S): Schema<ObjectOf<S>> {
    const keys = Object.keys(shape);
    const allOptional = keys.every((k) => shape[k]!.optional);
    return {
      description: 'an object',
      parse(value, path = 'value') {
        if (value === undefined && allOptional) return {} as ObjectOf<S>;
        if (!isPlainObject(value)) invalid(path, `expected an object, got ${describe(value)}`);
        for (const k of Object.keys(value)) {
          if (!Object.hasOwn(shape, k)) invalid(`${path}.${k}`, 'is not a known field');
        }
        const out: Record<string, unknown> = {};
        for (const k of keys) {
          const s = shape[k]!;
          const x = value[k];
          if (x === undefined) {
            if (!s.optional) invalid(`${path}.${k}`, `is required (${s.description})`);
            continue;
          }
          out[k] = s.parse(x, `${path}.${k}`);
        }
        return out as ObjectOf<S>;
      },
    };
  },

  /** A value of `inner` that also passes `check` (which returns an error message, or `undefined`). */
  refine<T>(inner: Schema<T>, check: (value: T) => string | undefined): Schema<T> {
    return {
      description: inner.description,
      optional: inner.optional,
      parse(value, path = 'value') {
        const out = inner.parse(value, path);
        const problem = check(out);
        if (problem !== undefined) invalid(path, problem);
        return out;
      },
    };
  },
};

type OptionalKeys<S> = { [K in keyof S]: S[K] extends { readonly optional: true } ? K : never }[keyof S];
type RequiredKeys<S> = Exclude<keyof S, OptionalKeys<S>>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** The object type a {@link v.object} shape produces. */
export type ObjectOf<S extends Record<string, Schema<unknown>>> = Simplify<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> }
>;
