/**
 * The Models screen and the first-run screen: the installed list with its information, the
 * progress of a task (bytes, percent, time left) with Cancel, failures in plain words, choosing
 * and deleting (after asking), hub ids checked before they are sent, and the first-run screen's
 * explanation and its two ways in.
 */
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import { DEFAULT_SETTINGS } from '../../src-shared/settings.ts';
import { formatBytes, formatEta } from '../../src-renderer/lib/components/models/format.ts';
import FirstRun from '../../src-renderer/lib/screens/FirstRun.svelte';
import ModelsScreen from '../../src-renderer/lib/screens/ModelsScreen.svelte';
import { ModelsManager, normaliseRepo, repoError } from '../../src-renderer/lib/managers/models.svelte.ts';
import { engineStatus, fakeOwlery, installedModel, modelForms, modelHandlers, modelTask } from './helpers/models-fakes.ts';
import type { FakeOwlery, Handlers } from './helpers/models-fakes.ts';

async function setup(
  handlers: Handlers,
  screenComponent: typeof ModelsScreen | typeof FirstRun = ModelsScreen,
  clock?: { now: number },
): Promise<{ fake: FakeOwlery; manager: ModelsManager }> {
  const fake = fakeOwlery(handlers);
  const manager = new ModelsManager(fake.client, clock ? () => clock.now : undefined);
  await manager.start();
  render(screenComponent, { props: { manager } });
  return { fake, manager };
}

describe('formatting', () => {
  it('sizes and time left in words', () => {
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(4_200_000_000)).toBe('4.2 GB');
    expect(formatBytes(16_400_000_000)).toBe('16.4 GB');
    expect(formatBytes(250_000_000)).toBe('250 MB');
    expect(formatEta(20)).toBe('less than a minute left');
    expect(formatEta(190)).toBe('about 3 min left');
    expect(formatEta(4800)).toBe('about 1 h 20 min left');
  });

  it('hub ids: owner/name, or a pasted hub address', () => {
    expect(normaliseRepo(' https://huggingface.co/MAGAer13/mplug-owl2-llama2-7b/tree/main ')).toBe('MAGAer13/mplug-owl2-llama2-7b');
    expect(repoError('MAGAer13/mplug-owl2-llama2-7b')).toBeNull();
    expect(repoError('')).toBe('Enter the repository as owner/name.');
    expect(repoError('just-a-name')).toMatch(/^Enter the repository as owner\/name/);
    expect(repoError('a/b/c')).toMatch(/^Enter the repository as owner\/name/);
    expect(repoError('../etc')).toMatch(/^Enter the repository as owner\/name/);
  });
});

describe('Models screen', () => {
  it('lists installed models with size, quantization, provider and verification', async () => {
    const active = installedModel({
      id: 'mplug-owl2-aaaa',
      name: 'Owl 7B',
      active: true,
      provider: { requested: 'auto', used: 'cuda', attempts: [{ provider: 'cuda', ok: true }] },
    });
    const damaged = installedModel({
      id: 'mplug-owl2-bbbb',
      name: 'Old owl',
      sizeBytes: 16_400_000_000,
      quantization: { vision: 'fp32', llm: 'fp32', embed: 'fp32' },
      verification: { state: 'failed', error: { name: 'OwleryError', code: 'PACKAGE_INVALID', message: 'llm.onnx: checksum does not match' } },
    });
    await setup(modelHandlers([active, damaged]));
    const list = screen.getByRole('list', { name: 'Installed models' });
    const items = within(list).getAllByRole('listitem');
    expect(items).toHaveLength(2);

    const first = within(list).getByRole('listitem', { name: /Owl 7B/ });
    expect(within(first).getByText('Active')).toBeTruthy();
    expect(within(first).getByText('4.2 GB')).toBeTruthy();
    expect(within(first).getByText('language int4, vision fp16, embeddings int8')).toBeTruthy();
    expect(within(first).getByText('NVIDIA CUDA')).toBeTruthy();
    expect(within(first).getByText(/^Verified/)).toBeTruthy();
    expect(within(first).queryByRole('button', { name: /Use this model/ })).toBeNull();

    const second = within(list).getByRole('listitem', { name: /Old owl/ });
    expect(within(second).getByText('16.4 GB')).toBeTruthy();
    expect(within(second).getByText('fp32')).toBeTruthy();
    expect(within(second).getByText('Not loaded yet')).toBeTruthy();
    expect(within(second).getByText(/Damaged: The model's files are damaged or incomplete: llm\.onnx: checksum does not match\./)).toBeTruthy();
  });

  it('shows a task’s progress with bytes, percent and time left, and cancels it', async () => {
    const user = userEvent.setup();
    const clock = { now: 0 };
    const { fake } = await setup({ ...modelHandlers(), 'models:cancel-task': () => ({ cancelled: true }) }, ModelsScreen, clock);
    fake.emit('models:task', modelTask({ taskId: 't1', label: 'mplug-owl2-llama2-7b', kind: 'pull', phase: 'download:downloading', done: 0, total: 16_000_000_000, seq: 1 }));
    clock.now = 10_000;
    fake.emit('models:task', modelTask({ taskId: 't1', label: 'mplug-owl2-llama2-7b', kind: 'pull', phase: 'download:downloading', done: 4_000_000_000, total: 16_000_000_000, seq: 2 }));

    const task = await screen.findByRole('listitem', { name: 'Download: mplug-owl2-llama2-7b' });
    expect(within(task).getByText('Downloading…')).toBeTruthy();
    const bar = within(task).getByRole('progressbar');
    expect(bar.getAttribute('value')).toBe('25');
    // 4 GB in 10 s: 12 GB left take 30 s.
    expect(within(task).getByText('4.0 GB of 16.0 GB · 25% · less than a minute left')).toBeTruthy();

    await user.click(within(task).getByRole('button', { name: 'Cancel download of mplug-owl2-llama2-7b' }));
    expect(fake.callsTo('models:cancel-task')).toEqual([{ taskId: 't1' }]);
    fake.emit('models:task', modelTask({ taskId: 't1', label: 'mplug-owl2-llama2-7b', kind: 'pull', state: 'cancelled', phase: 'cancelled', seq: 3 }));
    await waitFor(() => expect(within(task).getByRole('status').textContent).toBe('Cancelled. The part already downloaded is kept for next time.'));
    await user.click(within(task).getByRole('button', { name: /Dismiss/ }));
    expect(screen.queryByRole('listitem', { name: /Download:/ })).toBeNull();
  });

  it('counts tensors while converting, and says why a task failed in plain words', async () => {
    const { fake } = await setup(modelHandlers());
    fake.emit('models:task', modelTask({ taskId: 't2', label: 'owl-checkpoint', phase: 'writing-graphs', unit: 'tensors', done: 120, total: 400 }));
    const task = await screen.findByRole('listitem', { name: 'Import: owl-checkpoint' });
    expect(within(task).getByText('Converting the weights…')).toBeTruthy();
    expect(within(task).getByText(/^120 of 400 tensors · 30%/)).toBeTruthy();
    fake.emit('models:task', modelTask({
      taskId: 't2',
      label: 'owl-checkpoint',
      state: 'failed',
      phase: 'failed',
      seq: 9,
      error: { name: 'OwleryError', code: 'DISK_FULL', message: 'ENOSPC: no space left on device, write' },
    }));
    await waitFor(() => expect(within(task).getByRole('alert').textContent).toBe('The disk is full. Free some space and try again.'));
  });

  it('imports a checkpoint folder through the dialog; the first model added becomes active', async () => {
    const user = userEvent.setup();
    const models = [] as ReturnType<typeof installedModel>[];
    const { fake, manager } = await setup({
      ...modelHandlers(models),
      'models:choose-checkpoint': () => ({ checkpointId: 'c1', folderName: 'owl-checkpoint', format: 'safetensors', forms: modelForms() }),
      'models:import': () => ({ taskId: 't3' }),
      'models:select': ({ id }) => {
        models[0] = { ...models[0]!, active: true };
        return engineStatus({ state: 'ready', modelId: id });
      },
    });
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    // The recommended form is chosen; converting takes it and the model's name in it.
    await user.click(await screen.findByRole('button', { name: 'Convert' }));
    expect(fake.callsTo('models:import')).toEqual([{ checkpointId: 'c1', preset: 'cpu', name: 'mPLUG-Owl2 7B · 4-bit' }]);
    expect(screen.queryByRole('heading', { name: /Which form/ })).toBeNull();
    fake.emit('models:task', modelTask({ taskId: 't3', label: 'tiny', seq: 1 }));
    models.push(installedModel({ id: 'mplug-owl2-cccc', name: 'tiny' }));
    fake.emit('models:task', modelTask({ taskId: 't3', label: 'tiny', state: 'done', phase: 'done', modelId: 'mplug-owl2-cccc', seq: 2 }));
    await waitFor(() => expect(fake.callsTo('models:select')).toEqual([{ id: 'mplug-owl2-cccc' }]));
    await waitFor(() => expect(manager.active?.id).toBe('mplug-owl2-cccc'));
    const item = screen.getByRole('listitem', { name: 'tiny' });
    expect(within(item).getByText('Active')).toBeTruthy();
  });

  it('asks which form to make: sizes, memory and speed for each, the recommendation chosen, the name following the form', async () => {
    const user = userEvent.setup();
    const { fake } = await setup({
      ...modelHandlers(),
      'models:choose-checkpoint': () => ({ checkpointId: 'c2', folderName: 'mplug-owl2-llama2-7b', format: 'safetensors', forms: modelForms() }),
      'models:import': () => ({ taskId: 't9' }),
    });
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    const chooser = (await screen.findByRole('heading', { name: 'Which form should Owlery make?' })).closest('section')!;
    // Focus goes to the chooser, so keyboard users land on it.
    expect(document.activeElement?.textContent).toContain('Which form should Owlery make?');
    expect(chooser.textContent).toContain('This computer has 16 GB of memory: the laptop form is the one to make.');
    const radios = within(chooser).getAllByRole('radio');
    expect(radios.map((r) => (r as HTMLInputElement).checked)).toEqual([true, false, false]);
    const laptop = radios[0]!.closest('label')!;
    expect(laptop.textContent).toContain('Recommended');
    expect(laptop.textContent).toContain('4.8 GB on disk · needs about 7.0 GB of memory · Fast');
    const full = radios[2]!.closest('label')!;
    expect(full.textContent).toContain('32.8 GB on disk · needs about 44.8 GB of memory · Slow');
    expect(full.textContent).toContain('Needs about 45 GB of memory; this computer has 16 GB.');
    const name = within(chooser).getByRole('textbox', { name: 'Name' }) as HTMLInputElement;
    expect(name.value).toBe('mPLUG-Owl2 7B · 4-bit');
    await user.click(radios[2]!);
    expect(name.value).toBe('mPLUG-Owl2 7B · full precision');
    // A name typed by the user stays when the form changes.
    await user.clear(name);
    await user.type(name, 'Reference owl');
    await user.click(radios[1]!);
    expect(name.value).toBe('Reference owl');
    await user.click(within(chooser).getByRole('button', { name: 'Convert' }));
    expect(fake.callsTo('models:import')).toEqual([{ checkpointId: 'c2', preset: 'gpu', name: 'Reference owl' }]);
  });

  it('a cancelled chooser converts nothing; a folder that is not a checkpoint is refused in plain words', async () => {
    const user = userEvent.setup();
    let refuse = false;
    const { fake } = await setup({
      ...modelHandlers(),
      'models:choose-checkpoint': () => {
        if (refuse) throw new OwleryError('CHECKPOINT_INVALID', 'config.json: model_type is "llama", not mplug_owl2');
        return { checkpointId: 'c3', folderName: 'owl', format: 'pytorch', forms: modelForms() };
      },
    });
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    await user.click(await screen.findByRole('button', { name: 'Cancel' }));
    expect(screen.queryByRole('heading', { name: /Which form/ })).toBeNull();
    refuse = true;
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    expect((await screen.findByRole('alert')).textContent).toContain('This folder is not an mPLUG-Owl2 checkpoint Owlery can read. config.json: model_type is "llama", not mplug_owl2.');
    expect(screen.queryByRole('heading', { name: /Which form/ })).toBeNull();
    expect(fake.callsTo('models:import')).toEqual([]);
  });

  it('renames a model in place; Escape leaves the name as it was', async () => {
    const user = userEvent.setup();
    const models = [installedModel({ id: 'mplug-owl2-eeee', name: 'mplug-owl2-d1ab578bb163bde0' })];
    const { fake } = await setup({
      ...modelHandlers(models),
      'models:rename': ({ id, name }) => (models[0] = { ...models[0]!, id, name: name.trim() }),
    });
    const card = screen.getByRole('listitem', { name: 'mplug-owl2-d1ab578bb163bde0' });
    expect(within(card).getByText('Laptop (4-bit)')).toBeTruthy();
    await user.click(within(card).getByRole('button', { name: 'Rename mplug-owl2-d1ab578bb163bde0' }));
    const field = within(card).getByRole('textbox', { name: 'Name of mplug-owl2-d1ab578bb163bde0' });
    expect(document.activeElement).toBe(field);
    await user.keyboard('{Escape}');
    expect(within(card).queryByRole('textbox')).toBeNull();
    expect(fake.callsTo('models:rename')).toEqual([]);
    await user.click(within(card).getByRole('button', { name: /^Rename/ }));
    await user.clear(within(card).getByRole('textbox'));
    await user.type(within(card).getByRole('textbox'), 'Garden owl{Enter}');
    expect(fake.callsTo('models:rename')).toEqual([{ id: 'mplug-owl2-eeee', name: 'Garden owl' }]);
    expect(await screen.findByRole('heading', { name: 'Garden owl' })).toBeTruthy();
    await waitFor(() => expect(document.activeElement?.textContent).toMatch(/^Rename/));
  });

  it('chooses another model, and deletes only after asking', async () => {
    const user = userEvent.setup();
    const a = installedModel({ id: 'mplug-owl2-aaaa', name: 'A', active: true });
    const b = installedModel({ id: 'mplug-owl2-bbbb', name: 'B' });
    const { fake } = await setup({
      ...modelHandlers([a, b]),
      'models:select': ({ id }) => engineStatus({ state: 'ready', modelId: id }),
      'models:delete': () => null,
    });
    await user.click(screen.getByRole('button', { name: 'Use this model (B)' }));
    expect(fake.callsTo('models:select')).toEqual([{ id: 'mplug-owl2-bbbb' }]);

    const card = screen.getByRole('listitem', { name: /^B/ });
    await user.click(within(card).getByRole('button', { name: 'Delete B' }));
    const confirm = within(card).getByRole('alertdialog');
    expect(confirm.textContent).toContain('Delete B?');
    expect(card.ownerDocument.activeElement?.textContent).toBe('Delete for good');
    await user.keyboard('{Escape}');
    expect(within(card).queryByRole('alertdialog')).toBeNull();
    expect(fake.callsTo('models:delete')).toEqual([]);

    await user.click(within(card).getByRole('button', { name: 'Delete B' }));
    await user.click(within(card).getByRole('button', { name: 'Delete for good' }));
    expect(fake.callsTo('models:delete')).toEqual([{ id: 'mplug-owl2-bbbb' }]);
  });

  it('shows main’s refusal in plain words', async () => {
    const user = userEvent.setup();
    const a = installedModel({ id: 'mplug-owl2-aaaa', name: 'A', active: true });
    await setup({
      ...modelHandlers([a]),
      'models:delete': () => {
        throw new OwleryError('ENGINE_BUSY', 'This model is loaded; choose another model before deleting it.');
      },
    });
    await user.click(screen.getByRole('button', { name: 'Delete A' }));
    await user.click(screen.getByRole('button', { name: 'Delete for good' }));
    expect((await screen.findByRole('alert')).textContent).toContain('This model is loaded; choose another model before deleting it.');
  });

  it('checks the hub id before sending it, and sends a valid one', async () => {
    const user = userEvent.setup();
    const { fake } = await setup({
      ...modelHandlers(),
      'settings:get': () => ({ ...DEFAULT_SETTINGS, offlineMode: false }),
      'models:forms': () => modelForms(),
      'models:pull': () => ({ taskId: 't4' }),
    });
    const input = screen.getByRole('textbox', { name: 'Hub repository' });
    await user.type(input, 'not a repo{Enter}');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText(/^Enter the repository as owner\/name, with letters/)).toBeTruthy();
    expect(fake.callsTo('models:pull')).toEqual([]);

    await user.clear(input);
    await user.type(input, 'https://huggingface.co/MAGAer13/mplug-owl2-llama2-7b');
    expect(input.getAttribute('aria-invalid')).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Download…' }));
    // Nothing is downloaded before the form is chosen.
    expect(fake.callsTo('models:pull')).toEqual([]);
    const chooser = (await screen.findByRole('heading', { name: 'Which form should Owlery make after downloading?' })).closest('section')!;
    expect(chooser.textContent).toContain('the sizes are for the official 7B model');
    await user.click(within(chooser).getByRole('button', { name: 'Download and convert' }));
    expect(fake.callsTo('models:pull')).toEqual([{ repo: 'MAGAer13/mplug-owl2-llama2-7b', preset: 'cpu', name: 'mPLUG-Owl2 7B · 4-bit' }]);
  });

  it('offers no download while offline mode is on, and says why', async () => {
    await setup(modelHandlers());
    expect(screen.getByRole('textbox', { name: 'Hub repository' })).toHaveProperty('disabled', true);
    expect(screen.getByRole('button', { name: 'Download…' })).toHaveProperty('disabled', true);
    expect(screen.getByText(/Offline mode is on, so Owlery will not use the network/)).toBeTruthy();
  });
});

describe('First run', () => {
  it('explains what to do in plain words and offers both ways in', async () => {
    const user = userEvent.setup();
    const { fake, manager } = await setup({ ...modelHandlers(), 'models:choose-checkpoint': () => null }, FirstRun);
    expect(manager.empty).toBe(true);
    expect(screen.getByRole('heading', { name: 'Welcome to Owlery' })).toBeTruthy();
    expect(screen.getByText(/MAGAer13\/mplug-owl2-llama2-7b/, { selector: 'code' })).toBeTruthy();
    expect(screen.getByText(/The checkpoint is about 16 GB/)).toBeTruthy();
    expect(screen.getByText(/never leave\s+this computer/)).toBeTruthy();
    expect(screen.getByRole('textbox', { name: 'Hub repository' })).toBeTruthy();
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    expect(fake.callsTo('models:choose-checkpoint')).toEqual([undefined]);
    // A cancelled folder dialog is not an error.
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('offers the models already installed when none is chosen', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(
      { ...modelHandlers([installedModel({ id: 'mplug-owl2-dddd', name: 'Kept owl' })]), 'models:select': ({ id }) => engineStatus({ state: 'ready', modelId: id }) },
      FirstRun,
    );
    const list = screen.getByRole('list', { name: 'Installed models' });
    await user.click(within(list).getByRole('button', { name: 'Use this model (Kept owl)' }));
    expect(fake.callsTo('models:select')).toEqual([{ id: 'mplug-owl2-dddd' }]);
  });

  it('shows the import’s progress', async () => {
    const { fake } = await setup(modelHandlers(), FirstRun);
    fake.emit('models:task', modelTask({ taskId: 't5', label: 'mplug-owl2-llama2-7b', phase: 'hashing-source', done: 500_000_000, total: 1_000_000_000 }));
    const task = await screen.findByRole('listitem', { name: 'Import: mplug-owl2-llama2-7b' });
    expect(within(task).getByText('Reading the checkpoint…')).toBeTruthy();
    expect(within(task).getByRole('progressbar').getAttribute('value')).toBe('50');
  });
});
