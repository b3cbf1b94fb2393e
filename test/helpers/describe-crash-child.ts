/**
 * Child process for the describe kill test (test/integration/describe-crash.test.ts): opens the
 * store, starts a describe job on a folder with the engine on the tiny model, and once `afterPhotos`
 * photos are finished and the next photo's first request has gone to the engine, tells the parent
 * and stops its event loop, waiting to be SIGKILLed in the middle of that photo.
 *
 * Run with tsx registered: `forkTestChild('helpers/describe-crash-child.ts', [dataDir, packageDir, folder, afterPhotos])` (chat-env.ts).
 */
import { DescribeService } from '../../src-main/describe/describe-service.ts';
import type { DescribeEngine } from '../../src-main/describe/describer.ts';
import { EngineHost } from '../../src-main/engine/index.ts';
import { openStoreEnv } from './chat-env.ts';

/** A message from this child to the test. */
export type DescribeCrashMessage =
  | { type: 'frozen'; jobId: number; finished: string[]; inFlight: string }
  | { type: 'error'; message: string };

function tell(msg: DescribeCrashMessage, then?: () => void): void {
  process.send!(msg, () => then?.());
}

/** Blocks this thread for good: nothing more runs here until the process is killed. */
function freeze(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

async function main(): Promise<void> {
  const [dataDir, pkg, folder, after] = process.argv.slice(2);
  const afterPhotos = Number(after);
  const env = openStoreEnv(dataDir);
  const host = new EngineHost();
  await host.load(pkg, { provider: 'cpu' });
  const finished: string[] = [];
  let jobId = -1;
  // The engine as the service sees it; the first request of the photo after `afterPhotos` freezes this process once sent.
  const engine: DescribeEngine = {
    get info() {
      return host.info;
    },
    generate(request, options) {
      const sent = host.generate(request, options);
      if (finished.length === afterPhotos && request.turns?.length === 1) {
        const inFlight = (request.images![0] as { path: string }).path;
        tell({ type: 'frozen', jobId, finished: [...finished], inFlight }, freeze);
      }
      return sent;
    },
  };
  const service = new DescribeService({ store: env.store, engine });
  service.subscribe((e) => {
    if (e.type === 'item') finished.push(e.path);
  });
  const job = await service.start({ folders: [folder], recursive: true, sidecars: true });
  jobId = job.id;
  await service.idle();
  tell({ type: 'error', message: `the job ended before the kill (${service.job(job.id).state})` });
}

main().catch((err: unknown) => tell({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) }));
