// Lint, including the import boundaries between the source roots (docs/design.md, "Layout"):
// src-shared imports nothing outside itself, the renderer only src-shared, models/ only src-shared,
// only src-main/app, src-main/preload and src-main/ipc may import electron, and the IPC handler
// modules (src-main/ipc/handlers) import services, not each other.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import svelte from 'eslint-plugin-svelte';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads', 'crypto', 'url', 'stream', 'util', 'zlib', 'http', 'https', 'net'];
const electron = { group: ['electron', 'electron/*'], message: 'Only src-main/app, src-main/preload and src-main/ipc may import electron.' };
const root = (name, why) => ({ group: [`**/${name}/**`, `${name}/**`], message: why });

// The renderer's boundary by where a relative import lands (a glob like `**/models/**` would also
// catch the renderer's own folders that happen to share a root's name).
const repoRoot = dirname(fileURLToPath(import.meta.url));
const rendererBoundary = {
  meta: { type: 'problem', schema: [], messages: { outside: "The renderer may import only src-renderer, src-shared and browser packages: '{{spec}}' is in {{top}}/ (it talks to main only through window.owlery)." } },
  create(context) {
    const check = (node) => {
      const spec = node.source && node.source.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const top = relative(repoRoot, resolve(dirname(context.filename), spec)).split(sep)[0];
      if (top !== 'src-renderer' && top !== 'src-shared') context.report({ node: node.source, messageId: 'outside', data: { spec, top } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

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
  // Svelte components and rune modules (`*.svelte.ts`): svelte-eslint-parser with TypeScript inside.
  ...svelte.configs.recommended,
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.svelte'] } },
  },
  {
    // Managers keep bookkeeping that must not be reactive (timers, handler sets, request ids) in
    // plain collections on purpose; what the UI reads is `$state`.
    files: ['**/*.svelte.ts'],
    rules: { 'svelte/prefer-svelte-reactivity': 'off' },
  },
  {
    files: ['src-renderer/**/*.ts', 'src-renderer/**/*.svelte', 'test/renderer/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
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
    plugins: { owlery: { rules: { 'renderer-boundary': rendererBoundary } } },
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        { group: nodeBuiltins, message: 'The renderer is sandboxed: no Node APIs.' },
      ] }],
      'owlery/renderer-boundary': 'error',
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
    // One handler module per domain, each over the services: handlers never reach into each other
    // (only handlers/index.ts merges them), nor into the engine, the Electron app or electron.
    files: ['src-main/ipc/handlers/**/*.ts'],
    ignores: ['src-main/ipc/handlers/index.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        { ...electron, message: 'IPC handlers reach Electron (dialogs, windows) through the services only.' },
        { group: ['./*', '../handlers/**', '**/ipc/handlers/**'], message: 'A handler module imports services, src-shared and store types, not another handler module (handlers/index.ts merges them).' },
        root('engine', 'IPC handlers reach the engine through the services only.'),
        root('app', 'IPC handlers never import the Electron app.'),
        root('preload', 'IPC handlers never import the preload.'),
        root('src-renderer', 'src-main never imports renderer code.'),
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
