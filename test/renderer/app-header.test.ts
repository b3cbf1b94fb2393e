/**
 * The chat header's model line: the model's name (not its id) and the device it runs on, the
 * name following a rename, and the load's phase while the model loads.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS } from '../../src-shared/settings.ts';
import { AppManager } from '../../src-renderer/lib/managers/app.svelte.ts';
import { engineStatus, fakeOwlery, installedModel } from './helpers/models-fakes.ts';

const ID = 'mplug-owl2-d1ab578bb163bde0';

async function setup() {
  const models = [installedModel({ id: ID, name: 'mPLUG-Owl2 7B · 4-bit' })];
  const fake = fakeOwlery({
    'app:info': () => ({ name: 'Owlery', version: '0', platform: 'browser', versions: {}, harness: true, imageBase: 'http://127.0.0.1/' }),
    'engine:status': () => engineStatus(),
    'settings:get': () => ({ ...DEFAULT_SETTINGS, activeModelId: ID }),
    'models:list': () => models,
  });
  const app = new AppManager(fake.client);
  const stop = app.start();
  await expect.poll(() => app.settingsLoaded && Object.keys(app.modelNames).length).toBe(1);
  return { fake, app, models, stop };
}

describe('header model line', () => {
  it('names the model and the device, never the id', async () => {
    const { fake, app, models, stop } = await setup();
    expect(app.engineSummary).toBe('mPLUG-Owl2 7B · 4-bit (not loaded)');
    fake.emit('engine:status', engineStatus({ state: 'loading', modelId: ID, load: { phase: 'opening-graphs', progress: { done: 1, total: 4 } } }));
    expect(app.engineSummary).toBe('Loading mPLUG-Owl2 7B · 4-bit…');
    fake.emit('engine:status', engineStatus({ state: 'ready', modelId: ID, provider: { requested: 'auto', used: 'cpu', attempts: [] } }));
    expect(app.engineSummary).toBe('mPLUG-Owl2 7B · 4-bit on CPU');
    models[0] = { ...models[0]!, name: 'Garden owl' };
    fake.emit('models:changed', { ids: [ID] });
    await expect.poll(() => app.engineSummary).toBe('Garden owl on CPU');
    stop();
  });
});
