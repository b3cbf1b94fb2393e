/**
 * JSON export and import (schema: docs/export-format.md, types: `ExportFile` in src-shared/chat.ts).
 *
 * The export holds conversations with their whole message tree (every branch), the settings,
 * statistics and model of each answer, and each photo once, as base64 with its sha256. Importing
 * it restores the conversations exactly: texts, statuses, times, branches and the branch on
 * screen, stats and settings, and the photo bytes. Imported conversations always get new ids, so
 * nothing already in the history is ever overwritten; photos already stored (same bytes) are
 * reused, not stored again.
 *
 * A conversation already here is not imported again unless asked (`duplicates: 'copy'`): one is
 * "already here" when a conversation was imported before with the same id in its file and the
 * same content (its import key, kept with it), or when the file came from this history and the
 * conversation with that id has the same content. Content is the title, the creation time and
 * every message's place in the tree, role, text, status, time and photos.
 *
 * An import checks the whole file before it writes anything (`IMPORT_INVALID` names the problem),
 * stores the photos, then writes all conversations in one transaction: either all of them are
 * imported or none. (Photos stored by a failed import are unused and go with the next garbage
 * collection of the image store.)
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import {
  EXPORT_FILE_FORMAT,
  EXPORT_FILE_VERSION,
} from '../../src-shared/chat.ts';
import type { ExportedConversation, ExportedImage, ExportedMessage, ExportFile, ImportResult } from '../../src-shared/chat.ts';
import type { ConversationId, GenerationSettings, Message, MessageId, ModelRef } from '../../src-shared/domain.ts';
import { MESSAGE_ROLES, MESSAGE_STATUSES } from '../../src-shared/domain.ts';
import type { GenerationStats } from '../../src-shared/engine.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { MAX_IMPORT_BYTES, MAX_INSTRUCTIONS_CHARS, MAX_TITLE_CHARS } from '../../src-shared/limits.ts';
import { SETTING_BOUNDS } from '../../src-shared/settings.ts';
import { invalid, v } from '../../src-shared/validate.ts';
import type { Schema } from '../../src-shared/validate.ts';
import { toStoreError } from '../store/errors.ts';
import { Store } from '../store/store.ts';
import { writeFileAtomic } from './files.ts';
import { MAX_DATE_MS, isShowableTime } from './format.ts';
import type { ExportSummary } from './markdown.ts';
import { noteBadDates, photoUses, readablePhotos, readEach, SkipLog } from './skipped.ts';
import { loadTree, selectedIds } from './source.ts';
import type { ConversationSelection, ExportContext } from './source.ts';

/**
 * Builds the export document for some conversations (the whole tree of each). What cannot be
 * read is left out and noted in `log` (`skipped.ts`): a conversation on a damaged page, a photo
 * whose file is missing (its mention goes too, so the file imports again), and a date that cannot be
 * shown is replaced by the nearest one that can (the conversation's, else the export's).
 */
export async function buildExportFile(ctx: ExportContext, selection: ConversationSelection, log: SkipLog = new SkipLog()): Promise<ExportFile> {
  const exportedAt = (ctx.now ?? Date.now)();
  const conversations = readEach(selectedIds(ctx.store, selection), ctx.store, (id): ExportedConversation => {
    const c = ctx.store.getConversation(id);
    const tree = loadTree(ctx.store, id);
    noteBadDates(c, tree, log, 'replaced by the nearest date that can be');
    const time = (ms: number, fallback: number): number => (isShowableTime(ms) ? ms : fallback);
    const createdAt = time(c.createdAt, exportedAt);
    const messages = tree.map((m): ExportedMessage => {
      const at = time(m.createdAt, createdAt);
      return {
        id: m.id,
        parentId: m.parentId,
        role: m.role,
        text: m.text,
        status: m.status,
        error: m.error,
        createdAt: at,
        updatedAt: Math.max(at, time(m.updatedAt, at)),
        stats: m.stats,
        settings: m.settings,
        model: m.model,
        images: m.images.map((img) => ({ sha256: img.sha256, name: img.name })),
      };
    });
    return {
      id: c.id,
      title: c.title,
      createdAt,
      updatedAt: time(c.updatedAt, createdAt),
      modelId: c.modelId,
      pinned: c.pinned,
      deletedAt: c.deletedAt === null ? null : time(c.deletedAt, exportedAt),
      activeLeafId: c.activeLeafId,
      titleSetByUser: c.titleSetByUser,
      options: c.options,
      messages,
    };
  }, log);
  const loaded = await readablePhotos(ctx, photoUses(conversations.map((c) => ({ conversation: c, messages: c.messages }))), log);
  for (const c of conversations) for (const m of c.messages) m.images = m.images.filter((img) => loaded.has(img.sha256));
  const images: ExportedImage[] = [...loaded.values()].map(({ record, bytes }) => ({
    sha256: record.sha256,
    mime: record.mime,
    byteSize: bytes.length,
    width: record.width,
    height: record.height,
    orientation: record.orientation,
    data: Buffer.from(bytes).toString('base64'),
  }));
  return {
    format: EXPORT_FILE_FORMAT,
    version: EXPORT_FILE_VERSION,
    exportedAt: new Date(exportedAt).toISOString(),
    generator: { name: 'Owlery', version: ctx.appVersion ?? '0.0.0' },
    conversations,
    images,
  };
}

/** Options of {@link exportJson}. */
export interface JsonExportOptions {
  conversations: ConversationSelection;
  /** The `.json` file to write. */
  dest: string;
}

/** Exports conversations to a JSON file, written atomically (`DISK_FULL`, `EXPORT_FAILED`); what was left out is in `skipped`. */
export async function exportJson(ctx: ExportContext, opts: JsonExportOptions): Promise<ExportSummary> {
  const log = new SkipLog();
  const file = await buildExportFile(ctx, opts.conversations, log);
  await writeFileAtomic(opts.dest, `${JSON.stringify(file, null, 2)}\n`);
  return { path: opts.dest, conversations: file.conversations.length, assetsWritten: 0, skipped: log.list };
}

// Reading --------------------------------------------------------------------------------------

const SHA256 = v.string({ pattern: /^[0-9a-f]{64}$/, patternName: 'a sha256 (64 lowercase hex digits)' });
const ID = v.int({ min: 1 });
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A date (ms since 1970) that JavaScript can represent, so every exporter can show it. */
const TIME: Schema<number> = {
  description: 'a date',
  parse(value, path = 'value') {
    const ms = v.int({ min: 0 }).parse(value, path);
    if (!isShowableTime(ms)) invalid(path, `is not a date that can be shown (${ms} lies past ${MAX_DATE_MS}, the last date JavaScript represents)`);
    return ms;
  },
};

/**
 * A flat JSON object of numbers, strings, booleans and nulls (stats and settings may gain fields);
 * the fields exporters and the app show must have their type (`known`).
 */
function flatRecord<T>(description: string, known: Readonly<Record<string, Schema<unknown>>>): Schema<T> {
  return {
    description,
    parse(value, path = 'value') {
      if (value === null || typeof value !== 'object' || Array.isArray(value)) invalid(path, `expected ${description}`);
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(value as Record<string, unknown>)) {
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') invalid(`${path}.${k}`, 'is not an allowed field');
        const ok = x === null || typeof x === 'string' || typeof x === 'boolean' || (typeof x === 'number' && Number.isFinite(x));
        if (!ok) invalid(`${path}.${k}`, 'expected a number, string, boolean or null');
        if (typeof x === 'string' && x.length > 1000) invalid(`${path}.${k}`, 'must be at most 1000 characters');
        out[k] = Object.hasOwn(known, k) && x !== null ? known[k].parse(x, `${path}.${k}`) : x;
      }
      return out as T;
    },
  };
}

const COUNT = v.number({ min: 0 });
const STATS = flatRecord<GenerationStats>('generation statistics', {
  provider: v.string({ max: 100 }),
  ...Object.fromEntries(['promptTokens', 'outputTokens', 'contextLimit', 'imageCount', 'imagesFromCache', 'imageDecodeMs', 'imageEncodeMs', 'prefillMs',
    'prefillTokensPerSecond', 'timeToFirstTokenMs', 'decodeTokensPerSecond', 'totalMs', 'reusedPromptTokens'].map((k) => [k, COUNT])),
});
const SETTINGS = flatRecord<GenerationSettings>('generation settings', {
  greedy: v.boolean(),
  temperature: v.number({ min: 0 }),
  topK: v.number({ min: 0 }),
  topP: v.number({ min: 0 }),
  repetitionPenalty: v.number({ min: 0 }),
  seed: v.number(),
  maxNewTokens: v.number({ min: 0 }),
  aspectMode: v.string({ max: 20 }),
  provider: v.string({ max: 100 }),
});

const MODEL: Schema<ModelRef> = v.object({ packageId: v.string({ min: 1, max: 200 }), sha256: SHA256 });

const MESSAGE: Schema<ExportedMessage> = v.object({
  id: ID,
  parentId: v.nullable(ID),
  role: v.enum(MESSAGE_ROLES),
  text: v.string({ max: 10_000_000 }),
  status: v.enum(MESSAGE_STATUSES),
  error: v.nullable(v.string({ max: 100_000 })),
  createdAt: TIME,
  updatedAt: TIME,
  stats: v.nullable(STATS),
  settings: v.nullable(SETTINGS),
  model: v.nullable(MODEL),
  images: v.array(v.object({ sha256: SHA256, name: v.nullable(v.string({ max: 255 })) }), { max: 64 }),
});

const CONVERSATION: Schema<ExportedConversation> = v.object({
  id: ID,
  title: v.string({ max: MAX_TITLE_CHARS }),
  createdAt: TIME,
  updatedAt: TIME,
  modelId: v.nullable(v.string({ max: 200 })),
  pinned: v.boolean(),
  deletedAt: v.nullable(TIME),
  activeLeafId: v.nullable(ID),
  titleSetByUser: v.optional(v.boolean()),
  options: v.optional(v.object({
    instructions: v.string({ max: MAX_INSTRUCTIONS_CHARS }),
    temperature: v.nullable(v.number(SETTING_BOUNDS.temperature)),
    maxNewTokens: v.nullable(v.int(SETTING_BOUNDS.maxNewTokens)),
  })),
  messages: v.array(MESSAGE, { max: 1_000_000 }),
});

const IMAGE: Schema<ExportedImage> = v.object({
  sha256: SHA256,
  mime: v.string({ max: 100 }),
  byteSize: v.int({ min: 1 }),
  width: v.int({ min: 0 }),
  height: v.int({ min: 0 }),
  orientation: v.int({ min: 1, max: 8 }),
  data: v.string({ min: 1, pattern: BASE64, patternName: 'base64 data' }),
});

const FILE: Schema<Omit<ExportFile, 'format' | 'version'>> = v.object({
  format: v.optional(v.string()),
  version: v.optional(v.int()),
  exportedAt: v.string({ max: 100 }),
  generator: v.object({ name: v.string({ max: 100 }), version: v.string({ max: 100 }) }),
  conversations: v.array(CONVERSATION, { max: 1_000_000 }),
  images: v.array(IMAGE, { max: 1_000_000 }),
});

function importInvalid(problem: string, details?: Record<string, unknown>): OwleryError {
  return new OwleryError('IMPORT_INVALID', `This file cannot be imported: ${problem}`, details);
}

/**
 * Parses and checks an export file (JSON text or its bytes) without writing anything. Returns the
 * document and the photos' bytes; throws `IMPORT_INVALID` naming the first problem.
 */
export function parseExportFile(input: string | Uint8Array): { file: ExportFile; bytes: Map<string, Uint8Array> } {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof input === 'string' ? input : new TextDecoder('utf-8', { fatal: true }).decode(input));
  } catch {
    throw importInvalid('it is not a JSON file (or it is damaged).');
  }
  if (raw === null || typeof raw !== 'object' || (raw as { format?: unknown }).format !== EXPORT_FILE_FORMAT) {
    throw importInvalid('it is not an Owlery export.');
  }
  const version = (raw as { version?: unknown }).version;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1) throw importInvalid('its format version is missing.');
  if (version > EXPORT_FILE_VERSION) {
    throw importInvalid(`it was written by a newer Owlery (export format ${version}; this version reads up to ${EXPORT_FILE_VERSION}). Update Owlery to import it.`, {
      version,
    });
  }
  let body: Omit<ExportFile, 'format' | 'version'>;
  try {
    body = FILE.parse(raw, 'file');
  } catch (err) {
    if (err instanceof OwleryError) throw importInvalid(`${err.message}.`, err.details);
    throw err;
  }
  const file: ExportFile = { ...body, format: EXPORT_FILE_FORMAT, version: EXPORT_FILE_VERSION };

  const bytes = new Map<string, Uint8Array>();
  for (const img of file.images) {
    if (bytes.has(img.sha256)) throw importInvalid(`photo ${img.sha256.slice(0, 12)}… is listed twice.`);
    const data = new Uint8Array(Buffer.from(img.data, 'base64'));
    if (data.length !== img.byteSize || createHash('sha256').update(data).digest('hex') !== img.sha256) {
      throw importInvalid(`photo ${img.sha256.slice(0, 12)}… is damaged (its bytes do not match its hash).`, { sha256: img.sha256 });
    }
    bytes.set(img.sha256, data);
  }

  const conversationIds = new Set<number>();
  for (const c of file.conversations) {
    const where = `conversation ${c.id}`;
    if (conversationIds.has(c.id)) throw importInvalid(`${where} is listed twice.`);
    conversationIds.add(c.id);
    const byId = new Map<MessageId, ExportedMessage>();
    for (const m of c.messages) {
      const at = `message ${m.id} of ${where}`;
      if (byId.has(m.id)) throw importInvalid(`${at} is listed twice.`);
      if (m.parentId !== null) {
        if (!byId.has(m.parentId)) throw importInvalid(`${at} follows message ${m.parentId}, which does not come before it in that conversation.`);
        if (m.parentId >= m.id) throw importInvalid(`${at} has a parent with a larger id.`);
      }
      if (m.role !== 'assistant' && m.status !== 'complete') throw importInvalid(`${at} is not an answer but has status ${m.status}.`);
      if (m.role === 'assistant' && m.images.length > 0) throw importInvalid(`${at} is an answer with photos.`);
      if (m.updatedAt < m.createdAt) throw importInvalid(`${at} was changed before it was written.`);
      for (const img of m.images) {
        if (!bytes.has(img.sha256)) throw importInvalid(`${at} uses photo ${img.sha256.slice(0, 12)}…, which the file does not contain.`);
      }
      byId.set(m.id, m);
    }
    for (let i = 1; i < c.messages.length; i++) {
      if (c.messages[i].id <= c.messages[i - 1].id) throw importInvalid(`the messages of ${where} are not in ascending id order.`);
    }
    if (c.activeLeafId !== null && !byId.has(c.activeLeafId)) throw importInvalid(`${where} shows message ${c.activeLeafId}, which it does not contain.`);
  }
  return { file, bytes };
}

/** The parts of a message that make a conversation's content (see the module comment). */
type ContentMessage = Pick<Message, 'id' | 'parentId' | 'role' | 'text' | 'status' | 'createdAt'> & { images: readonly { sha256: string }[] };

/** A hash of a conversation's content: the same for an exported conversation and its import. */
export function contentKey(c: { title: string; createdAt: number; messages: readonly ContentMessage[] }): string {
  const index = new Map(c.messages.map((m, i) => [m.id, i]));
  const body = c.messages.map((m) => [m.parentId === null ? -1 : (index.get(m.parentId) ?? -2), m.role, m.text, m.status, m.createdAt, m.images.map((i) => i.sha256)]);
  return createHash('sha256').update(JSON.stringify([c.title, c.createdAt, body])).digest('hex');
}

/** The key an imported conversation keeps: its id in the file and its content. */
export function importKey(c: ExportedConversation): string {
  return createHash('sha256').update(`${c.id}:${contentKey(c)}`).digest('hex');
}

/** The conversation here that `c` of a file already is, if any (see the module comment). */
function alreadyHere(ctx: ExportContext, c: ExportedConversation): ConversationId | null {
  const imported = ctx.store.findImported(importKey(c));
  if (imported) return imported.id;
  try {
    const same = ctx.store.getConversation(c.id);
    const here = contentKey({ title: same.title, createdAt: same.createdAt, messages: [...loadTree(ctx.store, same.id)].sort((a, b) => a.id - b.id) });
    return here === contentKey(c) ? same.id : null;
  } catch (err) {
    if (err instanceof OwleryError && err.code === 'NOT_FOUND') return null;
    throw err;
  }
}

/** Options of {@link importJson}. */
export interface ImportOptions {
  /** What to do with conversations already here: leave them out (default) or import a copy. */
  duplicates?: 'skip' | 'copy';
  /** Import only these conversations of the file (by their id there). */
  only?: readonly ConversationId[];
}

/**
 * Imports an export file (a path, or its contents) into the history (see the module comment).
 *
 * @throws OwleryError `IMPORT_INVALID` (not an export, damaged, newer format), `FILE_NOT_FOUND`,
 *   image errors (a photo the image store refuses), store errors (`DISK_FULL`, `DB_READONLY`, …)
 */
export async function importJson(ctx: ExportContext, input: string | Uint8Array, opts: ImportOptions = {}): Promise<ImportResult> {
  let data: string | Uint8Array = input;
  if (typeof input === 'string') {
    try {
      data = await readFile(input);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') throw new OwleryError('FILE_NOT_FOUND', `There is no file at ${input}.`, { path: input });
      throw new OwleryError('IMPORT_INVALID', `${input} could not be read (${(err as Error).message}).`, { path: input, cause: code });
    }
  }
  if (data.length > MAX_IMPORT_BYTES) throw importInvalid(`it is larger than ${MAX_IMPORT_BYTES / 2 ** 20} MiB.`);
  const { file, bytes } = parseExportFile(data);
  const wanted = file.conversations.filter((c) => !opts.only || opts.only.includes(c.id));
  const duplicates: ImportResult['duplicates'] = [];
  const chosen = wanted.filter((c) => {
    const existingId = opts.duplicates === 'copy' ? null : alreadyHere(ctx, c);
    if (existingId !== null) duplicates.push({ sourceId: c.id, title: c.title, existingId });
    return existingId === null;
  });
  // Only the photos of the conversations imported (not of duplicates left out).
  const used = new Set(chosen.flatMap((c) => c.messages.flatMap((m) => m.images.map((img) => img.sha256))));

  // Photos first (files, then records), so every message row written below has its photo.
  let imagesAdded = 0;
  let imagesReused = 0;
  for (const [sha256, content] of bytes) {
    if (!used.has(sha256)) continue;
    const before = ctx.store.getImage(sha256);
    const record = await ctx.images.put(content, { name: sha256 });
    if (record.sha256 !== sha256) throw new OwleryError('INTERNAL', `Photo ${sha256} was stored under another hash.`);
    if (before) imagesReused++;
    else imagesAdded++;
  }

  // One transaction for every conversation. The store stamps rows with its clock, so a store on
  // the same connection whose clock is set before each write restores the original times.
  let clock = 0;
  const writer = new Store(ctx.store.db, { now: () => clock, file: ctx.store.file });
  const conversations: { sourceId: ConversationId; id: ConversationId }[] = [];
  let messages = 0;
  const ordered = [...chosen].sort((a, b) => a.id - b.id);
  try {
    ctx.store.db.transaction(() => {
      for (const c of ordered) {
        clock = c.createdAt;
        const conv = writer.createConversation({ title: c.title, modelId: c.modelId, importKey: importKey(c), titleSetByUser: c.titleSetByUser, options: c.options });
        const ids = new Map<MessageId, MessageId>();
        for (const m of c.messages) {
          const parentId = m.parentId === null ? null : ids.get(m.parentId)!;
          clock = m.createdAt;
          if (m.role !== 'assistant') {
            const created = writer.appendUserMessage({ conversationId: conv.id, parentId, role: m.role, text: m.text, images: m.images });
            ids.set(m.id, created.id);
          } else {
            const created = writer.createAssistantMessage({ conversationId: conv.id, parentId, text: m.text, settings: m.settings, model: m.model });
            ids.set(m.id, created.id);
            clock = m.updatedAt;
            if (m.status !== 'partial') {
              writer.finishMessage(created.id, { status: m.status, text: m.text, error: m.error, stats: m.stats, settings: m.settings, model: m.model });
            } else if (m.updatedAt !== m.createdAt) {
              writer.updateText(created.id, m.text);
            }
          }
          messages++;
        }
        if (c.activeLeafId !== null) writer.selectBranch(ids.get(c.activeLeafId)!);
        if (c.pinned) writer.setPinned(conv.id, true);
        if (c.deletedAt !== null) {
          clock = c.deletedAt;
          writer.deleteConversation(conv.id);
        }
        conversations.push({ sourceId: c.id, id: conv.id });
      }
    }).immediate();
  } catch (err) {
    if (err instanceof OwleryError && err.code === 'INVALID_ARGUMENT') throw importInvalid(`${err.message}`, err.details);
    // Store calls classify their own failures; BEGIN and COMMIT (a full disk, a lock) are ours.
    throw toStoreError(err, ctx.store.file);
  }
  return { conversations, duplicates, messages, imagesAdded, imagesReused };
}
