/**
 * The photo tray: photos from the dialog, a drop or a paste appear as thumbnails with a Remove
 * button; files that are not photos, too large or beyond the limit are refused in one message per
 * action that names them, in the same words for the dialog, a drop and a paste.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import { OwleryError } from '../../src-shared/errors.ts';
import Composer from '../../src-renderer/lib/components/chat/Composer.svelte';
import { AttachmentsManager, looksLikeImage } from '../../src-renderer/lib/managers/attachments.svelte.ts';
import { fakeMain, file, storedImage } from './helpers/chat-fakes.ts';
import type { Handlers } from './helpers/chat-fakes.ts';

function setup(handlers: Handlers = {}, opts: { maxBytes?: number; maxCount?: number } = {}) {
  let n = 10;
  const main = fakeMain({
    'images:pick': () => ({ images: [storedImage(1, 'a.png'), storedImage(2, 'b.jpg')], refused: [] }),
    'images:import': (req) => storedImage(++n, req.name),
    ...handlers,
  });
  const attachments = new AttachmentsManager(main.client, opts);
  render(Composer, { props: { attachments, generating: false, onsend: vi.fn(async () => true), onstop: vi.fn() } });
  return { main, attachments };
}

const tray = () => screen.getByRole('list', { name: 'Photos to send' });

describe('attachment tray', () => {
  it('adds photos from the dialog and removes one', async () => {
    const user = userEvent.setup();
    setup();
    await user.click(screen.getByRole('button', { name: 'Attach photos' }));
    expect(await within(tray()).findByRole('img', { name: 'a.png' })).toBeTruthy();
    expect(within(tray()).getAllByRole('listitem')).toHaveLength(2);
    await user.click(screen.getByRole('button', { name: 'Remove photo a.png' }));
    expect(within(tray()).queryByRole('img', { name: 'a.png' })).toBeNull();
    expect(within(tray()).getByRole('img', { name: 'b.jpg' })).toBeTruthy();
  });

  it('stores dropped files by their bytes and names', async () => {
    const { main, attachments } = setup();
    await attachments.addFiles([file('dog.png', 'image/png'), file('cat.jpg', 'image/jpeg')], 'drop');
    expect(main.callsTo('images:import').map((r) => r.name)).toEqual(['dog.png', 'cat.jpg']);
    expect(main.callsTo('images:import')[0]!.bytes).toBeInstanceOf(Uint8Array);
    expect(await within(tray()).findByRole('img', { name: 'cat.jpg' })).toBeTruthy();
    expect(attachments.ready).toHaveLength(2);
  });

  it('says when a photo over the pixel limit was downscaled', async () => {
    const { attachments } = setup({
      'images:import': (req) =>
        req.name === 'huge.png'
          ? { ...storedImage(5, req.name), displayWidth: 4096, displayHeight: 4096, downscaledFrom: { width: 12000, height: 12000 } }
          : storedImage(6, req.name),
    });
    await attachments.addFiles([file('huge.png', 'image/png'), file('small.png', 'image/png')], 'drop');
    expect(await screen.findByText('“huge.png” was downscaled from 12000×12000 to 4096×4096 pixels.')).toBeTruthy();
    expect(screen.queryByText(/small\.png” was downscaled/)).toBeNull();
    attachments.remove(attachments.items[0]!.key);
    await waitFor(() => expect(screen.queryByText(/was downscaled/)).toBeNull());
  });

  it('stores pasted photos without a name', async () => {
    const { main } = setup();
    const box = screen.getByRole('textbox', { name: 'Message' });
    await fireEvent.paste(box, { clipboardData: { files: [file('image.png', 'image/png')], types: ['Files'] } });
    await waitFor(() => expect(main.callsTo('images:import')).toHaveLength(1));
    expect(main.callsTo('images:import')[0]!.name).toBeNull();
    expect(await within(tray()).findByRole('img', { name: 'Pasted photo' })).toBeTruthy();
  });

  it('refuses what is not a photo, and files that are too large, in one message naming them', async () => {
    const user = userEvent.setup();
    const { main, attachments } = setup({}, { maxBytes: 1_000_000 });
    await attachments.addFiles([file('notes.txt', 'text/plain'), file('huge.jpg', 'image/jpeg', 5_000_000), file('drawing.svg', 'image/svg+xml')]);
    const alerts = screen.getAllByRole('alert', { name: 'Photos not added' });
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.textContent).toContain(
      '3 files were not added: “notes.txt” and “drawing.svg” are not photos Owlery can read; “huge.jpg” is too large (5.0 MB; the limit is 1.0 MB).',
    );
    expect(main.callsTo('images:import')).toHaveLength(0);
    expect(screen.queryByRole('list', { name: 'Photos to send' })).toBeNull();
    await user.click(within(alerts[0]!).getByRole('button', { name: 'Dismiss this message' }));
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('says why main refused a photo, in the same words for a drop and the dialog, and drops it from the tray', async () => {
    const refusal = new OwleryError('IMAGE_UNSUPPORTED', 'notes.png is not an image Owlery can store (JPEG, PNG, WebP, GIF, TIFF, AVIF or HEIC).');
    const { attachments } = setup({
      'images:import': () => {
        throw refusal;
      },
      'images:pick': () => ({ images: [storedImage(1, 'a.png')], refused: [{ name: 'notes.png', error: { name: 'OwleryError', code: refusal.code, message: refusal.message } }] }),
    });
    await attachments.addFiles([file('notes.png', 'image/png')]);
    const dropped = screen.getByRole('alert').textContent;
    expect(dropped).toContain('“notes.png” is not a photo Owlery can read.');
    expect(attachments.items).toHaveLength(0);
    await attachments.pick();
    expect(screen.getByRole('alert').textContent).toBe(dropped);
    expect(attachments.items.map((p) => p.label)).toEqual(['a.png']);
  });

  it('names an empty or damaged file for what it is', async () => {
    const { attachments } = setup({
      'images:import': (req) => {
        throw new OwleryError('IMAGE_UNREADABLE', `${req.name} is damaged and cannot be read (bad header).`);
      },
    });
    await attachments.addFiles([file('empty.png', 'image/png', 0), file('broken.png', 'image/png')]);
    expect(screen.getByRole('alert').textContent).toContain('2 files were not added: “empty.png” is empty; “broken.png” is damaged and cannot be read.');
  });

  it('stops at the per-message limit', async () => {
    const { attachments } = setup({}, { maxCount: 2 });
    await attachments.addFiles([file('1.png', 'image/png'), file('2.png', 'image/png'), file('3.png', 'image/png')]);
    expect(attachments.items).toHaveLength(2);
    expect(screen.getByRole('alert').textContent).toContain('at most 2 photos');
  });

  it('recognises photos by type, or by extension when the type is unknown', () => {
    expect(looksLikeImage({ name: 'x.heic', type: '' })).toBe(true);
    expect(looksLikeImage({ name: 'x.bin', type: '' })).toBe(false);
    expect(looksLikeImage({ name: 'x', type: 'image/webp' })).toBe(true);
    expect(looksLikeImage({ name: 'x.pdf', type: 'application/pdf' })).toBe(false);
  });
});
