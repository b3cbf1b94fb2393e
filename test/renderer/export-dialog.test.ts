/**
 * The export dialog: export the conversation on screen or all of them in the chosen format,
 * import a JSON backup, and report the file's name and the counts, a cancelled dialog, or a
 * clear error.
 */
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import ExportDialog from '../../src-renderer/lib/screens/ExportDialog.svelte';
import { ExportManager } from '../../src-renderer/lib/managers/export.svelte.ts';
import { fakeOwlery } from './helpers/models-fakes.ts';
import type { Handlers } from './helpers/models-fakes.ts';

function setup(handlers: Handlers, props: { conversationId?: number | null; conversationTitle?: string; onimported?: (ids: number[]) => void } = {}) {
  const fake = fakeOwlery(handlers);
  const manager = new ExportManager(fake.client);
  let closed = 0;
  render(ExportDialog, { props: { open: true, manager, conversationId: 7, conversationTitle: 'The owl on the fence', onclose: () => closed++, ...props } });
  return { fake, manager, closed: () => closed };
}

describe('Export dialog', () => {
  it('exports the conversation on screen as HTML by default and names the file', async () => {
    const user = userEvent.setup();
    const { fake } = setup({ 'export:conversation': () => ({ saved: true, fileName: 'The owl on the fence.html', conversations: 1 }) });
    const dialog = screen.getByRole('dialog', { name: 'Export and import' });
    expect(dialog).toBeTruthy();
    expect(screen.getByRole('radio', { name: /This conversation: The owl on the fence/ })).toHaveProperty('checked', true);
    expect(screen.getByRole('radio', { name: /Web page \(HTML\)/ })).toHaveProperty('checked', true);
    await user.click(screen.getByRole('button', { name: 'Export…' }));
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe('Saved 1 conversation as Web page (HTML) to “The owl on the fence.html”.'));
    expect(fake.callsTo('export:conversation')).toEqual([{ id: 7, format: 'html' }]);
  });

  it('exports all conversations in any format', async () => {
    const user = userEvent.setup();
    const { fake } = setup({ 'export:all': ({ format }) => ({ saved: true, fileName: `Owlery conversations.${format === 'markdown' ? 'md' : format}`, conversations: 12 }) });
    await user.click(screen.getByRole('radio', { name: /All conversations/ }));
    for (const [name, format] of [
      [/Markdown/, 'markdown'],
      [/PDF/, 'pdf'],
      [/Owlery backup \(JSON\)/, 'json'],
    ] as const) {
      await user.click(screen.getByRole('radio', { name }));
      await user.click(screen.getByRole('button', { name: 'Export…' }));
      await waitFor(() => expect(screen.getByRole('status').textContent).toMatch(/^Saved 12 conversations as .* to “Owlery conversations\.(md|pdf|json)”\.$/));
      expect(fake.callsTo('export:all').at(-1)).toEqual({ format });
    }
  });

  it('says what an export left out (a conversation that cannot be read, a missing photo)', async () => {
    const user = userEvent.setup();
    const skipped = ['“Trip” could not be read and was left out (damaged)', '“Fence”: photo owl.jpg was left out (missing)'];
    setup({ 'export:conversation': () => ({ saved: true, fileName: 'x.html', conversations: 1, skipped }) });
    await user.click(screen.getByRole('button', { name: 'Export…' }));
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe(
      `Saved 1 conversation as Web page (HTML) to “x.html”. Left out: ${skipped.join('; ')}.`,
    ));
  });

  it('without a conversation on screen, exports everything', async () => {
    const user = userEvent.setup();
    const { fake } = setup({ 'export:all': () => ({ saved: true, fileName: 'all.json', conversations: 2 }) }, { conversationId: null });
    expect(screen.getByRole('radio', { name: /This conversation/ })).toHaveProperty('disabled', true);
    expect(screen.getByRole('radio', { name: /All conversations/ })).toHaveProperty('checked', true);
    await user.click(screen.getByRole('button', { name: 'Export…' }));
    await waitFor(() => expect(fake.callsTo('export:all')).toEqual([{ format: 'html' }]));
  });

  it('a cancelled save dialog is not an error', async () => {
    const user = userEvent.setup();
    setup({ 'export:conversation': () => ({ saved: false, fileName: null, conversations: 0 }) });
    await user.click(screen.getByRole('button', { name: 'Export…' }));
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe('Nothing was saved.'));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says clearly why an export failed', async () => {
    const user = userEvent.setup();
    setup({
      'export:conversation': () => {
        throw new OwleryError('DISK_FULL', 'ENOSPC');
      },
    });
    await user.click(screen.getByRole('button', { name: 'Export…' }));
    expect((await screen.findByRole('alert')).textContent?.trim()).toBe('The export failed: the disk is full. Free some space and try again.');
  });

  it('imports a JSON backup and reports the counts', async () => {
    const user = userEvent.setup();
    const imported: number[][] = [];
    setup(
      {
        'export:import': () => ({
          imported: true,
          result: { conversations: [{ sourceId: 1, id: 41 }, { sourceId: 2, id: 42 }], duplicates: [], messages: 9, imagesAdded: 2, imagesReused: 1 },
          copiesToken: null,
        }),
      },
      { onimported: (ids) => imported.push(ids) },
    );
    await user.click(screen.getByRole('button', { name: 'Import a backup…' }));
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe('Imported 2 conversations with 9 messages, 3 photos (1 already in Owlery).'));
    expect(imported).toEqual([[41, 42]]);
  });

  it('says clearly why an import failed', async () => {
    const user = userEvent.setup();
    setup({
      'export:import': () => {
        throw new OwleryError('IMPORT_INVALID', 'This file is not an Owlery export (no "format": "owlery-export").');
      },
    });
    await user.click(screen.getByRole('button', { name: 'Import a backup…' }));
    expect((await screen.findByRole('alert')).textContent?.trim()).toBe('The import failed: this file is not an Owlery export (no "format": "owlery-export").');
  });

  it('closes with the Close button', async () => {
    const user = userEvent.setup();
    const { closed } = setup({});
    await user.click(screen.getByRole('button', { name: 'Close' }));
    expect(closed()).toBe(1);
  });
});
