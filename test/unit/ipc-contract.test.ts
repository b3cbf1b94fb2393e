/**
 * The IPC contract's runtime parts: the validator, the request schemas, the API table and the
 * API/client builders over a recording transport (the transport is the boundary, not the thing
 * under test).
 */
import { describe, expect, it } from 'vitest';
import {
  API,
  apiChannels,
  CHANNELS,
  createOwleryApi,
  createOwleryClient,
  EVENTS,
  folderThumbnailUrl,
  imageUrl,
  isChannelName,
  parseRequest,
  REQUEST_SCHEMAS,
  thumbnailUrl,
  unwrap,
} from '../../src-shared/ipc/index.ts';
import { MAX_MESSAGE_BYTES } from '../../src-shared/limits.ts';
import type { ChannelName, EventName, IpcResult, OwleryTransport } from '../../src-shared/ipc/index.ts';
import { OwleryError } from '../../src-shared/errors.ts';
import { utf8Length, v } from '../../src-shared/validate.ts';

function invalidPath(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OwleryError);
    expect((err as OwleryError).code).toBe('INVALID_ARGUMENT');
    return String((err as OwleryError).details?.path);
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('validator', () => {
  it('utf8Length matches TextEncoder', () => {
    for (const s of ['', 'abc', 'é', '€', '😀', 'a😀b€é', '\ud800', '\udc00x', 'x\ud800\udc00']) {
      expect(utf8Length(s)).toBe(new TextEncoder().encode(s).length);
    }
  });

  it('objects refuse unknown keys and name the path', () => {
    const s = v.object({ a: v.int({ min: 0 }), b: v.optional(v.array(v.object({ c: v.string({ max: 2 }) }), { max: 3 })) });
    expect(s.parse({ a: 1 })).toEqual({ a: 1 });
    expect(s.parse({ a: 1, b: [{ c: 'xy' }] })).toEqual({ a: 1, b: [{ c: 'xy' }] });
    expect(invalidPath(() => s.parse({ a: 1, z: 1 }, 'p'))).toBe('p.z');
    expect(invalidPath(() => s.parse({ a: -1 }, 'p'))).toBe('p.a');
    expect(invalidPath(() => s.parse({}, 'p'))).toBe('p.a');
    expect(invalidPath(() => s.parse({ a: 1, b: [{ c: 'xyz' }] }, 'p'))).toBe('p.b[0].c');
    expect(invalidPath(() => s.parse({ a: 1, b: [{}, {}, {}, {}] }, 'p'))).toBe('p.b');
  });

  it('refuses class instances and prototype tricks where plain objects are expected', () => {
    const s = v.object({ a: v.optional(v.int()) });
    expect(() => s.parse(new Date())).toThrow(OwleryError);
    expect(() => s.parse(JSON.parse('{"__proto__": {"a": 1}}'))).toThrow(/not a known field/);
    expect(() => s.parse([])).toThrow(OwleryError);
  });

  it('bounds strings by UTF-8 bytes', () => {
    const s = v.string({ maxBytes: 4 });
    expect(s.parse('😀')).toBe('😀');
    expect(() => s.parse('😀a')).toThrow(/at most 4 bytes/);
  });
});

describe('contract tables', () => {
  it('every channel has a schema and exactly one API function, named after it', () => {
    const fromApi = apiChannels();
    expect(new Set(fromApi.map(([, , c]) => c)).size).toBe(fromApi.length);
    expect(fromApi.map(([, , c]) => c)).toEqual([...CHANNELS]);
    expect(Object.keys(REQUEST_SCHEMAS).sort()).toEqual([...CHANNELS].sort());
    for (const [domain, name, channel] of fromApi) {
      expect(channel).toMatch(/^[a-z]+:[a-z-]+$/);
      // `conversations.emptyTrash` ↔ `conversations:empty-trash`: the same words, either way.
      expect(channel.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())).toBe(`${domain}:${name}`);
    }
    expect(CHANNELS).toContain('conversations:empty-trash');
    expect(CHANNELS).toContain('app:take-opened-photos');
    expect(CHANNELS).toContain('images:import-from-folder');
  });

  it('every event has a subscription function named onX, in its own domain', () => {
    const subs: string[] = [];
    for (const [domain, members] of Object.entries(API)) {
      for (const [name, m] of Object.entries(members)) {
        if (m.kind === 'event') {
          expect(name).toMatch(/^on[A-Z]/);
          expect(m.event.startsWith(`${domain}:`)).toBe(true);
          subs.push(m.event);
        } else {
          expect(name).not.toMatch(/^on[A-Z]/);
        }
      }
    }
    expect(new Set(subs).size).toBe(subs.length);
    expect([...subs].sort()).toEqual([...EVENTS].sort());
  });

  it('image URLs use the given base', () => {
    const sha = 'a'.repeat(64);
    expect(imageUrl(sha)).toBe(`owlery-image://image/${sha}`);
    expect(thumbnailUrl(sha, 'http://127.0.0.1:9/owlery-image/')).toBe(`http://127.0.0.1:9/owlery-image/thumb/${sha}`);
    expect(folderThumbnailUrl('f1', 'e2')).toBe('owlery-image://folder/f1/e2');
  });
});

describe('request schemas', () => {
  const sha = 'ab'.repeat(32);

  it('accept well-formed payloads', () => {
    expect(parseRequest('app:info', undefined)).toBeUndefined();
    expect(parseRequest('app:info', null)).toBeUndefined();
    expect(parseRequest('conversations:list', {})).toEqual({});
    expect(parseRequest('chat:send', { conversationId: 3, text: 'hi', images: [{ sha256: sha, name: 'a.jpg' }] })).toEqual({
      conversationId: 3,
      text: 'hi',
      images: [{ sha256: sha, name: 'a.jpg' }],
    });
    expect(parseRequest('settings:set', { patch: { temperature: 0.2, theme: 'dark' } })).toEqual({ patch: { temperature: 0.2, theme: 'dark' } });
    expect(parseRequest('images:import', { name: null, bytes: new Uint8Array([1, 2]) }).bytes).toEqual(new Uint8Array([1, 2]));
    expect(parseRequest('models:pull', { repo: 'MAGAer13/mplug-owl2-llama2-7b' })).toEqual({ repo: 'MAGAer13/mplug-owl2-llama2-7b' });
  });

  it('refuse payloads to void channels', () => {
    expect(invalidPath(() => parseRequest('app:info', { x: 1 }))).toBe('payload');
  });

  it('bound text, ids, names and bytes', () => {
    expect(invalidPath(() => parseRequest('chat:send', { text: 'x'.repeat(MAX_MESSAGE_BYTES + 1) }))).toBe('payload.text');
    expect(invalidPath(() => parseRequest('chat:send', { text: 'é'.repeat(MAX_MESSAGE_BYTES / 2 + 1) }))).toBe('payload.text');
    expect(invalidPath(() => parseRequest('conversations:get', { id: 0 }))).toBe('payload.id');
    expect(invalidPath(() => parseRequest('conversations:get', { id: 1.5 }))).toBe('payload.id');
    expect(invalidPath(() => parseRequest('conversations:get', { id: '1' }))).toBe('payload.id');
    expect(invalidPath(() => parseRequest('images:get', { sha256: sha.toUpperCase() }))).toBe('payload.sha256');
    expect(invalidPath(() => parseRequest('images:import', { name: '../etc/passwd', bytes: new Uint8Array(1) }))).toBe('payload.name');
    expect(invalidPath(() => parseRequest('images:import', { name: 'a.jpg', bytes: new Uint8Array(0) }))).toBe('payload.bytes');
    expect(invalidPath(() => parseRequest('images:import', { name: 'a.jpg', bytes: [1, 2, 3] }))).toBe('payload.bytes');
    expect(invalidPath(() => parseRequest('models:select', { id: '../../x' }))).toBe('payload.id');
    expect(invalidPath(() => parseRequest('models:pull', { repo: 'https://evil/x' }))).toBe('payload.repo');
    expect(invalidPath(() => parseRequest('settings:set', { patch: { temperature: 9 } }))).toBe('payload.patch.temperature');
    expect(invalidPath(() => parseRequest('settings:set', { patch: { nodeIntegration: true } }))).toBe('payload.patch.nodeIntegration');
    expect(invalidPath(() => parseRequest('chat:send', { text: 'a', images: Array.from({ length: 17 }, () => ({ sha256: sha })) }))).toBe(
      'payload.images',
    );
  });

  it('refuse unknown channels', () => {
    expect(isChannelName('chat:send')).toBe(true);
    expect(isChannelName('chat:eval')).toBe(false);
    expect(() => parseRequest('chat:eval' as ChannelName, {})).toThrow(/unknown channel/);
  });
});

describe('createOwleryApi / createOwleryClient', () => {
  function recordingTransport(answer: (channel: ChannelName, payload: unknown) => IpcResult<unknown>) {
    const calls: { channel: ChannelName; payload: unknown }[] = [];
    const listeners = new Map<EventName, Set<(p: unknown) => void>>();
    const transport: OwleryTransport = {
      invoke: async (channel, payload) => {
        calls.push({ channel, payload });
        return answer(channel, payload);
      },
      subscribe: (event, listener) => {
        const set = listeners.get(event) ?? new Set();
        listeners.set(event, set);
        set.add(listener);
        return () => set.delete(listener);
      },
    };
    const emit = (event: EventName, payload: unknown) => listeners.get(event)?.forEach((l) => l(payload));
    return { transport, calls, emit };
  }

  it('builds named functions that forward exactly one argument to their channel', async () => {
    const { transport, calls } = recordingTransport(() => ({ ok: true, value: 42 }));
    const api = createOwleryApi(transport);
    expect(Object.isFrozen(api)).toBe(true);
    expect(Object.isFrozen(api.chat)).toBe(true);
    await (api.conversations.rename as (...a: unknown[]) => Promise<unknown>)({ id: 1, title: 't' }, 'smuggled');
    await api.app.info();
    expect(calls).toEqual([
      { channel: 'conversations:rename', payload: { id: 1, title: 't' } },
      { channel: 'app:info', payload: undefined },
    ]);
    expect('invoke' in api).toBe(false);
  });

  it('delivers events to subscribers until they unsubscribe', () => {
    const { transport, emit } = recordingTransport(() => ({ ok: true, value: null }));
    const api = createOwleryApi(transport);
    const seen: unknown[] = [];
    const off = api.settings.onChange((p) => seen.push(p.changed));
    emit('settings:changed', { settings: {}, changed: ['theme'] });
    off();
    emit('settings:changed', { settings: {}, changed: ['fontSize'] });
    expect(seen).toEqual([['theme']]);
    expect(() => (api.chat.onEvent as (x: unknown) => unknown)('not a function')).toThrow(TypeError);
  });

  it('the client unwraps values and rethrows errors with their code', async () => {
    const { transport } = recordingTransport((channel) =>
      channel === 'conversations:get'
        ? { ok: false, error: { name: 'OwleryError', code: 'NOT_FOUND', message: 'no conversation 9' } }
        : { ok: true, value: { purged: 3 } },
    );
    const client = createOwleryClient(createOwleryApi(transport));
    await expect(client.conversations.emptyTrash()).resolves.toEqual({ purged: 3 });
    const err = await client.conversations.get({ id: 9 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OwleryError);
    expect((err as OwleryError).code).toBe('NOT_FOUND');
    expect(() => unwrap({ ok: false, error: { name: 'OwleryError', code: 'FORBIDDEN', message: 'x' } })).toThrow('x');
  });
});

describe('optional payloads', () => {
  it('a channel whose fields are all optional may be called without a payload', () => {
    expect(parseRequest('conversations:list', undefined)).toEqual({});
    expect(parseRequest('models:import', undefined)).toEqual({});
    expect(() => parseRequest('conversations:list', null)).toThrow(OwleryError);
    expect(() => parseRequest('conversations:get', undefined)).toThrow(OwleryError);
  });
});
