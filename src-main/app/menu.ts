/**
 * The application menu: the usual roles (edit, view, window, app on macOS) and Owlery's own
 * commands, which are forwarded to the renderer as `app:command` events.
 */
import { Menu } from 'electron';
import type { MenuItemConstructorOptions } from 'electron';
import type { AppCommand } from '../../src-shared/ipc/index.ts';

/** Builds the menu; `send` forwards a command to the renderer. */
export function buildMenu(send: (command: AppCommand) => void, opts: { isMac: boolean; isDev: boolean }): Menu {
  const cmd = (label: string, accelerator: string, command: AppCommand): MenuItemConstructorOptions => ({ label, accelerator, click: () => send(command) });
  const template: MenuItemConstructorOptions[] = [
    ...(opts.isMac ? [{ role: 'appMenu' as const }] : []),
    {
      label: '&File',
      submenu: [
        cmd('New Conversation', 'CmdOrCtrl+N', 'new-conversation'),
        cmd('Attach Photos…', 'CmdOrCtrl+O', 'attach-images'),
        cmd('Export Conversation…', 'CmdOrCtrl+E', 'export-conversation'),
        { type: 'separator' },
        cmd('Models…', 'CmdOrCtrl+Shift+M', 'models'),
        cmd(opts.isMac ? 'Settings…' : 'Preferences…', 'CmdOrCtrl+,', 'settings'),
        ...(opts.isMac ? [] : [{ type: 'separator' as const }, { role: 'quit' as const }]),
      ],
    },
    {
      label: '&Edit',
      submenu: [
        { role: 'undo' },
        { role: 'redo' },
        { type: 'separator' },
        { role: 'cut' },
        { role: 'copy' },
        { role: 'paste' },
        { role: 'selectAll' },
        { type: 'separator' },
        cmd('Search Conversations', 'CmdOrCtrl+F', 'search'),
      ],
    },
    {
      label: '&View',
      submenu: [
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
        ...(opts.isDev ? [{ type: 'separator' as const }, { role: 'reload' as const }, { role: 'toggleDevTools' as const }] : []),
      ],
    },
    { role: 'windowMenu' },
  ];
  return Menu.buildFromTemplate(template);
}
