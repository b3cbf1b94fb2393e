/**
 * Merging captions and keywords into XMP sidecars (the pure part, read back with the same XML
 * parser; test/integration/describe.test.ts reads real sidecars with exiftool): other fields,
 * namespaces and comments stay, somebody's keywords and caption stay, Owlery's own keywords are
 * replaced on the next run, odd but valid layouts are handled, and non-XMP is refused untouched.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeSidecar, sidecarPath, writeSidecar } from '../../../src-main/describe/xmp.ts';
import type { SidecarContent } from '../../../src-main/describe/xmp.ts';

const content = (over: Partial<SidecarContent> = {}): SidecarContent => ({
  caption: 'A dog & a cat on a <red> sofa.',
  keywords: ['dog', 'cat', 'sofa'],
  packageId: 'owl2-test',
  promptVersion: 'describe-v1',
  describedAt: Date.UTC(2025, 0, 2, 3, 4, 5),
  ...over,
});

/** dc:description x-default, dc:subject items, and a few other fields, from the XML (namespace prefixes as written). */
function read(xml: string): { description: string | undefined; subjects: string[]; rating: string | undefined; comment: boolean } {
  const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'rdf:li' || name === 'rdf:Description' }).parse(xml);
  const descs = (doc['x:xmpmeta']?.['rdf:RDF'] ?? doc['rdf:RDF'])['rdf:Description'] as Record<string, unknown>[];
  let description: string | undefined;
  let subjects: string[] = [];
  let rating: string | undefined;
  for (const d of descs) {
    const alt = (d['dc:description'] as { 'rdf:Alt'?: { 'rdf:li': ({ '#text': string; '@_xml:lang': string } | string)[] } } | undefined)?.['rdf:Alt'];
    const li = alt?.['rdf:li'].find((l) => typeof l === 'object' && l['@_xml:lang'] === 'x-default');
    if (li && typeof li === 'object') description = li['#text'];
    const bag = (d['dc:subject'] as { 'rdf:Bag'?: { 'rdf:li': (string | number)[] } } | undefined)?.['rdf:Bag'];
    if (bag) subjects = bag['rdf:li'].map(String);
    rating ??= d['@_xmp:Rating'] as string | undefined;
  }
  return { description, subjects, rating, comment: xml.includes('<!-- keep me -->') };
}

const DIGIKAM = `<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="3">
   <!-- keep me -->
   <dc:subject><rdf:Bag><rdf:li>Family</rdf:li><rdf:li>Dog</rdf:li></rdf:Bag></dc:subject>
   <dc:description><rdf:Alt><rdf:li xml:lang="de-DE">Ein Hund</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>`;

const EMPTY = '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>';

describe('mergeSidecar', () => {
  it('keeps every other field, comment and language; adds the caption as x-default and the new keywords', () => {
    const { xml, keptDescription } = mergeSidecar(DIGIKAM, content());
    expect(keptDescription).toBe(false);
    const r = read(xml);
    expect(r).toEqual({ description: 'A dog & a cat on a <red> sofa.', subjects: ['Family', 'Dog', 'cat', 'sofa'], rating: '3', comment: true });
    expect(xml).toContain('<rdf:li xml:lang="de-DE">Ein Hund</rdf:li>');
    expect(xml).toContain('<owlery:Model>owl2-test</owlery:Model>');
    expect(xml).toContain('<owlery:DescribedAt>2025-01-02T03:04:05.000Z</owlery:DescribedAt>');
  });

  it('replaces its own keywords and caption on the next run, never somebody else\'s', () => {
    const once = mergeSidecar(DIGIKAM, content()).xml;
    const twice = mergeSidecar(once, content({ caption: 'A sleeping dog.', keywords: ['dog', 'sleeping', 'blanket'] }));
    expect(read(twice.xml)).toMatchObject({ description: 'A sleeping dog.', subjects: ['Family', 'Dog', 'sleeping', 'blanket'] });
    expect(twice.xml.match(/<owlery:Caption>/g)).toHaveLength(1);
    // Somebody edits the caption in their photo app: the next run keeps it.
    const edited = twice.xml.replace('>A sleeping dog.</rdf:li>', '>Rex asleep on the blue blanket</rdf:li>');
    const third = mergeSidecar(edited, content({ caption: 'A dog on a blanket.' }));
    expect(third.keptDescription).toBe(true);
    expect(read(third.xml).description).toBe('Rex asleep on the blue blanket');
  });

  it('writes no empty keyword bag, and takes its own keywords out again when a new run has none', () => {
    const empty = mergeSidecar(EMPTY, content({ keywords: [] })).xml;
    expect(empty).not.toContain('subject');
    expect(empty).not.toContain('Bag');
    const once = mergeSidecar(EMPTY, content()).xml;
    const again = mergeSidecar(once, content({ keywords: [] })).xml;
    expect(again).not.toContain('subject');
    expect(read(again).description).toBe(content().caption);
    expect(read(mergeSidecar(DIGIKAM, content({ keywords: [] })).xml).subjects).toEqual(['Family', 'Dog']);
  });

  it('creates a sidecar from nothing, and handles other prefixes, attribute values and several descriptions', () => {
    const fresh = mergeSidecar(EMPTY, content());
    expect(read(fresh.xml)).toMatchObject({ description: content().caption, subjects: ['dog', 'cat', 'sofa'] });

    // dc bound to another prefix on a second description, a subject written as an attribute.
    const odd = `<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
      <rdf:Description rdf:about="" xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="Canon"/>
      <rdf:Description rdf:about="" xmlns:purl="http://purl.org/dc/elements/1.1/"><purl:subject><rdf:Bag><rdf:li>beach</rdf:li></rdf:Bag></purl:subject></rdf:Description>
    </rdf:RDF></x:xmpmeta>`;
    const merged = mergeSidecar(odd, content({ keywords: ['beach', 'sea'] })).xml;
    expect(merged).toContain('tiff:Make="Canon"');
    expect(merged).toContain('<purl:subject><rdf:Bag><rdf:li>beach</rdf:li><rdf:li>sea</rdf:li></rdf:Bag></purl:subject>');
    expect(merged.match(/subject>/g)).toHaveLength(2); // one dc:subject (open and close), not a second one
  });

  it('refuses what is not XMP, naming the file', () => {
    expect(() => mergeSidecar('not xml at all <', content(), '/p/a.jpg.xmp')).toThrow(/a\.jpg\.xmp is not a readable XMP sidecar/);
    expect(() => mergeSidecar('<root><child/></root>', content(), 'b.xmp')).toThrow(/no rdf:RDF/);
    expect(() => mergeSidecar('<!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>', content(), 'c.xmp')).toThrow(/DOCTYPE/);
  });
});

describe('writeSidecar', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'owlery-xmp-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('names sidecars both ways and writes atomically, leaving a broken sidecar and the photo as they were', async () => {
    expect(sidecarPath('/a/IMG_1.JPG', 'photo.jpg.xmp')).toBe('/a/IMG_1.JPG.xmp');
    expect(sidecarPath('/a/IMG_1.JPG', 'photo.xmp')).toBe('/a/IMG_1.xmp');
    const photo = join(dir, 'p.jpg');
    await writeFile(photo, 'photo bytes');
    expect(await writeSidecar(photo, 'photo.xmp', content())).toEqual({ path: join(dir, 'p.xmp'), created: true, keptDescription: false });
    expect(read(await readFile(join(dir, 'p.xmp'), 'utf8')).subjects).toEqual(['dog', 'cat', 'sofa']);
    const broken = join(dir, 'q.jpg');
    await writeFile(`${broken}.xmp`, '<x:xmpmeta><unclosed>');
    await expect(writeSidecar(broken, 'photo.jpg.xmp', content())).rejects.toMatchObject({ code: 'IMPORT_INVALID' });
    expect(await readFile(`${broken}.xmp`, 'utf8')).toBe('<x:xmpmeta><unclosed>');
    expect(await readFile(photo, 'utf8')).toBe('photo bytes');
    expect((await readdir(dir)).sort()).toEqual(['p.jpg', 'p.xmp', 'q.jpg.xmp']);
  });
});
