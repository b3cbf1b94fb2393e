/**
 * The renderer's way to the main process: `window.owlery` (the preload's API in the app, the
 * harness client in browser tests) wrapped by {@link createOwleryClient}, so calls resolve to
 * values and reject with `OwleryError`s that keep their codes.
 *
 * Components get the client from Svelte context ({@link getOwlery}); the app shell sets it once.
 */
import { getContext, setContext } from 'svelte';
import { createOwleryClient } from '../../../src-shared/ipc/index.ts';
import type { OwleryApi, OwleryClient } from '../../../src-shared/ipc/index.ts';

const OWLERY_KEY = Symbol('owlery-client');

/**
 * The client over `window.owlery`.
 *
 * @throws Error when the page runs without the preload (opened outside the app or the harness).
 */
export function connectOwlery(api: OwleryApi | undefined = (globalThis as { owlery?: OwleryApi }).owlery): OwleryClient {
  if (!api) throw new Error('Owlery must be opened from the app: window.owlery is missing.');
  return createOwleryClient(api);
}

/** Makes `client` available to every component below the caller (call during component init). */
export function setOwlery(client: OwleryClient): OwleryClient {
  return setContext(OWLERY_KEY, client);
}

/**
 * The client set by the app shell (call during component init).
 *
 * @throws Error outside a component tree that called {@link setOwlery}.
 */
export function getOwlery(): OwleryClient {
  const client = getContext<OwleryClient | undefined>(OWLERY_KEY);
  if (!client) throw new Error('getOwlery() needs the app shell (or a test) to call setOwlery() first.');
  return client;
}
