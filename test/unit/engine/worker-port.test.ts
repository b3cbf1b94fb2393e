/**
 * The engine process's transport picks Electron's parent port in a utility process and Node's IPC
 * channel in a forked process (the real fork path runs in test/integration/app-build.test.ts and
 * the engine tests; Electron's utility process cannot run here, so a process object with the
 * `parentPort` Electron installs stands in for it).
 */
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { connectToHost } from '../../../src-main/engine/worker-port.ts';
import type { WorkerRequest, WorkerResponse } from '../../../src-main/engine/protocol.ts';

describe('engine worker transport', () => {
  it('uses process.parentPort in an Electron utility process', () => {
    const posted: unknown[] = [];
    const parentPort = Object.assign(new EventEmitter(), { postMessage: (m: unknown) => posted.push(m) });
    const proc = Object.assign(new EventEmitter(), { parentPort }) as unknown as NodeJS.Process;
    const port = connectToHost(proc);
    expect(port.kind).toBe('utility');
    const got: WorkerRequest[] = [];
    port.onMessage((r) => got.push(r));
    parentPort.emit('message', { data: { type: 'tokenize', id: 1, text: 'hi' }, ports: [] });
    expect(got).toEqual([{ type: 'tokenize', id: 1, text: 'hi' }]);
    const answer: WorkerResponse = { type: 'result', id: 1, value: new Float32Array([1, 2]) };
    port.send(answer);
    expect(posted).toEqual([answer]);
  });

  it("uses Node's IPC channel in a forked process, and drops answers once the host is gone", () => {
    const sent: unknown[] = [];
    const proc = Object.assign(new EventEmitter(), {
      connected: true,
      send: (m: unknown) => {
        sent.push(m);
        return true;
      },
    });
    const port = connectToHost(proc as unknown as NodeJS.Process);
    expect(port.kind).toBe('fork');
    const got: WorkerRequest[] = [];
    port.onMessage((r) => got.push(r));
    let gone = 0;
    port.onDisconnect(() => gone++);
    proc.emit('message', { type: 'unload', id: 2 });
    port.send({ type: 'result', id: 2, value: null });
    proc.connected = false;
    port.send({ type: 'result', id: 3, value: null });
    proc.emit('disconnect');
    expect(got).toEqual([{ type: 'unload', id: 2 }]);
    expect(sent).toEqual([{ type: 'result', id: 2, value: null }]);
    expect(gone).toBe(1);
  });

  it('refuses to start without a host', () => {
    expect(() => connectToHost(new EventEmitter() as unknown as NodeJS.Process)).toThrow(/started by the engine host/);
  });
});
