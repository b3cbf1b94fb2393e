/**
 * Folders the user chose for the photos panel. A folder becomes reachable only through the folder
 * dialog; the renderer then names it and its files by opaque ids (never paths). Only the image
 * files directly inside it are listed (no subfolders, no symbolic links), and only files that were
 * listed, or that main itself named to the renderer inside it (`refer`: a describe job's photos and
 * search hits, subfolders included), can be thumbnailed or imported.
 *
 * Folders chosen in the dialog are remembered (the most recent {@link MAX_RECENT_FOLDERS}, in
 * `recent-folders.json` in the data folder), so the Photos screen can open the last one again
 * after a restart and offer the others: the renderer sees their names and opaque ids only, and can
 * reopen only folders the user once chose in the dialog.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, sep } from 'node:path';
import sharp from 'sharp';
import { OwleryError } from '../../src-shared/errors.ts';
import type { Page } from '../../src-shared/domain.ts';
import { folderThumbnailUrl } from '../../src-shared/ipc/index.ts';
import type { ChosenFolder, FolderEntry, FolderEntryId, FolderId, ImageProblem, RecentFolder } from '../../src-shared/ipc/index.ts';
import { MAX_PAGE_SIZE, MAX_RECENT_FOLDERS, MAX_SOURCE_IMAGE_PIXELS } from '../../src-shared/limits.ts';
import { writeFileAtomic } from '../export/files.ts';
import { decodeFailure, diagnoseImageFile } from '../store/image-check.ts';

/** File extensions listed in the photos panel (lower case, without the dot). */
export const PHOTO_EXTENSIONS: ReadonlySet<string> = new Set(['jpg', 'jpeg', 'png', 'webp', 'gif', 'tif', 'tiff', 'avif', 'heic', 'heif']);

/** Longest side of a folder thumbnail, in pixels. */
export const FOLDER_THUMBNAIL_SIZE = 256;

/** Default page of a folder listing (the largest is `MAX_PAGE_SIZE`). */
const DEFAULT_PAGE = 100;
/** Thumbnails kept in memory. */
const THUMB_CACHE_ENTRIES = 512;

interface Granted {
  path: string;
  name: string;
  /** entryId → file name, for the files listed so far. */
  entries: Map<FolderEntryId, string>;
}

/** The id of a file in a folder: derived from its name, so it is stable across listings. */
export function entryIdOf(fileName: string): FolderEntryId {
  return createHash('sha256').update(fileName).digest('base64url').slice(0, 22);
}

/** Whether a file name has one of the {@link PHOTO_EXTENSIONS}. */
export function isPhotoName(name: string): boolean {
  const dot = name.lastIndexOf('.');
  return dot > 0 && PHOTO_EXTENSIONS.has(name.slice(dot + 1).toLowerCase());
}

/** A remembered folder, as `recent-folders.json` keeps it. */
interface RecentEntry {
  path: string;
  name: string;
  openedAt: number;
}

/** The id of a remembered folder: derived from its path, so it is stable across restarts. */
function recentIdOf(path: string): string {
  return createHash('sha256').update(path).digest('base64url').slice(0, 22);
}

/** Folders granted in this session, and the ones remembered; see the module comment. */
export class FolderGrants {
  private readonly folders = new Map<FolderId, Granted>();
  private readonly thumbs = new Map<string, Uint8Array>();
  private recentList: Promise<RecentEntry[]> | null = null;
  private recentWrite: Promise<void> = Promise.resolve();

  /**
   * `imageBase` starts the thumbnail URLs (see `AppInfo.imageBase`); `recentFile` is where chosen
   * folders are remembered (none: not remembered).
   */
  constructor(
    private readonly imageBase: string,
    private readonly recentFile: string | null = null,
    private readonly now: () => number = Date.now,
  ) {}

  /** Grants access to a folder the user chose in the dialog, and remembers it. */
  async grant(path: string): Promise<ChosenFolder> {
    const folder = await this.open(path);
    await this.remember(path, folder.name);
    return folder;
  }

  /** The remembered folders, most recently opened first (names and ids only). */
  async recent(): Promise<RecentFolder[]> {
    return (await this.loadRecent()).map((e) => ({ recentId: recentIdOf(e.path), name: e.name, openedAt: e.openedAt }));
  }

  /** Opens a remembered folder again. `NOT_FOUND` for an unknown id; a folder that is gone is forgotten (`FILE_NOT_FOUND`). */
  async openRecent(recentId: string): Promise<ChosenFolder> {
    const entry = (await this.loadRecent()).find((e) => recentIdOf(e.path) === recentId);
    if (!entry) throw new OwleryError('NOT_FOUND', 'That folder is not among the recent ones; open it again.', { recentId });
    try {
      const folder = await this.open(entry.path);
      await this.remember(entry.path, folder.name);
      return folder;
    } catch (err) {
      await this.forget(recentId);
      throw err;
    }
  }

  /** Removes a folder from the recent list. */
  async forget(recentId: string): Promise<void> {
    const list = (await this.loadRecent()).filter((e) => recentIdOf(e.path) !== recentId);
    await this.saveRecent(list);
  }

  private async open(path: string): Promise<ChosenFolder> {
    const st = await stat(path).catch(() => null);
    if (!st?.isDirectory()) throw new OwleryError('FILE_NOT_FOUND', `The folder ${basename(path) || path} is no longer there.`);
    const folderId = randomBytes(12).toString('base64url');
    const granted: Granted = { path, name: basename(path) || path, entries: new Map() };
    this.folders.set(folderId, granted);
    const names = await this.photoNames(granted);
    return { folderId, name: granted.name, imageCount: names.length };
  }

  private async remember(path: string, name: string): Promise<void> {
    const list = (await this.loadRecent()).filter((e) => e.path !== path);
    await this.saveRecent([{ path, name, openedAt: this.now() }, ...list].slice(0, MAX_RECENT_FOLDERS));
  }

  private loadRecent(): Promise<RecentEntry[]> {
    this.recentList ??= (async () => {
      if (!this.recentFile) return [];
      try {
        const raw = JSON.parse(await readFile(this.recentFile, 'utf8')) as unknown;
        if (!Array.isArray(raw)) return [];
        // A hand-edited or damaged file loses its bad entries, not the good ones.
        return raw
          .filter((e): e is RecentEntry => typeof e?.path === 'string' && typeof e?.name === 'string' && Number.isFinite(e?.openedAt))
          .slice(0, MAX_RECENT_FOLDERS);
      } catch {
        return [];
      }
    })();
    return this.recentList;
  }

  private async saveRecent(list: RecentEntry[]): Promise<void> {
    this.recentList = Promise.resolve(list);
    const file = this.recentFile;
    if (!file) return;
    // Writes in order; a failed write (full disk) only means the list is not remembered.
    this.recentWrite = this.recentWrite.then(() => writeFileAtomic(file, `${JSON.stringify(list, null, 2)}\n`)).catch(() => {});
    await this.recentWrite;
  }

  /** A page of the folder's photos, by name. `cursor` is the previous page's `nextCursor`. */
  async list(folderId: FolderId, cursor: string | null = null, limit = DEFAULT_PAGE): Promise<Page<FolderEntry>> {
    const granted = this.folder(folderId);
    const names = await this.photoNames(granted);
    let start = 0;
    if (cursor) {
      const after = Buffer.from(cursor, 'base64url').toString('utf8');
      start = names.findIndex((n) => n.localeCompare(after) > 0);
      if (start < 0) start = names.length;
    }
    const slice = names.slice(start, start + Math.min(Math.max(1, limit), MAX_PAGE_SIZE));
    const items: FolderEntry[] = [];
    for (const name of slice) {
      const st = await stat(join(granted.path, name)).catch(() => null);
      if (!st?.isFile()) continue;
      const entryId = entryIdOf(name);
      granted.entries.set(entryId, name);
      items.push({ entryId, name, byteSize: st.size, modifiedAt: Math.round(st.mtimeMs), thumbnailUrl: folderThumbnailUrl(folderId, entryId, this.imageBase) });
    }
    const last = slice[slice.length - 1];
    const more = start + slice.length < names.length;
    return { items, nextCursor: more && last !== undefined ? Buffer.from(last, 'utf8').toString('base64url') : null };
  }

  /** The path and file name of a listed (or {@link refer}red) file. Throws `NOT_FOUND` for anything else. */
  resolve(folderId: FolderId, entryId: FolderEntryId): { path: string; name: string } {
    const granted = this.folder(folderId);
    const name = granted.entries.get(entryId);
    if (name === undefined) throw new OwleryError('NOT_FOUND', 'That photo is not in the folder listing; list the folder again.', { entryId });
    return { path: join(granted.path, name), name: basename(name) };
  }

  /** The path of a folder granted in this session. Throws `NOT_FOUND`. */
  pathOf(folderId: FolderId): string {
    return this.folder(folderId).path;
  }

  /** The id of the latest grant of the folder at `path` in this session, or `null`. */
  folderIdOf(path: string): FolderId | null {
    let found: FolderId | null = null;
    for (const [id, granted] of this.folders) if (granted.path === path) found = id;
    return found;
  }

  /**
   * A photo inside a granted folder (directly or in a subfolder, e.g. one a describe job or a
   * search named), as the renderer may know it: its name relative to the folder (`trip/a.jpg`)
   * and an entry id that thumbnails, imports and {@link resolve} then accept. With `folderId`, in
   * that folder only; otherwise in the latest grant that holds it. `null` when none does.
   */
  refer(path: string, folderId?: FolderId): { folderId: FolderId; entryId: FolderEntryId; name: string; thumbnailUrl: string } | null {
    const candidates: [FolderId, Granted][] = folderId === undefined ? [...this.folders].reverse() : [[folderId, this.folder(folderId)]];
    for (const [id, granted] of candidates) {
      const rel = relative(granted.path, path);
      if (rel === '' || isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) continue;
      const name = rel.split(sep).join('/');
      const entryId = entryIdOf(name);
      granted.entries.set(entryId, name);
      return { folderId: id, entryId, name, thumbnailUrl: folderThumbnailUrl(id, entryId, this.imageBase) };
    }
    return null;
  }

  /** A WebP thumbnail (EXIF-rotated) of a listed file. */
  async thumbnail(folderId: FolderId, entryId: FolderEntryId): Promise<{ mime: string; bytes: Uint8Array }> {
    const { path, name } = this.resolve(folderId, entryId);
    const st = await stat(path).catch(() => null);
    if (!st?.isFile()) throw new OwleryError('FILE_NOT_FOUND', `${name} is no longer in the folder.`);
    const key = `${path}\0${st.size}\0${st.mtimeMs}`;
    let bytes = this.thumbs.get(key);
    if (!bytes) {
      try {
        bytes = new Uint8Array(
          // Up to the size the image store downscales: what can be imported can be seen.
          await sharp(path, { failOn: 'error', limitInputPixels: MAX_SOURCE_IMAGE_PIXELS, sequentialRead: true })
            .rotate()
            .resize(FOLDER_THUMBNAIL_SIZE, FOLDER_THUMBNAIL_SIZE, { fit: 'inside', withoutEnlargement: true })
            .webp({ quality: 75 })
            .toBuffer(),
        );
      } catch (err) {
        throw decodeFailure(err, name);
      }
      this.thumbs.set(key, bytes);
      if (this.thumbs.size > THUMB_CACHE_ENTRIES) this.thumbs.delete(this.thumbs.keys().next().value!);
    }
    return { mime: 'image/webp', bytes };
  }

  /** Why a listed file cannot be shown (empty, not an image, cut off, too large, …), or `null` when it can. */
  async problem(folderId: FolderId, entryId: FolderEntryId): Promise<ImageProblem | null> {
    const { path, name } = this.resolve(folderId, entryId);
    return diagnoseImageFile(path, name);
  }

  private folder(folderId: FolderId): Granted {
    const granted = this.folders.get(folderId);
    if (!granted) throw new OwleryError('NOT_FOUND', 'That folder is no longer open; choose it again.', { folderId });
    return granted;
  }

  private async photoNames(granted: Granted): Promise<string[]> {
    let dirents;
    try {
      dirents = await readdir(granted.path, { withFileTypes: true });
    } catch (err) {
      throw new OwleryError('FILE_NOT_FOUND', `The folder ${granted.name} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
    return dirents
      .filter((d) => d.isFile() && isPhotoName(d.name))
      .map((d) => d.name)
      .sort((a, b) => a.localeCompare(b));
  }
}
