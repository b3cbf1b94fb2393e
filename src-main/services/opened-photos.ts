/**
 * Photos the operating system hands to Owlery ("Open with Owlery", a photo dropped on the Dock
 * icon, paths on the command line): they are stored like photos chosen in the open dialog and
 * queued until the window takes them (`app:take-opened-photos`, announced by the
 * `app:photos-opened` event), so a photo opened before the window is ready is not lost.
 *
 * Paths come from `process.argv` (first start on Windows and Linux), the `second-instance` event
 * (later opens: the running app gets the new instance's argv) and macOS's `open-file` event; only
 * files with a photo extension are considered. Plain Node: the app wires the events.
 */
import { basename, extname, isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_IMAGES_PER_MESSAGE } from '../../src-shared/limits.ts';
import type { StoredImage } from '../../src-shared/ipc/index.ts';
import type { ImageRecord } from '../store/store.ts';
import { PHOTO_EXTENSIONS } from './folders.ts';

/** True for a file name with a photo extension (`.jpg`, `.heic`, …). */
export function isPhotoPath(path: string): boolean {
  return PHOTO_EXTENSIONS.has(extname(path).slice(1).toLowerCase());
}

/**
 * The photo paths in a command line, absolute: switches (`--foo`, Chromium's own) are skipped, and
 * so are the executable (`argv[0]`) and, when running unpackaged (`electron .`), the app folder.
 * `file:` URLs (a Linux desktop file's `%U`) become paths; other URLs are ignored.
 */
export function photoPathsFromArgv(argv: readonly string[], opts: { cwd: string; packaged: boolean }): string[] {
  const args = argv.slice(opts.packaged ? 1 : 2);
  const out: string[] = [];
  for (const raw of args) {
    if (!raw || raw.startsWith('-')) continue;
    let arg = raw;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(raw)) {
      if (!raw.toLowerCase().startsWith('file://')) continue;
      try {
        arg = fileURLToPath(raw);
      } catch {
        continue;
      }
    }
    if (!isPhotoPath(arg)) continue;
    out.push(isAbsolute(arg) ? arg : resolve(opts.cwd, arg));
  }
  return out;
}

/** What {@link OpenedPhotos} needs from the services. */
export interface OpenedPhotosDeps {
  /** Stores a photo file (the image store's `put`). */
  put(path: string, opts: { name: string }): Promise<ImageRecord>;
  /** Turns a record into what the renderer sees. */
  toStoredImage(record: ImageRecord, name: string): StoredImage;
  /** Told after photos were queued (the app emits `app:photos-opened`). */
  notify(count: number): void;
  /** Told about a path that could not be stored (default: a warning on stderr). */
  onError?(path: string, err: unknown): void;
}

/** The queue of opened photos; see the module comment. */
export class OpenedPhotos {
  private queue: StoredImage[] = [];
  private work: Promise<void> = Promise.resolve();

  /** A queue over the image store. */
  constructor(private readonly deps: OpenedPhotosDeps) {}

  /**
   * Stores the photos among `paths` (at most {@link MAX_IMAGES_PER_MESSAGE} per call; others
   * are skipped), queues them and notifies. Calls run one after another; never rejects.
   */
  open(paths: readonly string[]): Promise<void> {
    const photos = paths.filter(isPhotoPath).slice(0, MAX_IMAGES_PER_MESSAGE);
    if (photos.length === 0) return this.work;
    this.work = this.work.then(async () => {
      const added: StoredImage[] = [];
      for (const path of photos) {
        const name = basename(path);
        try {
          added.push(this.deps.toStoredImage(await this.deps.put(path, { name }), name));
        } catch (err) {
          this.deps.onError?.(path, err);
        }
      }
      if (added.length === 0) return;
      this.queue.push(...added);
      this.deps.notify(this.queue.length);
    });
    return this.work;
  }

  /** Takes (and clears) the queued photos, oldest first. */
  take(): StoredImage[] {
    const out = this.queue;
    this.queue = [];
    return out;
  }

  /** Resolves once every `open` so far has finished. */
  settled(): Promise<void> {
    return this.work;
  }
}
