/**
 * The Electron entry point: single-instance lock, custom protocols, hardened session and window,
 * services (store, engine host, chat, models, settings, export) hosted in the main process, IPC
 * handlers registered from the contract, events forwarded to the window, application menu and
 * remembered window state. Nothing here runs in tests: the same services, handlers and dispatch
 * table are exercised in plain Node by the integration tests and the web harness.
 *
 * Build layout it expects (relative to `app.getAppPath()`, written by `npm run build:renderer` and
 * `npm run build:app`): `out/main/main.js` (this file, bundled), `out/renderer/` (Vite build of
 * src-renderer), `out/preload/index.cjs` (bundled preload), `out/engine/engine-worker.js` (the
 * compiled engine process, run as an Electron utility process). A dev server is used only when the
 * app is not packaged and `OWLERY_DEV_SERVER_URL` names a loopback http URL.
 *
 * Photos opened with the app (file associations, command line, macOS `open-file`) are stored and
 * queued for the window (`app:take-opened-photos`). Every network request of the session is put
 * to the services' network gate (blocked and logged; see docs/security.md).
 * @see docs/adr/0001-processes.md, docs/security.md, docs/release.md
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BrowserWindow, Menu, app, dialog, ipcMain, screen, session } from 'electron';
import { APP_ORIGIN } from '../../src-shared/ipc/index.ts';
import type { AppCommand } from '../../src-shared/ipc/index.ts';
import { forwardEvents, registerHandlers } from '../ipc/register.ts';
import { createSenderCheck } from '../ipc/trust.ts';
import { photoPathsFromArgv } from '../services/opened-photos.ts';
import { createServices } from '../services/composition.ts';
import type { CorruptChoice, CorruptDatabaseInfo } from '../store/recovery.ts';
import type { Services } from '../services/composition.ts';
import { ElectronStoreSettingsStorage } from '../settings/electron-store-storage.ts';
import { createLogger } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';
import { electronDialogs } from './dialogs.ts';
import { utilityEngineProcess } from './engine-process.ts';
import { guardSessionNetwork } from './network.ts';
import { buildMenu } from './menu.ts';
import { printHtmlToPdf } from './pdf.ts';
import { handleAppProtocol, handleImageProtocol, registerPrivilegedSchemes } from './protocols.ts';
import { hardenSession, hardenWebContents } from './security.ts';
import { MIN_WINDOW, fitToDisplays, loadWindowState, saveWindowState } from './window-state.ts';

const appRoot = app.getAppPath();
const rendererDir = join(appRoot, 'out', 'renderer');
const preloadFile = join(appRoot, 'out', 'preload', 'index.cjs');
const engineEntry = join(appRoot, 'out', 'engine', 'engine-worker.js');

/** A loopback dev-server origin, in development only; `null` otherwise. */
function devServerOrigin(): string | null {
  const raw = process.env.OWLERY_DEV_SERVER_URL;
  if (app.isPackaged || !raw) return null;
  try {
    const u = new URL(raw);
    if (u.protocol !== 'http:' || !['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname)) return null;
    return u.origin;
  } catch {
    return null;
  }
}

const devOrigin = devServerOrigin();
const isTrustedSender = createSenderCheck({ rendererDir, origins: devOrigin ? [devOrigin] : [] });

let mainWindow: BrowserWindow | null = null;
let services: Services | null = null;
/** Photos opened before the services were up (macOS sends `open-file` before `ready`). */
const openedEarly: string[] = [
  ...photoPathsFromArgv(process.argv, { cwd: process.cwd(), packaged: app.isPackaged }),
];

/** Stores and queues photos the OS opened with Owlery (see `services/opened-photos.ts`). */
function openPhotos(paths: readonly string[]): void {
  if (paths.length === 0) return;
  if (services) void services.openedPhotos.open(paths);
  else openedEarly.push(...paths);
}

registerPrivilegedSchemes();

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  // "Open with Owlery" while it runs: the new instance quits and its argv arrives here.
  app.on('second-instance', (_event, argv, workingDirectory) => {
    openPhotos(photoPathsFromArgv(argv, { cwd: workingDirectory, packaged: app.isPackaged }));
    if (!mainWindow) return;
    if (mainWindow.isMinimized()) mainWindow.restore();
    mainWindow.focus();
  });
  // macOS: Finder's "Open With", a photo dropped on the Dock icon.
  app.on('open-file', (event, path) => {
    event.preventDefault();
    openPhotos([path]);
  });
  app.enableSandbox();
  app.on('web-contents-created', (_event, contents) => hardenWebContents(contents, isTrustedSender));
  app.whenReady().then(start).catch((err: unknown) => fatal(err));
}

/** The main log, before and after the services exist (the same file: `<userData>/logs/main.log`). */
function mainLog(): Logger {
  return services?.log ?? createLogger({ dir: join(app.getPath('userData'), 'logs'), name: 'main', echo: 'error' });
}

function fatal(err: unknown): void {
  mainLog().error('Owlery failed to start', err);
  app.exit(1);
}

/**
 * The history database is damaged: offer the last backup, an empty history (the damaged file is
 * kept aside, never deleted) or quitting. Runs before any window exists, so the dialog is modal
 * to the app.
 */
function askAboutDamagedHistory(info: CorruptDatabaseInfo): CorruptChoice {
  const buttons = info.backupAvailable ? ['Restore the last backup', 'Start with an empty history', 'Quit'] : ['Start with an empty history', 'Quit'];
  const choices: CorruptChoice[] = info.backupAvailable ? ['restore', 'fresh', 'quit'] : ['fresh', 'quit'];
  const picked = dialog.showMessageBoxSync({
    type: 'error',
    title: 'Owlery',
    message: 'Your conversation history could not be opened.',
    detail: `${info.message}\n\nThe damaged file is kept next to the new one (${info.file}.damaged-…), so nothing is deleted.`,
    buttons,
    defaultId: 0,
    cancelId: buttons.length - 1,
    noLink: true,
  });
  return choices[picked] ?? 'quit';
}

function start(): void {
  const dataDir = app.getPath('userData');
  hardenSession(session.defaultSession, isTrustedSender);

  services = createServices({
    dataDir,
    onCorruptDatabase: askAboutDamagedHistory,
    // The compiled engine in a utility process (no tsx, no ELECTRON_RUN_AS_NODE).
    engineWorkerUrl: pathToFileURL(engineEntry),
    engineSpawner: utilityEngineProcess,
    dialogs: electronDialogs(() => mainWindow),
    settingsStorage: new ElectronStoreSettingsStorage(dataDir),
    printToPdf: printHtmlToPdf,
    app: {
      name: app.getName(),
      version: app.getVersion(),
      platform: process.platform,
      versions: { electron: process.versions.electron ?? '', chrome: process.versions.chrome ?? '', node: process.versions.node },
      harness: false,
    },
  });
  // Every request Chromium would make for a session goes through the gate (blocked and logged).
  const gate = services.network;
  guardSessionNetwork(session.defaultSession, gate, { devOrigin });
  app.on('session-created', (created) => guardSessionNetwork(created, gate, { devOrigin }));
  const report = services.settings.loadReport;
  if (report.quarantined) services.log.warn('the settings file could not be read; it was set aside', { quarantined: report.quarantined, using: report.source });
  services.log.info('Owlery started', { version: app.getVersion(), electron: process.versions.electron, platform: process.platform, arch: process.arch, packaged: app.isPackaged });
  process.on('uncaughtException', (err) => mainLog().error('uncaught exception in the main process', err));
  process.on('unhandledRejection', (err) => mainLog().error('unhandled rejection in the main process', err));

  handleAppProtocol(rendererDir);
  handleImageProtocol(services);
  registerHandlers(ipcMain, services, {
    isTrustedSender,
    onException: (channel, err) => services?.log.error('an IPC handler failed unexpectedly', err, { channel }),
  });

  const send = (command: AppCommand) => services?.events.emit('app:command', { command });
  Menu.setApplicationMenu(buildMenu(send, { isMac: process.platform === 'darwin', isDev: !app.isPackaged }));

  mainWindow = createMainWindow(dataDir);
  const stopForwarding = forwardEvents(services, mainWindow.webContents);
  openPhotos(openedEarly.splice(0));
  mainWindow.on('closed', () => {
    stopForwarding();
    mainWindow = null;
  });

  app.on('window-all-closed', () => app.quit());
  let closing = false;
  app.on('before-quit', (event) => {
    if (closing || !services) return;
    closing = true;
    event.preventDefault();
    services.close().finally(() => app.quit());
  });
}

function createMainWindow(dataDir: string): BrowserWindow {
  const state = fitToDisplays(loadWindowState(dataDir), screen.getAllDisplays().map((d) => d.workArea));
  const win = new BrowserWindow({
    ...(state.x !== undefined && state.y !== undefined ? { x: state.x, y: state.y } : {}),
    width: state.width,
    height: state.height,
    minWidth: MIN_WINDOW.width,
    minHeight: MIN_WINDOW.height,
    show: false,
    title: 'Owlery',
    backgroundColor: '#00000000',
    webPreferences: {
      preload: preloadFile,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      nodeIntegrationInSubFrames: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      experimentalFeatures: false,
      // macOS and Windows check spelling with the system's dictionaries; on Linux Chromium would
      // download Hunspell dictionaries from Google's servers, which Owlery never contacts.
      spellcheck: process.platform === 'darwin' || process.platform === 'win32',
      navigateOnDragDrop: false,
      devTools: !app.isPackaged,
    },
  });
  if (state.maximized) win.maximize();
  win.once('ready-to-show', () => win.show());

  const remember = () => {
    if (win.isDestroyed()) return;
    const b = win.getNormalBounds();
    saveWindowState(dataDir, { x: b.x, y: b.y, width: b.width, height: b.height, maximized: win.isMaximized() });
  };
  win.on('close', remember);

  void win.loadURL(devOrigin ? `${devOrigin}/` : `${APP_ORIGIN}/index.html`);
  return win;
}
