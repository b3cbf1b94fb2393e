/**
 * Exports never fail as a whole because of one bad value: a conversation that cannot be read (a
 * damaged database page), a photo whose file is missing or changed, a date that cannot be shown
 * (written before imports checked dates) is left out, the rest is written, and the export says
 * what it left out ({@link SkipLog}, `ExportSummary.skipped`), one line per conversation and kind.
 */
import type { ConversationId, Message, ThreadMessage } from '../../src-shared/domain.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import type { Store } from '../store/store.ts';
import { displayTitle, isShowableTime } from './format.ts';
import { loadImage } from './source.ts';
import type { ExportContext, ImageData, ThreadExport } from './source.ts';

/** What an export left out, in words. */
export class SkipLog {
  private readonly notes = new Set<string>();

  add(note: string): void {
    this.notes.add(note);
  }

  /** The notes, in the order they were added. */
  get list(): string[] {
    return [...this.notes];
  }
}

/** `“Title”` (or `conversation 12` when the title could not be read). */
export function conversationName(c: { id: ConversationId; title?: string | null }): string {
  return typeof c.title === 'string' ? `“${displayTitle(c.title)}”` : `conversation ${c.id}`;
}

function reason(err: unknown): string {
  return err instanceof OwleryError ? err.message : String(err);
}

/**
 * Runs `read` for each id; a conversation it cannot read (`OwleryError`: a damaged page, a
 * conversation gone meanwhile) is left out and noted. Other errors are bugs and are thrown.
 */
export function readEach<T>(ids: readonly ConversationId[], store: Store, read: (id: ConversationId) => T, log: SkipLog): T[] {
  const out: T[] = [];
  for (const id of ids) {
    try {
      out.push(read(id));
    } catch (err) {
      if (!(err instanceof OwleryError)) throw err;
      let title: string | null = null;
      try {
        title = store.getConversation(id).title;
      } catch {
        // unreadable too
      }
      log.add(`${conversationName({ id, title })} could not be read and was left out (${reason(err)})`);
    }
  }
  return out;
}

/** The branch on screen of each conversation that can be read (see {@link readEach}). */
export function readableThreads(store: Store, ids: readonly ConversationId[], log: SkipLog): ThreadExport[] {
  return readEach(ids, store, (id) => {
    const thread = store.getThread(id);
    return { conversation: thread.conversation, messages: thread.messages, hasOtherBranches: thread.messages.some((m) => m.siblingIds.length > 1) };
  }, log);
}

/** Notes the dates of a conversation that cannot be shown (`how`: what the export did with them). */
export function noteBadDates(conversation: { id: ConversationId; title: string; createdAt: number; updatedAt: number; deletedAt?: number | null },
  messages: readonly Pick<Message | ThreadMessage, 'createdAt' | 'updatedAt'>[], log: SkipLog, how = 'left out'): void {
  const bad = [conversation.createdAt, conversation.updatedAt, conversation.deletedAt ?? 0, ...messages.flatMap((m) => [m.createdAt, m.updatedAt])]
    .filter((ms) => !isShowableTime(ms));
  if (bad.length === 0) return;
  const n = bad.length === 1 ? `a date that cannot be shown (${bad[0]}) was` : `${bad.length} dates that cannot be shown (such as ${bad[0]}) were`;
  log.add(`${conversationName(conversation)}: ${n} ${how}`);
}

/** One use of a photo: its hash, its name in the message, and the conversation. */
export interface PhotoUse {
  sha256: string;
  name: string | null;
  conversation: { id: ConversationId; title: string };
}

/** The photos that can be read, by hash; a missing or changed one is noted (by name) and left out. */
export async function readablePhotos(ctx: ExportContext, uses: readonly PhotoUse[], log: SkipLog): Promise<Map<string, ImageData>> {
  const out = new Map<string, ImageData>();
  const failed = new Map<string, string>();
  for (const use of uses) {
    if (!out.has(use.sha256) && !failed.has(use.sha256)) {
      try {
        out.set(use.sha256, await loadImage(ctx, use.sha256));
      } catch (err) {
        if (!(err instanceof OwleryError)) throw err;
        failed.set(use.sha256, reason(err));
      }
    }
    const why = failed.get(use.sha256);
    if (why !== undefined) log.add(`${conversationName(use.conversation)}: photo ${use.name ?? use.sha256.slice(0, 12)} was left out (${why})`);
  }
  return out;
}

/** Every photo use of some threads (or message trees), in order. */
export function photoUses(conversations: readonly { conversation: { id: ConversationId; title: string }; messages: readonly { images: readonly { sha256: string; name: string | null }[] }[] }[]): PhotoUse[] {
  return conversations.flatMap((t) => t.messages.flatMap((m) => m.images.map((img) => ({ sha256: img.sha256, name: img.name, conversation: t.conversation }))));
}
