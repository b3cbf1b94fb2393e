#!/usr/bin/env node
// Entry point of the `owlery` command.
// - Runs the compiled CLI, out/cli/owlery.js (`npm run build:app`, scripts/build-app.ts), which
//   starts the compiled engine worker out/engine/engine-worker.js: plain JavaScript and the
//   production dependencies, nothing else.
// - Without out/cli/owlery.js, in a dev checkout (tsx, a dev dependency, is installed): runs the
//   TypeScript sources through tsx's loader (the engine then starts through its tsx bootstrap).
//   A build takes precedence: after changing sources, rebuild (the `owlery` npm script does).
// - Neither (a production install that was never built): says how to build, in one line.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('../out/cli/owlery.js', import.meta.url);

if (existsSync(compiled)) {
  await import(compiled.href);
} else {
  let tsx;
  try {
    tsx = await import('tsx/esm/api');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND') throw err;
  }
  if (tsx) {
    tsx.register();
    const { main } = await import('../src-main/cli/main.ts');
    process.exitCode = await main(process.argv.slice(2));
  } else {
    const root = fileURLToPath(new URL('..', import.meta.url));
    process.stderr.write(`owlery: not built: ${fileURLToPath(compiled)} is missing; build it with "npm ci && npm run build:app" in ${root}\n`);
    process.exitCode = 1;
  }
}
