/**
 * "Open with Owlery": photo paths from a command line or the OS are stored like chosen photos and
 * queued for the window (`app:photos-opened`, then `app:take-opened-photos`). The Electron events
 * that deliver the paths (`open-file`, `second-instance`) are wired in src-main/app/main.ts and
 * cannot run here; the path parsing and the queue behind them can.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpcResult, OwleryEvent, StoredImage } from '../../src-shared/ipc/index.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import { isPhotoPath, photoPathsFromArgv } from '../../src-main/services/opened-photos.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services } from '../../src-main/services/composition.ts';
import { REPO_ROOT } from '../helpers/tiny-model.ts';

describe('photo paths from a command line', () => {
  it('skips the executable, the app folder when unpackaged, switches and non-photos; resolves relative paths', () => {
    const cwd = '/home/ann/Pictures';
    expect(photoPathsFromArgv(['/opt/Owlery/owlery', '--no-sandbox', 'beach.JPG', '/tmp/a.heic', 'notes.txt', '--flag=x.png'], { cwd, packaged: true }))
      .toEqual(['/home/ann/Pictures/beach.JPG', '/tmp/a.heic']);
    expect(photoPathsFromArgv(['/usr/bin/electron', '.', 'b.webp'], { cwd, packaged: false })).toEqual(['/home/ann/Pictures/b.webp']);
    expect(photoPathsFromArgv(['/opt/Owlery/owlery'], { cwd, packaged: true })).toEqual([]);
    // A desktop file's %U: file: URLs become paths, other URLs are ignored.
    expect(photoPathsFromArgv(['/opt/Owlery/owlery', 'file:///home/ann/My%20Photos/c.png', 'https://example.com/d.jpg'], { cwd, packaged: true }))
      .toEqual(['/home/ann/My Photos/c.png']);
    for (const ext of ['jpg', 'jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heic']) expect(isPhotoPath(`x.${ext}`), ext).toBe(true);
  });
});

describe('opened photos', () => {
  let dir: string;
  let services: Services;
  const events: OwleryEvent[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'owlery-opened-'));
    services = createServices({ dataDir: join(dir, 'data'), autoLoadModel: false });
    services.events.subscribe((e) => events.push(e));
  });
  afterAll(async () => {
    await services.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('stores the photos, announces them, and hands them to the window once', async () => {
    const photo = join(dir, 'ironing.jpg');
    await copyFile(join(REPO_ROOT, 'test/fixtures/extreme_ironing.jpg'), photo);
    const broken = join(dir, 'broken.png');
    await writeFile(broken, 'not a png');
    await services.openedPhotos.open([photo, join(dir, 'missing.jpg'), broken, join(dir, 'notes.txt')]);
    // The two that could not be opened are in the main log, by name.
    const log = (await readFile(join(dir, 'data', 'logs', 'main.log'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; data: { file: string } });
    const warnings = log.filter((r) => r.level === 'warn' && r.msg.startsWith('could not open a photo'));
    expect(warnings.map((r) => r.data.file)).toEqual(['missing.jpg', 'broken.png']);
    expect(events.filter((e) => e.type === 'app:photos-opened')).toEqual([{ type: 'app:photos-opened', payload: { count: 1 } }]);

    const d = createDispatcher(createHandlers(services), { isTrustedSender: (u) => u.startsWith('app://owlery/') });
    const from = { url: 'app://owlery/index.html' };
    const taken = (await d('app:take-opened-photos', undefined, from)) as IpcResult<StoredImage[]>;
    expect(taken).toMatchObject({ ok: true, value: [{ name: 'ironing.jpg', mime: 'image/jpeg', url: expect.stringMatching(/^owlery-image:\/\/image\/[0-9a-f]{64}$/) }] });
    expect(await d('app:take-opened-photos', undefined, from)).toEqual({ ok: true, value: [] });
    // Another page may not take them.
    expect(await d('app:take-opened-photos', undefined, { url: 'https://example.com/' })).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });
  });
});
