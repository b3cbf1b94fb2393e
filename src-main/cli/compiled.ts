/**
 * Entry of the compiled CLI, `out/cli/owlery.js` (bundled by scripts/build-app.ts, run by
 * `bin/owlery.js`): runs {@link main} with this process's arguments and has the engine host start
 * the compiled engine worker, `out/engine/engine-worker.js`, built next to it. So nothing runs
 * through tsx and no dev dependency is needed.
 *
 * Only meaningful bundled: from the sources, `import.meta.url` is this file and the worker URL below
 * points nowhere (the sources run `main` directly, and the engine host's default, the tsx bootstrap).
 */
import { main } from './main.ts';

/** The compiled engine worker and placements child, relative to the compiled CLI (`out/cli/` → `out/engine/`). */
const ENGINE_WORKER = new URL('../engine/engine-worker.js', import.meta.url);
const PLACEMENTS_CHILD = new URL('../engine/placements-child.js', import.meta.url);

process.exitCode = await main(process.argv.slice(2), { engineWorker: ENGINE_WORKER, placementsChild: PLACEMENTS_CHILD });
