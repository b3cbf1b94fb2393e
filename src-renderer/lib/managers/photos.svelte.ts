/**
 * State of the Photos panel: the folder the user opened (through main's folder dialog), its photos
 * loaded page by page, the selection (click, Shift/Ctrl-click and keyboard, like a file manager),
 * and storing the selected photos so a chat can use them.
 *
 * The renderer never sees paths: a folder and its files are opaque ids (`images:pick-folder`,
 * `images:list-folder`), thumbnails come from main already rotated by their EXIF orientation, and
 * `images:import-from-folder` turns the selection into stored photos (hashes).
 *
 * Folders opened before are remembered by main (`images:recent-folders`): the screen reopens the
 * last one when it is shown again after a restart or reload, and offers the others.
 * @see docs/style.md H13
 */
import { MAX_FOLDER_IMPORT, MAX_IMAGES_PER_MESSAGE } from '../../../src-shared/limits.ts';
import type { ChosenFolder, FolderEntry, FolderEntryId, FolderId, ImageProblem, OwleryClient, RecentFolder, StoredImage } from '../../../src-shared/ipc/index.ts';
import { describeError, isCancellation } from '../components/models/format.ts';

/** The part of the client the Photos panel uses. */
export type PhotosClient = Pick<OwleryClient, 'images'>;

/** Photos listed per request. */
export const PHOTOS_PAGE_SIZE = 200;

/** How a click or key changes the selection. */
export interface SelectMode {
  /** Extend from the anchor (Shift). */
  range?: boolean;
  /** Add to or remove from the selection instead of replacing it (Ctrl/⌘). */
  toggle?: boolean;
}

/** Why `n` selected photos cannot go into one message, or `null` when they can. */
export function tooManyForAMessage(n: number): string | null {
  return n > MAX_IMAGES_PER_MESSAGE ? `A message can carry at most ${MAX_IMAGES_PER_MESSAGE} photos; ${n} are selected.` : null;
}

/** Manages the Photos panel; see the module comment. */
export class PhotosManager {
  /** The open folder, or `null`. */
  folder = $state<ChosenFolder | null>(null);
  /** The photos listed so far, by name (replaced, never mutated: thousands of rows). */
  entries = $state.raw<FolderEntry[]>([]);
  /** Cursor of the next page; `null` once everything is listed. */
  nextCursor = $state<string | null>(null);
  /** True while a page is being listed. */
  loading = $state(false);
  /** Selected entry ids. */
  selected = $state.raw<ReadonlySet<FolderEntryId>>(new Set());
  /** The photo with keyboard focus (an index into {@link entries}). */
  focusIndex = $state(0);
  /** Where Shift-selection ranges start. */
  anchorIndex = $state<number | null>(null);
  /** True while selected photos are being stored. */
  storing = $state(false);
  /** The last failure, in plain words. */
  error = $state<string | null>(null);
  /** Photos whose thumbnail could not be shown, with why (`null` until main has said). */
  unreadable = $state.raw<ReadonlyMap<FolderEntryId, ImageProblem | null>>(new Map());
  /** Folders opened before, most recent first. */
  recent = $state<RecentFolder[]>([]);

  // Getters, not `$derived` fields: the manager is shared by every Photos screen shown, and a
  // derived created while a component initialises stops updating once that component is gone.

  /** How many photos are selected. */
  get selectedCount(): number {
    return this.selected.size;
  }
  /** The selected photos, in folder order. */
  get selectedEntries(): FolderEntry[] {
    return this.entries.filter((e) => this.selected.has(e.entryId));
  }
  /** Why the selection cannot go into one message, if it cannot. */
  get selectionProblem(): string | null {
    return tooManyForAMessage(this.selected.size);
  }
  /** True when more photos can be listed. */
  get hasMore(): boolean {
    return this.nextCursor !== null;
  }

  private generation = 0;
  private pageLoad: Promise<void> | null = null;
  private restored = false;

  constructor(private readonly client: PhotosClient) {}

  /** Opens the folder dialog; a chosen folder replaces the open one (cancel keeps it). */
  openFolder(): Promise<boolean> {
    return this.openWith(() => this.client.images.pickFolder());
  }

  /**
   * Records that a photo's thumbnail could not be shown and asks main why (empty, not an image,
   * cut off, too large…), so the grid can say so instead of a bare "can't show".
   */
  async explain(entryId: FolderEntryId): Promise<void> {
    const folder = this.folder;
    if (!folder || this.unreadable.has(entryId)) return;
    const generation = this.generation;
    this.unreadable = new Map(this.unreadable).set(entryId, null);
    let why: ImageProblem | null = null;
    try {
      why = await this.client.images.folderEntryProblem({ folderId: folder.folderId, entryId });
    } catch {
      // The reason is a nicety; the grid still says the photo cannot be shown.
    }
    if (why && generation === this.generation) this.unreadable = new Map(this.unreadable).set(entryId, why);
  }

  /** Reads the recent folders; the first time, with no folder open, reopens the most recent one. */
  async restore(): Promise<void> {
    await this.loadRecent();
    if (this.restored || this.folder) return;
    this.restored = true;
    const last = this.recent[0];
    if (last) await this.openRecent(last.recentId);
  }

  /** Opens a folder of the recent list (one that is gone is dropped from it, with a message). */
  openRecent(recentId: string): Promise<boolean> {
    return this.openWith(() => this.client.images.openRecentFolder({ recentId }));
  }

  /** Shows the folder `pick` grants (`null`: cancelled, nothing changes); the recent list is read again either way. */
  private async openWith(pick: () => Promise<ChosenFolder | null>): Promise<boolean> {
    this.error = null;
    try {
      const folder = await pick();
      if (!folder) return false;
      await this.show(folder);
      return true;
    } catch (err) {
      this.fail(err);
      return false;
    } finally {
      await this.loadRecent();
    }
  }

  /** Removes a folder from the recent list. */
  async forgetRecent(recentId: string): Promise<void> {
    try {
      await this.client.images.forgetRecentFolder({ recentId });
    } catch (err) {
      this.fail(err);
    }
    await this.loadRecent();
  }

  private async loadRecent(): Promise<void> {
    try {
      this.recent = await this.client.images.recentFolders();
    } catch {
      // The list is a convenience; the dialog still works.
    }
  }

  private async show(folder: ChosenFolder): Promise<void> {
    this.generation++;
    this.folder = folder;
    this.entries = [];
    this.nextCursor = null;
    this.selected = new Set();
    this.unreadable = new Map();
    this.focusIndex = 0;
    this.anchorIndex = null;
    this.pageLoad = null;
    await this.loadMore(true);
  }

  /** Lists the next page of the folder (no-op while one is loading or when all are listed). */
  loadMore(first = false): Promise<void> {
    const folder = this.folder;
    if (!folder || (!first && this.nextCursor === null)) return Promise.resolve();
    if (this.pageLoad) return this.pageLoad;
    const generation = this.generation;
    this.loading = true;
    this.pageLoad = (async () => {
      try {
        const page = await this.client.images.listFolder({ folderId: folder.folderId, cursor: first ? null : this.nextCursor, limit: PHOTOS_PAGE_SIZE });
        if (generation !== this.generation) return;
        this.entries = [...this.entries, ...page.items];
        this.nextCursor = page.nextCursor;
      } catch (err) {
        if (generation === this.generation) this.fail(err);
      } finally {
        if (generation === this.generation) {
          this.loading = false;
          this.pageLoad = null;
        }
      }
    })();
    return this.pageLoad;
  }

  /** True when the photo is selected. */
  isSelected(entryId: FolderEntryId): boolean {
    return this.selected.has(entryId);
  }

  /** A click (or Space) on photo `index`: select it alone, toggle it (Ctrl/⌘) or a range (Shift). */
  pick(index: number, mode: SelectMode = {}): void {
    const entry = this.entries[index];
    if (!entry) return;
    this.focusIndex = index;
    if (mode.range) {
      const from = this.anchorIndex ?? index;
      const range = this.idsBetween(from, index);
      this.selected = mode.toggle ? new Set([...this.selected, ...range]) : new Set(range);
      return;
    }
    this.anchorIndex = index;
    if (mode.toggle) {
      const next = new Set(this.selected);
      if (next.has(entry.entryId)) next.delete(entry.entryId);
      else next.add(entry.entryId);
      this.selected = next;
    } else {
      this.selected = new Set([entry.entryId]);
    }
  }

  /**
   * Moves keyboard focus to `index` (clamped). With `extend`, the selection becomes the range from
   * the anchor to the new focus (Shift+arrows). Asks for the next page when focus nears the end.
   */
  moveFocus(index: number, extend = false): void {
    if (this.entries.length === 0) return;
    const to = Math.max(0, Math.min(this.entries.length - 1, index));
    if (extend) {
      this.anchorIndex ??= this.focusIndex;
      this.selected = new Set(this.idsBetween(this.anchorIndex, to));
    }
    this.focusIndex = to;
    if (to >= this.entries.length - PHOTOS_PAGE_SIZE / 4) void this.loadMore();
  }

  /** Selects every photo listed so far. */
  selectAll(): void {
    this.selected = new Set(this.entries.map((e) => e.entryId));
  }

  /** Clears the selection. */
  clearSelection(): void {
    this.selected = new Set();
    this.anchorIndex = null;
  }

  /**
   * Stores the selected photos (in folder order) so a message can carry them. Resolves to the
   * stored photos, or `null` (with {@link error} set) when that is not possible.
   */
  async storeSelection(): Promise<StoredImage[] | null> {
    const folder = this.folder;
    if (!folder || this.selectedEntries.length === 0) return null;
    return this.storeEntries(folder.folderId, this.selectedEntries.map((e) => e.entryId));
  }

  /**
   * Stores photos of a folder opened in this session (listed, or named by main, e.g. search hits
   * in its subfolders), in the order given. Like {@link storeSelection}.
   */
  async storeEntries(folderId: FolderId, entryIds: readonly FolderEntryId[]): Promise<StoredImage[] | null> {
    if (entryIds.length === 0) return null;
    const problem = tooManyForAMessage(entryIds.length);
    if (problem) {
      this.error = problem;
      return null;
    }
    this.error = null;
    this.storing = true;
    try {
      const out: StoredImage[] = [];
      for (let i = 0; i < entryIds.length; i += MAX_FOLDER_IMPORT) {
        out.push(...(await this.client.images.importFromFolder({ folderId, entryIds: entryIds.slice(i, i + MAX_FOLDER_IMPORT) })));
      }
      return out;
    } catch (err) {
      this.fail(err);
      return null;
    } finally {
      this.storing = false;
    }
  }

  /** Clears the error message. */
  clearError(): void {
    this.error = null;
  }

  private idsBetween(a: number, b: number): FolderEntryId[] {
    const [lo, hi] = a <= b ? [a, b] : [b, a];
    return this.entries.slice(lo, hi + 1).map((e) => e.entryId);
  }

  private fail(err: unknown): void {
    if (!isCancellation(err)) this.error = describeError(err);
  }
}

let shared: PhotosManager | null = null;

/** The app's photos manager (the open folder survives leaving and reopening the panel). */
export function getPhotosManager(client: PhotosClient): PhotosManager {
  shared ??= new PhotosManager(client);
  return shared;
}
