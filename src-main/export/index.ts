/**
 * Exporting conversations (Markdown with an `assets/` folder, one self-contained HTML file, PDF
 * printed from that HTML, versioned JSON) and importing JSON exports.
 *
 * Runs in plain Node; only PDF needs the app, which passes `webContents.printToPDF` as `printToPdf`.
 * Every file is written through a temporary file and a rename: a full disk gives `DISK_FULL` and
 * leaves nothing half-written.
 * @see docs/export-format.md
 */
import type { ExportFormat, ImportResult } from '../../src-shared/chat.ts';
import type { ConversationId } from '../../src-shared/domain.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { exportHtml, exportPdf } from './html.ts';
import type { PrintToPdf } from './html.ts';
import { exportJson, importJson } from './json.ts';
import type { ImportOptions } from './json.ts';
import { exportMarkdown } from './markdown.ts';
import type { ExportSummary } from './markdown.ts';
import type { ConversationSelection, ExportContext } from './source.ts';

export { contentSecurityPolicy, embedImages, exportHtml, exportPdf, renderConversationHtml, renderHtml } from './html.ts';
export type { EmbeddedImage, HtmlExportOptions, PdfExportOptions, PrintToPdf, RenderOptions } from './html.ts';
export { buildExportFile, contentKey, exportJson, importJson, importKey, parseExportFile } from './json.ts';
export type { ImportOptions, JsonExportOptions } from './json.ts';
export { ASSETS_DIR, assetPath, exportMarkdown, renderMarkdown } from './markdown.ts';
export type { ExportSummary, MarkdownExportOptions } from './markdown.ts';
export type { ConversationSelection, ExportContext, ImageData, ThreadExport } from './source.ts';
export { writeFileAtomic } from './files.ts';

/** The file extension each format is saved with. */
export const EXPORT_EXTENSIONS: Record<ExportFormat, string> = { markdown: 'md', html: 'html', pdf: 'pdf', json: 'json' };

/** Options of {@link exportConversations}. */
export interface ExportOptions {
  format: ExportFormat;
  conversations: ConversationSelection;
  /** The file to write (for Markdown, photos go to `assets/` next to it). */
  dest: string;
  /** Required for PDF: prints the page (the app passes `webContents.printToPDF`). */
  printToPdf?: PrintToPdf;
}

/** Exports conversations in any format (see the module comment). */
export async function exportConversations(ctx: ExportContext, opts: ExportOptions): Promise<ExportSummary> {
  const base = { conversations: opts.conversations, dest: opts.dest };
  switch (opts.format) {
    case 'markdown':
      return exportMarkdown(ctx, base);
    case 'html':
      return exportHtml(ctx, base);
    case 'json':
      return exportJson(ctx, base);
    case 'pdf':
      if (!opts.printToPdf) throw new OwleryError('EXPORT_FAILED', 'PDF export needs the app (it prints the page with the browser engine).');
      return exportPdf(ctx, { ...base, printToPdf: opts.printToPdf });
    default:
      throw new OwleryError('INVALID_ARGUMENT', `Unknown export format ${JSON.stringify(opts.format)}.`);
  }
}

/**
 * A file name for an export: the conversation's title made safe for every OS (or
 * `owlery-conversations` for several), with the format's extension.
 */
export function suggestedFileName(title: string | null, format: ExportFormat): string {
  const safe = (title ?? '')
    .normalize('NFC')
    .replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, '')
    .replace(/[<>:"/\\|?*]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/^[.\s]+|[.\s]+$/g, '')
    .slice(0, 80)
    .trim();
  const reserved = /^(con|prn|aux|nul|com\d|lpt\d)$/i.test(safe);
  return `${safe === '' || reserved ? 'owlery-conversations' : safe}.${EXPORT_EXTENSIONS[format]}`;
}

/** Writes exports and reads imports: what the IPC handlers call (implemented by {@link exportBackend}). */
export interface ExportBackend {
  /** Writes conversations (`'all'`: every one not in the trash) to `path`; returns how many, and what was left out. */
  exportTo(path: string, format: ExportFormat, which: ConversationId | 'all'): Promise<{ conversations: number; skipped?: string[] }>;
  /** Imports an exported JSON file (conversations already here are left out unless `duplicates: 'copy'`). */
  importFrom(path: string, opts?: ImportOptions): Promise<ImportResult>;
}

/** The exporter over this module, for a store and its images. */
export function exportBackend(ctx: ExportContext, printToPdf?: PrintToPdf): ExportBackend {
  return {
    async exportTo(path, format, which) {
      const summary = await exportConversations(ctx, { format, conversations: which === 'all' ? 'all' : [which], dest: path, printToPdf });
      return { conversations: summary.conversations, skipped: summary.skipped };
    },
    importFrom: (path, opts) => importJson(ctx, path, opts),
  };
}
