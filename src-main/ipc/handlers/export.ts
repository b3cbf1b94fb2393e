/**
 * Handlers of the `export:` channels. Main shows the save or open dialog; the renderer learns the
 * file's name only.
 */
import { basename } from 'node:path';
import { suggestedFileName } from '../../export/index.ts';
import type { Services } from '../../services/composition.ts';
import type { DomainHandlers } from '../dispatch.ts';

/** `export:conversation`, `export:all`, `export:import`. */
export function exportHandlers(services: Services): DomainHandlers<'export'> {
  return {
    'export:conversation': async (req) => {
      const c = services.store.getConversation(req.id);
      const path = await services.dialogs.chooseSavePath({ suggestedName: suggestedFileName(c.title, req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations } = await services.exporter.exportTo(path, req.format, req.id);
      return { saved: true, fileName: basename(path), conversations };
    },
    'export:all': async (req) => {
      const path = await services.dialogs.chooseSavePath({ suggestedName: suggestedFileName(null, req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations } = await services.exporter.exportTo(path, req.format, 'all');
      return { saved: true, fileName: basename(path), conversations };
    },
    'export:import': async () => {
      const path = await services.dialogs.chooseImportFile();
      if (path === null) return { imported: false, result: null };
      const result = await services.exporter.importFrom(path);
      services.events.emit('conversations:changed', { reason: 'imported', ids: result.conversations.map((c) => c.id) });
      return { imported: true, result };
    },
  };
}
