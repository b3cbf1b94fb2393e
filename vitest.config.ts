import { defineConfig } from 'vitest/config';

// onnxruntime-node's typed-array checks break inside per-file VM realms, so test files run in
// child processes ('forks') rather than isolated VM contexts.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
