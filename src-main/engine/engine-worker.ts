/**
 * The engine process: owns the onnxruntime sessions and answers the host's requests.
 *
 * Started by `EngineHost`: with `child_process.fork` (through `engine-worker-bootstrap.js` from
 * sources, or the compiled `out/engine/engine-worker.js`), or as an Electron utility process in the
 * app. {@link connectToHost} hides the difference. One request runs at a time, in arrival order;
 * `cancel` requests are handled immediately.
 */
import { OwleryError, serializeError } from '../../src-shared/errors.ts';
import { Owl2Engine, type EngineLoadOptions } from './owl2-engine.ts';
import { failedMidAnswer, isGpuFailure, reloadOnCpu } from './gpu/cpu-fallback.ts';
import type { EngineInfo, WorkerRequest, WorkerResponse } from './protocol.ts';
import type { GenerationEvent } from '../../src-shared/engine.ts';
import { connectToHost } from './worker-port.ts';

const host = connectToHost();
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
      const next = await Owl2Engine.load(req.dir, req.options);
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
        return await loaded().generate(req.request, onEvent, cancel);
      } catch (err) {
        // A GPU failure moves the model to the CPU (gpu/cpu-fallback.ts).
        const failed = loaded();
        if (!isGpuFailure(failed, err)) throw err;
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
      return (await loaded().embedImage(req.image, req.aspect)).embeds;
    case 'unload':
      await engine?.dispose();
      engine = undefined;
      return null;
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
      send({ type: 'error', id: req.id, error: serializeError(err) });
    }
  });
});
// The host going away (closed IPC channel) ends the engine too.
host.onDisconnect(() => process.exit(0));
