/**
 * The store stays split by concern: a file under src-main/store longer than 400 lines must say why
 * in its first comment ("Why this file is long: …"), so growth is a decision, not an accident.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const MAX_LINES = 400;
const REASON = 'Why this file is long:';
const storeDir = join(dirname(fileURLToPath(import.meta.url)), '../../../src-main/store');

/** The file's first comment: a leading block comment, or its leading run of `//` lines. */
function firstComment(text: string): string {
  const body = text.replace(/^#!.*\n/, '').trimStart();
  if (body.startsWith('/*')) return body.slice(0, body.indexOf('*/') + 2);
  const lines: string[] = [];
  for (const line of body.split('\n')) {
    if (!line.trimStart().startsWith('//')) break;
    lines.push(line);
  }
  return lines.join('\n');
}

/** TypeScript files under `dir` over {@link MAX_LINES} lines whose first comment gives no reason, as `path (N lines)`. */
function longFilesWithoutReason(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const path = join(entry.parentPath, entry.name);
    const text = readFileSync(path, 'utf8');
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES && !firstComment(text).includes(REASON)) out.push(`${relative(dir, path)} (${lines} lines)`);
  }
  return out.sort();
}

describe('src-main/store layout', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'owlery-layout-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it(`has no file over ${MAX_LINES} lines without "${REASON}" in its first comment`, () => {
    expect(longFilesWithoutReason(storeDir)).toEqual([]);
  });

  it('finds a long file without a reason, in a subfolder too, and accepts one that gives it', () => {
    const code = 'export const x = 1;\n'.repeat(MAX_LINES);
    mkdirSync(join(tmp, 'migrations'));
    writeFileSync(join(tmp, 'short.ts'), '/** Short. */\nexport const y = 2;\n');
    writeFileSync(join(tmp, 'silent.ts'), `/** A module. */\n${code}`);
    writeFileSync(join(tmp, 'migrations', 'deep.ts'), `// A migration.\n${code}`);
    writeFileSync(join(tmp, 'late.ts'), `/** A module. */\n// ${REASON} too late, not in the first comment.\n${code}`);
    writeFileSync(join(tmp, 'reasoned.ts'), `/**\n * A module.\n * ${REASON} one table, one file.\n */\n${code}`);
    writeFileSync(join(tmp, 'line-comments.ts'), `// A module.\n// ${REASON} generated.\n${code}`);
    expect(longFilesWithoutReason(tmp)).toEqual([
      'late.ts (402 lines)',
      `${join('migrations', 'deep.ts')} (401 lines)`,
      'silent.ts (401 lines)',
    ]);
  });
});
