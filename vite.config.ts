/**
 * Vite build of the renderer (`src-renderer/` → `out/renderer/`), loaded by the app from
 * `app://owlery/index.html` and by the web test harness over HTTP.
 *
 * The build must run under the app's Content Security Policy (`src-main/app/csp.ts`): scripts
 * only as files from the app itself (no inline scripts, no `eval`), styles as files. `base: './'`
 * keeps every asset URL relative, so the same build works under both origins.
 */
import { fileURLToPath } from 'node:url';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vite';

/** Where the renderer's sources live. */
export const RENDERER_ROOT = fileURLToPath(new URL('./src-renderer/', import.meta.url));
/** Where the renderer is built (what `src-main/app` and `test/harness` serve). */
export const RENDERER_OUT_DIR = fileURLToPath(new URL('./out/renderer/', import.meta.url));

export default defineConfig({
  root: RENDERER_ROOT,
  base: './',
  plugins: [svelte()],
  // No `.env` files are read into the renderer; it has no secrets and no build-time switches.
  envDir: false,
  publicDir: false,
  clearScreen: false,
  build: {
    outDir: RENDERER_OUT_DIR,
    emptyOutDir: true,
    // Electron 45 ships Chromium 140; the harness runs Debian's Chromium.
    target: 'chrome120',
    // Everything as files: no `data:` scripts and no inline chunks.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    cssCodeSplit: false,
    sourcemap: false,
    reportCompressedSize: false,
  },
});
