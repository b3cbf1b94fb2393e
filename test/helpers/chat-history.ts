/**
 * A sample history for export tests, written through the store's API: branches (a regenerated
 * answer, an edited question), every answer status, stats, settings and model, shared photos, a
 * pinned, a trashed and an empty conversation, and hostile text (markup, `javascript:` links,
 * control characters, a right-to-left override).
 */
import type { GenerationStats } from '../../src-shared/engine.ts';
import type { ConversationId, MessageId } from '../../src-shared/domain.ts';
import type { StoreEnv } from './chat-env.ts';

/** Text that would inject markup if an exporter did not escape it. */
export const HOSTILE_TITLE = 'Trip <script>alert("title")</script> [x](javascript:alert(1)) \u202Egnp.exe';
/** A hostile question. */
export const HOSTILE_QUESTION =
  'Compare [these](javascript:alert(1)) photos\n\n<img src=x onerror=alert(2)> & <b>bold</b>\n\u202Egnp.exe\u0007 ![x](javascript:alert(3))';
/** A hostile answer (Markdown the model might produce, plus an injection attempt). */
export const HOSTILE_ANSWER =
  '# Heading\n- item *bold* `code`\n    indented\n](javascript:alert(1)) <script>alert(4)</script>\r\nline\u2028after \u202Ereversed\u202C end';

/**
 * An answer written in the Markdown models produce: a heading, a numbered list with emphasis, a
 * code fence, a table, a link, a date and raw HTML. Exports keep it Markdown (its HTML as text).
 */
export const RICH_ANSWER = [
  '# Colours',
  '',
  '1. A **rainbow gradient** across the sky',
  '2. A *calm* sea, photographed 2026-12-04 10:58',
  '',
  '```python',
  'def hue(x):',
  '    return "<b>%d</b>" % x',
  '```',
  '',
  '| Colour | Share |',
  '| --- | ---: |',
  '| red | 40% |',
  '| blue | 60% |',
  '',
  'More at [the colour guide](https://example.com/colours?a=1&b=2). <b>not bold</b>',
].join('\n');

/** Statistics as the engine reports them. */
export function sampleStats(outputTokens: number): GenerationStats {
  return {
    provider: 'cpu',
    promptTokens: 150,
    outputTokens,
    contextLimit: 4096,
    imageCount: 2,
    imagesFromCache: 1,
    imageDecodeMs: 3.5,
    imageEncodeMs: 41.25,
    prefillMs: 12.5,
    prefillTokensPerSecond: 12000,
    timeToFirstTokenMs: 60.75,
    decodeTokensPerSecond: 88.5,
    totalMs: 400,
    reusedPromptTokens: 0,
  };
}

/** The pinned conversation's instructions: Markdown and HTML that exports must show as written. */
export const PINNED_INSTRUCTIONS = 'Answer as a **gardener**.\n<script>alert(1)</script> # not a heading';

/** Ids of what {@link writeSampleHistory} wrote. */
export interface SampleHistory {
  /** Branches, statuses, hostile text, two photos. */
  main: ConversationId;
  /** Pinned; reuses photo A; its answer is unfinished (`partial`). */
  pinned: ConversationId;
  /** In the trash; starts with a system message. */
  trashed: ConversationId;
  /** No messages. */
  empty: ConversationId;
  /** The edited question (on screen) and the original. */
  editedQuestion: MessageId;
  originalQuestion: MessageId;
  /** The first answer to the original question (the hostile one; its branch is not on screen). */
  hostileAnswer: MessageId;
}

/** Writes the sample history; `photoA`/`photoB` are image bytes. */
export async function writeSampleHistory(env: StoreEnv, photoA: Uint8Array, photoB: Uint8Array): Promise<SampleHistory> {
  const { store, images } = env;
  const a = await images.put(photoA, { name: 'garden.png' });
  const b = await images.put(photoB, { name: 'beach.jpg' });
  const model = { packageId: 'tiny-owl2', sha256: 'ab'.repeat(32) };
  const settings = { temperature: 0.7, topP: 0.9, maxNewTokens: 512, seed: 7, aspectMode: 'resize' as const, provider: 'auto' };

  const main = store.createConversation({ title: HOSTILE_TITLE, modelId: 'tiny-owl2' }).id;
  const q1 = store.appendUserMessage({ conversationId: main, text: HOSTILE_QUESTION, images: [{ sha256: a.sha256, name: 'garden <1>.png' }, { sha256: b.sha256, name: null }] });
  const w1 = store.beginAnswer({ conversationId: main, parentId: q1.id, settings, model });
  w1.push(HOSTILE_ANSWER);
  w1.finish({ status: 'complete', stats: sampleStats(42) });
  const r = store.regenerate(w1.messageId, { settings: { ...settings, seed: 8 }, model });
  store.appendText(r.id, 'A second try that was stopped');
  store.finishMessage(r.id, { status: 'cancelled', stats: sampleStats(6) });
  const q2 = store.appendUserMessage({ conversationId: main, parentId: r.id, text: 'Follow-up on the stopped answer.' });
  const w2 = store.beginAnswer({ conversationId: main, parentId: q2.id, settings, model });
  w2.push('Partial text before the crash');
  w2.finish({ status: 'error', error: 'the engine process stopped unexpectedly (signal SIGKILL)' });
  const edited = store.editMessage(q1.id, { text: 'Edited: what is in these photos?' });
  const w3 = store.beginAnswer({ conversationId: main, parentId: edited.id, settings, model });
  w3.push('Two photos: a garden and a beach.');
  w3.finish({ status: 'complete', stats: sampleStats(9) });

  // A title of the user's and the chat's own instructions, temperature and answer length.
  const pinned = store.createConversation({ title: 'Pinned one', titleSetByUser: true, options: { instructions: PINNED_INSTRUCTIONS, temperature: 0.3, maxNewTokens: 99 } }).id;
  store.appendUserMessage({ conversationId: pinned, text: 'Same garden again', images: [{ sha256: a.sha256, name: 'garden.png' }] });
  const w4 = store.beginAnswer({ conversationId: pinned, settings, model: null });
  w4.push('Still writ');
  w4.flush();
  w4.dispose(); // left partial, as after a crash
  store.setPinned(pinned, true);

  const trashed = store.createConversation({ title: 'Old stuff' }).id;
  store.appendUserMessage({ conversationId: trashed, role: 'system', text: 'Be brief.' });
  store.appendUserMessage({ conversationId: trashed, text: 'Hello?' });
  const w5 = store.beginAnswer({ conversationId: trashed });
  w5.push('Hi.');
  w5.finish({ status: 'complete', stats: null });
  store.deleteConversation(trashed);

  const empty = store.createConversation({ title: '' }).id;
  return { main, pinned, trashed, empty, editedQuestion: edited.id, originalQuestion: q1.id, hostileAnswer: w1.messageId };
}
