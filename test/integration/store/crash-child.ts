/**
 * Child process for the crash test: writes a conversation, then streams an answer forever (a token
 * every 10 ms, saved by an AnswerWriter every 50 ms) until the test kills it with SIGKILL.
 * Prints one JSON line per token: how many tokens were pushed and how many are saved (committed).
 *
 *   node --import tsx crash-child.ts <db file>
 */
import { Store } from '../../../src-main/store/store.ts';

const [file] = process.argv.slice(2);
const { store } = Store.open(file);
const conv = store.createConversation({ title: 'Crash test' });
const q1 = store.appendUserMessage({ conversationId: conv.id, text: 'First question' });
const a1 = store.beginAnswer({ conversationId: conv.id });
a1.push('First answer, complete.');
a1.finish({ status: 'complete' });
const q2 = store.appendUserMessage({ conversationId: conv.id, text: 'Second question' });
const writer = store.beginAnswer({ conversationId: conv.id }, { flushIntervalMs: 50 });
console.log(JSON.stringify({ conversationId: conv.id, q1: q1.id, a1: a1.messageId, q2: q2.id, a2: writer.messageId }));

let pushed = 0;
let saved = 0;
setInterval(() => {
  writer.push(`tok${pushed} `);
  pushed++;
  if (writer.unsaved === '') saved = pushed;
  console.log(JSON.stringify({ pushed, saved }));
}, 10);
