/**
 * The composer: Enter sends, Shift+Enter adds a line, empty text is not sent, Stop replaces Send
 * while an answer streams, and a failed send keeps the text.
 */
import { render, screen, waitFor } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import Composer from '../../src-renderer/lib/components/chat/Composer.svelte';
import { AttachmentsManager } from '../../src-renderer/lib/managers/attachments.svelte.ts';
import { fakeMain, storedImage } from './helpers/chat-fakes.ts';

function setup(props: { generating?: boolean; submitting?: boolean; result?: boolean } = {}) {
  const main = fakeMain({ 'images:pick': () => ({ images: [storedImage(1, 'cat.png')], refused: [] }) });
  const attachments = new AttachmentsManager(main.client);
  const onsend = vi.fn(async () => props.result ?? true);
  const onstop = vi.fn();
  const view = render(Composer, { props: { attachments, generating: props.generating ?? false, submitting: props.submitting ?? false, onsend, onstop } });
  return { ...view, attachments, onsend, onstop, box: screen.getByRole('textbox', { name: 'Message' }) };
}

describe('Composer', () => {
  it('sends on Enter and clears the box', async () => {
    const user = userEvent.setup();
    const { box, onsend } = setup();
    await user.type(box, 'What is in this photo?{Enter}');
    expect(onsend).toHaveBeenCalledWith('What is in this photo?', []);
    await waitFor(() => expect(box).toHaveProperty('value', ''));
  });

  it('adds a new line on Shift+Enter without sending', async () => {
    const user = userEvent.setup();
    const { box, onsend } = setup();
    await user.type(box, 'first line{Shift>}{Enter}{/Shift}second line');
    expect(onsend).not.toHaveBeenCalled();
    expect((box as HTMLTextAreaElement).value).toBe('first line\nsecond line');
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(onsend).toHaveBeenCalledWith('first line\nsecond line', []);
  });

  it('does not send blank text; Send is disabled until there is some', async () => {
    const user = userEvent.setup();
    const { box, onsend } = setup();
    const send = screen.getByRole('button', { name: 'Send' });
    expect(send).toHaveProperty('disabled', true);
    await user.type(box, '   {Enter}');
    expect(onsend).not.toHaveBeenCalled();
    await user.type(box, 'x');
    expect(send).toHaveProperty('disabled', false);
  });

  it('shows Stop instead of Send while an answer streams, and Enter does not send', async () => {
    const user = userEvent.setup();
    const { box, onsend, onstop } = setup({ generating: true });
    expect(screen.queryByRole('button', { name: 'Send' })).toBeNull();
    await user.type(box, 'next question{Enter}');
    expect(onsend).not.toHaveBeenCalled();
    await user.click(screen.getByRole('button', { name: 'Stop' }));
    expect(onstop).toHaveBeenCalledOnce();
    expect(screen.getByText(/Owlery is answering/)).toBeTruthy();
  });

  it('disables Send while a message is on its way', async () => {
    const user = userEvent.setup();
    const { box } = setup({ submitting: true });
    await user.type(box, 'hello');
    expect(screen.getByRole('button', { name: 'Send' })).toHaveProperty('disabled', true);
  });

  it('keeps the text (and photos) when sending fails', async () => {
    const user = userEvent.setup();
    const { box, attachments, onsend } = setup({ result: false });
    await user.click(screen.getByRole('button', { name: 'Attach photos' }));
    await screen.findByRole('img', { name: 'cat.png' });
    await user.type(box, 'describe it{Enter}');
    expect(onsend).toHaveBeenCalledWith('describe it', [{ sha256: storedImage(1).sha256, name: 'cat.png' }]);
    expect((box as HTMLTextAreaElement).value).toBe('describe it');
    expect(attachments.items).toHaveLength(1);
  });

  it('sends the photos in the tray and empties it', async () => {
    const user = userEvent.setup();
    const { box, onsend } = setup();
    await user.click(screen.getByRole('button', { name: 'Attach photos' }));
    await screen.findByRole('img', { name: 'cat.png' });
    await user.type(box, 'and now?{Enter}');
    expect(onsend).toHaveBeenCalledWith('and now?', [{ sha256: storedImage(1).sha256, name: 'cat.png' }]);
    await waitFor(() => expect(screen.queryByRole('list', { name: 'Photos to send' })).toBeNull());
  });
});
