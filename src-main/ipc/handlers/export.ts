/**
 * Handlers of the `export:` channels. Main shows the save or open dialog; the renderer learns the
 * file's name only.
 */
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ImportResult } from '../../../src-shared/ipc/index.ts';
import { suggestedFileName } from '../../export/index.ts';
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** Files whose import left conversations out as already here, by token (the last few). */
const KEEP_TOKENS = 8;

/** `export:conversation`, `export:all`, `export:import`, `export:import-copies`. */
export function exportHandlers(services: Services): DomainHandlers<'export'> {
  const pending = new Map<string, string>();
  const finish = (path: string, result: ImportResult) => {
    if (result.conversations.length > 0) services.events.emit('conversations:changed', { reason: 'imported', ids: result.conversations.map((c) => c.id) });
    let copiesToken: string | null = null;
    if (result.duplicates.length > 0) {
      copiesToken = randomBytes(12).toString('base64url');
      pending.set(copiesToken, path);
      if (pending.size > KEEP_TOKENS) pending.delete(pending.keys().next().value!);
    }
    return { imported: true, result, copiesToken };
  };
  return {
    'export:conversation': async (req) => {
      const c = services.store.getConversation(req.id);
      const path = await services.dialogs.chooseSavePath({ suggestedName: suggestedFileName(c.title, req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations, skipped } = await services.exporter.exportTo(path, req.format, req.id);
      return { saved: true, fileName: basename(path), conversations, ...(skipped?.length ? { skipped } : {}) };
    },
    'export:all': async (req) => {
      const path = await services.dialogs.chooseSavePath({ suggestedName: suggestedFileName(null, req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations, skipped } = await services.exporter.exportTo(path, req.format, 'all');
      return { saved: true, fileName: basename(path), conversations, ...(skipped?.length ? { skipped } : {}) };
    },
    'export:import': async () => {
      const path = await services.dialogs.chooseImportFile();
      if (path === null) return { imported: false, result: null, copiesToken: null };
      return finish(path, await services.exporter.importFrom(path));
    },
    'export:import-copies': async (req) => {
      const path = pending.get(req.token);
      if (path === undefined) throw new OwleryError('NOT_FOUND', 'That import is no longer at hand; import the file again.');
      pending.delete(req.token);
      return finish(path, await services.exporter.importFrom(path, { duplicates: 'copy', only: req.sourceIds }));
    },
  };
}
