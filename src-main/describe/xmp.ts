/**
 * XMP sidecars: a photo's caption and keywords in the file other photo apps read (digiKam,
 * darktable, Lightroom, Immich): `dc:description` (language alternative, `x-default`) and
 * `dc:subject` (bag), plus Owlery's own record of what it wrote (`owlery:` namespace: caption,
 * keywords, model, prompt version, time).
 *
 * - An existing sidecar is parsed with a real XML parser (fast-xml-parser, order and comments
 *   preserved) and edited in place: every other field, namespace and comment stays as it was.
 * - Keywords are merged: the ones Owlery added last time (`owlery:AddedSubjects`) are replaced,
 *   anyone else's are kept (a keyword somebody had already is theirs, not Owlery's).
 * - A description somebody else wrote (not the one Owlery wrote last time) is kept, not
 *   overwritten; the result says so.
 * - Writes are atomic (a temporary file in the same folder, flushed, renamed over the sidecar), so
 *   a crash leaves the old sidecar or the new one. The photo itself is never opened for writing.
 * - A sidecar that is not XMP (not XML, no `rdf:RDF`, a DOCTYPE) is left alone and reported.
 */
import { randomBytes } from 'node:crypto';
import { access, constants, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import type { SidecarNaming } from '../../src-shared/describe.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { replaceFile } from '../../models/package/files.ts';

export const NS = {
  x: 'adobe:ns:meta/',
  rdf: 'http://www.w3.org/1999/02/22-rdf-syntax-ns#',
  dc: 'http://purl.org/dc/elements/1.1/',
  owlery: 'http://ns.owlery.app/describe/1.0/',
} as const;

/** Largest sidecar read, in bytes (real ones are a few kB). */
export const MAX_SIDECAR_BYTES = 4 * 1024 * 1024;

/** What goes into a sidecar. */
export interface SidecarContent {
  caption: string;
  keywords: string[];
  /** The model package id and the prompt version, recorded in the `owlery:` namespace. */
  packageId: string;
  promptVersion: string;
  /** When the description was written (ms since the epoch). */
  describedAt: number;
}

/** What writing a sidecar did. */
export interface SidecarResult {
  path: string;
  /** There was no sidecar before. */
  created: boolean;
  /** A description somebody else wrote was there, and was kept. */
  keptDescription: boolean;
}

/** The sidecar path of a photo: `photo.jpg.xmp` or `photo.xmp`. */
export function sidecarPath(photo: string, naming: SidecarNaming): string {
  if (naming === 'photo.jpg.xmp') return `${photo}.xmp`;
  const ext = extname(photo);
  return join(dirname(photo), `${basename(photo, ext)}.xmp`);
}

// The tree fast-xml-parser gives with `preserveOrder`: a list of nodes, each `{ [name]: children,
// ':@'?: attributes }`, text as `{ '#text': string }`, comments as `{ '#comment': [...] }`.
type Attrs = Record<string, string>;
type XmlNode = { [name: string]: XmlNode[] | Attrs | string | undefined; ':@'?: Attrs };

const OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  trimValues: false,
  parseTagValue: false,
  parseAttributeValue: false,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
  ignorePiTags: false,
  processEntities: true,
} as const;

const TEMPLATE = `<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="${NS.x}" x:xmptk="Owlery">
 <rdf:RDF xmlns:rdf="${NS.rdf}">
  <rdf:Description rdf:about=""
    xmlns:dc="${NS.dc}"
    xmlns:owlery="${NS.owlery}">
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
`;

/**
 * Writes (or merges into) the sidecar of `photo`; see the module comment.
 * @throws OwleryError `IMPORT_INVALID` (the existing sidecar is not XMP: it is left alone),
 *   `FORBIDDEN` (read-only file or folder), `DISK_FULL`, each naming the sidecar.
 */
export async function writeSidecar(photo: string, naming: SidecarNaming, content: SidecarContent): Promise<SidecarResult> {
  const path = sidecarPath(photo, naming);
  const existing = await readSidecar(path);
  const { xml, keptDescription } = mergeSidecar(existing ?? TEMPLATE, content, path);
  await writeAtomic(path, xml);
  return { path, created: existing === null, keptDescription };
}

/**
 * Sidecars need their folders writable: refuses up front (`FORBIDDEN`, naming the folder) rather
 * than failing every photo.
 */
export async function checkSidecarFolders(dirs: readonly string[]): Promise<void> {
  for (const dir of new Set(dirs)) {
    try {
      await access(dir, constants.W_OK);
    } catch {
      throw new OwleryError('FORBIDDEN', `Owlery cannot write sidecars in ${dir}: the folder is read-only. Turn sidecars off, or make the folder writable.`, { path: dir });
    }
  }
}

/** The sidecar's text, or null when there is none. */
async function readSidecar(path: string): Promise<string | null> {
  const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw fileError(err, path, 'read');
  });
  if (!st) return null;
  if (!st.isFile()) throw new OwleryError('IMPORT_INVALID', `${basename(path)} is not a file, so no sidecar was written.`, { path });
  if (st.size > MAX_SIDECAR_BYTES) throw new OwleryError('IMPORT_INVALID', `${basename(path)} is ${st.size} bytes, too large for an XMP sidecar; it was left as it is.`, { path });
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw fileError(err as NodeJS.ErrnoException, path, 'read');
  }
}

/**
 * The sidecar text with the caption and keywords merged in (pure; see the module comment).
 * `name` is used in error messages.
 */
export function mergeSidecar(text: string, content: SidecarContent, name = 'sidecar'): { xml: string; keptDescription: boolean } {
  const body = text.replace(/^\ufeff/, '');
  const notXmp = (why: string) => new OwleryError('IMPORT_INVALID', `${basename(name)} is not a readable XMP sidecar (${why}); it was left as it is.`, { path: name });
  if (/<!DOCTYPE/i.test(body)) throw notXmp('it has a DOCTYPE');
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw notXmp(`${valid.err.msg} at line ${valid.err.line}`);
  const tree = new XMLParser(OPTIONS).parse(body) as XmlNode[];
  const rdf = findElement(tree, NS.rdf, 'RDF', new Map());
  if (!rdf) throw notXmp('no rdf:RDF element');
  const descriptions = children(rdf.node).filter((n) => resolve(n, rdf.scope).ns === NS.rdf && resolve(n, rdf.scope).local === 'Description');
  if (descriptions.length === 0) {
    const fresh: XmlNode = { [`${prefixIn(rdf.scope, NS.rdf)}:Description`]: [], ':@': { [`@_${prefixIn(rdf.scope, NS.rdf)}:about`]: '' } };
    children(rdf.node).push(fresh);
    descriptions.push(fresh);
  }
  const editor = new DescriptionEditor(descriptions.map((d) => ({ node: d, scope: withDeclarations(rdf.scope, d) })));
  const keptDescription = editor.apply(content);
  const xml = new XMLBuilder({ ...OPTIONS, format: false, suppressEmptyNode: false, suppressBooleanAttributes: false }).build(tree) as string;
  return { xml: xml.endsWith('\n') ? xml : `${xml}\n`, keptDescription };
}

/** Prefix → namespace URI in scope at an element. */
type Scope = Map<string, string>;

interface Located {
  node: XmlNode;
  scope: Scope;
}

/** The element's name (`prefix:local`), or null for text, comments and processing instructions. */
function nameOf(node: XmlNode): string | null {
  for (const key of Object.keys(node)) if (key !== ':@' && !key.startsWith('#') && !key.startsWith('?')) return key;
  return null;
}

function children(node: XmlNode): XmlNode[] {
  const name = nameOf(node);
  return name ? (node[name] as XmlNode[]) : [];
}

function attrs(node: XmlNode): Attrs {
  node[':@'] ??= {};
  return node[':@'];
}

/** The scope inside `node`: the parent's plus the node's own `xmlns:` declarations. */
function withDeclarations(parent: Scope, node: XmlNode): Scope {
  const own = Object.entries(node[':@'] ?? {}).filter(([k]) => k.startsWith('@_xmlns:'));
  if (own.length === 0) return parent;
  const scope = new Map(parent);
  for (const [k, v] of own) scope.set(k.slice('@_xmlns:'.length), v);
  return scope;
}

/** The namespace and local name of an element (or an attribute name). */
function resolve(node: XmlNode | string, scope: Scope): { ns: string | undefined; local: string } {
  const name = typeof node === 'string' ? node : nameOf(node) ?? '';
  const colon = name.indexOf(':');
  if (colon < 0) return { ns: undefined, local: name };
  const own = typeof node === 'string' ? scope : withDeclarations(scope, node);
  return { ns: own.get(name.slice(0, colon)), local: name.slice(colon + 1) };
}

/** A prefix bound to `ns` in scope, or undefined. */
function prefixIn(scope: Scope, ns: string): string {
  for (const [p, uri] of scope) if (uri === ns) return p;
  return ns === NS.rdf ? 'rdf' : '';
}

function findElement(nodes: XmlNode[], ns: string, local: string, scope: Scope): Located | null {
  for (const n of nodes) {
    if (!nameOf(n)) continue;
    const inner = withDeclarations(scope, n);
    const r = resolve(n, scope);
    if (r.ns === ns && r.local === local) return { node: n, scope: inner };
    const found = findElement(children(n), ns, local, inner);
    if (found) return found;
  }
  return null;
}

/** The text of an element (its text and CDATA children, entities decoded by the parser). */
function textOf(node: XmlNode): string {
  return children(node).map((c) => (typeof c['#text'] === 'string' ? c['#text'] : Array.isArray(c['#cdata']) ? textOf({ x: c['#cdata'] }) : '')).join('');
}

function textNode(text: string): XmlNode {
  return { '#text': text };
}

/** Edits the `rdf:Description` elements of a sidecar. */
class DescriptionEditor {
  /** Where new properties go: the first description. */
  private readonly target: Located;

  constructor(private readonly descriptions: Located[]) {
    this.target = descriptions[0];
  }

  /** Applies the content; returns whether a description somebody else wrote was kept. */
  apply(content: SidecarContent): boolean {
    const previous = this.takeOwlery();
    const kept = this.setDescription(content.caption, previous.caption);
    const added = this.setSubjects(content.keywords, previous.added);
    const o = this.prefix(NS.owlery, 'owlery');
    const r = this.prefix(NS.rdf, 'rdf');
    this.add(`${o}:Caption`, [textNode(content.caption)]);
    const bag = (items: string[]): XmlNode[] => [{ [`${r}:Bag`]: items.map((k) => ({ [`${r}:li`]: [textNode(k)] })) }];
    // Empty bags are left out (exiftool reads one as an empty string).
    if (content.keywords.length) this.add(`${o}:Keywords`, bag(content.keywords));
    // The keywords that were not in dc:subject already: the ones the next run may take out again.
    if (added.length) this.add(`${o}:AddedSubjects`, bag(added));
    this.add(`${o}:Model`, [textNode(content.packageId)]);
    this.add(`${o}:PromptVersion`, [textNode(content.promptVersion)]);
    this.add(`${o}:DescribedAt`, [textNode(new Date(content.describedAt).toISOString())]);
    return kept;
  }

  /** Removes the `owlery:` properties (elements and attributes), returning what they said. */
  private takeOwlery(): { caption: string | null; added: string[] } {
    let caption: string | null = null;
    let added: string[] = [];
    for (const d of this.descriptions) {
      for (const [k, v] of Object.entries(d.node[':@'] ?? {})) {
        if (!k.startsWith('@_xmlns:') && resolve(k.slice(2), d.scope).ns === NS.owlery) {
          if (resolve(k.slice(2), d.scope).local === 'Caption') caption = v;
          delete attrs(d.node)[k];
        }
      }
      for (const n of [...children(d.node)]) {
        if (!nameOf(n) || resolve(n, d.scope).ns !== NS.owlery) continue;
        const local = resolve(n, d.scope).local;
        if (local === 'Caption') caption = textOf(n);
        if (local === 'AddedSubjects') added = this.items(n, d.scope);
        this.remove(n);
      }
    }
    return { caption, added };
  }

  /** `rdf:li` texts of a property's container (Bag, Seq or Alt). */
  private items(prop: XmlNode, scope: Scope): string[] {
    const inner = withDeclarations(scope, prop);
    const out: string[] = [];
    for (const container of children(prop)) {
      if (!nameOf(container)) continue;
      const cs = withDeclarations(inner, container);
      for (const li of children(container)) if (nameOf(li) && resolve(li, cs).local === 'li') out.push(textOf(li));
    }
    return out;
  }

  /** The `dc:` property `local` as an element (first found), or null. */
  private findDc(local: string): Located | null {
    for (const d of this.descriptions) {
      for (const n of children(d.node)) {
        const r = nameOf(n) ? resolve(n, d.scope) : null;
        if (r?.ns === NS.dc && r.local === local) return { node: n, scope: withDeclarations(d.scope, n) };
      }
    }
    return null;
  }

  /** A `dc:` property written as an attribute (`dc:description="…"`) is turned into an element's value. */
  private takeDcAttribute(local: string): string | null {
    for (const d of this.descriptions) {
      for (const [k, v] of Object.entries(d.node[':@'] ?? {})) {
        if (k.startsWith('@_xmlns:')) continue;
        const r = resolve(k.slice(2), d.scope);
        if (r.ns === NS.dc && r.local === local) {
          delete attrs(d.node)[k];
          return v;
        }
      }
    }
    return null;
  }

  /** Sets the `x-default` caption unless somebody else's is there. Returns whether theirs was kept. */
  private setDescription(caption: string, ours: string | null): boolean {
    const r = this.prefix(NS.rdf, 'rdf');
    const fromAttribute = this.takeDcAttribute('description');
    let prop = this.findDc('description');
    if (!prop) {
      const initial = fromAttribute === null ? [] : [{ [`${r}:li`]: [textNode(fromAttribute)], ':@': { '@_xml:lang': 'x-default' } }];
      prop = this.add(`${this.prefix(NS.dc, 'dc')}:description`, [{ [`${r}:Alt`]: initial }]);
    }
    const alt = this.container(prop, 'Alt');
    const lis = children(alt.node).filter((n) => nameOf(n) && resolve(n, alt.scope).local === 'li');
    const current = lis.find((li) => (li[':@']?.['@_xml:lang'] ?? 'x-default') === 'x-default');
    if (current) {
      const text = textOf(current).trim();
      if (text && text !== (ours ?? '').trim()) return true;
      current[nameOf(current)!] = [textNode(caption)];
      return false;
    }
    // x-default first, as the XMP specification asks.
    children(alt.node).unshift({ [`${prefixIn(alt.scope, NS.rdf) || r}:li`]: [textNode(caption)], ':@': { '@_xml:lang': 'x-default' } });
    return false;
  }

  /**
   * Replaces the keywords Owlery added before with the new ones; keeps everybody else's. Returns
   * the keywords it added (those not there already).
   */
  private setSubjects(keywords: string[], ours: string[]): string[] {
    const fromAttribute = this.takeDcAttribute('subject');
    const existing = this.findDc('subject');
    if (!existing && keywords.length === 0 && fromAttribute === null) return [];
    const prop = existing ?? this.add(`${this.prefix(NS.dc, 'dc')}:subject`, [{ [`${this.prefix(NS.rdf, 'rdf')}:Bag`]: [] }]);
    const bag = this.container(prop, 'Bag');
    const li = `${prefixIn(bag.scope, NS.rdf) || 'rdf'}:li`;
    const list = children(bag.node);
    const previous = new Set(ours.map((k) => k.toLowerCase()));
    for (let i = list.length - 1; i >= 0; i--) {
      if (nameOf(list[i]) && resolve(list[i], bag.scope).local === 'li' && previous.has(textOf(list[i]).trim().toLowerCase())) list.splice(i, 1);
    }
    if (fromAttribute !== null) list.push({ [li]: [textNode(fromAttribute)] });
    const present = new Set(list.filter((n) => nameOf(n)).map((n) => textOf(n).trim().toLowerCase()));
    const added: string[] = [];
    for (const k of keywords) {
      if (present.has(k.toLowerCase())) continue;
      present.add(k.toLowerCase());
      list.push({ [li]: [textNode(k)] });
      added.push(k);
    }
    // Nothing left (only Owlery's keywords were there, and there are none now): no empty bag.
    if (!list.some((n) => nameOf(n))) this.remove(prop.node);
    return added;
  }

  /** Takes an element out of whichever description holds it, with the indentation before it. */
  private remove(node: XmlNode): void {
    for (const d of this.descriptions) {
      const list = children(d.node);
      const i = list.indexOf(node);
      if (i < 0) continue;
      const before = list[i - 1];
      const indent = i > 0 && typeof before['#text'] === 'string' && !before['#text'].trim();
      list.splice(indent ? i - 1 : i, indent ? 2 : 1);
      return;
    }
  }

  /**
   * The `rdf:<kind>` container of a property; a property holding plain text instead (a common
   * mistake) gets a container with that text as its one item.
   */
  private container(prop: Located, kind: 'Alt' | 'Bag'): Located {
    const list = children(prop.node);
    for (const n of list) {
      if (!nameOf(n)) continue;
      const r = resolve(n, prop.scope);
      if (r.ns === NS.rdf && (r.local === kind || r.local === 'Bag' || r.local === 'Seq' || r.local === 'Alt')) return { node: n, scope: withDeclarations(prop.scope, n) };
    }
    const r = this.prefix(NS.rdf, 'rdf');
    const text = textOf(prop.node).trim();
    const items = text ? [{ [`${r}:li`]: [textNode(text)], ...(kind === 'Alt' ? { ':@': { '@_xml:lang': 'x-default' } } : {}) }] : [];
    const container: XmlNode = { [`${r}:${kind}`]: items };
    prop.node[nameOf(prop.node)!] = [container];
    return { node: container, scope: prop.scope };
  }

  /** Appends a property element to the target description. */
  private add(name: string, content: XmlNode[]): Located {
    const node: XmlNode = { [name]: content };
    const list = children(this.target.node);
    const last = list[list.length - 1];
    const closingIndent = last && typeof last['#text'] === 'string' && !String(last['#text']).trim() ? list.pop()! : textNode('\n  ');
    list.push(textNode('\n   '), node, closingIndent);
    return { node, scope: this.target.scope };
  }

  /** The prefix bound to `ns` at the target description, declaring `preferred` there if none is. */
  private prefix(ns: string, preferred: string): string {
    const bound = [...this.target.scope].find(([, uri]) => uri === ns);
    if (bound) return bound[0];
    let p = preferred;
    for (let i = 2; this.target.scope.has(p); i++) p = `${preferred}${i}`;
    attrs(this.target.node)[`@_xmlns:${p}`] = ns;
    this.target.scope = new Map(this.target.scope).set(p, ns);
    for (const d of this.descriptions) if (d.node === this.target.node) d.scope = this.target.scope;
    return p;
  }
}

/** Writes `text` to `path` through a temporary file in the same folder, flushed and renamed. */
async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.owlery-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  await replaceFile(path, tmp, text).catch((err: unknown) => {
    throw fileError(err as NodeJS.ErrnoException, path, 'write');
  });
}

function fileError(err: NodeJS.ErrnoException, path: string, verb: 'read' | 'write'): OwleryError {
  if (err instanceof OwleryError) return err;
  const name = basename(path);
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return new OwleryError('DISK_FULL', `The disk is full: the sidecar ${name} was not written.`, { path });
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
    return new OwleryError('FORBIDDEN', `Owlery may not ${verb} the sidecar ${name}: the folder or the file is read-only.`, { path, cause: err.code });
  }
  return new OwleryError('INTERNAL', `Could not ${verb} the sidecar ${name}: ${err.message}`, { path, cause: err.code });
}
