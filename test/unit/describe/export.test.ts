/**
 * A folder's descriptions as CSV (RFC 4180, spreadsheet-safe) and JSON.
 */
import { describe, expect, it } from 'vitest';
import type { DescribedPhoto } from '../../../src-shared/describe.ts';
import { descriptionsToCsv, descriptionsToJson } from '../../../src-main/describe/export.ts';

const photo = (path: string, caption: string, keywords: string[]): DescribedPhoto => ({
  path,
  sha256: 'f'.repeat(64),
  caption,
  keywords,
  provenance: {
    packageId: 'owl2-7b-cpu',
    modelSha256: 'a'.repeat(64),
    promptVersion: 'describe-v1',
    settings: { greedy: true, captionMaxTokens: 96, keywordsMaxTokens: 80, aspectMode: 'resize', provider: 'cpu' },
    describedAt: Date.UTC(2025, 4, 6, 7, 8, 9),
    ms: 8123.4,
  },
});

/** A minimal RFC 4180 reader, to read the CSV back. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(field);
      field = '';
    } else if (c === '\r' && text[i + 1] === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i++;
    } else field += c;
  }
  return rows;
}

describe('descriptions export', () => {
  it('writes CSV that reads back field for field, with a BOM, CRLF lines and formulas defused', () => {
    const csv = descriptionsToCsv([
      photo('/photos/a, "b".jpg', 'A dog says "hi",\nthen sleeps.', ['dog', 'sofa']),
      photo('/photos/c.jpg', '=HYPERLINK("http://x")', ['-sea', '@home']),
    ]);
    expect(csv.startsWith('\ufeffpath,caption,keywords,')).toBe(true);
    const rows = parseCsv(csv.slice(1));
    expect(rows[0]).toEqual(['path', 'caption', 'keywords', 'sha256', 'model_package', 'model_sha256', 'prompt_version', 'settings', 'described_at', 'ms']);
    expect(rows[1].slice(0, 3)).toEqual(['/photos/a, "b".jpg', 'A dog says "hi",\nthen sleeps.', 'dog; sofa']);
    expect(rows[1].slice(6)).toEqual(['describe-v1', '{"greedy":true,"captionMaxTokens":96,"keywordsMaxTokens":80,"aspectMode":"resize","provider":"cpu"}', '2025-05-06T07:08:09.000Z', '8123']);
    expect(rows[2].slice(1, 3)).toEqual(["'=HYPERLINK(\"http://x\")", "'-sea; @home"]);
    expect(rows).toHaveLength(3);
  });

  it('writes JSON with the folder, the time and every photo with its provenance', () => {
    const json = JSON.parse(descriptionsToJson('/photos', [photo('/photos/c.jpg', 'A cat.', ['cat'])], Date.UTC(2025, 0, 1)));
    expect(json).toEqual({
      format: 'owlery-photo-descriptions',
      version: 1,
      folder: '/photos',
      exportedAt: '2025-01-01T00:00:00.000Z',
      photos: [{ path: '/photos/c.jpg', caption: 'A cat.', keywords: ['cat'], sha256: 'f'.repeat(64), provenance: photo('', '', []).provenance }],
    });
  });
});
