/**
 * Handlers of the `export:` channels. Main shows the save or open dialog; the renderer learns the
 * file's name only.
 */
import { basename } from 'node:path';
import type { ExportFormat } from '../../../src-shared/chat.ts';
import { OwleryError } from '../../../src-shared/errors.ts';
import type { ExportBackend, Services } from '../../services/services.ts';
import type { HandlerTable } from '../dispatch.ts';

/** File extension per format. */
export const EXPORT_EXTENSIONS: Readonly<Record<ExportFormat, string>> = { markdown: 'md', html: 'html', json: 'json', pdf: 'pdf' };

/** A file name from a title: no folders, no characters file systems refuse, at most 80 characters. */
export function fileNameFor(title: string, format: ExportFormat): string {
  // eslint-disable-next-line no-control-regex
  const clean = title.replace(/[\u0000-\u001f<>:"/\\|?*]+/g, ' ').replace(/\s+/g, ' ').trim().replace(/^\.+/, '').slice(0, 80).trim();
  return `${clean || 'Owlery conversation'}.${EXPORT_EXTENSIONS[format]}`;
}

function backend(services: Services): ExportBackend {
  if (!services.exporter) throw new OwleryError('EXPORT_FAILED', 'Export is not available in this build.');
  return services.exporter;
}

/** `export:conversation`, `export:all`, `export:import`. */
export function exportHandlers(services: Services): Pick<HandlerTable, 'export:conversation' | 'export:all' | 'export:import'> {
  return {
    'export:conversation': async (req) => {
      const exporter = backend(services);
      const c = services.store.getConversation(req.id);
      const path = await services.dialogs.chooseSavePath({ suggestedName: fileNameFor(c.title, req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations } = await exporter.exportTo(path, req.format, req.id);
      return { saved: true, fileName: basename(path), conversations };
    },
    'export:all': async (req) => {
      const exporter = backend(services);
      const path = await services.dialogs.chooseSavePath({ suggestedName: fileNameFor('Owlery conversations', req.format), format: req.format });
      if (path === null) return { saved: false, fileName: null, conversations: 0 };
      const { conversations } = await exporter.exportTo(path, req.format, 'all');
      return { saved: true, fileName: basename(path), conversations };
    },
    'export:import': async () => {
      const exporter = backend(services);
      const path = await services.dialogs.chooseImportFile();
      if (path === null) return { imported: false, result: null };
      const result = await exporter.importFrom(path);
      services.events.emit('conversations:changed', { reason: 'imported', ids: result.conversations.map((c) => c.id) });
      return { imported: true, result };
    },
  };
}
