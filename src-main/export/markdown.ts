/**
 * Markdown export: one `.md` file with the branch on screen of each conversation, and the photos
 * copied next to it into an `assets/` folder, linked with relative paths.
 *
 * An answer is written as the model's Markdown, as it is, changed only where it would break the
 * file's structure (`answerToMarkdown`: headings moved below the export's own, raw HTML escaped, an
 * unclosed code fence closed). Every other stored text (your messages, titles, photo names) is
 * escaped so that it renders literally (`textToMarkdown`): it cannot inject HTML, links, images or
 * formatting. Photos are named by their content hash, so exporting again into the same folder
 * reuses them.
 */
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { OwleryError } from '../../src-shared/errors.ts';
import { displayTitle, formatTime, instructionsNote, OTHER_BRANCHES_NOTE, roleLabel, statsLine, statusNote } from './format.ts';
import { isFileOfSize, writeError, writeFileAtomic } from './files.ts';
import { noteBadDates, photoUses, readablePhotos, readableThreads, SkipLog } from './skipped.ts';
import { selectedIds } from './source.ts';
import type { ConversationSelection, ExportContext, ThreadExport } from './source.ts';
import { answerToMarkdown } from './answer-markdown.ts';
import { lineToMarkdown, textToMarkdown } from './text.ts';

/** The folder, next to the Markdown file, that holds the photos. */
export const ASSETS_DIR = 'assets';

/** Options of {@link exportMarkdown}. */
export interface MarkdownExportOptions {
  conversations: ConversationSelection;
  /** The `.md` file to write; photos go to `assets/` in its folder. */
  dest: string;
}

/** What an export wrote. */
export interface ExportSummary {
  /** The main file. */
  path: string;
  conversations: number;
  /** Photo files written (Markdown only; photos already there are not counted). */
  assetsWritten: number;
  /** What was left out (a conversation that cannot be read, a missing photo, a date that cannot be shown), in words. */
  skipped: string[];
}

/** The relative link of a photo: `assets/<sha256>.<ext>`. */
export function assetPath(image: { sha256: string; ext: string }): string {
  if (!/^[0-9a-f]{64}$/.test(image.sha256) || !/^[a-z0-9]{1,8}$/.test(image.ext)) {
    throw new OwleryError('INVALID_ARGUMENT', `Not a stored image: ${image.sha256}.${image.ext}`);
  }
  return `${ASSETS_DIR}/${image.sha256}.${image.ext}`;
}

/**
 * Renders conversations as Markdown. `extOf` gives each photo's file extension (for its link), or
 * `undefined` for a photo left out of the export (a line says so in its place).
 */
export function renderMarkdown(threads: readonly ThreadExport[], extOf: (sha256: string) => string | undefined, exportedAt: number): string {
  const out: string[] = [];
  threads.forEach((t, i) => {
    if (i > 0) out.push('---', '');
    out.push(`# ${lineToMarkdown(displayTitle(t.conversation.title))}`, '');
    const count = `${t.messages.length} message${t.messages.length === 1 ? '' : 's'}`;
    out.push(`_${lineToMarkdown(`Started ${formatTime(t.conversation.createdAt)} · ${count} · exported from Owlery ${formatTime(exportedAt)}`)}_`, '');
    const instructions = instructionsNote(t.conversation);
    if (instructions !== null) out.push('**Instructions for this chat:**', '', textToMarkdown(instructions), '');
    if (t.hasOtherBranches) out.push(`> ${lineToMarkdown(OTHER_BRANCHES_NOTE)}`, '');
    for (const m of t.messages) {
      out.push(`## ${lineToMarkdown(roleLabel(m.role))}`, '');
      const meta = [formatTime(m.createdAt), statusNote(m), m.role === 'assistant' ? statsLine(m) : null].filter((s): s is string => !!s);
      out.push(`_${lineToMarkdown(meta.join(' · '))}_`, '');
      if (m.text.length > 0) out.push(m.role === 'assistant' ? answerToMarkdown(m.text) : textToMarkdown(m.text), '');
      m.images.forEach((img, k) => {
        const alt = img.name ?? `Photo ${k + 1}`;
        const ext = extOf(img.sha256);
        out.push(ext === undefined ? `_${lineToMarkdown(`(${alt}: this photo could not be exported)`)}_` : `![${lineToMarkdown(alt)}](${assetPath({ sha256: img.sha256, ext })})`, '');
      });
    }
  });
  return `${out.join('\n').trimEnd()}\n`;
}

/**
 * Exports conversations to a Markdown file with its `assets/` folder (see the module comment);
 * what cannot be read or shown is left out and listed in `skipped` (`skipped.ts`).
 * Photos are written first, then the `.md` file, each atomically; if anything fails, the photos
 * this export added are removed again, so nothing half-done is left (`DISK_FULL`, `EXPORT_FAILED`).
 */
export async function exportMarkdown(ctx: ExportContext, opts: MarkdownExportOptions): Promise<ExportSummary> {
  const log = new SkipLog();
  const threads = readableThreads(ctx.store, selectedIds(ctx.store, opts.conversations), log);
  for (const t of threads) noteBadDates(t.conversation, t.messages, log);
  const images = await readablePhotos(ctx, photoUses(threads), log);
  const markdown = renderMarkdown(threads, (sha) => images.get(sha)?.record.ext, (ctx.now ?? Date.now)());
  const folder = dirname(opts.dest);
  const added: string[] = [];
  try {
    if (images.size > 0) {
      const assets = join(folder, ASSETS_DIR);
      try {
        await mkdir(assets, { recursive: true });
      } catch (err) {
        throw writeError(err, assets);
      }
      for (const { record, bytes } of images.values()) {
        const file = join(folder, assetPath(record));
        if (await isFileOfSize(file, bytes.length)) continue; // named by hash: same size, same photo
        await writeFileAtomic(file, bytes);
        added.push(file);
      }
    }
    await writeFileAtomic(opts.dest, markdown);
  } catch (err) {
    for (const file of added) await rm(file, { force: true }).catch(() => {});
    throw err;
  }
  return { path: opts.dest, conversations: threads.length, assetsWritten: added.length, skipped: log.list };
}
