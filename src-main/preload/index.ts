/**
 * The preload script: exposes `window.owlery` (the contract's named functions, grouped by domain,
 * and `onX(cb) => unsubscribe` for events) through the context bridge. Nothing else crosses:
 * no `ipcRenderer`, no generic invoke or send, no Node objects. Each function forwards one
 * payload to its own channel; main validates it and checks that the call came from the app's page.
 *
 * Runs sandboxed, so the build bundles it (with `src-shared`) into one CommonJS file
 * (`out/preload/index.cjs`): a sandboxed preload cannot load ES modules or other files.
 * @see style.md H3; Electron's context-isolation tutorial
 */
import { contextBridge, ipcRenderer } from 'electron';
import { createOwleryApi, EVENT_CHANNEL, isEventName } from '../../src-shared/ipc/index.ts';
import type { ChannelName, EventName, IpcResult, OwleryEvent } from '../../src-shared/ipc/index.ts';

const listeners = new Map<EventName, Set<(payload: unknown) => void>>();

ipcRenderer.on(EVENT_CHANNEL, (_event, message: OwleryEvent) => {
  if (!message || !isEventName(message.type)) return;
  for (const listener of [...(listeners.get(message.type) ?? [])]) {
    try {
      listener(message.payload);
    } catch (err) {
      // The sandboxed preload has no file access: a renderer listener's failure goes to the
      // renderer's own console (DevTools), where renderer errors belong.
      console.error(`owlery: a ${message.type} listener failed`, err);
    }
  }
});

const api = createOwleryApi({
  invoke: (channel: ChannelName, payload: unknown) => ipcRenderer.invoke(channel, payload) as Promise<IpcResult<unknown>>,
  subscribe(event, listener) {
    let set = listeners.get(event);
    if (!set) listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  },
});

contextBridge.exposeInMainWorld('owlery', api);
