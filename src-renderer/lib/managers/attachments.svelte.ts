/**
 * Photos waiting to be sent with a message (the composer's tray, or an edited message's photos):
 * added with the open dialog (`images:pick`), dropped or pasted (bytes → `images:import`), or
 * handed over by the photos screen; stored by main before they are sent, so the message carries
 * hashes only.
 *
 * Files that are not photos, are too large or empty, or exceed the per-message limit are refused
 * in the same words whichever way they came (`../refusals.ts`), and the refusals of one action
 * (one drop, one paste, one pick) make one message, {@link AttachmentsManager.problem}.
 */
import type { ImageAttachmentRef, OwleryClient, StoredImage } from '../../../src-shared/ipc/index.ts';
import { MAX_DROPPED_IMAGE_BYTES, MAX_FILE_NAME_CHARS, MAX_IMAGES_PER_MESSAGE } from '../../../src-shared/limits.ts';
import { describeError, errorCode } from '../errors.ts';
import { OwleryError } from '../../../src-shared/errors.ts';
import { describeRefusals, refusalOf, sizes } from '../refusals.ts';
import type { Refusal } from '../refusals.ts';

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

/** A tray of photos to send. */
export class AttachmentsManager {
  items = $state<PendingPhoto[]>([]);
  /** Why files of the last action were not added, in one sentence; `null` when nothing was refused. */
  problem = $state<string | null>(null);

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

  /** Opens the system's photo dialog and adds what was chosen; files it refused are reported with the others. */
  async pick(): Promise<void> {
    const refused: Refusal[] = [];
    try {
      const picked = await this.#client.images.pick();
      this.#add(picked.images, refused);
      for (const r of picked.refused) refused.push(refusalOf(r.name, r.error.code, r.error.message, r.error.details));
      this.#report(refused, picked.images.length + picked.refused.length > 0);
    } catch (err) {
      this.problem = describeError(err);
    }
  }

  /** Adds photos already stored (from the photos screen, or an edited message's own). */
  addStored(images: StoredImage[]): void {
    const refused: Refusal[] = [];
    this.#add(images, refused);
    this.#report(refused, images.length > 0);
  }

  /** Stores dropped or pasted files and adds them; refuses what is not a photo, empty or too large. */
  async addFiles(files: Iterable<FileLike>, source: 'drop' | 'paste' = 'drop'): Promise<void> {
    const refused: Refusal[] = [];
    const jobs: Promise<void>[] = [];
    let any = false;
    for (const file of files) {
      any = true;
      const name = source === 'paste' ? null : cleanName(file.name);
      const shown = name ?? 'The pasted photo';
      if (!looksLikeImage(file)) refused.push({ name: file.name || 'The pasted item', reason: 'not-a-photo' });
      else if (file.size > this.#maxBytes) refused.push({ name: shown, reason: 'too-large', detail: sizes(file.size, this.#maxBytes) });
      else if (file.size === 0) refused.push({ name: shown, reason: 'empty' });
      else if (!this.#hasRoom(shown, refused)) continue;
      else {
        const item: PendingPhoto = { key: this.#nextKey++, label: name ?? 'Pasted photo', image: null };
        this.items.push(item);
        jobs.push(this.#store(item.key, file, name, refused));
      }
    }
    await Promise.all(jobs);
    this.#report(refused, any);
  }

  /** Removes a photo from the tray. */
  remove(key: number): void {
    this.items = this.items.filter((p) => p.key !== key);
  }

  /** Empties the tray and forgets the problem (after a send). */
  clear(): void {
    this.items = [];
    this.problem = null;
  }

  /** Hides the message about refused files. */
  dismissProblem(): void {
    this.problem = null;
  }

  #add(images: StoredImage[], refused: Refusal[]): void {
    for (const image of images) {
      if (!this.#hasRoom(image.name ?? 'The pasted photo', refused)) continue;
      this.items.push({ key: this.#nextKey++, label: image.name ?? 'Pasted photo', image });
    }
  }

  async #store(key: number, file: FileLike, name: string | null, refused: Refusal[]): Promise<void> {
    try {
      const bytes = new Uint8Array(await file.arrayBuffer());
      const image = await this.#client.images.import({ name, bytes });
      const i = this.items.findIndex((p) => p.key === key);
      if (i >= 0) this.items[i] = { ...this.items[i]!, image };
    } catch (err) {
      this.remove(key);
      const shown = name ?? 'The pasted photo';
      refused.push(err instanceof OwleryError ? refusalOf(shown, errorCode(err), err.message, err.details) : { name: shown, reason: 'failed', detail: describeError(err) });
    }
  }

  #hasRoom(name: string, refused: Refusal[]): boolean {
    if (this.items.length < this.#maxCount) return true;
    refused.push({ name, reason: 'too-many' });
    return false;
  }

  /** One message for one action's refusals; an action that refused nothing clears the last one. */
  #report(refused: Refusal[], acted: boolean): void {
    if (refused.length > 0) this.problem = describeRefusals(refused, this.#maxCount);
    else if (acted) this.problem = null;
  }
}
