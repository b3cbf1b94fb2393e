/**
 * The sidebar: conversations by recency with pinned first; search shows hits with their matches
 * marked (stored text is rendered as text, never as HTML); arrow keys move between search box,
 * results and conversations; F2 renames, Delete deletes, Enter opens.
 */
import { render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, vi } from 'vitest';
import type { ConversationSummary } from '../../src-shared/domain.ts';
import Sidebar from '../../src-renderer/lib/components/sidebar/Sidebar.svelte';
import { highlightSegments } from '../../src-renderer/lib/highlight.ts';
import { AppManager } from '../../src-renderer/lib/managers/app.svelte.ts';
import { ConversationsManager } from '../../src-renderer/lib/managers/conversations.svelte.ts';
import { conversation, fakeMain, searchHit } from './helpers/chat-fakes.ts';
import type { Handlers } from './helpers/chat-fakes.ts';

const LIST = [conversation(3, 'Pinned trip', { pinned: true }), conversation(2, 'Birds at the pier'), conversation(1, '<b>Old</b> chat')];

async function setup(handlers: Handlers = {}) {
  let items: ConversationSummary[] = [...LIST];
  const main = fakeMain({
    'conversations:list': () => ({ items, nextCursor: null }),
    'conversations:rename': ({ id, title }) => {
      items = items.map((c) => (c.id === id ? { ...c, title } : c));
      return { ...items.find((c) => c.id === id)!, activeLeafId: null };
    },
    'conversations:search': ({ query }) => ({
      messageOrder: 'relevance',
      hits: query.includes('owl')
        ? [
            searchHit(2, 'Birds at the pier', {
              kind: 'message',
              messageId: 11,
              role: 'assistant',
              snippet: { text: '…a grey owl on the <script>pier</script>, another owl…', highlights: [{ start: 8, end: 11 }, { start: 50, end: 53 }] },
            }),
            searchHit(4, 'Owl facts', { snippet: { text: 'Owl facts', highlights: [{ start: 0, end: 3 }] } }),
          ]
        : [],
    }),
    ...handlers,
  });
  const conversations = new ConversationsManager(main.client, 0);
  const app = new AppManager(main.client);
  const props = { app, conversations, selectedId: 2, onnew: vi.fn(), onopen: vi.fn(), ondelete: vi.fn(), onexport: vi.fn() };
  const stop = conversations.start();
  render(Sidebar, { props });
  await screen.findByRole('button', { name: /^Birds at the pier/ });
  return { main, conversations, props, stop };
}

const search = () => screen.getByRole('searchbox', { name: 'Search conversations' });

describe('conversation list', () => {
  it('lists pinned first, marks the open one, shows titles as text', async () => {
    await setup();
    const list = screen.getByRole('list', { name: 'Conversations' });
    const rows = within(list).getAllByRole('listitem');
    expect(rows[0]!.textContent).toContain('Pinned: Pinned trip');
    expect(within(list).getByRole('button', { name: /^Birds at the pier/ }).getAttribute('aria-current')).toBe('page');
    expect(list.querySelector('b')).toBeNull();
    expect(within(list).getByRole('button', { name: /^<b>Old<\/b> chat/ })).toBeTruthy();
  });

  it('moves with arrow keys, Home and End, with one Tab stop', async () => {
    const user = userEvent.setup();
    await setup();
    const list = screen.getByRole('list', { name: 'Conversations' });
    const open = within(list).getAllByRole('button', { name: /^(Pinned|Birds|<b>)/ });
    expect(open.map((b) => b.tabIndex)).toEqual([-1, 0, -1]);
    open[1]!.focus();
    await user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(open[2]);
    await user.keyboard('{Home}');
    expect(document.activeElement).toBe(open[0]);
    await user.keyboard('{End}');
    expect(document.activeElement).toBe(open[2]);
    await user.keyboard('{ArrowUp}{ArrowUp}{ArrowUp}');
    expect(document.activeElement).toBe(search());
  });

  it('opens with Enter, renames with F2, deletes with Delete', async () => {
    const user = userEvent.setup();
    const { main, props } = await setup();
    const birds = screen.getByRole('button', { name: /^Birds at the pier/ });
    birds.focus();
    await user.keyboard('{Enter}');
    expect(props.onopen).toHaveBeenCalledWith(2);
    await user.keyboard('{F2}');
    const input = screen.getByRole('textbox', { name: 'New title for “Birds at the pier”' });
    expect(document.activeElement).toBe(input);
    await user.clear(input);
    await user.type(input, 'Gulls, not owls{Enter}');
    expect(main.callsTo('conversations:rename')).toEqual([{ id: 2, title: 'Gulls, not owls' }]);
    const renamed = await screen.findByRole('button', { name: /^Gulls, not owls/ });
    await waitFor(() => expect(document.activeElement).toBe(renamed));
    await user.keyboard('{Delete}');
    expect(props.ondelete).toHaveBeenCalledWith(expect.objectContaining({ id: 2 }));
  });

  it('offers rename, pin, export and delete in a menu that arrow keys drive', async () => {
    const user = userEvent.setup();
    const { props } = await setup();
    await user.click(screen.getByRole('button', { name: 'Actions for “Birds at the pier”' }));
    const menu = screen.getByRole('menu', { name: 'Actions for “Birds at the pier”' });
    expect(within(menu).getAllByRole('menuitem').map((m) => m.textContent)).toEqual(['Rename', 'Pin to top', 'Export…', 'Delete']);
    expect(document.activeElement?.textContent).toBe('Rename');
    await user.keyboard('{ArrowUp}');
    expect(document.activeElement?.textContent).toBe('Delete');
    await user.keyboard('{Enter}');
    expect(props.ondelete).toHaveBeenCalledWith(expect.objectContaining({ id: 2 }));
    expect(screen.queryByRole('menu')).toBeNull();
  });
});

describe('search', () => {
  it('shows hits with their matches marked, as text', async () => {
    const user = userEvent.setup();
    await setup();
    await user.type(search(), 'owl');
    const results = await screen.findByRole('list', { name: 'Search results' });
    await within(results).findByRole('button', { name: /Owl facts/ });
    expect(screen.getByRole('status').textContent).toBe('2 results');
    const marks = [...results.querySelectorAll('mark')].map((m) => m.textContent);
    expect(marks).toEqual(['owl', 'owl', 'Owl']);
    expect(results.querySelector('script')).toBeNull();
    expect(results.textContent).toContain('<script>pier</script>');
    expect(results.textContent).toContain('Owlery:');
    expect(screen.queryByRole('list', { name: 'Conversations' })).toBeNull();
  });

  it('says when nothing matches, and Escape brings the list back', async () => {
    const user = userEvent.setup();
    await setup();
    await user.type(search(), 'zebra');
    await waitFor(() => expect(screen.getByRole('status').textContent).toBe('No conversations match “zebra”.'));
    await user.keyboard('{Escape}');
    expect((search() as HTMLInputElement).value).toBe('');
    expect(screen.getByRole('list', { name: 'Conversations' })).toBeTruthy();
  });

  it('goes from the box to the results with arrow keys and opens a message hit', async () => {
    const user = userEvent.setup();
    const { props } = await setup();
    await user.type(search(), 'owl');
    const results = await screen.findByRole('list', { name: 'Search results' });
    const hits = await within(results).findAllByRole('button');
    await user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(hits[0]);
    await user.keyboard('{ArrowDown}');
    expect(document.activeElement).toBe(hits[1]);
    await user.keyboard('{ArrowUp}{ArrowUp}');
    expect(document.activeElement).toBe(search());
    await user.keyboard('{ArrowDown}{Enter}');
    expect(props.onopen).toHaveBeenCalledWith(2, 11);
  });

  it('splits snippets safely whatever the ranges', () => {
    expect(highlightSegments({ text: 'abcdef', highlights: [{ start: 4, end: 99 }, { start: -3, end: 1 }, { start: 0, end: 2 }, { start: 3, end: 3 }] })).toEqual([
      { text: 'ab', mark: true },
      { text: 'cd', mark: false },
      { text: 'ef', mark: true },
    ]);
    expect(highlightSegments({ text: '', highlights: [{ start: 0, end: 5 }] })).toEqual([]);
  });
});
