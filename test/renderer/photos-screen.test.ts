/**
 * The Photos panel: open a folder through main's dialog, browse it page by page (only some rows
 * are in the page at once), select photos by keyboard and mouse, and hand the stored selection to
 * a new chat or the current one.
 */
import { fireEvent, render, screen, waitFor, within } from '@testing-library/svelte';
import userEvent from '@testing-library/user-event';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { StoredImage } from '../../src-shared/ipc/index.ts';
import PhotosScreen from '../../src-renderer/lib/screens/PhotosScreen.svelte';
import { PhotosManager, PHOTOS_PAGE_SIZE } from '../../src-renderer/lib/managers/photos.svelte.ts';
import { DescribeManager } from '../../src-renderer/lib/managers/describe.svelte.ts';
import type { DescribeJobInfo } from '../../src-shared/ipc/index.ts';
import { fakeOwlery, folderEntries } from './helpers/models-fakes.ts';
import type { FakeOwlery } from './helpers/models-fakes.ts';

function stored(entryId: string): StoredImage {
  const sha256 = entryId.padStart(64, '0');
  return {
    sha256,
    mime: 'image/jpeg',
    byteSize: 1,
    width: 4,
    height: 3,
    orientation: 6,
    displayWidth: 3,
    displayHeight: 4,
    thumbnail: null,
    name: `${entryId}.jpg`,
    url: `/image/${sha256}`,
    thumbnailUrl: `/thumb/${sha256}`,
  };
}

async function setup(count = 30, props: Record<string, unknown> = {}): Promise<{ fake: FakeOwlery; manager: PhotosManager; describeManager: DescribeManager }> {
  const all = folderEntries(count);
  const fake = fakeOwlery({
    'images:pick-folder': () => ({ folderId: 'f1', name: 'Holiday', imageCount: count }),
    'images:list-folder': ({ cursor, limit }) => {
      const start = cursor ? Number(cursor) : 0;
      const items = all.slice(start, start + (limit ?? 100));
      const next = start + items.length;
      return { items, nextCursor: next < all.length ? String(next) : null };
    },
    'images:import-from-folder': ({ entryIds }) => entryIds.map(stored),
    'describe:jobs': () => [],
    'describe:keywords': () => [],
    'describe:description': () => null,
  });
  const manager = new PhotosManager(fake.client);
  const describeManager = new DescribeManager(fake.client);
  const stop = describeManager.start();
  onTestFinished(stop);
  render(PhotosScreen, { props: { manager, describeManager, ...props } });
  return { fake, manager, describeManager };
}

type Element = Awaited<ReturnType<typeof screen.findByRole>>;

async function openFolder(user: ReturnType<typeof userEvent.setup>): Promise<Element> {
  await user.click(screen.getByRole('button', { name: 'Open a folder…' }));
  return screen.findByRole('listbox', { name: 'Photos in Holiday' });
}

function selectedNames(listbox: Element): string[] {
  return within(listbox)
    .getAllByRole('option', { selected: true })
    .map((o) => o.textContent!.replace('✓', '').trim());
}

describe('Photos panel', () => {
  it('explains what to do before a folder is open', async () => {
    await setup();
    expect(screen.getByText(/Open a folder of photos to browse them here/)).toBeTruthy();
    expect(screen.queryByRole('listbox')).toBeNull();
  });

  it('opens a folder chosen in the dialog and shows its thumbnails, lazily', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(30);
    const listbox = await openFolder(user);
    expect(fake.callsTo('images:list-folder')[0]).toEqual({ folderId: 'f1', cursor: null, limit: PHOTOS_PAGE_SIZE });
    expect(screen.getByText('Holiday', { selector: '.folder .name' }).closest('p')!.textContent).toContain('30 photos');
    const options = within(listbox).getAllByRole('option');
    expect(options[0]!.textContent).toContain('IMG_0001.jpg');
    expect(options[0]!.getAttribute('aria-setsize')).toBe('30');
    const img = options[0]!.querySelector('img')!;
    expect(img.getAttribute('loading')).toBe('lazy');
    expect(img.getAttribute('src')).toBe('http://127.0.0.1/thumb/1');
    expect(listbox.getAttribute('aria-multiselectable')).toBe('true');
  });

  it('keeps only some rows in the page and lists more as needed', async () => {
    const user = userEvent.setup();
    const { manager, fake } = await setup(1000);
    const listbox = await openFolder(user);
    // Without layout the grid renders 8 rows of 4.
    expect(within(listbox).getAllByRole('option')).toHaveLength(32);
    expect(manager.entries).toHaveLength(PHOTOS_PAGE_SIZE);
    listbox.focus();
    await user.keyboard('{End}');
    await waitFor(() => expect(manager.entries.length).toBeGreaterThan(PHOTOS_PAGE_SIZE));
    expect(fake.callsTo('images:list-folder')[1]).toEqual({ folderId: 'f1', cursor: String(PHOTOS_PAGE_SIZE), limit: PHOTOS_PAGE_SIZE });
  });

  it('selects by keyboard: arrows, Space, Shift+arrows, Ctrl+A and Escape', async () => {
    const user = userEvent.setup();
    const { manager } = await setup(30);
    const listbox = await openFolder(user);
    listbox.focus();
    await user.keyboard('{ArrowRight}{ArrowRight}');
    expect(listbox.getAttribute('aria-activedescendant')).toBe('photo-e3');
    await user.keyboard(' ');
    expect(selectedNames(listbox)).toEqual(['IMG_0003.jpg']);
    expect(screen.getByText('1 photo selected')).toBeTruthy();

    // Down moves a row (4 columns without layout); Shift extends from the anchor.
    await user.keyboard('{Shift>}{ArrowDown}{/Shift}');
    expect(selectedNames(listbox)).toEqual(['IMG_0003.jpg', 'IMG_0004.jpg', 'IMG_0005.jpg', 'IMG_0006.jpg', 'IMG_0007.jpg']);

    // Space on a selected photo unselects it.
    await user.keyboard(' ');
    expect(selectedNames(listbox)).toHaveLength(4);
    expect(manager.isSelected('e7')).toBe(false);

    await user.keyboard('{Control>}a{/Control}');
    expect(selectedNames(listbox)).toHaveLength(30);
    expect(screen.getByText(/30 photos selected|at most 16 photos/)).toBeTruthy();

    await user.keyboard('{Escape}');
    expect(within(listbox).queryAllByRole('option', { selected: true })).toEqual([]);
    await user.keyboard('{Home}');
    expect(listbox.getAttribute('aria-activedescendant')).toBe('photo-e1');
  });

  it('selects by mouse: click, Ctrl-click and Shift-click', async () => {
    const user = userEvent.setup();
    await setup(30);
    const listbox = await openFolder(user);
    const option = (name: string) => within(listbox).getByRole('option', { name });
    await user.click(option('IMG_0002.jpg'));
    await fireEvent.click(option('IMG_0005.jpg'), { ctrlKey: true });
    expect(selectedNames(listbox)).toEqual(['IMG_0002.jpg', 'IMG_0005.jpg']);
    await fireEvent.click(option('IMG_0008.jpg'), { shiftKey: true });
    expect(selectedNames(listbox)).toEqual(['IMG_0005.jpg', 'IMG_0006.jpg', 'IMG_0007.jpg', 'IMG_0008.jpg']);
    await user.click(option('IMG_0001.jpg'));
    expect(selectedNames(listbox)).toEqual(['IMG_0001.jpg']);
    expect(listbox.ownerDocument.activeElement).toBe(listbox);
  });

  it('starts a new chat about the selected photos (stored first), or adds them to the current one', async () => {
    const user = userEvent.setup();
    const started: StoredImage[][] = [];
    const added: StoredImage[][] = [];
    const { fake } = await setup(30, { onstartchat: (images: StoredImage[]) => started.push(images), onaddtochat: (images: StoredImage[]) => added.push(images), canAddToChat: true });
    const listbox = await openFolder(user);
    listbox.focus();
    await user.keyboard(' {Shift>}{ArrowRight}{/Shift}');
    await user.click(screen.getByRole('button', { name: 'New chat about these photos' }));
    await waitFor(() => expect(started).toHaveLength(1));
    expect(fake.callsTo('images:import-from-folder')).toEqual([{ folderId: 'f1', entryIds: ['e1', 'e2'] }]);
    expect(started[0]!.map((i) => i.name)).toEqual(['e1.jpg', 'e2.jpg']);
    // The selection is cleared once handed over.
    expect(within(listbox).queryAllByRole('option', { selected: true })).toEqual([]);

    await user.click(within(listbox).getByRole('option', { name: 'IMG_0010.jpg' }));
    await user.click(screen.getByRole('button', { name: 'Add to current chat' }));
    await waitFor(() => expect(added).toHaveLength(1));
    expect(added[0]!.map((i) => i.name)).toEqual(['e10.jpg']);

    // Enter on the grid starts a chat too.
    listbox.focus();
    await user.keyboard(' {Enter}');
    await waitFor(() => expect(started).toHaveLength(2));
  });

  it('refuses more photos than one message can carry', async () => {
    const user = userEvent.setup();
    const started: StoredImage[][] = [];
    const { fake } = await setup(30, { onstartchat: (images: StoredImage[]) => started.push(images) });
    const listbox = await openFolder(user);
    listbox.focus();
    await user.keyboard('{Control>}a{/Control}');
    expect(screen.getByText('A message can carry at most 16 photos; 30 are selected.')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'New chat about these photos' })).toHaveProperty('disabled', true);
    expect(fake.callsTo('images:import-from-folder')).toEqual([]);
  });

  it('says why a photo cannot be shown when its thumbnail fails', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(3);
    fake.handle({
      'images:folder-entry-problem': ({ entryId }) =>
        entryId === 'e2' ? { kind: 'truncated', short: 'File is cut off', message: 'IMG_0002.jpg is cut off (truncated).' } : null,
    });
    const listbox = await openFolder(user);
    const imgs = listbox.querySelectorAll('img');
    await fireEvent.error(imgs[1]!);
    await fireEvent.error(imgs[2]!);
    const options = within(listbox).getAllByRole('option');
    await waitFor(() => expect(options[1]!.textContent).toContain('File is cut off'));
    expect(within(options[1]!).getByTitle('IMG_0002.jpg is cut off (truncated).')).toBeTruthy();
    // Main found nothing wrong (the file may have changed since): the grid still says it cannot show it.
    expect(options[2]!.textContent).toContain('Can’t show this photo');
    expect(fake.callsTo('images:folder-entry-problem')).toEqual([
      { folderId: 'f1', entryId: 'e2' },
      { folderId: 'f1', entryId: 'e3' },
    ]);
  });

  it('a cancelled folder dialog changes nothing', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(5);
    fake.handle({ 'images:pick-folder': () => null });
    await user.click(screen.getByRole('button', { name: 'Open a folder…' }));
    expect(screen.queryByRole('listbox')).toBeNull();
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('Photos panel: descriptions', () => {
  /** A describe job of 9 photos as main reports it. */
  function job(over: Partial<DescribeJobInfo> = {}, progress: Partial<DescribeJobInfo['progress']> = {}): DescribeJobInfo {
    return {
      id: 7, state: 'running', folderNames: ['Holiday'], folderIds: ['f1'], selectedPhotos: 0, recursive: false, sidecars: null, promptVersion: 'describe-v1',
      progress: { total: 9, finished: 3, described: 3, skipped: 0, failed: 0, photosPerMinute: 2.5, etaSeconds: 150, current: { name: 'IMG_0004.jpg', folderId: 'f1', entryId: 'e4', thumbnailUrl: '/thumb/4' }, ...progress },
      createdAt: 1, updatedAt: 2, finishedAt: null, stopReason: null, ...over,
    };
  }

  it('starts a job with sidecars only when asked, follows its progress and pauses it', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(9);
    fake.handle({ 'describe:start': () => job({ state: 'queued' }, { finished: 0, described: 0, photosPerMinute: null, etaSeconds: null, current: null }), 'describe:pause': () => job({ state: 'paused' }) });
    await openFolder(user);
    await user.click(screen.getByRole('button', { name: 'Describe this folder…' }));
    const sidecars = screen.getByRole('checkbox', { name: 'Write XMP sidecars' }) as HTMLInputElement;
    expect(sidecars.checked).toBe(false);
    await user.click(screen.getByRole('button', { name: 'Start describing' }));
    expect(fake.callsTo('describe:start')).toEqual([{ folderId: 'f1', recursive: false, sidecars: null }]);

    fake.emit('describe:event', { type: 'job', job: job() });
    const region = await screen.findByRole('region', { name: 'Describe job' });
    await waitFor(() => expect(region.textContent).toContain('3 of 9 photos · 2.5 photos a minute · about 3 min left'));
    expect(within(region).getByRole('img', { name: 'Being described: IMG_0004.jpg' }).getAttribute('src')).toBe('/thumb/4');
    await user.click(within(region).getByRole('button', { name: 'Pause' }));
    expect(fake.callsTo('describe:pause')).toEqual([{ jobId: 7 }]);
    await waitFor(() => expect(within(region).getByRole('button', { name: 'Resume' })).toBeTruthy());
  });

  it('asks for sidecars named as chosen', async () => {
    const user = userEvent.setup();
    const { fake } = await setup(2);
    fake.handle({ 'describe:start': () => job() });
    await openFolder(user);
    await user.click(screen.getByRole('button', { name: 'Describe this folder…' }));
    await user.click(screen.getByRole('checkbox', { name: 'Include subfolders' }));
    await user.click(screen.getByRole('checkbox', { name: 'Write XMP sidecars' }));
    await user.click(screen.getByRole('radio', { name: /photo\.xmp \(Lightroom\)/ }));
    await user.click(screen.getByRole('button', { name: 'Start describing' }));
    expect(fake.callsTo('describe:start')).toEqual([{ folderId: 'f1', recursive: true, sidecars: 'photo.xmp' }]);
  });
});
