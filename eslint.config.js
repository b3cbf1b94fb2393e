// Lint, including the import boundaries between the source roots (docs/design.md, "Layout"):
// src-shared imports nothing outside itself, the renderer only src-shared, models/ only src-shared
// (and never onnxruntime: the engine owns it), only src-main/app, src-main/preload and src-main/ipc
// may import electron, code outside src-main/engine imports the engine only through its face
// (src-main/engine/index.ts), the engine imports only src-shared and the graph contract,
// src-main/store imports none of src-main's engine, chat, services or ipc, and the IPC handler
// modules (src-main/ipc/handlers) import services, not each other.
// test/unit/import-graph.test.ts checks the same on the whole import graph, and that it has no loops.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import svelte from 'eslint-plugin-svelte';
import { dirname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const nodeBuiltins = ['node:*', 'fs', 'path', 'os', 'child_process', 'worker_threads', 'crypto', 'url', 'stream', 'util', 'zlib', 'http', 'https', 'net'];
const electron = { group: ['electron', 'electron/*'], message: 'Only src-main/app, src-main/preload and src-main/ipc may import electron.' };
// `except`: paths that stay allowed although a folder on them has the name.
const root = (name, why, except = []) => ({ group: [`**/${name}/**`, `${name}/**`, ...except.map((path) => `!${path}`)], message: why });
// What any src-main file outside the Electron edges may not import (a later block that restricts
// more repeats these: a file's last matching block sets the rule's options).
const mainPatterns = [electron, root('src-renderer', 'src-main never imports renderer code.')];

// Where a relative import lands, from the repository root, decides whether it is allowed: it must
// start with one of `allow` (when given), and must not start with one of `deny` unless it is one
// of `except`. (A glob like `**/models/**` would also catch a folder that happens to share a
// root's name, e.g. the renderer's own `models/`.)
const repoRoot = dirname(fileURLToPath(import.meta.url));
const importTargets = {
  meta: {
    type: 'problem',
    schema: [{
      type: 'object',
      properties: { allow: { type: 'array', items: { type: 'string' } }, deny: { type: 'array', items: { type: 'string' } }, except: { type: 'array', items: { type: 'string' } }, why: { type: 'string' } },
      additionalProperties: false,
    }],
    messages: { outside: "'{{spec}}' lands in {{target}}: {{why}}." },
  },
  create(context) {
    const { allow, deny = [], except = [], why = 'not allowed here' } = context.options[0] ?? {};
    const under = (target, prefixes) => prefixes.some((p) => target === p || target.startsWith(p));
    const check = (node) => {
      const spec = node.source && node.source.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = relative(repoRoot, resolve(dirname(context.filename), spec)).split(sep).join('/');
      const refused = (allow && !under(target, allow)) || (under(target, deny) && !except.includes(target));
      if (refused) context.report({ node: node.source, messageId: 'outside', data: { spec, target, why } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};
const onnxruntime = { group: ['onnxruntime-node', 'onnxruntime-node/*', 'onnxruntime-common', 'onnxruntime-web'], message: 'models/ makes packages and never loads onnxruntime: running graphs is the engine\'s (src-main/engine; the converter gets verification injected).' };

// One plugin object for the project's own rules (flat config refuses two objects under one name).
const owlery = { rules: { 'import-targets': importTargets } };

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
    plugins: { owlery },
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        { group: nodeBuiltins, message: 'The renderer is sandboxed: no Node APIs.' },
      ] }],
      'owlery/import-targets': ['error', {
        allow: ['src-renderer/', 'src-shared/'],
        why: 'the renderer may import only src-renderer, src-shared and browser packages (it talks to main only through window.owlery)',
      }],
    },
  },
  {
    files: ['models/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        electron,
        onnxruntime,
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
    ignores: ['src-main/app/**', 'src-main/preload/**', 'src-main/ipc/**', 'src-main/engine/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: mainPatterns }],
    },
  },
  {
    // The history store sits below the engine, the chat service, the services and the IPC handlers:
    // it imports none of them (src-shared's own `engine.ts` and `ipc/` stay allowed).
    files: ['src-main/store/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [
        ...mainPatterns,
        ...['engine', 'chat', 'services', 'ipc'].map((name) =>
          root(name, `src-main/store may not import src-main/${name}: the store sits below the engine, chat, services and ipc.`, ['**/src-shared/**'])),
      ] }],
    },
  },
  {
    files: ['src-main/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    ignores: ['src-main/engine/**'],
    plugins: { owlery },
    // Outside the engine, only its face (tests may reach inside to test the parts).
    rules: { 'owlery/import-targets': ['error', { deny: ['src-main/engine/'], except: ['src-main/engine/index.ts'], why: 'import the engine through src-main/engine/index.ts, not its internals' }] },
  },
  {
    // The engine: src-shared, the logger, onnxruntime and the graph contract (models/owl2, package, onnx, quant, verify, protobuf).
    files: ['src-main/engine/**/*.ts'],
    plugins: { owlery },
    rules: {
      'no-restricted-imports': ['error', { patterns: [electron] }],
      'owlery/import-targets': ['error', {
        allow: ['src-main/engine/', 'src-main/logging/', 'src-shared/', 'models/owl2/', 'models/package/', 'models/onnx/', 'models/quant/', 'models/verify.ts', 'models/protobuf.ts'],
        why: 'the engine imports only src-shared and the graph contract, never the rest of src-main or the package makers',
      }],
    },
  },
);
