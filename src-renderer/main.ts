/**
 * Renderer entry: connects to the main process through `window.owlery` and mounts the app shell.
 * Loaded as a module file (the app's Content Security Policy allows no inline script).
 */
import { mount } from 'svelte';
import App from './App.svelte';
import { connectOwlery } from './lib/api/client.ts';
import './app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');

try {
  mount(App, { target, props: { client: connectOwlery() } });
} catch (err) {
  const p = document.createElement('p');
  p.setAttribute('role', 'alert');
  p.textContent = err instanceof Error ? err.message : String(err);
  target.replaceChildren(p);
  throw err;
}
