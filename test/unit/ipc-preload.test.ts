/**
 * The preload script, with Electron's `contextBridge` and `ipcRenderer` replaced by recorders
 * (they are the boundary, not the thing under test): it exposes exactly one global, `owlery`,
 * built from the contract, forwards one payload per call to its own channel, never exposes
 * `ipcRenderer` or a generic invoke, and routes pushed events to subscribers.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { API, apiChannels, EVENT_CHANNEL } from '../../src-shared/ipc/index.ts';
import type { OwleryApi } from '../../src-shared/ipc/index.ts';

const exposed = new Map<string, unknown>();
const invokes: unknown[][] = [];
const onHandlers = new Map<string, (event: unknown, message: unknown) => void>();

vi.mock('electron', () => ({
  contextBridge: { exposeInMainWorld: (key: string, value: unknown) => exposed.set(key, value) },
  ipcRenderer: {
    invoke: async (...args: unknown[]) => {
      invokes.push(args);
      return { ok: true, value: args[0] };
    },
    on: (channel: string, fn: (event: unknown, message: unknown) => void) => onHandlers.set(channel, fn),
  },
}));

let api: OwleryApi;
beforeAll(async () => {
  await import('../../src-main/preload/index.ts');
  api = exposed.get('owlery') as OwleryApi;
});

describe('preload', () => {
  it('exposes only window.owlery, with the contract functions', () => {
    expect([...exposed.keys()]).toEqual(['owlery']);
    expect(Object.keys(api).sort()).toEqual(Object.keys(API).sort());
    for (const [domain, members] of Object.entries(API)) {
      expect(Object.keys((api as unknown as Record<string, object>)[domain]!).sort()).toEqual(Object.keys(members).sort());
    }
    const names = [...Object.keys(api), ...Object.values(api).flatMap((g) => Object.keys(g))];
    for (const forbidden of ['invoke', 'ipcRenderer', 'on', 'once', 'emit', 'postMessage', 'require', 'process']) expect(names).not.toContain(forbidden);
  });

  it('forwards one payload per call to its own channel', async () => {
    for (const [domain, name, channel] of apiChannels()) {
      invokes.length = 0;
      const fn = (api as unknown as Record<string, Record<string, (...a: unknown[]) => Promise<unknown>>>)[domain]![name]!;
      await expect(fn({ x: 1 }, 'extra', 'args')).resolves.toEqual({ ok: true, value: channel });
      expect(invokes).toEqual([[channel, { x: 1 }]]);
    }
  });

  it('routes pushed events to subscribers and ignores unknown ones', () => {
    const push = onHandlers.get(EVENT_CHANNEL)!;
    const seen: unknown[] = [];
    const off = api.engine.onStatus((s) => seen.push(s.state));
    push({}, { type: 'engine:status', payload: { state: 'ready' } });
    push({}, { type: 'evil:event', payload: {} });
    push({}, null);
    off();
    push({}, { type: 'engine:status', payload: { state: 'idle' } });
    expect(seen).toEqual(['ready']);
  });
});
