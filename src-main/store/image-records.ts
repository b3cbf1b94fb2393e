/**
 * The records of stored images (the files themselves are `images.ts`'s), the photos attached to
 * messages, and {@link toStoredImage}: a record as the renderer sees it. The record methods run
 * inside the {@link Store} facade's error guard (see `context.ts`).
 */
import type { MessageId, MessageImage } from '../../src-shared/domain.ts';
import { imageUrl, thumbnailUrl } from '../../src-shared/ipc/index.ts';
import type { StoredImage } from '../../src-shared/ipc/index.ts';
import { requireChange } from './context.ts';
import type { StoreContext } from './context.ts';
import { toImageRecord } from './rows.ts';
import type { ImageRecord, ImageRow } from './rows.ts';

/** The images table and the links from messages to it. */
export class ImageRecords {
  constructor(private readonly ctx: StoreContext) {}

  /** Records a stored image (idempotent: an existing record keeps its data, gaining a thumbnail if it had none). */
  put(record: Omit<ImageRecord, 'createdAt' | 'displayWidth' | 'displayHeight'>): ImageRecord {
    this.ctx.stmt('insertImage').run({
      sha256: record.sha256,
      ext: record.ext,
      mime: record.mime,
      byteSize: record.byteSize,
      width: record.width,
      height: record.height,
      orientation: record.orientation,
      now: this.ctx.now(),
      thumbMime: record.thumbnail?.mime ?? null,
      thumbWidth: record.thumbnail?.width ?? null,
      thumbHeight: record.thumbnail?.height ?? null,
    });
    return this.get(record.sha256)!;
  }

  /** The record of a stored image, or `undefined`. */
  get(sha256: string): ImageRecord | undefined {
    const row = this.ctx.stmt('getImage').get(sha256) as ImageRow | undefined;
    return row ? toImageRecord(row) : undefined;
  }

  /** Records the thumbnail made for an image. */
  setThumbnail(sha256: string, thumb: { mime: string; width: number; height: number }): void {
    requireChange(this.ctx.stmt('setThumbnail').run({ sha256, ...thumb }), 'image', sha256);
  }

  /** Up to `limit` images that have no thumbnail yet (stored before schema v3). */
  withoutThumbnail(limit = 100): ImageRecord[] {
    return (this.ctx.stmt('imagesWithoutThumbnail').all(limit) as ImageRow[]).map(toImageRecord);
  }

  /** Images no message uses, stored at or before `before` (ms). */
  orphans(before: number): ImageRecord[] {
    return (this.ctx.stmt('orphanImages').all(before) as ImageRow[]).map(toImageRecord);
  }

  /** Deletes an image record if no message uses it; returns whether it was deleted. */
  delete(sha256: string): boolean {
    return this.ctx.stmt('deleteImage').run(sha256).changes > 0;
  }

  /** Attaches a stored image to a message at `position`; `name` is already cleaned. */
  link(messageId: MessageId, position: number, sha256: string, name: string | null): void {
    this.ctx.stmt('linkImage').run({ messageId, position, sha256, name });
  }

  /** The photos of each of `ids`, in attachment order (messages without photos are absent). */
  ofMessages(ids: MessageId[]): Map<MessageId, MessageImage[]> {
    const out = new Map<MessageId, MessageImage[]>();
    if (ids.length === 0) return out;
    const rows = this.ctx.stmt('imagesOfMessages').all(JSON.stringify(ids)) as (ImageRow & { message_id: number; name: string | null })[];
    for (const row of rows) {
      const { createdAt: _c, ext: _e, ...ref } = toImageRecord(row);
      const list = out.get(row.message_id) ?? [];
      list.push({ ...ref, name: row.name });
      out.set(row.message_id, list);
    }
    return out;
  }
}

/** A stored image as the renderer sees it: its record, the name shown, and `owlery-image:` URLs under `imageBase`. */
export function toStoredImage(record: ImageRecord, name: string | null, imageBase: string): StoredImage {
  return {
    sha256: record.sha256,
    mime: record.mime,
    byteSize: record.byteSize,
    width: record.width,
    height: record.height,
    orientation: record.orientation,
    displayWidth: record.displayWidth,
    displayHeight: record.displayHeight,
    thumbnail: record.thumbnail,
    name,
    url: imageUrl(record.sha256, imageBase),
    thumbnailUrl: thumbnailUrl(record.sha256, imageBase),
  };
}
