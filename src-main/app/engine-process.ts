/**
 * The engine process in the app: an Electron `utilityProcess` running the compiled engine entry
 * (`out/engine/engine-worker.js`), adapted to the engine host's {@link EngineSpawner} interface.
 *
 * Why not `child_process.fork` (the engine host's default under plain Node): in Electron, `fork`
 * re-runs the app's own executable with `ELECTRON_RUN_AS_NODE=1`, which needs the `RunAsNode` fuse
 * on; with it on, anyone can use the signed Owlery binary as a general-purpose Node.js (a known
 * way to borrow an app's signature and macOS permissions). A utility process is a Chromium child
 * process with Node inside, started by Electron itself, so the packaged app turns `RunAsNode`
 * off (electron-builder.yml, `electronFuses`). The engine still gets its own process: the window
 * never waits for onnxruntime, and a native crash in inference ends only the utility process
 * (the host reports it and starts a new one).
 * @see docs/adr/0001-processes.md, docs/security.md
 */
import { utilityProcess } from 'electron';
import type { EngineProcess, EngineProcessHandlers, EngineProcessOptions, EngineSpawner, WorkerResponse } from '../engine/index.ts';

/** Starts the engine in a utility process (`serviceName` shows in the OS's process list). */
export const utilityEngineProcess: EngineSpawner = (entry: string, handlers: EngineProcessHandlers, options: EngineProcessOptions = {}): EngineProcess => {
  const child = utilityProcess.fork(entry, [], { serviceName: 'Owlery engine', stdio: 'inherit', env: { ...process.env, ...options.env } });
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running = false;
      resolve();
    }),
  );
  child.on('message', (message: WorkerResponse) => handlers.onMessage(message));
  child.on('error', (type, location) => handlers.onExit(`the engine process failed (${type} at ${location})`));
  child.on('exit', (code) => handlers.onExit(`the engine process stopped unexpectedly (exit code ${code})`));
  return {
    get pid() {
      return child.pid;
    },
    send: (message) => child.postMessage(message),
    kill: async () => {
      if (!running) return;
      child.kill();
      await exited;
    },
  };
};
