/**
 * The Electron app's security decisions that run without Electron: which senders are trusted,
 * which links may open externally, which renderer files the `app:` protocol serves, the CSP, and
 * window state fitting. (The Electron wiring around them cannot run on machines without the
 * Electron binary; see docs/adr/0001-processes.md.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CONTENT_SECURITY_POLICY, CSP_DIRECTIVES } from '../../src-main/app/csp.ts';
import { safeExternalUrl } from '../../src-main/app/external-url.ts';
import { permissionAllowed } from '../../src-main/app/permissions.ts';
import { mimeOf, resolveRendererFile } from '../../src-main/app/renderer-files.ts';
import { DEFAULT_WINDOW_STATE, MIN_WINDOW, fitToDisplays, loadWindowState, saveWindowState } from '../../src-main/app/window-state.ts';
import { createSenderCheck } from '../../src-main/ipc/trust.ts';
import { parseImagePath } from '../../src-main/services/image-serving.ts';

const tmp = mkdtempSync(join(tmpdir(), 'owlery-app-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('trusted senders', () => {
  const renderer = join(tmp, 'out', 'renderer');
  const trusted = createSenderCheck({ rendererDir: renderer, origins: ['http://127.0.0.1:5173'] });

  it('accepts the app origin, the packaged renderer files and configured origins', () => {
    for (const url of ['app://owlery/index.html', 'app://owlery/', 'app://owlery/x#y', pathToFileURL(join(renderer, 'index.html')).href, 'http://127.0.0.1:5173/']) {
      expect(trusted(url), url).toBe(true);
    }
  });

  it('refuses everything else', () => {
    for (const url of [
      'app://owlery.evil/index.html',
      'app://evil.com/owlery',
      'app://user:pw@owlery/',
      'app://owlery:8080/',
      'https://owlery/',
      'http://127.0.0.1:5174/',
      'http://localhost:5173/',
      pathToFileURL(join(tmp, 'out', 'renderer-evil', 'index.html')).href,
      pathToFileURL(renderer).href,
      'file://remote-host/share/index.html',
      'devtools://devtools/bundled/inspector.html',
      'chrome-extension://abc/x.html',
      'javascript:alert(1)',
      'blob:app://owlery/1234',
      'not a url',
    ]) {
      expect(trusted(url), url).toBe(false);
    }
    expect(createSenderCheck()(pathToFileURL(join(renderer, 'index.html')).href)).toBe(false);
  });
});

describe('external links', () => {
  it('opens only http(s) URLs with a host and no credentials', () => {
    expect(safeExternalUrl('https://github.com/X-PLUG/mPLUG-Owl')).toBe('https://github.com/X-PLUG/mPLUG-Owl');
    expect(safeExternalUrl('http://example.com')).toBe('http://example.com/');
    for (const url of [
      'file:///etc/passwd',
      'javascript:alert(1)',
      'smb://server/share',
      'ms-msdt:/id',
      'app://owlery/index.html',
      'https://user:pw@example.com/',
      'https://',
      'example.com',
      `https://example.com/${'a'.repeat(3000)}`,
    ]) {
      expect(safeExternalUrl(url), url).toBeNull();
    }
  });
});

describe('app: protocol files', () => {
  const root = join(tmp, 'renderer');
  it('maps paths inside the build folder; client routes get index.html', () => {
    expect(resolveRendererFile(root, '/')).toBe(join(root, 'index.html'));
    expect(resolveRendererFile(root, '/conversations/12')).toBe(join(root, 'index.html'));
    expect(resolveRendererFile(root, '/assets/app-1234.js')).toBe(join(root, 'assets', 'app-1234.js'));
    expect(resolveRendererFile(root, '/assets/a%20b.css')).toBe(join(root, 'assets', 'a b.css'));
  });

  it('refuses paths that leave it', () => {
    for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/assets/..%2f..%2fsecret.txt', '/%00.js', '/%E0%A4%A.js', '/assets/../../x.js']) {
      expect(resolveRendererFile(root, p), p).toBeNull();
    }
  });

  it('knows the content types a Vite build emits', () => {
    expect(mimeOf('index.html')).toBe('text/html; charset=utf-8');
    expect(mimeOf('a.JS')).toBe('text/javascript; charset=utf-8');
    expect(mimeOf('x.bin')).toBe('application/octet-stream');
  });
});

describe('Content Security Policy', () => {
  it('allows no inline or remote scripts, no frames, no plugins, images from the image protocol', () => {
    const get = (name: string) => CSP_DIRECTIVES.find((d) => d.startsWith(`${name} `));
    expect(get('default-src')).toBe("default-src 'none'");
    expect(get('script-src')).toBe("script-src 'self'");
    expect(get('object-src')).toBe("object-src 'none'");
    expect(get('frame-src')).toBe("frame-src 'none'");
    expect(get('img-src')).toContain('owlery-image:');
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval|https?:/);
  });
});

describe('image paths', () => {
  it('accepts hashes and opaque ids only', () => {
    const sha = 'f'.repeat(64);
    expect(parseImagePath(`image/${sha}`)).toEqual({ kind: 'image', sha256: sha });
    expect(parseImagePath(`/thumb/${sha}/`)).toEqual({ kind: 'thumb', sha256: sha });
    expect(parseImagePath('folder/abc_DEF-1/xyz')).toEqual({ kind: 'folder', folderId: 'abc_DEF-1', entryId: 'xyz' });
    for (const p of [`image/${'F'.repeat(64)}`, 'image/../../etc/passwd', `image/${sha}/x`, 'folder/a/../b', 'file/x', '']) {
      expect(parseImagePath(p), p).toBeNull();
    }
  });
});

describe('window state', () => {
  const displays = [{ x: 0, y: 0, width: 1920, height: 1080 }];

  it('round-trips through the file and survives a damaged one', () => {
    const dir = join(tmp, 'ws');
    expect(loadWindowState(dir)).toEqual(DEFAULT_WINDOW_STATE);
    saveWindowState(dir, { x: 10, y: 20, width: 900, height: 700, maximized: true });
    expect(loadWindowState(dir)).toEqual({ x: 10, y: 20, width: 900, height: 700, maximized: true });
    writeFileSync(join(dir, 'window-state.json'), '{"width":');
    expect(loadWindowState(dir)).toEqual(DEFAULT_WINDOW_STATE);
  });

  it('keeps a window on a display, within size limits', () => {
    expect(fitToDisplays({ x: 100, y: 100, width: 1000, height: 700, maximized: false }, displays)).toEqual({ x: 100, y: 100, width: 1000, height: 700, maximized: false });
    // A display that is gone: the position is dropped.
    expect(fitToDisplays({ x: 3000, y: 100, width: 1000, height: 700, maximized: false }, displays)).toEqual({ width: 1000, height: 700, maximized: false });
    expect(fitToDisplays({ width: 100, height: 100, maximized: false }, displays)).toMatchObject(MIN_WINDOW);
    expect(fitToDisplays({ width: 5000, height: 5000, maximized: false }, displays)).toMatchObject({ width: 1920, height: 1080 });
    expect(fitToDisplays({ width: 800, height: 600, maximized: false }, [])).toEqual(DEFAULT_WINDOW_STATE);
  });
});

describe('permissions', () => {
  const isApp = createSenderCheck();
  it('grants clipboard writes to the app page only, nothing else', () => {
    expect(permissionAllowed('clipboard-sanitized-write', 'app://owlery/index.html', isApp)).toBe(true);
    expect(permissionAllowed('clipboard-sanitized-write', 'app://owlery', isApp)).toBe(true);
    expect(permissionAllowed('clipboard-sanitized-write', 'https://evil.example/', isApp)).toBe(false);
    for (const p of ['clipboard-read', 'media', 'notifications', 'geolocation', 'openExternal', 'fullscreen', 'hid', 'serial']) {
      expect(permissionAllowed(p, 'app://owlery/index.html', isApp), p).toBe(false);
    }
  });
});
