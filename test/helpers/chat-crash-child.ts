/**
 * Child process for the crash test (test/integration/chat-crash.test.ts): opens the store and the
 * chat service, has one short exchange, then asks for a long answer. After the first streamed
 * text of that answer is written to the database it tells the parent and stops its event loop
 * (so the answer cannot finish), waiting to be killed.
 *
 * Run with tsx registered: `forkTestChild('helpers/chat-crash-child.ts', [dataDir, packageDir])` (chat-env.ts).
 * Messages to the parent: `{ type: 'first', … }` after the short exchange, `{ type: 'saved', … }`
 * after the first save of the long answer, `{ type: 'error', message }` on failure.
 */
import { ChatService } from '../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../src-main/engine/engine-host.ts';
import { openStoreEnv } from './chat-env.ts';

/** A message from this child to the test. */
export type CrashChildMessage =
  | { type: 'first'; conversationId: number; userMessageId: number; assistantMessageId: number; answer: string }
  | { type: 'saved'; userMessageId: number; assistantMessageId: number; chars: number; enginePid: number | undefined }
  | { type: 'error'; message: string };

function tell(msg: CrashChildMessage, then?: () => void): void {
  process.send!(msg, () => then?.());
}

/** Blocks this thread for good: nothing more runs here until the process is killed. */
function freeze(): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
}

async function main(): Promise<void> {
  const [dataDir, pkg] = process.argv.slice(2);
  const env = openStoreEnv(dataDir);
  const host = new EngineHost();
  await host.load(pkg, { provider: 'cpu' });
  let longRequest: string | null = null;
  let started: { userMessageId: number; assistantMessageId: number } | null = null;
  let told = false;
  const chat = new ChatService({
    store: env.store,
    images: env.images,
    engine: host,
    saveIntervalMs: 250,
    onSaved: (info) => {
      if (told || info.requestId !== longRequest || !started) return;
      told = true;
      tell({ type: 'saved', ...started, chars: info.chars, enginePid: host.enginePid }, freeze);
    },
  });

  const first = await chat.send({ text: 'A short question first.', sampling: { greedy: true, maxNewTokens: 8 } });
  const firstOutcome = await chat.outcome(first.requestId);
  if (firstOutcome.type !== 'done') throw new Error(`the first answer failed: ${firstOutcome.error.message}`);
  tell({ type: 'first', ...first, answer: firstOutcome.message.text });

  const long = await chat.send({
    conversationId: first.conversationId,
    text: 'Now write a very long answer.',
    sampling: { temperature: 1, seed: 3, maxNewTokens: 3500 },
  });
  longRequest = long.requestId;
  started = { userMessageId: long.userMessageId, assistantMessageId: long.assistantMessageId };
  const outcome = await chat.outcome(long.requestId);
  tell({ type: 'error', message: `the long answer ended before the kill (${outcome.type})` });
}

main().catch((err: unknown) => tell({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) }));
