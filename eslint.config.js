// Lint, including the import boundaries between the source roots (docs/design.md, "Layout"):
// src-shared imports nothing outside itself, the renderer only src-shared, models/ only src-shared,
// and only src-main/app, src-main/preload and src-main/ipc may import electron.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads', 'crypto', 'url', 'stream', 'util', 'zlib', 'http', 'https', 'net'];
const electron = { group: ['electron', 'electron/*'], message: 'Only src-main/app, src-main/preload and src-main/ipc may import electron.' };
const root = (name, why) => ({ group: [`**/${name}/**`, `${name}/**`], message: why });

export default tseslint.config(
  { ignores: ['node_modules/**', 'out/**', 'dist/**', '.cache/**', 'test/fixtures/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['src-shared/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        { group: nodeBuiltins, message: 'src-shared runs everywhere: no Node APIs.' },
        root('src-main', 'src-shared imports nothing outside itself.'),
        root('src-renderer', 'src-shared imports nothing outside itself.'),
        root('models', 'src-shared imports nothing outside itself.'),
      ] }],
    },
  },
  {
    files: ['src-renderer/**/*.ts', 'src-renderer/**/*.svelte'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        { group: nodeBuiltins, message: 'The renderer is sandboxed: no Node APIs.' },
        root('src-main', 'The renderer talks to main only through window.owlery.'),
        root('models', 'The renderer talks to main only through window.owlery.'),
      ] }],
    },
  },
  {
    files: ['models/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        root('src-main', 'models/ may import src-shared only.'),
        root('src-renderer', 'models/ may import src-shared only.'),
      ] }],
    },
  },
  {
    files: ['src-main/**/*.ts'],
    ignores: ['src-main/app/**', 'src-main/preload/**', 'src-main/ipc/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        root('src-renderer', 'src-main never imports renderer code.'),
      ] }],
    },
  },
);
