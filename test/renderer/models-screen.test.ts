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
import { engineStatus, fakeOwlery, installedModel, modelHandlers, modelTask } from './helpers/models-fakes.ts';
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
      'models:import': () => ({ taskId: 't3' }),
      'models:select': ({ id }) => {
        models[0] = { ...models[0]!, active: true };
        return engineStatus({ state: 'ready', modelId: id });
      },
    });
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    expect(fake.callsTo('models:import')).toEqual([{}]);
    fake.emit('models:task', modelTask({ taskId: 't3', label: 'tiny', seq: 1 }));
    models.push(installedModel({ id: 'mplug-owl2-cccc', name: 'tiny' }));
    fake.emit('models:task', modelTask({ taskId: 't3', label: 'tiny', state: 'done', phase: 'done', modelId: 'mplug-owl2-cccc', seq: 2 }));
    await waitFor(() => expect(fake.callsTo('models:select')).toEqual([{ id: 'mplug-owl2-cccc' }]));
    await waitFor(() => expect(manager.active?.id).toBe('mplug-owl2-cccc'));
    const item = screen.getByRole('listitem', { name: 'tiny' });
    expect(within(item).getByText('Active')).toBeTruthy();
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
    const { fake } = await setup({ ...modelHandlers(), 'settings:get': () => ({ ...DEFAULT_SETTINGS, offlineMode: false }), 'models:pull': () => ({ taskId: 't4' }) });
    const input = screen.getByRole('textbox', { name: 'Hub repository' });
    await user.type(input, 'not a repo{Enter}');
    expect(input.getAttribute('aria-invalid')).toBe('true');
    expect(screen.getByText(/^Enter the repository as owner\/name, with letters/)).toBeTruthy();
    expect(fake.callsTo('models:pull')).toEqual([]);

    await user.clear(input);
    await user.type(input, 'https://huggingface.co/MAGAer13/mplug-owl2-llama2-7b');
    expect(input.getAttribute('aria-invalid')).toBeNull();
    await user.click(screen.getByRole('button', { name: 'Download' }));
    expect(fake.callsTo('models:pull')).toEqual([{ repo: 'MAGAer13/mplug-owl2-llama2-7b' }]);
  });

  it('offers no download while offline mode is on, and says why', async () => {
    await setup(modelHandlers());
    expect(screen.getByRole('textbox', { name: 'Hub repository' })).toHaveProperty('disabled', true);
    expect(screen.getByRole('button', { name: 'Download' })).toHaveProperty('disabled', true);
    expect(screen.getByText(/Offline mode is on, so Owlery will not use the network/)).toBeTruthy();
  });
});

describe('First run', () => {
  it('explains what to do in plain words and offers both ways in', async () => {
    const user = userEvent.setup();
    const { fake, manager } = await setup({ ...modelHandlers(), 'models:import': () => null }, FirstRun);
    expect(manager.empty).toBe(true);
    expect(screen.getByRole('heading', { name: 'Welcome to Owlery' })).toBeTruthy();
    expect(screen.getByText(/MAGAer13\/mplug-owl2-llama2-7b/, { selector: 'code' })).toBeTruthy();
    expect(screen.getByText(/The checkpoint is about 16 GB/)).toBeTruthy();
    expect(screen.getByText(/never leave\s+this computer/)).toBeTruthy();
    expect(screen.getByRole('textbox', { name: 'Hub repository' })).toBeTruthy();
    await user.click(screen.getByRole('button', { name: 'Import a checkpoint folder…' }));
    expect(fake.callsTo('models:import')).toEqual([{}]);
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
