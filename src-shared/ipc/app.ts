/**
 * The `app:` domain: what the About box shows, photos the operating system opened with Owlery,
 * and menu commands main forwards to the window. Also the app's own protocol and origin.
 */
import { v } from '../validate.ts';
import { defineDomain, event, invoke } from './define.ts';
import type { StoredImage } from './images.ts';

/** The custom protocol that serves the built renderer in the packaged app. */
export const APP_PROTOCOL = 'app';
/** The origin of the renderer in the app (`app://owlery`). */
export const APP_ORIGIN = 'app://owlery';

/** What the About box and diagnostics show. */
export interface AppInfo {
  name: string;
  version: string;
  /** `linux`, `darwin`, `win32`, …; `browser` in the web harness. */
  platform: string;
  /** Runtime versions (`node`, `electron`, `chrome`, `onnxruntime`…) where known. */
  versions: Record<string, string>;
  /** True in the web test harness (file dialogs are scripted there). */
  harness: boolean;
  /** Base of image URLs (`owlery-image://` in the app); pass it to `imageUrl` and friends (`./images.ts`). */
  imageBase: string;
}

/** Menu commands and shortcuts main forwards to the renderer (the menu lives in main). */
export type AppCommand = 'new-conversation' | 'search' | 'attach-images' | 'export-conversation' | 'settings' | 'models';
/** Every {@link AppCommand}. */
export const APP_COMMANDS: readonly AppCommand[] = ['new-conversation', 'search', 'attach-images', 'export-conversation', 'settings', 'models'];

/** `window.owlery.app`. */
export const appApi = defineDomain({
  /** App name, version, runtime versions. */
  info: invoke(v.none()).returns<AppInfo>(),
  /** A menu item or shortcut the renderer acts on. */
  onCommand: event('app:command').carries<{ command: AppCommand }>(),
  /**
   * Photos the operating system opened with Owlery ("Open with Owlery", command line), stored and
   * queued since the last call; taking them clears the queue. Call at start and on `onPhotosOpened`.
   */
  takeOpenedPhotos: invoke(v.none()).returns<StoredImage[]>(),
  /** Photos were opened with Owlery: take them with `takeOpenedPhotos` (`count` are waiting). */
  onPhotosOpened: event('app:photos-opened').carries<{ count: number }>(),
  /**
   * A plain-text report for bug reports: versions, the machine, the engine's provider report,
   * models, the settings that change how the model runs, recent warnings and errors. Never
   * message text, photos or paths.
   */
  diagnostics: invoke(v.none()).returns<{ text: string }>(),
  /** Shows the logs folder in the system's file manager; `opened` is false where it cannot (web harness). */
  openLogsFolder: invoke(v.none()).returns<{ opened: boolean }>(),
});
