/**
 * Hostile input other than photos (see image-fuzz.test.ts for those):
 *
 * - prompts of megabytes, through the engine process, the chat service and IPC: a clear
 *   CONTEXT_OVERFLOW or INVALID_ARGUMENT, never a crash or a hang, nothing half-saved;
 * - IPC payloads that are deeply nested, huge, of exotic types or shaped for prototype pollution,
 *   on every channel, through the dispatcher the app and the web harness use;
 * - checkpoint bombs: pickles built to exhaust memory or the stack, zip entries that inflate past
 *   their declared size, crafted safetensors headers the existing tests do not cover;
 * - control, bidi and markup characters in titles and text of exports (what
 *   test/integration/export.test.ts and test/unit/export-text.test.ts do not already cover).
 *
 * Already covered (not repeated): malformed payloads and foreign senders on every channel
 * (test/integration/ipc.test.ts), schema bounds (test/unit/ipc-contract.test.ts), malicious pickle
 * globals and opcodes, damaged zips (test/unit/models/checkpoint-pytorch.test.ts), crafted
 * safetensors offsets, sizes, dtypes and JSON (test/unit/models/checkpoint-safetensors.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Window } from 'happy-dom';
import MarkdownIt from 'markdown-it';
import { CHANNELS } from '../../src-shared/ipc/index.ts';
import { MAX_DROPPED_IMAGE_BYTES, MAX_MESSAGE_BYTES, MAX_MESSAGE_CHARS } from '../../src-shared/limits.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { buildChatPrompt } from '../../src-main/engine/mplug-owl2/prompt.ts';
import { exportHtml, exportMarkdown } from '../../src-main/export/index.ts';
import { createDispatcher, createHandlers } from '../../src-main/ipc/index.ts';
import type { Dispatch } from '../../src-main/ipc/index.ts';
import { createServices } from '../../src-main/services/composition.ts';
import type { Services } from '../../src-main/services/composition.ts';
import { MAX_PICKLE_OPS } from '../../models/checkpoint/pickle.ts';
import { PytorchFile } from '../../models/checkpoint/pytorch.ts';
import { SafetensorsFile } from '../../models/checkpoint/safetensors.ts';
import { PickleWriter, writeRawPickleCheckpoint, writeTorchZip } from '../../models/checkpoint/write-pytorch.ts';
import { openStoreEnv, removeDir, tempDir, tinyPackage } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { Figures } from './helpers/summary.ts';

const figures = new Figures('hostile-input');
const APP_URL = 'app://owlery/index.html';

let work: string;
let pkg: string;

beforeAll(async () => {
  work = await tempDir('owlery-hostile-');
  pkg = await tinyPackage(work);
});

afterAll(async () => {
  figures.write();
  await removeDir(work);
});

/** The error a promise rejects with (or null when it resolves). */
async function errorOf(p: Promise<unknown>): Promise<unknown> {
  return p.then(() => null, (e: unknown) => e);
}

describe('prompts of megabytes', () => {
  const CATEGORY = 'huge prompts (engine, chat service, IPC)';
  let host: EngineHost;
  let env: StoreEnv;
  let chat: ChatService;
  let crashes = 0;

  beforeAll(async () => {
    host = new EngineHost();
    host.onDidCrash(() => crashes++);
    await host.load(pkg, { provider: 'cpu' });
    env = openStoreEnv(join(work, 'prompts'));
    chat = new ChatService({ store: env.store, images: env.images, engine: host });
  });

  afterAll(async () => {
    figures.add(CATEGORY, { engineRestarts: crashes });
    await chat?.dispose();
    await host?.dispose();
    env?.close();
  });

  it('the engine refuses prompts of up to a megabyte with CONTEXT_OVERFLOW (no stack overflow in the tokenizer), and 100,000 image markers with INVALID_ARGUMENT', async () => {
    const MB = 1 << 20;
    // Text without spaces: ~250k pieces (a spread of that many arguments used to overflow the stack).
    const noSpaces = 'abcdefghij'.repeat(60_000);
    const cases: [string, string, string][] = [
      ['600 kB without spaces', buildChatPrompt([{ role: 'user', content: noSpaces }]), 'CONTEXT_OVERFLOW'],
      ['1 MB of mixed scripts, emoji and controls', buildChatPrompt([{ role: 'user', content: 'Ωmega 漢字 🦉\u202e\u0000 '.repeat(MB / 16) }]), 'CONTEXT_OVERFLOW'],
      ['100,000 <|image|> markers, no photos', `USER: ${'<|image|>'.repeat(100_000)} ASSISTANT:`, 'INVALID_ARGUMENT'],
      ['80,000 special tokens', `USER: ${'</s><s><unk>'.repeat(80_000)} ASSISTANT:`, 'CONTEXT_OVERFLOW'],
    ];
    for (const [name, prompt, code] of cases) {
      const err = await errorOf(host.generate({ prompt, sampling: { maxNewTokens: 2 } }));
      expect(err, name).toBeInstanceOf(OwleryError);
      expect((err as OwleryError).code, `${name}: ${(err as Error).message}`).toBe(code);
      if (code === 'CONTEXT_OVERFLOW') expect((err as Error).message).toMatch(/context window is \d+ tokens/);
    }
    expect(crashes).toBe(0);
    figures.add(CATEGORY, { badInputsTried: cases.length, badInputsRejected: cases.length });
  }, 120_000);

  it('the chat service refuses a 2 MB message before writing anything; a message at the limit is saved and its answer fails clearly', async () => {
    const before = env.store.listConversations({ limit: 50 }).items.length;
    const err = await errorOf(chat.send({ text: 'x'.repeat(2 * 1024 * 1024) }));
    expect(err).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/at most 100,000 characters/) });
    expect(env.store.listConversations({ limit: 50 }).items.length).toBe(before);

    const atLimit = 'a long pasted document '.repeat(Math.floor(MAX_MESSAGE_CHARS / 23));
    const s = await chat.send({ text: atLimit, sampling: { maxNewTokens: 4 } });
    const o = await chat.outcome(s.requestId);
    expect(o).toMatchObject({ type: 'error', error: { code: 'CONTEXT_OVERFLOW' } });
    expect(env.store.getMessage(s.userMessageId).text).toBe(atLimit);
    expect(env.store.getMessage(s.assistantMessageId)).toMatchObject({ status: 'error', error: expect.stringMatching(/context window/) });
    // A follow-up in the same thread still carries the long question (the failed, empty answer is
    // left out of the prompt and the questions merge), so it fails the same way; editing the long
    // question (a new branch) is the way on, as the message says ("shorten the message").
    const follow = await chat.send({ conversationId: s.conversationId, text: 'Shorter, then.', sampling: { greedy: true, maxNewTokens: 4 } });
    expect(await chat.outcome(follow.requestId)).toMatchObject({ type: 'error', error: { code: 'CONTEXT_OVERFLOW', message: expect.stringMatching(/start a new conversation or shorten the message/) } });
    const edited = await chat.edit({ messageId: s.userMessageId, text: 'The short version.', sampling: { greedy: true, maxNewTokens: 4 } });
    expect((await chat.outcome(edited.requestId)).type).toBe('done');
    expect(env.store.getMessage(s.userMessageId).text).toBe(atLimit); // the original stays, as a branch
    figures.add(CATEGORY, { badInputsTried: 2, badInputsRejected: 2, messagesLost: 0 });
  }, 120_000);

  it('a conversation of many long messages is fitted into the context window by the engine, with no tokenize round trips', async () => {
    const c = env.store.createConversation({ title: 'Long documents' });
    const PAIRS = 12;
    for (let i = 0; i < PAIRS; i++) {
      env.store.appendUserMessage({ conversationId: c.id, text: `Document ${i}: ${'lorem ipsum dolor sit amet '.repeat(1200)}` });
      const a = env.store.createAssistantMessage({ conversationId: c.id, text: `Summary ${i}.` });
      env.store.finishMessage(a.id, { status: 'complete' });
    }
    let calls = 0;
    const tokenize = host.tokenize.bind(host);
    host.tokenize = async (text: string) => {
      calls++;
      return tokenize(text);
    };
    try {
      const s = await chat.send({ conversationId: c.id, text: 'What did the last document say?', sampling: { greedy: true, maxNewTokens: 4 } });
      expect((await chat.outcome(s.requestId)).type).toBe('done');
    } finally {
      host.tokenize = tokenize;
    }
    // The engine tokenizes and fits the thread itself (src-main/engine/mplug-owl2/processing.ts:
    // the whole thread once, each pair once when it does not fit, then the chosen prompt).
    expect(calls).toBe(0);
  }, 120_000);
});

describe('IPC payloads: deeply nested, huge, exotic, prototype pollution', () => {
  const CATEGORY = 'IPC payloads (every channel)';
  let services: Services;
  let dispatch: Dispatch;

  beforeAll(() => {
    services = createServices({ dataDir: join(work, 'ipc'), autoLoadModel: false });
    dispatch = createDispatcher(createHandlers(services), { isTrustedSender: (url) => url === APP_URL });
  });

  afterAll(async () => {
    await services?.close();
  });

  function nestedObject(depth: number): unknown {
    let v: unknown = 1;
    for (let i = 0; i < depth; i++) v = { x: v };
    return v;
  }
  function nestedArray(depth: number): unknown {
    let v: unknown = [];
    for (let i = 0; i < depth; i++) v = [v];
    return v;
  }

  /** Payloads no channel accepts. */
  function hostilePayloads(): [string, unknown][] {
    const manyKeys: Record<string, number> = {};
    for (let i = 0; i < 200_000; i++) manyKeys[`k${i}`] = i;
    const sparse: unknown[] = [];
    sparse[1_000_000] = 1;
    const withProps = Object.assign([1, 2], { text: 'hi' });
    const nullProto = Object.assign(Object.create(null) as object, { injected: true });
    return [
      ['object nested 100,000 deep', nestedObject(100_000)],
      ['array nested 100,000 deep', nestedArray(100_000)],
      ['a 64 MiB string', 'x'.repeat(64 * 1024 * 1024)],
      ['an array of 2,000,000 items', new Array(2_000_000).fill(0)],
      ['a sparse array of length 1,000,001', sparse],
      ['an object with 200,000 keys', manyKeys],
      ['JSON __proto__', JSON.parse('{"__proto__": {"polluted": "yes"}}')],
      ['JSON constructor.prototype', JSON.parse('{"constructor": {"prototype": {"polluted": "yes"}}}')],
      ['a null-prototype object', nullProto],
      ['an array with properties', withProps],
      ['BigInt', 10n ** 30n],
      ['NaN', Number.NaN],
      ['-Infinity', Number.NEGATIVE_INFINITY],
      ['Date', new Date(0)],
      ['RegExp', /x/g],
      ['Map', new Map([['text', 'hi']])],
      ['Set', new Set([1])],
      ['Error', new Error('boom')],
      ['ArrayBuffer', new ArrayBuffer(8)],
      ['DataView', new DataView(new ArrayBuffer(8))],
      ['Uint16Array', new Uint16Array(4)],
      ['Float64Array', new Float64Array(4)],
      ['a 100 MiB Uint8Array', new Uint8Array(100 * 1024 * 1024)],
    ];
  }

  it('every channel answers each with INVALID_ARGUMENT (never INTERNAL), and nothing is polluted', async () => {
    const settingsBefore = await dispatch('settings:get', undefined, { url: APP_URL });
    const payloads = hostilePayloads();
    let tried = 0;
    let rejected = 0;
    const wrong: string[] = [];
    for (const channel of CHANNELS) {
      for (const [name, payload] of payloads) {
        tried++;
        const r = await dispatch(channel, payload, { url: APP_URL });
        if (!r.ok && r.error.code === 'INVALID_ARGUMENT' && r.error.stack === undefined && r.error.message.length < 2000) rejected++;
        else wrong.push(`${channel} ← ${name}: ${JSON.stringify(r).slice(0, 200)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype)).not.toContain('polluted');
    expect(await dispatch('settings:get', undefined, { url: APP_URL })).toEqual(settingsBefore);
    expect(services.store.listConversations().items).toEqual([]);
    figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: rejected });
  }, 120_000);

  it('hostile values inside known fields are refused too, and never reach a handler', async () => {
    const proto = (json: string) => JSON.parse(json) as unknown;
    const sha = 'ab'.repeat(32);
    const cases: [string, unknown][] = [
      ['chat:send', { text: 'x'.repeat(2 * 1024 * 1024) }],
      ['chat:send', { text: 'é'.repeat(MAX_MESSAGE_BYTES) }],
      ['chat:send', { text: 'hi', overrides: proto('{"__proto__": {"temperature": 2}}') }],
      ['chat:send', { text: 'hi', overrides: nestedObject(50_000) }],
      ['chat:send', { text: 'hi', images: [proto(`{"__proto__": {"sha256": "${sha}"}}`)] }],
      ['chat:send', { text: 'hi', images: new Array(100_000).fill({ sha256: sha }) }],
      ['chat:send', { text: 'hi', conversationId: 2 ** 53 }],
      ['chat:send', { text: 'hi', conversationId: -1 }],
      ['settings:set', { patch: proto('{"__proto__": {"theme": "dark", "offlineMode": false}}') }],
      ['settings:set', { patch: proto('{"constructor": {"prototype": {"offlineMode": false}}}') }],
      ['settings:set', { patch: { theme: nestedObject(10_000) } }],
      ['conversations:rename', { id: 1, title: 't'.repeat(10_000_000) }],
      ['conversations:search', { query: '"'.repeat(1_000_000) }],
      ['images:import', { name: 'a.png', bytes: new Uint8Array(MAX_DROPPED_IMAGE_BYTES + 1) }],
      ['images:import', { name: '../../../etc/passwd', bytes: new Uint8Array(8) }],
      ['images:import', { name: 'a.png', bytes: Array.from({ length: 8 }, () => 0) }],
      ['images:get', { sha256: '../'.repeat(21) + 'x' }],
      ['images:import-from-folder', { folderId: 'x', entryIds: new Array(1_000_000).fill('e') }],
      ['models:select', { id: '../../../../tmp/evil' }],
      ['models:pull', { repo: 'owner/name', revision: '../../../etc' }],
      ['models:import', { name: 'a/b' }],
      ['export:conversation', { id: 1, format: 'exe' }],
      ['network:log', { limit: 1e9 }],
    ];
    const wrong: string[] = [];
    let rejected = 0;
    for (const [channel, payload] of cases) {
      const r = await dispatch(channel, payload, { url: APP_URL });
      if (!r.ok && r.error.code === 'INVALID_ARGUMENT') rejected++;
      else wrong.push(`${channel}: ${JSON.stringify(r).slice(0, 200)}`);
    }
    expect(wrong).toEqual([]);
    expect(services.settings.get().offlineMode).toBe(true);
    expect(({} as Record<string, unknown>).theme).toBeUndefined();
    figures.add(CATEGORY, { badInputsTried: cases.length, badInputsRejected: rejected });
  });
});

describe('checkpoint bombs', () => {
  const CATEGORY = 'checkpoint bombs (pickle, zip, safetensors)';
  let tried = 0;
  let rejected = 0;

  afterAll(() => figures.add(CATEGORY, { badInputsTried: tried, badInputsRejected: rejected }));

  async function expectRefused(name: string, open: () => Promise<unknown>, code: string, ...parts: string[]): Promise<void> {
    tried++;
    const err = await errorOf(open());
    expect(err, name).toBeInstanceOf(OwleryError);
    expect((err as OwleryError).code, `${name}: ${(err as Error).message}`).toBe(code);
    for (const p of parts) expect((err as Error).message, name).toContain(p);
    rejected++;
  }

  /** A data.pkl of `n` copies of one opcode between PROTO 2 and STOP. */
  function opcodeRun(op: number, n: number): Uint8Array {
    const b = new Uint8Array(n + 3);
    b.set([0x80, 2], 0);
    b.fill(op, 2, n + 2);
    b[n + 2] = 0x2e;
    return b;
  }

  it('pickle bombs: millions of MARKs or lists, deep nesting, a huge APPENDS: refused, typed, with memory bounded', async () => {
    const rssBefore = process.memoryUsage().rss;
    const marks = join(work, 'marks.bin');
    await writeRawPickleCheckpoint(marks, opcodeRun(0x28, 3 * MAX_PICKLE_OPS)); // MARK × 6M: ~6 GB of arrays unbounded
    await expectRefused('MARK × 6,000,000', () => PytorchFile.open(marks), 'CHECKPOINT_UNSAFE', 'operations');
    const lists = join(work, 'lists.bin');
    await writeRawPickleCheckpoint(lists, opcodeRun(0x5d, 2 * MAX_PICKLE_OPS));
    await expectRefused('EMPTY_LIST × 4,000,000', () => PytorchFile.open(lists), 'CHECKPOINT_UNSAFE', 'operations');
    const memo = new PickleWriter().proto(2).raw(0x4e);
    for (let i = 0; i < MAX_PICKLE_OPS; i++) memo.raw(0x72, i & 255, (i >> 8) & 255, (i >> 16) & 255, 0); // LONG_BINPUT i
    const memoFile = join(work, 'memo.bin');
    await writeRawPickleCheckpoint(memoFile, memo.raw(0x2e).bytes());
    await expectRefused('a memo of 2,000,000 entries', () => PytorchFile.open(memoFile), 'CHECKPOINT_UNSAFE', 'operations');
    // 300,000 nested lists: EMPTY_LIST × n then APPEND × n − 1 (no recursion anywhere: just "not a state dict").
    const n = 300_000;
    const deep = new Uint8Array(2 * n + 2);
    deep.set([0x80, 2]);
    deep.fill(0x5d, 2, n + 2);
    deep.fill(0x61, n + 2, 2 * n + 1);
    deep[2 * n + 1] = 0x2e;
    const deepFile = join(work, 'deep.bin');
    await writeRawPickleCheckpoint(deepFile, deep);
    await expectRefused('lists nested 300,000 deep', () => PytorchFile.open(deepFile), 'CHECKPOINT_INVALID', 'does not hold a state dict');
    // MARK, 300,000 × NONE, APPENDS onto a list (a spread of that many arguments overflowed the stack).
    const appends = new Uint8Array(300_005);
    appends.set([0x80, 2, 0x5d, 0x28]);
    appends.fill(0x4e, 4, 300_004);
    appends.set([0x65, 0x2e], 300_003);
    const appendsFile = join(work, 'appends.bin');
    await writeRawPickleCheckpoint(appendsFile, appends);
    await expectRefused('APPENDS of 300,000 items', () => PytorchFile.open(appendsFile), 'CHECKPOINT_INVALID', 'does not hold a state dict');
    // Memory: nothing near the gigabytes an unbounded unpickler would take (6M MARKs alone: ~6 GB).
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(600 * 1024 * 1024);
  }, 120_000);

  it('zip bombs: a data.pkl inflating past its declared size, or declaring more than a state dict needs', async () => {
    /** Rewrites the declared uncompressed size of `entry` in its local header and central directory. */
    function lieAboutSize(file: string, entry: string, size: number): void {
      const b = readFileSync(file);
      for (let i = 0; i + 46 < b.length; i++) {
        const sig = b.readUInt32LE(i);
        if (sig === 0x04034b50 && b.toString('latin1', i + 30, i + 30 + b.readUInt16LE(i + 26)) === entry) b.writeUInt32LE(size, i + 22);
        if (sig === 0x02014b50 && b.toString('latin1', i + 46, i + 46 + b.readUInt16LE(i + 28)) === entry) b.writeUInt32LE(size, i + 24);
      }
      writeFileSync(file, b);
    }
    const stateDict = new PickleWriter().proto(2).raw(0x7d, 0x2e).bytes();
    // 64 MiB of STOP-less NONE opcodes, deflated to ~64 kB, declared as 20 bytes.
    const bomb = new Uint8Array(64 * 1024 * 1024).fill(0x4e);
    bomb.set(stateDict.subarray(0, 2));
    const lying = join(work, 'lying.bin');
    await writeTorchZip(lying, [{ name: 'lying/data.pkl', data: bomb, deflate: true }, { name: 'lying/version', data: new TextEncoder().encode('3\n') }]);
    expect(readFileSync(lying).length).toBeLessThan(1024 * 1024);
    lieAboutSize(lying, 'lying/data.pkl', 20);
    await expectRefused('data.pkl declared 20 bytes, inflating to 64 MiB', () => PytorchFile.open(lying), 'CHECKPOINT_INVALID', 'cannot inflate');

    const declared = join(work, 'declared.bin');
    await writeTorchZip(declared, [{ name: 'declared/data.pkl', data: stateDict, deflate: true }, { name: 'declared/version', data: new TextEncoder().encode('3\n') }]);
    lieAboutSize(declared, 'declared/data.pkl', 300 * 1024 * 1024);
    await expectRefused('data.pkl declaring 300 MiB', () => PytorchFile.open(declared), 'CHECKPOINT_INVALID', 'more than a state dict needs');

    const honest = join(work, 'honest.bin');
    bomb[bomb.length - 1] = 0x2e;
    await writeTorchZip(honest, [{ name: 'honest/data.pkl', data: bomb, deflate: true }, { name: 'honest/version', data: new TextEncoder().encode('3\n') }]);
    await expectRefused('data.pkl of 64 MiB of NONE, deflated', () => PytorchFile.open(honest), 'CHECKPOINT_UNSAFE', 'operations');
  }, 120_000);

  it('crafted safetensors headers: pollution-shaped names stay names, deep or non-object JSON and overflowing shapes are refused', async () => {
    async function craft(name: string, header: string, dataBytes: number): Promise<string> {
      const json = new TextEncoder().encode(header);
      const out = new Uint8Array(8 + json.length + dataBytes);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      const path = join(work, name);
      writeFileSync(path, out);
      return path;
    }
    const t = (dtype: string, shape: unknown, offsets: unknown) => JSON.stringify({ dtype, shape, data_offsets: offsets });
    // Names that are property names of Object.prototype are just tensor names.
    const names = await craft('names.safetensors', `{"__proto__": ${t('F32', [2], [0, 8])}, "constructor": ${t('F32', [1], [8, 12])}, "hasOwnProperty": ${t('F32', [1], [12, 16])}}`, 16);
    const f = await SafetensorsFile.open(names);
    try {
      expect([...f.tensors.keys()].sort()).toEqual(['__proto__', 'constructor', 'hasOwnProperty']);
      expect(f.tensors.get('__proto__')).toMatchObject({ shape: [2], dtype: 'F32' });
      expect(Array.from(new Float32Array((await f.readRaw('__proto__')).slice().buffer))).toEqual([0, 0]);
    } finally {
      await f.close();
    }
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();

    const cases: [string, string, number, string][] = [
      ['arrays nested 200,000 deep', `${'['.repeat(200_000)}${']'.repeat(200_000)}`, 0, 'does not start with'],
      ['objects nested 200,000 deep', `${'{"a":'.repeat(200_000)}1${'}'.repeat(200_000)}`, 0, '"a"'],
      ['a header that is null', 'null', 0, 'does not start with'],
      ['a shape whose product overflows 2^53', `{"a": ${t('F32', [2 ** 31, 2 ** 31, 2 ** 31, 2 ** 31], [0, 16])}}`, 16, '"a"'],
      ['a dimension of 2^53 + 2', `{"a": ${t('U8', [2 ** 53 + 2], [0, 16])}}`, 16, 'non-negative integers'],
      ['offsets that end before they begin', `{"a": ${t('F32', [0], [16, 0])}}`, 16, 'end before'],
      ['an entry that is null', '{"a": null}', 0, 'not an object'],
    ];
    for (const [name, header, data, part] of cases) {
      const p = await craft(`${name.replace(/\W+/g, '-')}.safetensors`, header, data);
      await expectRefused(name, () => SafetensorsFile.open(p), 'CHECKPOINT_INVALID', part);
    }
  });
});

describe('control, bidi and markup characters in titles and exports', () => {
  const CATEGORY = 'hostile text in exports';
  const hostileTitle = 'Trip \u202egnp.exe [x](javascript:alert(1)) <img src=x onerror=alert(2)> \u2066\u200f\ufeff end';
  const hostileTexts = [
    '<javascript:alert(1)>',
    '[a]: javascript:alert(2)\n\n[a]',
    '[b](&#106;avascript:alert(3))',
    '![c](data:text/html;base64,PHNjcmlwdD5hbGVydCg0KTwvc2NyaXB0Pg==)',
    '<a href="javascript:alert(5)">x</a>',
    '\\[d](javascript:alert(6))',
    '<svg onload=alert(7)>',
    '```\n</code><script>alert(8)</script>\n```',
    '[e](vbscript:msgbox(9))',
    '<!-- --><script>alert(10)</script>',
  ];
  let env: StoreEnv;
  let id: number;

  beforeAll(() => {
    env = openStoreEnv(join(work, 'exports'));
    id = env.store.createConversation({ title: hostileTitle }).id;
    for (const text of hostileTexts) env.store.appendUserMessage({ conversationId: id, text });
  });

  afterAll(() => env?.close());

  it('HTML: the page title is plain text with visible [U+XXXX] tags; nothing runs, nothing links', async () => {
    const dest = join(work, 'hostile.html');
    await exportHtml({ store: env.store, images: env.images }, { conversations: [id], dest });
    const html = readFileSync(dest, 'utf8');
    const title = /<title>(.*)<\/title>/s.exec(html)![1];
    expect(title).not.toMatch(/<|>/);
    expect(title).toContain('[U+202E]');
    for (const c of ['\u202e', '\u2066', '\u200f', '\ufeff']) expect(html).not.toContain(c);
    const doc = new Window().document;
    doc.write(html);
    expect(doc.title).toBe('Trip [U+202E]gnp.exe [x](javascript:alert(1)) <img src=x onerror=alert(2)> [U+2066][U+200F][U+FEFF] end');
    expect(doc.querySelectorAll('script, a, iframe, object, embed, svg, link, base, form').length).toBe(0);
    expect([...doc.querySelectorAll('*')].flatMap((el) => el.getAttributeNames().filter((n) => n.startsWith('on')))).toEqual([]);
    const texts = [...doc.querySelectorAll('.text')].map((t) => t.textContent);
    expect(texts).toEqual(hostileTexts);
    figures.add(CATEGORY, { badInputsTried: hostileTexts.length + 1, badInputsRejected: hostileTexts.length + 1 });
  });

  it('Markdown: rendered by a permissive renderer (raw HTML and linkify on), no link or image can run code', async () => {
    const dest = join(work, 'md', 'hostile.md');
    await import('node:fs/promises').then((fs) => fs.mkdir(join(work, 'md'), { recursive: true }));
    await exportMarkdown({ store: env.store, images: env.images }, { conversations: [id], dest });
    const md = readFileSync(dest, 'utf8');
    const html = new MarkdownIt({ html: true, linkify: true }).render(md);
    const doc = new Window().document;
    doc.body.innerHTML = html;
    expect(doc.querySelectorAll('script, iframe, object, embed, svg').length).toBe(0);
    const urls = [...doc.querySelectorAll('a[href], img[src]')].map((e) => e.getAttribute('href') ?? e.getAttribute('src') ?? '');
    expect(urls.filter((u) => /^\s*(javascript|vbscript|data):/i.test(u))).toEqual([]);
    expect(urls).toEqual([]);
    expect([...doc.querySelectorAll('*')].flatMap((el) => el.getAttributeNames().filter((n) => n.startsWith('on')))).toEqual([]);
    const text = doc.body.textContent ?? '';
    for (const t of ['<javascript:alert(1)>', 'javascript:alert(2)', '<svg onload=alert(7)>', '<script>alert(10)</script>']) expect(text).toContain(t);
    expect(doc.querySelector('h1')!.textContent).toBe('Trip [U+202E]gnp.exe [x](javascript:alert(1)) <img src=x onerror=alert(2)> [U+2066][U+200F][U+FEFF] end');
    figures.add(CATEGORY, { badInputsTried: hostileTexts.length + 1, badInputsRejected: hostileTexts.length + 1 });
  });
});
