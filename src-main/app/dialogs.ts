/** The services' file dialogs, on Electron's `dialog` module, attached to the main window. */
import { dialog, shell } from 'electron';
import type { BrowserWindow, OpenDialogOptions, SaveDialogOptions } from 'electron';
import type { Dialogs, SaveDialogRequest, SaveFormat } from '../services/dialogs.ts';
import { EXPORT_EXTENSIONS } from '../export/index.ts';
import { PHOTO_EXTENSIONS } from '../services/folders.ts';

/** Each save format's dialog title, file type name and extension. */
const SAVE_FORMATS: Record<SaveFormat, { title: string; name: string; extension: string }> = {
  markdown: { title: 'Export', name: 'Markdown', extension: EXPORT_EXTENSIONS.markdown },
  html: { title: 'Export', name: 'Web page', extension: EXPORT_EXTENSIONS.html },
  json: { title: 'Export', name: 'Owlery export (JSON)', extension: EXPORT_EXTENSIONS.json },
  pdf: { title: 'Export', name: 'PDF', extension: EXPORT_EXTENSIONS.pdf },
  'descriptions-csv': { title: 'Export photo descriptions', name: 'CSV (spreadsheets)', extension: 'csv' },
  'descriptions-json': { title: 'Export photo descriptions', name: 'JSON', extension: 'json' },
};

/** Dialogs attached to whichever window `parent()` returns. */
export function electronDialogs(parent: () => BrowserWindow | null): Dialogs {
  const open = async (options: OpenDialogOptions): Promise<string[]> => {
    const win = parent();
    const r = win ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
    return r.canceled ? [] : r.filePaths;
  };
  return {
    chooseImages: () =>
      open({ title: 'Attach photos', properties: ['openFile', 'multiSelections'], filters: [{ name: 'Photos', extensions: [...PHOTO_EXTENSIONS] }] }),
    chooseFolder: async (purpose) =>
      (await open({ title: purpose === 'photos' ? 'Choose a photo folder' : 'Choose an mPLUG-Owl2 checkpoint folder', properties: ['openDirectory'] }))[0] ?? null,
    chooseSavePath: async (req: SaveDialogRequest) => {
      const kind = SAVE_FORMATS[req.format];
      const options: SaveDialogOptions = {
        title: kind.title,
        defaultPath: req.suggestedName,
        filters: [{ name: kind.name, extensions: [kind.extension] }],
        properties: ['createDirectory', 'showOverwriteConfirmation'],
      };
      const win = parent();
      const r = win ? await dialog.showSaveDialog(win, options) : await dialog.showSaveDialog(options);
      return r.canceled || !r.filePath ? null : r.filePath;
    },
    chooseImportFile: async () =>
      (await open({ title: 'Import conversations', properties: ['openFile'], filters: [{ name: 'Owlery export (JSON)', extensions: ['json'] }] }))[0] ?? null,
    // `openPath` resolves to an error message, empty on success.
    showFolder: async (path) => (await shell.openPath(path)) === '',
  };
}
