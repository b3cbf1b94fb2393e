/**
 * Why a photo cannot be shown, on real files: empty, not an image, cut off (JPEG, PNG, WebP),
 * too large to downscale (a PNG whose header claims 30000×30000), gone; a good photo has no problem.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnoseImageFile } from '../../../src-main/store/image-check.ts';
import { pngBomb } from '../../robustness/helpers/images.ts';
import { tempDir } from './helpers.ts';

const PHOTO = join(import.meta.dirname, '..', '..', 'fixtures', 'extreme_ironing.jpg');

describe('diagnoseImageFile', () => {
  let tmp: ReturnType<typeof tempDir>;
  const files: Record<string, Uint8Array> = {};

  beforeAll(async () => {
    tmp = tempDir();
    const jpg = readFileSync(PHOTO);
    const png = await sharp(jpg).png().toBuffer();
    const webp = await sharp(jpg).webp().toBuffer();
    Object.assign(files, {
      'ok.jpg': jpg,
      'empty.jpg': new Uint8Array(0),
      'notes.png': Buffer.from('shopping list: milk, eggs'),
      'half.jpg': jpg.subarray(0, jpg.length >> 1),
      'half.png': png.subarray(0, png.length >> 1),
      'half.webp': webp.subarray(0, webp.length >> 1),
      'huge.png': pngBomb(30000, 30000),
    });
    for (const [name, bytes] of Object.entries(files)) writeFileSync(join(tmp.dir, name), bytes);
  });
  afterAll(() => tmp.cleanup());

  const check = (name: string) => diagnoseImageFile(join(tmp.dir, name), name);

  it('finds nothing wrong with a good photo', async () => {
    expect(await check('ok.jpg')).toBeNull();
  });

  it('says why each bad file cannot be shown', async () => {
    expect(await check('empty.jpg')).toEqual({ kind: 'empty', short: 'Empty file', message: 'empty.jpg is empty (0 bytes).' });
    expect(await check('notes.png')).toEqual({
      kind: 'not-image',
      short: 'Not an image',
      message: 'notes.png is not an image Owlery can read (JPEG, PNG, WebP, GIF, TIFF, AVIF or HEIC).',
    });
    for (const name of ['half.jpg', 'half.png', 'half.webp']) {
      expect(await check(name), name).toEqual({
        kind: 'truncated',
        short: 'File is cut off',
        message: `${name} is cut off (truncated): the file ends before the image does. It may not have finished copying.`,
      });
    }
    expect(await check('huge.png')).toEqual({
      kind: 'too-large',
      short: 'Too large',
      message: 'huge.png is 30000×30000 pixels (900 MP), more than the 250 MP Owlery can downscale.',
    });
    rmSync(join(tmp.dir, 'ok.jpg'));
    expect(await check('ok.jpg')).toMatchObject({ kind: 'missing', short: 'File is gone' });
  });
});
