/**
 * A service host for the kill test (test/robustness/engine-faults.test.ts): the store, image store,
 * engine and chat service on a data folder, chatting non-stop (new conversations and follow-ups,
 * photos on some messages, every streamed piece saved at once) until it is killed with SIGKILL.
 *
 * It tells the parent what is durably written, right after each write: `sent` (the question and its
 * answer row exist), `saved` (this much answer text is committed) and `done` (the answer is final).
 * The parent checks each of these against the database after the kill.
 *
 * Run with tsx registered: `forkTestChild('robustness/helpers/service-host-child.ts', [dataDir, packageDir, seed])` (test/helpers/chat-env.ts).
 */
import { ChatService } from '../../../src-main/chat/chat-service.ts';
import { EngineHost } from '../../../src-main/engine/engine-host.ts';
import { makePhoto, openStoreEnv } from '../../helpers/chat-env.ts';

/** A message from this child to the test. */
export type HostChildMessage =
  | { type: 'ready'; enginePid: number | undefined }
  | { type: 'sent'; conversationId: number; userMessageId: number; assistantMessageId: number; text: string; photos: number }
  | { type: 'saved'; messageId: number; chars: number }
  | { type: 'done'; messageId: number; status: string; text: string }
  | { type: 'error'; message: string };

function tell(msg: HostChildMessage): void {
  process.send?.(msg);
}

async function main(): Promise<void> {
  const [dataDir, pkg, seedArg] = process.argv.slice(2);
  const seed = Number(seedArg);
  const env = openStoreEnv(dataDir);
  const host = new EngineHost();
  await host.load(pkg, { provider: 'cpu' });
  const chat = new ChatService({
    store: env.store,
    images: env.images,
    engine: host,
    saveIntervalMs: 0,
    deltaIntervalMs: 5,
    onSaved: (info) => tell({ type: 'saved', messageId: info.messageId, chars: info.chars }),
  });
  tell({ type: 'ready', enginePid: host.enginePid });
  let conversationId: number | undefined;
  for (let i = 0; ; i++) {
    const photos = i % 4 === 1 ? [{ kind: 'bytes' as const, bytes: await makePhoto(seed * 100 + i, 24 + (i % 5), 20), name: `p${i}.png` }] : [];
    const text = `Question ${i} of run ${seed}: ${'what do you see? '.repeat(1 + (i % 3))}`;
    const started = await chat.send({
      conversationId: i % 3 === 0 ? undefined : conversationId,
      text,
      images: photos,
      sampling: { temperature: 1, seed: seed * 1000 + i, maxNewTokens: 24 + (i % 4) * 24 },
    });
    conversationId = started.conversationId;
    tell({ type: 'sent', conversationId: started.conversationId, userMessageId: started.userMessageId, assistantMessageId: started.assistantMessageId, text, photos: photos.length });
    const outcome = await chat.outcome(started.requestId);
    if (outcome.message) tell({ type: 'done', messageId: outcome.message.id, status: outcome.message.status, text: outcome.message.text });
  }
}

main().catch((err: unknown) => tell({ type: 'error', message: err instanceof Error ? err.stack ?? err.message : String(err) }));
