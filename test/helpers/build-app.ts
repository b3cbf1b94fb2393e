/**
 * Vitest global setup (node project): builds `out/` (main, preload, engine worker and the `owlery`
 * CLI; esbuild, about a second) before any test runs. `bin/owlery.js` runs the compiled CLI when
 * there is one, so without this the CLI tests would drive whatever older build lies in `out/`
 * instead of the code in the tree. Writes are atomic, so the tests that rebuild (app-build,
 * packaging-dir) never show a half-written file to a CLI running meanwhile.
 */
import { buildApp } from '../../scripts/build-app.ts';

/** Vitest global setup entry. */
export default async function setup(): Promise<void> {
  await buildApp();
}
