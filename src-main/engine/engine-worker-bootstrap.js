// Worker entry when running from TypeScript sources (CLI, tests): registers tsx's loader in this
// thread, then loads the real worker. A bundled app build points the worker at compiled code instead.
import { register } from 'tsx/esm/api';

register();
await import('./engine-worker.ts');
