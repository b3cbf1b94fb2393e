/**
 * File dialogs (and showing a folder of the app's in the file manager), behind an interface: the app implements it with Electron's `dialog`
 * (`src-main/app/dialogs.ts`), the web harness with choices a test script makes over HTTP
 * (`test/harness/server.ts`). Paths returned here are the only files outside the data folder the
 * services ever read for the renderer: the user chose them.
 */
import type { ExportFormat } from '../../src-shared/chat.ts';

/** What a save dialog saves: conversations in an export format, or a folder's photo descriptions. */
export type SaveFormat = ExportFormat | 'descriptions-csv' | 'descriptions-json';

/** What a save dialog is for. */
export interface SaveDialogRequest {
  /** File name suggested to the user. */
  suggestedName: string;
  format: SaveFormat;
}

/** The dialogs the services need. Each resolves to `null`/`[]` when the user cancels. */
export interface Dialogs {
  /** One or more photos to attach. */
  chooseImages(): Promise<string[]>;
  /** A folder: photos for the photos panel, or a checkpoint to import. */
  chooseFolder(purpose: 'photos' | 'checkpoint'): Promise<string | null>;
  /** Where to save an export. */
  chooseSavePath(request: SaveDialogRequest): Promise<string | null>;
  /** An exported JSON file to import. */
  chooseImportFile(): Promise<string | null>;
  /** Shows a folder of the app's own (the logs) in the system's file manager; false where it cannot. */
  showFolder(path: string): Promise<boolean>;
}

/** Dialogs that always report a cancel (CLI, tests that do not use dialogs). */
export const CANCELLING_DIALOGS: Dialogs = {
  chooseImages: async () => [],
  chooseFolder: async () => null,
  chooseSavePath: async () => null,
  chooseImportFile: async () => null,
  showFolder: async () => false,
};
