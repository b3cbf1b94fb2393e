/**
 * The Settings screen: values are checked with the shared schema as they are typed; a bad value
 * shows its message next to the field and is never sent; a good one is saved on change with a
 * visible confirmation; the engine's provider report says why a provider is unavailable.
 */
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import { DEFAULT_SETTINGS } from '../../src-shared/settings.ts';
import type { Settings } from '../../src-shared/settings.ts';
import SettingsScreen from '../../src-renderer/lib/screens/SettingsScreen.svelte';
import { checkNumber, SettingsManager } from '../../src-renderer/lib/managers/settings.svelte.ts';
import { engineStatus, fakeOwlery } from './helpers/models-fakes.ts';
import type { FakeOwlery } from './helpers/models-fakes.ts';

async function setup(over: Partial<Settings> = {}, status = engineStatus()): Promise<{ fake: FakeOwlery; manager: SettingsManager }> {
  let current: Settings = { ...DEFAULT_SETTINGS, ...over };
  const fake = fakeOwlery({
    'settings:get': () => current,
    'settings:set': ({ patch }) => (current = { ...current, ...patch }),
    'settings:reset': () => (current = { ...DEFAULT_SETTINGS }),
    'engine:status': () => status,
  });
  const manager = new SettingsManager(fake.client);
  await manager.start();
  render(SettingsScreen, { props: { manager } });
  return { fake, manager };
}

describe('checkNumber (the shared schema, in plain words)', () => {
  it('accepts values in range, with a decimal comma too', () => {
    expect(checkNumber('temperature', '0.9')).toEqual({ ok: true, value: 0.9 });
    expect(checkNumber('temperature', '1,5')).toEqual({ ok: true, value: 1.5 });
    expect(checkNumber('maxNewTokens', ' 256 ')).toEqual({ ok: true, value: 256 });
  });

  it('explains what is wrong', () => {
    expect(checkNumber('temperature', '')).toEqual({ ok: false, error: 'Enter a number from 0 to 2.' });
    expect(checkNumber('temperature', 'warm')).toEqual({ ok: false, error: '“warm” is not a number. Enter a number from 0 to 2.' });
    expect(checkNumber('temperature', '3')).toEqual({ ok: false, error: '3 is out of range. Enter a number from 0 to 2.' });
    expect(checkNumber('topK', '2.5')).toEqual({ ok: false, error: 'Use a whole number from 0 to 1000.' });
    expect(checkNumber('repetitionPenalty', '0.5')).toEqual({ ok: false, error: '0.5 is out of range. Enter a number from 1 to 2.' });
    expect(checkNumber('fontSize', '1e9')).toMatchObject({ ok: false });
    expect(checkNumber('threads', '0x10')).toMatchObject({ ok: false });
  });
});

describe('Settings screen', () => {
  it('shows every setting with its saved value', async () => {
    await setup({ temperature: 0.2, maxNewTokens: 300, aspectMode: 'pad', theme: 'dark', offlineMode: true });
    expect(screen.getByRole('spinbutton', { name: 'Temperature' })).toHaveProperty('value', '0.2');
    expect(screen.getByRole('spinbutton', { name: 'Longest answer' })).toHaveProperty('value', '300');
    for (const name of ['Processor threads', 'Top-p', 'Top-k', 'Repetition penalty', 'Chat text size']) {
      expect(screen.getByRole('spinbutton', { name })).toBeTruthy();
    }
    expect(screen.getByRole('radio', { name: /^Pad/ })).toHaveProperty('checked', true);
    expect(screen.getByRole('radio', { name: 'Dark' })).toHaveProperty('checked', true);
    expect(screen.getByRole('checkbox', { name: 'Offline mode' })).toHaveProperty('checked', true);
    expect(screen.getByRole('combobox', { name: 'Run the model on' })).toHaveProperty('value', 'auto');
    // Each aspect mode is explained.
    expect(screen.getByRole('radio', { name: /^Resize/ }).getAttribute('aria-describedby')).toBeTruthy();
    expect(screen.getByText(/Keep the middle square of the photo/)).toBeTruthy();
  });

  it('a value that is not a number shows its message next to the field and is not sent', async () => {
    const user = userEvent.setup();
    const { fake } = await setup();
    const field = screen.getByRole('spinbutton', { name: 'Temperature' });
    await user.clear(field);
    await user.type(field, 'warm');
    const message = screen.getByText('“warm” is not a number. Enter a number from 0 to 2.');
    expect(field.getAttribute('aria-invalid')).toBe('true');
    expect(field.getAttribute('aria-describedby')).toContain(message.id);
    await user.tab();
    await user.keyboard('{Enter}');
    expect(fake.callsTo('settings:set')).toEqual([]);
    expect(screen.getByRole('status').textContent).toContain('One value is not valid and not saved.');
  });

  it('out-of-range and fractional values are refused the same way', async () => {
    const user = userEvent.setup();
    const { fake } = await setup();
    const temperature = screen.getByRole('spinbutton', { name: 'Temperature' });
    await user.clear(temperature);
    await user.type(temperature, '5{Enter}');
    expect(screen.getByText('5 is out of range. Enter a number from 0 to 2.')).toBeTruthy();
    const topK = screen.getByRole('spinbutton', { name: 'Top-k' });
    await user.clear(topK);
    await user.type(topK, '2.5');
    await user.tab();
    expect(screen.getByText('Use a whole number from 0 to 1000.')).toBeTruthy();
    expect(topK.getAttribute('aria-invalid')).toBe('true');
    expect(fake.callsTo('settings:set')).toEqual([]);
    expect(screen.getByRole('status').textContent).toContain('2 values are not valid');
  });

  it('a valid value is saved when the field changes, with a visible confirmation', async () => {
    const user = userEvent.setup();
    const { fake, manager } = await setup();
    const field = screen.getByRole('spinbutton', { name: 'Temperature' });
    await user.clear(field);
    await user.type(field, '0.9{Enter}');
    await waitFor(() => expect(screen.getByRole('status').textContent).toContain('Temperature saved.'));
    expect(fake.callsTo('settings:set')).toEqual([{ patch: { temperature: 0.9 } }]);
    expect(field.getAttribute('aria-invalid')).toBeNull();
    expect(manager.settings?.temperature).toBe(0.9);
    expect(screen.getByText('✓ Saved')).toBeTruthy();
    // Leaving the field with the same value sends nothing more.
    await user.tab();
    expect(fake.callsTo('settings:set')).toHaveLength(1);
  });

  it('fixing an invalid value clears the message and saves it', async () => {
    const user = userEvent.setup();
    const { fake } = await setup();
    const field = screen.getByRole('spinbutton', { name: 'Longest answer' });
    await user.clear(field);
    await user.type(field, '0');
    expect(screen.getByText('0 is out of range. Enter a whole number from 1 to 8192.')).toBeTruthy();
    await user.clear(field);
    await user.type(field, '1024');
    expect(screen.queryByText(/out of range/)).toBeNull();
    await user.tab();
    await waitFor(() => expect(fake.callsTo('settings:set')).toEqual([{ patch: { maxNewTokens: 1024 } }]));
  });

  it('arrow keys step the value within bounds', async () => {
    const user = userEvent.setup();
    const { fake } = await setup({ topP: 1 });
    const field = screen.getByRole('spinbutton', { name: 'Top-p' });
    await user.click(field);
    await user.keyboard('{ArrowUp}');
    expect(field).toHaveProperty('value', '1');
    await user.keyboard('{ArrowDown}{ArrowDown}{Enter}');
    expect(field).toHaveProperty('value', '0.9');
    await waitFor(() => expect(fake.callsTo('settings:set')).toEqual([{ patch: { topP: 0.9 } }]));
  });

  it('choices are saved as soon as they are picked', async () => {
    const user = userEvent.setup();
    const { fake } = await setup();
    await user.click(screen.getByRole('radio', { name: 'Dark' }));
    await user.click(screen.getByRole('radio', { name: /^Crop/ }));
    await user.click(screen.getByRole('checkbox', { name: 'Offline mode' }));
    await user.selectOptions(screen.getByRole('combobox', { name: 'Run the model on' }), 'cpu');
    const fasterStart = screen.getByRole('checkbox', { name: 'Faster start on the processor' });
    expect((fasterStart as HTMLInputElement).checked).toBe(false);
    expect(screen.getByText(/twice the model’s size of extra disk space/)).toBeTruthy();
    await user.click(fasterStart);
    await waitFor(() =>
      expect(fake.callsTo('settings:set')).toEqual([
        { patch: { theme: 'dark' } },
        { patch: { aspectMode: 'crop' } },
        { patch: { offlineMode: false } },
        { patch: { executionProvider: 'cpu' } },
        { patch: { fasterStart: true } },
      ]),
    );
    expect(screen.getByRole('status').textContent).toContain('Faster start on the processor saved.');
  });

  it('a value main refuses shows main’s reason next to the field', async () => {
    const user = userEvent.setup();
    const { fake } = await setup();
    fake.handle({
      'settings:set': () => {
        throw new OwleryError('DISK_FULL', 'no space');
      },
    });
    const field = screen.getByRole('spinbutton', { name: 'Processor threads' });
    await user.clear(field);
    await user.type(field, '4{Enter}');
    await waitFor(() => expect(screen.getByText('The disk is full. Free some space and try again.')).toBeTruthy());
    expect(field.getAttribute('aria-invalid')).toBe('true');
  });

  it('says which provider runs the model and why the others are unavailable', async () => {
    await setup(
      { executionProvider: 'cuda' },
      engineStatus({
        state: 'ready',
        modelId: 'm',
        provider: {
          requested: 'cuda',
          used: 'cpu',
          attempts: [
            { provider: 'cuda', ok: false, error: 'libcudart.so.12 was not found' },
            { provider: 'cpu', ok: true },
          ],
        },
      }),
    );
    const select = screen.getByRole('combobox', { name: 'Run the model on' });
    expect(within(select).getByRole('option', { name: 'NVIDIA graphics card (CUDA) (not available)' })).toBeTruthy();
    expect(screen.getByText(/The model runs on/).textContent).toContain('Processor (CPU)');
    expect(screen.getByText(/is not available here: libcudart\.so\.12 was not found/)).toBeTruthy();
  });

  it('says why faster start is not in use when the engine could not use it', async () => {
    await setup({ fasterStart: true }, engineStatus({ state: 'ready', modelId: 'm', fasterStartSkipped: 'not enough disk space for the faster-start copy (9.6 GiB needed, 2.0 GiB free)' }));
    expect((screen.getByRole('checkbox', { name: 'Faster start on the processor' }) as HTMLInputElement).checked).toBe(true);
    expect(screen.getByRole('note').textContent).toContain('not enough disk space for the faster-start copy (9.6 GiB needed, 2.0 GiB free)');
  });

  it('updates when settings change elsewhere', async () => {
    const { fake } = await setup();
    fake.emit('settings:changed', { settings: { ...DEFAULT_SETTINGS, temperature: 1.3 }, changed: ['temperature'] });
    await waitFor(() => expect(screen.getByRole('spinbutton', { name: 'Temperature' })).toHaveProperty('value', '1.3'));
  });

  it('resets every setting after asking, keeping the active model', async () => {
    const user = userEvent.setup();
    const { fake } = await setup({ temperature: 0.1, activeModelId: 'mplug-owl2-x' });
    await user.click(screen.getByRole('button', { name: 'Reset to defaults…' }));
    await user.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Reset settings' }));
    await waitFor(() => expect(screen.getByRole('spinbutton', { name: 'Temperature' })).toHaveProperty('value', '0.7'));
    expect(fake.callsTo('settings:reset')).toHaveLength(1);
    expect(fake.callsTo('settings:set')).toEqual([{ patch: { activeModelId: 'mplug-owl2-x' } }]);
  });
});
