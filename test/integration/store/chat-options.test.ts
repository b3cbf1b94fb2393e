/**
 * The store's parts for chat polish: a chat's instructions and settings, presets, who set a title,
 * cover photos, continuing a finished answer, and finding an earlier import.
 */
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_INSTRUCTIONS_CHARS } from '../../../src-shared/limits.ts';
import { Store } from '../../../src-main/store/store.ts';
import { fakeClock, owleryErrorOf, tempDir } from './helpers.ts';

let tmp: ReturnType<typeof tempDir>;
let store: Store;

beforeEach(() => {
  tmp = tempDir();
  store = Store.open(join(tmp.dir, 'history.sqlite'), {}, { now: fakeClock() }).store;
});
afterEach(() => {
  store.close();
  tmp.cleanup();
});

function photo(n: number): string {
  const sha256 = n.toString(16).padStart(64, '0');
  store.putImageRecord({ sha256, ext: 'png', mime: 'image/png', byteSize: 10, width: 4, height: 4, orientation: 1, thumbnail: null });
  return sha256;
}

describe('a chat\'s options', () => {
  it('start empty, change field by field, and are checked', () => {
    const c = store.createConversation({ title: 'Owls' });
    expect(c.options).toEqual({ instructions: '', temperature: null, maxNewTokens: null });
    expect(store.setConversationOptions(c.id, { instructions: 'Answer in French.\r\nBriefly.' }).options).toEqual({
      instructions: 'Answer in French.\nBriefly.', temperature: null, maxNewTokens: null,
    });
    expect(store.setConversationOptions(c.id, { temperature: 0.2, maxNewTokens: 64 }).options).toEqual({
      instructions: 'Answer in French.\nBriefly.', temperature: 0.2, maxNewTokens: 64,
    });
    expect(store.setConversationOptions(c.id, { temperature: null }).options.temperature).toBeNull();
    expect(owleryErrorOf(() => store.setConversationOptions(c.id, { temperature: 3 }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'Temperature must be from 0 to 2.' });
    expect(owleryErrorOf(() => store.setConversationOptions(c.id, { maxNewTokens: 1.5 })).code).toBe('INVALID_ARGUMENT');
    expect(owleryErrorOf(() => store.setConversationOptions(c.id, { instructions: 'x'.repeat(MAX_INSTRUCTIONS_CHARS + 1) })).code).toBe('INVALID_ARGUMENT');
    // Nothing of a refused change was written.
    expect(store.getConversation(c.id).options).toEqual({ instructions: 'Answer in French.\nBriefly.', temperature: null, maxNewTokens: 64 });
    expect(owleryErrorOf(() => store.setConversationOptions(999, {})).code).toBe('NOT_FOUND');
  });

  it('knows whether the user named the conversation', () => {
    const c = store.createConversation({ title: 'From the first message' });
    expect(c.titleSetByUser).toBe(false);
    expect(store.renameConversation(c.id, 'Still automatic', { byUser: false }).titleSetByUser).toBe(false);
    expect(store.renameConversation(c.id, 'Mine').titleSetByUser).toBe(true);
    // An automatic retitle later changes the text but not who owns it.
    expect(store.renameConversation(c.id, 'Automatic again', { byUser: false }).titleSetByUser).toBe(true);
    expect(store.createConversation({ title: 'Named', titleSetByUser: true }).titleSetByUser).toBe(true);
  });
});

describe('presets', () => {
  it('are saved, listed by name, changed and deleted; names are unique regardless of case', () => {
    const terse = store.savePreset({ name: '  Terse ', instructions: 'One sentence.', maxNewTokens: 40 });
    const creative = store.savePreset({ name: 'Creative', temperature: 1.2 });
    expect(store.listPresets().map((p) => p.name)).toEqual(['Creative', 'Terse']);
    expect(terse).toMatchObject({ name: 'Terse', instructions: 'One sentence.', temperature: null, maxNewTokens: 40 });
    expect(owleryErrorOf(() => store.savePreset({ name: 'terse' }))).toMatchObject({ code: 'INVALID_ARGUMENT', message: 'There is already a preset named “Terse”.' });
    expect(owleryErrorOf(() => store.savePreset({ name: '   ' })).code).toBe('INVALID_ARGUMENT');
    const renamed = store.savePreset({ id: creative.id, name: 'Playful' });
    expect(renamed).toMatchObject({ id: creative.id, name: 'Playful', temperature: 1.2 });
    // Keeping its own name (in another case) is not a clash.
    expect(store.savePreset({ id: terse.id, name: 'TERSE' }).name).toBe('TERSE');
    store.deletePreset(creative.id);
    expect(store.listPresets().map((p) => p.id)).toEqual([terse.id]);
    expect(owleryErrorOf(() => store.deletePreset(creative.id)).code).toBe('NOT_FOUND');
  });
});

describe('cover photos', () => {
  it('are the first photo attached in a conversation', () => {
    const c = store.createConversation({ title: 'Garden' });
    store.appendUserMessage({ conversationId: c.id, text: 'no photo yet' });
    expect(store.listConversations().items[0].coverImage).toBeNull();
    const [a, b] = [photo(1), photo(2)];
    const q = store.appendUserMessage({ conversationId: c.id, text: 'two photos', images: [{ sha256: a }, { sha256: b }] });
    store.appendUserMessage({ conversationId: c.id, text: 'another', images: [{ sha256: b }] });
    store.editMessage(q.id, { text: 'edited', images: [{ sha256: b }] });
    expect(store.getConversation(c.id).coverImage).toBe(a);
  });
});

describe('continuing an answer', () => {
  it('reopens a stopped answer and appends to it, only at the end of its branch', () => {
    const c = store.createConversation({ title: 'Story' });
    const q = store.appendUserMessage({ conversationId: c.id, text: 'Tell a story.' });
    const a = store.createAssistantMessage({ conversationId: c.id });
    store.appendText(a.id, 'Once upon a time');
    store.finishMessage(a.id, { status: 'cancelled' });
    const writer = store.continueAnswer(a.id, { flushIntervalMs: 0 });
    expect(store.getMessage(a.id)).toMatchObject({ status: 'partial', error: null });
    expect(owleryErrorOf(() => store.reopenAnswer(a.id)).message).toBe('This answer is still being written.');
    writer.push(', there was an owl.');
    expect(writer.finish({ status: 'complete' })).toMatchObject({ text: 'Once upon a time, there was an owl.', status: 'complete' });
    expect(owleryErrorOf(() => store.reopenAnswer(q.id)).message).toBe('Only answers can be continued.');
    store.appendUserMessage({ conversationId: c.id, text: 'And then?' });
    expect(owleryErrorOf(() => store.reopenAnswer(a.id)).message).toBe('Only the last answer of a conversation can be continued.');
  });
});

describe('earlier imports', () => {
  it('are found by their import key, in the trash too', () => {
    const c = store.createConversation({ title: 'Imported', importKey: 'k1' });
    expect(store.findImported('k1')?.id).toBe(c.id);
    store.deleteConversation(c.id);
    expect(store.findImported('k1')?.id).toBe(c.id);
    store.purgeConversation(c.id);
    expect(store.findImported('k1')).toBeUndefined();
  });
});
