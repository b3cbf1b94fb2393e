/**
 * Photos waiting in the composer's tray: added with the open dialog (`images:pick`), dropped or
 * pasted (bytes → `images:import`), or handed over by the photos screen; stored by main before
 * they are sent, so the message carries hashes only. Files that are not photos, are too large, or
 * exceed the per-message limit are refused with a message that names them.
 */
import type { ImageAttachmentRef, OwleryClient, StoredImage } from '../../../src-shared/ipc/index.ts';
import { MAX_DROPPED_IMAGE_BYTES, MAX_FILE_NAME_CHARS, MAX_IMAGES_PER_MESSAGE } from '../../../src-shared/limits.ts';
import { describeError } from '../errors.ts';
import { formatBytes } from '../format.ts';

/** A photo in the tray. */
export interface PendingPhoto {
  key: number;
  /** Shown name (`Pasted photo` for pastes). */
  label: string;
  /** `null` while it is being stored. */
  image: StoredImage | null;
}

/** A file as the tray needs it (a DOM `File` fits). */
export interface FileLike {
  readonly name: string;
  readonly type: string;
  readonly size: number;
  arrayBuffer(): Promise<ArrayBuffer>;
}

const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|tiff?|avif|heic|heif)$/i;

/** True when a file looks like a photo (by type, or by extension when the type is unknown). */
export function looksLikeImage(file: Pick<FileLike, 'name' | 'type'>): boolean {
  return file.type ? file.type.startsWith('image/') && file.type !== 'image/svg+xml' : IMAGE_EXTENSIONS.test(file.name);
}

/** A file name main accepts: no folders, no NUL, at most `MAX_FILE_NAME_CHARS` characters. */
function cleanName(name: string): string | null {
  // eslint-disable-next-line no-control-regex
  const base = (name.split(/[/\\]/).pop() ?? '').replace(/[\u0000-\u001f]/g, '').trim();
  return base ? base.slice(-MAX_FILE_NAME_CHARS) : null;
}

/** The composer's photo tray. */
export class AttachmentsManager {
  items = $state<PendingPhoto[]>([]);
  /** Messages about refused files, newest last. */
  errors = $state<string[]>([]);

  readonly #client: OwleryClient;
  readonly #maxBytes: number;
  readonly #maxCount: number;
  #nextKey = 1;

  constructor(client: OwleryClient, opts: { maxBytes?: number; maxCount?: number } = {}) {
    this.#client = client;
    this.#maxBytes = opts.maxBytes ?? MAX_DROPPED_IMAGE_BYTES;
    this.#maxCount = opts.maxCount ?? MAX_IMAGES_PER_MESSAGE;
  }

  /** Photos stored and ready to send, in tray order. */
  get ready(): ImageAttachmentRef[] {
    return this.items.flatMap((p) => (p.image ? [{ sha256: p.image.sha256, name: p.image.name }] : []));
  }

  /** True while a photo is still being stored. */
  get busy(): boolean {
    return this.items.some((p) => p.image === null);
  }

  /** Opens the system's photo dialog and adds what was chosen. */
  async pick(): Promise<void> {
    try {
      this.addStored(await this.#client.images.pick());
    } catch (err) {
      this.#refuse(describeError(err));
    }
  }

  /** Adds photos already stored (from the dialog or the photos screen). */
  addStored(images: StoredImage[]): void {
    for (const image of images) {
      if (!this.#hasRoom(image.name ?? 'A photo')) return;
      this.items.push({ key: this.#nextKey++, label: image.name ?? 'Pasted photo', image });
    }
  }

  /** Stores dropped or pasted files and adds them; refuses what is not a photo or too large. */
  async addFiles(files: Iterable<FileLike>, source: 'drop' | 'paste' = 'drop'): Promise<void> {
    const jobs: Promise<void>[] = [];
    for (const file of files) {
      const shown = file.name || 'The pasted item';
      if (!looksLikeImage(file)) {
        this.#refuse(`“${shown}” is not a photo Owlery can read.`);
        continue;
      }
      if (file.size > this.#maxBytes) {
        this.#refuse(`“${shown}” is too large (${formatBytes(file.size)}; the limit is ${formatBytes(this.#maxBytes)}).`);
        continue;
      }
      if (file.size === 0) {
        this.#refuse(`“${shown}” is empty.`);
        continue;
      }
      if (!this.#hasRoom(shown)) break;
      const name = source === 'paste' ? null : cleanName(file.name);
      const item: PendingPhoto = { key: this.#nextKey++, label: name ?? 'Pasted photo', image: null };
      this.items.push(item);
      jobs.push(this.#store(item.key, file, name));
    }
    await Promise.all(jobs);
  }

  /** Removes a photo from the tray. */
  remove(key: number): void {
    this.items = this.items.filter((p) => p.key !== key);
  }

  /** Empties the tray and the error list (after a send). */
  clear(): void {
    this.items = [];
    this.errors = [];
  }

  /** Removes one error message. */
  dismissError(index: number): void {
    this.errors = this.errors.filter((_, i) => i !== index);
  }

  async #store(key: number, file: FileLike, name: string | null): Promise<void> {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const image = await this.#client.images.import({ name, bytes });
      const i = this.items.findIndex((p) => p.key === key);
      if (i >= 0) this.items[i] = { ...this.items[i]!, image };
    } catch (err) {
      this.remove(key);
      this.#refuse(`“${name ?? 'The pasted photo'}” could not be added: ${describeError(err)}`);
    }
  }

  #hasRoom(name: string): boolean {
    if (this.items.length < this.#maxCount) return true;
    this.#refuse(`“${name}” was not added: a message can carry at most ${this.#maxCount} photos.`);
    return false;
  }

  #refuse(message: string): void {
    this.errors = [...this.errors.slice(-4), message];
  }
}
