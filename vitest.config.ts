import { svelte } from '@sveltejs/vite-plugin-svelte';
import { svelteTesting } from '@testing-library/svelte/vite';
import { configDefaults, defineConfig } from 'vitest/config';

// Two projects under one `vitest run`:
// - node: everything under test/ except the component tests. onnxruntime-node's typed-array
//   checks break inside per-file VM realms, so test files run in child processes ('forks') rather
//   than isolated VM contexts. Its global setup builds the renderer (out/renderer) when it is
//   stale, for the browser tests against the web harness, and the app and CLI (out/main, preload,
//   engine, cli), so `bin/owlery.js` runs the compiled CLI of the tree's code.
// - renderer: Svelte component tests in happy-dom (test/renderer/**).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/renderer/**'],
          pool: 'forks',
          testTimeout: 120_000,
          hookTimeout: 300_000,
          globalSetup: ['test/e2e/helpers/build-renderer.ts', 'test/helpers/build-app.ts'],
        },
      },
      {
        plugins: [svelte(), svelteTesting()],
        resolve: { conditions: ['browser'] },
        test: {
          name: 'renderer',
          include: ['test/renderer/**/*.test.ts'],
          environment: 'happy-dom',
          testTimeout: 30_000,
        },
      },
    ],
  },
});
