/**
 * Exports onto a full disk: a real, tiny tmpfs (mounted for this test; skipped where mounting is
 * not allowed, e.g. when not running as root). Every format must fail with `DISK_FULL`, leave no
 * temporary or half-written file, and leave an existing file at the destination as it was.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { exportHtml, exportJson, exportMarkdown } from '../../src-main/export/index.ts';
import type { ExportContext } from '../../src-main/export/index.ts';
import { openStoreEnv, removeDir, tempDir } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';

const DISK_KIB = 96;

/** Mounts a tmpfs of {@link DISK_KIB} KiB; returns its folder, or null when not allowed here. */
function mountTinyDisk(): string | null {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return null;
  const dir = mkdtempSync(join(tmpdir(), 'owlery-full-disk-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK_KIB}k,mode=0755`, 'owlery-test', dir], { stdio: 'ignore' });
    return dir;
  } catch {
    rmdirSync(dir);
    return null;
  }
}

const disk = mountTinyDisk();

let work: string;
let env: StoreEnv;
let ctx: ExportContext;
let big: number;
let small: number;

/** A photo of noise (incompressible), larger than the disk. */
async function noisePhoto(size: number): Promise<Uint8Array> {
  const data = new Uint8Array(size * size * 3);
  let x = 12345;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return new Uint8Array(await sharp(data, { raw: { width: size, height: size, channels: 3 } }).png().toBuffer());
}

beforeAll(async () => {
  work = await tempDir('owlery-export-full-');
  env = openStoreEnv(join(work, 'data'));
  ctx = { store: env.store, images: env.images };
  const photo = await env.images.put(await noisePhoto(200), { name: 'noise.png' });
  expect(photo.byteSize).toBeGreaterThan(DISK_KIB * 1024);
  big = env.store.createConversation({ title: 'Big photo' }).id;
  env.store.appendUserMessage({ conversationId: big, text: 'Look at this noise.', images: [{ sha256: photo.sha256, name: 'noise.png' }] });
  small = env.store.createConversation({ title: 'Small' }).id;
  env.store.appendUserMessage({ conversationId: small, text: 'Just words.' });
});

afterAll(async () => {
  env?.close();
  await removeDir(work);
  if (disk) {
    execFileSync('umount', [disk], { stdio: 'ignore' });
    rmdirSync(disk);
  }
});

describe.skipIf(disk === null)('exports onto a full disk', () => {
  it('writes what fits', async () => {
    await exportJson(ctx, { conversations: [small], dest: join(disk!, 'small.json') });
    expect(JSON.parse(await readFile(join(disk!, 'small.json'), 'utf8'))).toMatchObject({ format: 'owlery-export' });
  });

  it.each([
    ['json', 'export.json', exportJson],
    ['html', 'export.html', exportHtml],
    ['markdown', 'export.md', exportMarkdown],
  ] as const)('%s: DISK_FULL, nothing half-written, the old file kept', async (_format, name, run) => {
    const dest = join(disk!, name);
    await writeFile(dest, 'the previous export');
    const before = (await readdir(disk!)).sort();
    await expect(run(ctx, { conversations: [big], dest })).rejects.toMatchObject({ code: 'DISK_FULL', message: expect.stringContaining(name === 'export.md' ? '.png' : name) });
    const after = (await readdir(disk!)).filter((f) => f !== 'assets').sort();
    expect(after).toEqual(before);
    expect(await readFile(dest, 'utf8')).toBe('the previous export');
    if (name === 'export.md') expect(await readdir(join(disk!, 'assets'))).toEqual([]);
  });
});
