/**
 * A folder's descriptions as CSV or JSON: path, caption, keywords and provenance per photo.
 *
 * CSV follows RFC 4180 (comma, CRLF, every field quoted when needed, quotes doubled) with a UTF-8
 * byte-order mark so spreadsheet apps read accents right; keywords are joined with "; ". A field
 * that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a
 * leading apostrophe. JSON is one object (`format`, `version`, the folder, the time, `photos`).
 */
import { randomBytes } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { DescribedPhoto } from '../../src-shared/describe.ts';
import { OwleryError } from '../../src-shared/errors.ts';

/** The export formats. */
export type DescriptionExportFormat = 'csv' | 'json';

/** `format` of the JSON export. */
export const JSON_EXPORT_FORMAT = 'owlery-photo-descriptions';
export const JSON_EXPORT_VERSION = 1;

const CSV_COLUMNS = ['path', 'caption', 'keywords', 'sha256', 'model_package', 'model_sha256', 'prompt_version', 'settings', 'described_at', 'ms'] as const;

/** One CSV field, quoted when needed, defused when a spreadsheet would run it. */
function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** The descriptions as CSV text. */
export function descriptionsToCsv(photos: readonly DescribedPhoto[]): string {
  const lines = [CSV_COLUMNS.join(',')];
  for (const p of photos) {
    const v = p.provenance;
    lines.push([
      p.path, p.caption, p.keywords.join('; '), p.sha256, v.packageId, v.modelSha256, v.promptVersion,
      JSON.stringify(v.settings), new Date(v.describedAt).toISOString(), String(Math.round(v.ms)),
    ].map(csvField).join(','));
  }
  return `\ufeff${lines.join('\r\n')}\r\n`;
}

/** The descriptions as JSON text. */
export function descriptionsToJson(folder: string, photos: readonly DescribedPhoto[], exportedAt: number): string {
  return `${JSON.stringify({
    format: JSON_EXPORT_FORMAT,
    version: JSON_EXPORT_VERSION,
    folder,
    exportedAt: new Date(exportedAt).toISOString(),
    photos: photos.map((p) => ({ path: p.path, caption: p.caption, keywords: p.keywords, sha256: p.sha256, provenance: p.provenance })),
  }, null, 2)}\n`;
}

/** Writes an export file atomically (temporary file, then rename), naming the file on failure. */
export async function writeExportFile(file: string, text: string): Promise<void> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new OwleryError('DISK_FULL', `The disk is full: ${basename(file)} was not written.`, { path: file });
    throw new OwleryError('EXPORT_FAILED', `${basename(file)} could not be written (${code ?? (err as Error).message}).`, { path: file });
  }
}
