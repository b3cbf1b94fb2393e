// The import graph of the shipped code (src-main, src-shared, models) and the tools (bench,
// scripts), read from the sources: no import loops, models/ never loads onnxruntime, and the
// engine is reached only through its face (docs/design.md, "Layout"; eslint.config.js enforces the
// same file by file).
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ROOTS = ['src-main', 'src-shared', 'models', 'bench', 'scripts'];

interface Import {
  spec: string;
  /** Repository-relative path of a relative import's target. */
  target: string | null;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (/\.(ts|js)$/.test(name) && !name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: Import[] = [];
  const re = /(?:^|\n)\s*(import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (const m of text.matchAll(re)) {
    const spec = m[2] ?? m[3];
    const target = spec.startsWith('.') ? relative(ROOT, resolve(dirname(join(ROOT, file)), spec)).split('\\').join('/') : null;
    out.push({ spec, target });
  }
  return out;
}

const files = ROOTS.flatMap(sources);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

/** Strongly connected components with more than one file (or a file importing itself); type-only imports count too (a loop of types is a loop of knowledge). */
function loops(): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  let n = 0;
  const visit = (v: string): void => {
    index.set(v, n);
    low.set(v, n++);
    stack.push(v);
    onStack.add(v);
    for (const e of graph.get(v) ?? []) {
      if (!e.target || !graph.has(e.target)) continue;
      const w = e.target;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).some((e) => e.target === v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return out;
}

describe('the import graph', () => {
  it('reads the sources it is about', () => {
    expect(files.length).toBeGreaterThan(150);
    expect(graph.get('src-main/services/composition.ts')!.some((e) => e.target === 'src-main/engine/index.ts')).toBe(true);
  });

  it('has no import loops', () => {
    expect(loops()).toEqual([]);
  });

  it('models/ never imports onnxruntime (the engine runs graphs; the converter gets verification injected)', () => {
    const offenders = files.filter((f) => f.startsWith('models/') && graph.get(f)!.some((e) => e.spec.startsWith('onnxruntime')));
    expect(offenders).toEqual([]);
  });

  it('nothing outside src-main/engine imports engine internals: only src-main/engine/index.ts', () => {
    const offenders: string[] = [];
    for (const [f, imports] of graph) {
      if (f.startsWith('src-main/engine/')) continue;
      for (const e of imports) if (e.target?.startsWith('src-main/engine/') && e.target !== 'src-main/engine/index.ts') offenders.push(`${f} → ${e.target}`);
    }
    expect(offenders).toEqual([]);
  });

  it('the engine imports only src-shared, the logger, onnxruntime, Node and the graph contract', () => {
    const allowed = ['src-main/engine/', 'src-main/logging/', 'src-shared/', 'models/owl2/', 'models/package/', 'models/onnx/', 'models/quant/', 'models/verify.ts', 'models/protobuf.ts'];
    const offenders: string[] = [];
    for (const [f, imports] of graph) {
      if (!f.startsWith('src-main/engine/')) continue;
      for (const e of imports) {
        if (e.target ? !allowed.some((a) => e.target!.startsWith(a)) : !/^(node:|onnxruntime-node$|sharp$|tsx\/)/.test(e.spec)) offenders.push(`${f} → ${e.target ?? e.spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
