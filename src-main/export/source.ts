/**
 * What an export reads: conversations (the branch on screen, or the whole message tree) and the
 * bytes of the photos they use, from the store and the image store.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Conversation, ConversationId, Message, ThreadMessage } from '../../src-shared/domain.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { MAX_PAGE_SIZE } from '../../src-shared/limits.ts';
import type { ImageStore } from '../store/images.ts';
import type { ImageRecord, Store } from '../store/store.ts';

/** What exporters and the importer work with. */
export interface ExportContext {
  store: Store;
  images: ImageStore;
  /** Clock in ms (default `Date.now`), for the export date. */
  now?: () => number;
  /** The app's version, recorded in JSON exports (default `0.0.0`). */
  appVersion?: string;
}

/** Which conversations to export: ids, or `all` (every conversation not in the trash). */
export type ConversationSelection = readonly ConversationId[] | 'all';

/** A conversation with the branch on screen. */
export interface ThreadExport {
  conversation: Conversation;
  messages: ThreadMessage[];
  /** Whether some message on the branch has siblings (other branches exist). */
  hasOtherBranches: boolean;
}

/** A photo's record and bytes. */
export interface ImageData {
  record: ImageRecord;
  bytes: Uint8Array;
}

/** The ids selected, in listing order for `all`; checks that given ids exist (`NOT_FOUND`). */
export function selectedIds(store: Store, selection: ConversationSelection): ConversationId[] {
  if (selection !== 'all') {
    if (!Array.isArray(selection)) throw new OwleryError('INVALID_ARGUMENT', 'Choose the conversations to export.');
    const ids = [...new Set(selection)];
    for (const id of ids) store.getConversation(id);
    return ids;
  }
  const ids: ConversationId[] = [];
  let cursor: string | null = null;
  do {
    const page = store.listConversations({ limit: MAX_PAGE_SIZE, cursor });
    ids.push(...page.items.map((c) => c.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

/** The branch on screen of each conversation. */
export function loadThreads(store: Store, ids: readonly ConversationId[]): ThreadExport[] {
  return ids.map((id) => {
    const thread = store.getThread(id);
    return { conversation: thread.conversation, messages: thread.messages, hasOtherBranches: thread.messages.some((m) => m.siblingIds.length > 1) };
  });
}

/**
 * Every message of a conversation's tree, parents before children (ascending id within each
 * level, then flattened in id order).
 *
 * Walks the tree with the store's thread and branch queries (the store has no "all messages of a
 * conversation" query yet), one thread query per message that has children.
 */
export function loadTree(store: Store, id: ConversationId): Message[] {
  const first = store.getThread(id).messages[0];
  if (!first) return [];
  const out: Message[] = [];
  let level: Message[] = store.branches(first.id);
  while (level.length > 0) {
    out.push(...level);
    const next: Message[] = [];
    for (const m of level) {
      const thread = store.getThread(id, m.id).messages;
      const at = thread.findIndex((t) => t.id === m.id);
      const newestChild = thread[at + 1];
      if (newestChild) next.push(...store.branches(newestChild.id));
    }
    level = next;
  }
  return out.sort((a, b) => a.id - b.id);
}

/** The distinct photos of some messages, in first-use order. */
export function imagesOf(messages: readonly { images: readonly { sha256: string }[] }[]): string[] {
  const seen = new Set<string>();
  for (const m of messages) for (const img of m.images) seen.add(img.sha256);
  return [...seen];
}

/**
 * Reads the photos' records and bytes, checking each file against its hash. A missing or damaged
 * file is `FILE_NOT_FOUND` / `IMAGE_UNREADABLE` naming the photo.
 */
export async function loadImages(ctx: ExportContext, hashes: readonly string[]): Promise<Map<string, ImageData>> {
  const out = new Map<string, ImageData>();
  for (const sha256 of hashes) {
    const record = ctx.store.getImage(sha256);
    if (!record) throw new OwleryError('FILE_NOT_FOUND', `Photo ${sha256.slice(0, 12)}… is not in the image store.`, { sha256 });
    let bytes: Uint8Array;
    try {
      bytes = await readFile(ctx.images.pathOf(record));
    } catch (err) {
      throw new OwleryError('FILE_NOT_FOUND', `The file of photo ${sha256.slice(0, 12)}… is missing from the image folder.`, {
        sha256,
        cause: (err as NodeJS.ErrnoException).code,
      });
    }
    if (createHash('sha256').update(bytes).digest('hex') !== sha256) {
      throw new OwleryError('IMAGE_UNREADABLE', `The file of photo ${sha256.slice(0, 12)}… is damaged (its contents changed).`, { sha256 });
    }
    out.set(sha256, { record, bytes });
  }
  return out;
}
