/**
 * The engine process: owns the onnxruntime sessions and answers the host's requests.
 *
 * Started by `EngineHost`: with `child_process.fork` (through `engine-worker-bootstrap.js` from
 * sources, or the compiled `out/engine/engine-worker.js`), or as an Electron utility process in the
 * app. {@link connectToHost} hides the difference. One request runs at a time, in arrival order;
 * `cancel` requests are handled immediately.
 *
 * With `OWLERY_LOG_DIR` set (the app and the CLI's `--verbose` set it), it writes `engine.log`
 * there: loads (provider, timings), each answer's statistics, failures. Never prompts or answers.
 */
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import { SILENT, createLogger } from '../logging/logger.ts';
import { failedMidAnswer, isGpuFailure, reloadOnCpu } from './gpu/cpu-fallback.ts';
import { Owl2Engine } from './mplug-owl2/engine.ts';
import type { EngineInfo, EngineLoadOptions, WorkerRequest, WorkerResponse } from './protocol.ts';
import type { GenerationEvent } from '../../src-shared/engine.ts';
import { connectToHost } from './worker-port.ts';

const host = connectToHost();
const log = process.env.OWLERY_LOG_DIR ? createLogger({ dir: process.env.OWLERY_LOG_DIR, name: 'engine' }) : SILENT;
process.on('uncaughtException', (err) => {
  log.error('uncaught exception in the engine process', err);
  process.exit(70);
});
process.on('unhandledRejection', (err) => log.error('unhandled rejection in the engine process', err));
let engine: Owl2Engine | undefined;
let loadOptions: EngineLoadOptions = {};
const cancelFlags = new Map<number, { cancelled: boolean }>();

function send(msg: WorkerResponse): void {
  host.send(msg);
}

function loaded(): Owl2Engine {
  if (!engine) throw new OwleryError('PACKAGE_INVALID', 'no model is loaded');
  return engine;
}

async function handle(req: WorkerRequest): Promise<unknown> {
  switch (req.type) {
    case 'load': {
      const t0 = performance.now();
      const next = await Owl2Engine.load(req.dir, req.options, (event) => send({ type: 'event', id: req.id, event }));
      log.info('model loaded', {
        packageId: next.manifest.id, provider: next.providerReport.used, requested: next.providerReport.requested,
        attempts: next.providerReport.attempts, decoder: next.decoderSource.from, ms: Math.round(performance.now() - t0),
      });
      await engine?.dispose();
      engine = next;
      loadOptions = req.options;
      const info: EngineInfo = {
        dir: req.dir,
        packageId: next.manifest.id,
        provider: next.providerReport,
        fasterStartSkipped: next.decoderSource.from === 'package' ? next.decoderSource.cacheSkipped ?? null : null,
        contextLimit: next.config.llm.maxPositions,
        imageTokens: next.config.imageTokens,
        hiddenSize: next.config.llm.hiddenSize,
        vocabSize: next.config.llm.vocabSize,
        imageSize: next.config.vision.imageSize,
      };
      return info;
    }
    case 'generate': {
      const cancel = cancelFlags.get(req.id)!;
      let started = false;
      const onEvent = (event: GenerationEvent): void => {
        if (event.type === 'tokens') started = true;
        send({ type: 'event', id: req.id, event });
      };
      try {
        const result = await loaded().generate(req.request, onEvent, cancel);
        log.info('answer', { finish: result.finish, droppedPairs: result.droppedPairs, ...result.stats });
        return result;
      } catch (err) {
        // A GPU failure moves the model to the CPU (gpu/cpu-fallback.ts).
        const failed = loaded();
        if (!isGpuFailure(failed, err)) throw err;
        log.error('the GPU failed; the model moves to the CPU', err, { provider: failed.providerReport.used, started });
        engine = undefined;
        engine = await reloadOnCpu(failed, loadOptions, err);
        if (started) throw failedMidAnswer(failed, err);
        return await engine.generate(req.request, onEvent, cancel);
      } finally {
        cancelFlags.delete(req.id);
      }
    }
    case 'cancel':
      return null;
    case 'tokenize':
      return loaded().tokenizer.tokenizeWithImages(req.text);
    case 'preprocess':
      return loaded().preprocess(req.image, req.aspect);
    case 'embed-image':
      return loaded().embedImage(req.image, req.aspect);
    case 'unload':
      await engine?.dispose();
      engine = undefined;
      return null;
    case 'memory':
      return process.memoryUsage().rss;
  }
}

// Requests are handled strictly one after another; a cancel flags its target right away (also
// a generate request still waiting in the queue).
let chain: Promise<void> = Promise.resolve();
host.onMessage((req: WorkerRequest) => {
  if (req.type === 'cancel') {
    const flag = cancelFlags.get(req.target);
    if (flag) flag.cancelled = true;
    return;
  }
  if (req.type === 'generate') cancelFlags.set(req.id, { cancelled: false });
  chain = chain.then(async () => {
    try {
      const value = await handle(req);
      send({ type: 'result', id: req.id, value });
    } catch (err) {
      log.warn(`${req.type} failed`, undefined, err);
      send({ type: 'error', id: req.id, error: serializeError(err) });
    }
  });
});
// The host going away (closed IPC channel) ends the engine too.
host.onDisconnect(() => process.exit(0));
