/**
 * Importing a conversation that is already here (the same conversation id and content): left
 * out and reported, whether it was imported before or the file came from this history; copies on
 * request, through the IPC channels the export dialog uses (`export:import`, `export:import-copies`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { ImportOutcome } from '../../src-shared/ipc/index.ts';
import { exportJson, importJson } from '../../src-main/export/index.ts';
import { startHarness } from '../harness/server.ts';
import type { Harness } from '../harness/server.ts';
import { makePhoto, openStoreEnv, removeDir, tempDir } from '../helpers/chat-env.ts';
import type { StoreEnv } from '../helpers/chat-env.ts';
import { writeSampleHistory } from '../helpers/chat-history.ts';

let work: string;
let source: StoreEnv;
let file: string;
let ids: number[];

beforeAll(async () => {
  work = await tempDir('owlery-import-dup-');
  source = openStoreEnv(join(work, 'source'));
  await writeSampleHistory(source, await makePhoto(1, 40, 30), await makePhoto(2, 25, 50, 'jpeg'));
  ids = [...source.store.listConversations({}).items, ...source.store.listTrash({}).items].map((c) => c.id).sort((a, b) => a - b);
  file = join(work, 'backup.json');
  await exportJson({ store: source.store, images: source.images }, { conversations: ids, dest: file });
});

afterAll(async () => {
  source?.close();
  await removeDir(work);
});

describe('importing what is already here', () => {
  it('leaves out conversations exported from this history, unless copies are asked for', async () => {
    const ctx = { store: source.store, images: source.images };
    const result = await importJson(ctx, file);
    expect(result.conversations).toEqual([]);
    expect(result.duplicates.map((d) => [d.sourceId, d.existingId])).toEqual(ids.map((id) => [id, id]));
    expect(result).toMatchObject({ messages: 0, imagesAdded: 0, imagesReused: 0 });
    // A changed conversation is not the same any more.
    source.store.renameConversation(ids[0], 'Renamed since');
    const changed = await importJson(ctx, file, { only: [ids[0]] });
    expect(changed.conversations.map((c) => c.sourceId)).toEqual([ids[0]]);
  });

  it('notices a second import of the same file into another history; copies come on request', async () => {
    const target = openStoreEnv(join(work, 'target'));
    try {
      const ctx = { store: target.store, images: target.images };
      const first = await importJson(ctx, file);
      expect(first.conversations).toHaveLength(ids.length);
      expect(first.duplicates).toEqual([]);
      const second = await importJson(ctx, file);
      expect(second.conversations).toEqual([]);
      expect(second.duplicates.map((d) => d.existingId)).toEqual(first.conversations.map((c) => c.id));
      // Still noticed after the first import went to the trash.
      target.store.deleteConversation(first.conversations[0].id);
      expect((await importJson(ctx, file, { only: [ids[0]] })).duplicates).toHaveLength(1);
      const copies = await importJson(ctx, file, { duplicates: 'copy', only: [ids[1]] });
      expect(copies.conversations.map((c) => c.sourceId)).toEqual([ids[1]]);
      expect(target.store.getThread(copies.conversations[0].id).messages.map((m) => m.text)).toEqual(
        target.store.getThread(first.conversations[1].id).messages.map((m) => m.text),
      );
    } finally {
      target.close();
    }
  });

  it('goes through export:import and export:import-copies', async () => {
    let harness: Harness | undefined;
    const dataDir = join(work, 'harness');
    try {
      harness = await startHarness({ dataDir, services: { autoLoadModel: false } });
      const call = async <T>(channel: string, payload?: unknown): Promise<T> => {
        const result = await harness!.dispatch(channel, payload, { url: harness!.url });
        if (!result.ok) throw new Error(`${channel}: ${result.error.message}`);
        return result.value as T;
      };
      harness.choose('import', [file]);
      const first = await call<ImportOutcome>('export:import');
      expect(first).toMatchObject({ imported: true, copiesToken: null });
      harness.choose('import', [file]);
      const again = await call<ImportOutcome>('export:import');
      expect(again.result!.conversations).toEqual([]);
      expect(again.result!.duplicates).toHaveLength(ids.length);
      expect(again.copiesToken).toMatch(/^[\w-]+$/);
      const copies = await call<ImportOutcome>('export:import-copies', { token: again.copiesToken, sourceIds: [ids[0]] });
      expect(copies.result!.conversations.map((c) => c.sourceId)).toEqual([ids[0]]);
      // A token is used once.
      const reused = await harness.dispatch('export:import-copies', { token: again.copiesToken, sourceIds: [ids[0]] }, { url: harness.url });
      expect(reused).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
    } finally {
      await harness?.close();
    }
  });
});
