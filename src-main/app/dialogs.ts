/** The services' file dialogs, on Electron's `dialog` module, attached to the main window. */
import { dialog, shell } from 'electron';
import type { BrowserWindow, OpenDialogOptions, SaveDialogOptions } from 'electron';
import type { Dialogs, SaveDialogRequest } from '../services/dialogs.ts';
import { EXPORT_EXTENSIONS } from '../export/index.ts';
import { PHOTO_EXTENSIONS } from '../services/folders.ts';

const FORMAT_NAMES = { markdown: 'Markdown', html: 'Web page', json: 'Owlery export (JSON)', pdf: 'PDF' } as const;

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
      const options: SaveDialogOptions = {
        title: 'Export',
        defaultPath: req.suggestedName,
        filters: [{ name: FORMAT_NAMES[req.format], extensions: [EXPORT_EXTENSIONS[req.format]] }],
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
