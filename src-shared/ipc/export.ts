/**
 * The `export:` domain: conversations out to Markdown, HTML, PDF or JSON, and JSON exports back
 * in. Main shows the save or open dialog; the renderer learns the file's name only.
 */
import { EXPORT_FORMATS } from '../chat.ts';
import type { ImportResult } from '../chat.ts';
import { v } from '../validate.ts';
import { defineDomain, invoke } from './define.ts';
import { opaqueId, rowId } from './fields.ts';

/** Where an export went. */
export interface ExportResult {
  /** False when the user cancelled the save dialog. */
  saved: boolean;
  /** The file's name (no folders). */
  fileName: string | null;
  conversations: number;
  /** What the export left out (a conversation that cannot be read, a missing photo, a date that cannot be shown), in words. */
  skipped?: string[];
}

/** What `export.import` did: nothing when the user cancelled the open dialog. */
export interface ImportOutcome {
  imported: boolean;
  result: ImportResult | null;
  /**
   * When conversations were left out as already here (`result.duplicates`): pass it to
   * `export.importCopies` to import copies of them from the same file (valid while the app runs).
   */
  copiesToken: string | null;
}

const format = v.enum(EXPORT_FORMATS);

/** `window.owlery.export`. */
export const exportApi = defineDomain({
  /** Exports one conversation (save dialog in main). */
  conversation: invoke(v.object({ id: rowId, format })).returns<ExportResult>(),
  /** Exports every conversation not in the trash (save dialog in main). */
  all: invoke(v.object({ format })).returns<ExportResult>(),
  /** Imports an exported JSON file (open dialog in main); conversations already here are left out. */
  import: invoke(v.none()).returns<ImportOutcome>(),
  /** Imports copies of conversations an import left out as already here (by their id in the file). */
  importCopies: invoke(v.object({ token: opaqueId, sourceIds: v.array(rowId, { min: 1, max: 100_000 }) })).returns<ImportOutcome>(),
});
