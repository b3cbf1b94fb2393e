/**
 * The engine process's line to its host, whichever way it was started:
 * - `child_process.fork` (CLI, tests, web harness): Node's IPC channel (`process.send`,
 *   `'message'`, `'disconnect'`), with V8 serialization;
 * - Electron `utilityProcess.fork` (the app): `process.parentPort` (`postMessage`, `'message'`
 *   events carrying `data`), structured clone. Electron ends a utility process when the app quits,
 *   so there is no disconnect event to follow there.
 *
 * Plain Node: no `electron` import (the parent port is found on `process` at run time).
 * @see docs/adr/0001-processes.md
 */
import type { WorkerRequest, WorkerResponse } from './protocol.ts';

/** What the engine process needs from its transport. */
export interface HostPort {
  /** `fork` or `utility` (for diagnostics and tests). */
  readonly kind: 'fork' | 'utility';
  /** Sends one response; silently dropped when the host is gone. */
  send(message: WorkerResponse): void;
  /** Receives every request. */
  onMessage(listener: (request: WorkerRequest) => void): void;
  /** Called once when the host went away (fork only). */
  onDisconnect(listener: () => void): void;
}

/** The part of Electron's `ParentPort` used here. */
interface ParentPortLike {
  on(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  postMessage(message: unknown): void;
}

/** Connects to the host of this process; throws when it has none (started without IPC). */
export function connectToHost(proc: NodeJS.Process = process): HostPort {
  const parentPort = (proc as unknown as { parentPort?: ParentPortLike }).parentPort;
  if (parentPort && typeof parentPort.postMessage === 'function') {
    return {
      kind: 'utility',
      send: (message) => parentPort.postMessage(message),
      onMessage: (listener) => {
        parentPort.on('message', (event) => listener(event.data as WorkerRequest));
      },
      onDisconnect: () => {},
    };
  }
  if (!proc.send) throw new Error('engine-worker must be started by the engine host (child_process.fork or utilityProcess.fork)');
  return {
    kind: 'fork',
    send: (message) => {
      // The host may be gone (killed): then there is nobody to answer, and 'disconnect' ends us.
      if (!proc.connected) return;
      proc.send!(message, undefined, undefined, (err) => {
        if (err && proc.connected) throw err;
      });
    },
    onMessage: (listener) => {
      proc.on('message', (message) => listener(message as WorkerRequest));
    },
    onDisconnect: (listener) => {
      proc.once('disconnect', listener);
    },
  };
}
