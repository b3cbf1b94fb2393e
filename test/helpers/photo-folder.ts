/**
 * A photo folder for the describe tests, generated from a seed: 28 photos in the folder and a
 * subfolder (PNG and JPEG, various sizes), three broken files (truncated, noise, empty), one huge
 * photo (20000×20000, past the 250 megapixels Owlery downscales), four existing XMP sidecars holding
 * other fields (rating, creator, city, someone's keywords, one with a caption written by a person),
 * and files that are not photos (a text file, a hidden photo).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { mulberry32 } from '../../src-shared/random.ts';
import { pngBomb } from '../robustness/helpers/images.ts';
import { makePhoto } from './chat-env.ts';

/** An existing sidecar and the fields it holds besides caption and keywords. */
export interface ExistingSidecar {
  photo: string;
  file: string;
  rating: number;
  creator: string;
  city: string;
  /** Keywords somebody else gave the photo (kept by a merge). */
  subjects: string[];
  /** A caption somebody wrote (kept), or null. */
  description: string | null;
}

/** What {@link makePhotoFolder} made. */
export interface PhotoFolder {
  dir: string;
  /** Photos that decode, top folder and subfolder, sorted. */
  good: string[];
  /** Photos of the top folder only (non-recursive listing, with the broken and huge ones), sorted. */
  topLevel: string[];
  broken: string[];
  huge: string;
  sidecars: ExistingSidecar[];
  /** Every photo a recursive listing finds, sorted. */
  all: string[];
}

const XMP_WITH_FIELDS = (s: ExistingSidecar): string => `<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    xmp:Rating="${s.rating}"
    photoshop:City="${s.city}">
   <dc:creator>
    <rdf:Seq>
     <rdf:li>${s.creator}</rdf:li>
    </rdf:Seq>
   </dc:creator>
   <dc:subject>
    <rdf:Bag>
${s.subjects.map((k) => `     <rdf:li>${k}</rdf:li>`).join('\n')}
    </rdf:Bag>
   </dc:subject>${s.description === null ? '' : `
   <dc:description>
    <rdf:Alt>
     <rdf:li xml:lang="x-default">${s.description}</rdf:li>
    </rdf:Alt>
   </dc:description>`}
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
`;

/** Writes the folder under `dir` (created); see the module comment. */
export async function makePhotoFolder(dir: string, seed = 14): Promise<PhotoFolder> {
  const rand = mulberry32(seed);
  const sub = join(dir, 'trip');
  await mkdir(sub, { recursive: true });
  const good: string[] = [];
  for (let i = 0; i < 28; i++) {
    const jpeg = i % 3 === 0;
    const folder = i >= 22 ? sub : dir;
    const file = join(folder, `photo-${String(i).padStart(2, '0')}.${jpeg ? 'jpg' : 'png'}`);
    const w = 48 + Math.floor(rand() * 80);
    const h = 40 + Math.floor(rand() * 80);
    await writeFile(file, await makePhoto(seed * 100 + i, w, h, jpeg ? 'jpeg' : 'png'));
    good.push(file);
  }
  const whole = await makePhoto(seed, 96, 64, 'jpeg');
  const noise = new Uint8Array(2048).map(() => Math.floor(rand() * 256));
  const broken = [join(dir, 'broken-empty.png'), join(dir, 'broken-noise.jpg'), join(dir, 'broken-truncated.jpg')];
  await writeFile(broken[0], new Uint8Array(0));
  await writeFile(broken[1], noise);
  await writeFile(broken[2], whole.subarray(0, Math.floor(whole.length / 2)));
  const huge = join(dir, 'huge.png');
  // Too large even to downscale (a photo just over the pixel limit is described from a downscaled
  // copy: describe.test.ts); the header says 20000×20000, the file is a few MB.
  await writeFile(huge, pngBomb(20000, 20000));
  await writeFile(join(dir, 'notes.txt'), 'not a photo\n');
  await writeFile(join(dir, '.hidden.jpg'), whole);

  const sidecars: ExistingSidecar[] = [
    { photo: good[1], rating: 4, creator: 'Ann Example', city: 'Lyon', subjects: ['Family', 'holiday 2019'], description: null },
    { photo: good[4], rating: 2, creator: 'Bo Example', city: 'Oslo', subjects: ['work'], description: null },
    { photo: good[9], rating: 5, creator: 'Cy Example', city: 'Kyoto', subjects: ['garden', 'spring'], description: "Grandma's garden in April" },
    { photo: good[24], rating: 3, creator: 'Di Example', city: 'Quito', subjects: ['trip'], description: null },
  ].map((s) => ({ ...s, file: `${s.photo}.xmp` }));
  for (const s of sidecars) await writeFile(s.file, XMP_WITH_FIELDS(s));

  const all = [...good, ...broken, huge].sort();
  return { dir, good: [...good].sort(), topLevel: all.filter((p) => !p.startsWith(sub)), broken, huge, sidecars, all };
}
