/**
 * Keyboard shortcuts of the chat window. In the app, the menu owns the shortcuts it shows
 * (Ctrl/⌘+N, +F, +O, +E, +comma, +Shift+M) and sends them as `app:command` events, so the page
 * ignores those keys there; in the browser harness (no menu) the page handles them itself.
 *
 * | keys | action |
 * | --- | --- |
 * | Ctrl/⌘+N | new chat |
 * | Ctrl/⌘+F, Ctrl/⌘+K | search conversations |
 * | Ctrl/⌘+O | attach photos |
 * | Ctrl/⌘+E | export the conversation |
 * | Ctrl/⌘+comma | settings |
 * | Ctrl/⌘+Shift+M | models |
 * | Ctrl/⌘+L, or `/` outside a text field | focus the message box |
 * | Escape | stop the answer being written |
 * | `?` outside a text field, Ctrl/⌘+/ | the keyboard-shortcut sheet |
 *
 * {@link SHORTCUTS} is the same table as data: the sheet lists it and buttons take their
 * `aria-keyshortcuts` from it ({@link ariaKeys}).
 */
import type { AppCommand } from '../../src-shared/ipc/index.ts';

/** What a shortcut does: a menu command, or one of the page's own actions. */
export type ShortcutAction = AppCommand | 'focus-composer' | 'stop' | 'shortcuts';

/** One line of the shortcut sheet. */
export interface ShortcutInfo {
  action: ShortcutAction | 'send' | 'newline' | 'list';
  /** What it does, in words. */
  label: string;
  /** Key combinations as shown (Ctrl stands for ⌘ on a Mac). */
  keys: string[];
  /** The same for `aria-keyshortcuts` (WAI-ARIA spelling), when a control does it. */
  aria?: string;
}

/** Every shortcut, in the order the sheet shows them. */
export const SHORTCUTS: readonly ShortcutInfo[] = [
  { action: 'new-conversation', label: 'New chat', keys: ['Ctrl+N'], aria: 'Control+N' },
  { action: 'search', label: 'Search conversations', keys: ['Ctrl+F', 'Ctrl+K'], aria: 'Control+F Control+K' },
  { action: 'attach-images', label: 'Attach photos', keys: ['Ctrl+O'], aria: 'Control+O' },
  { action: 'export-conversation', label: 'Export the conversation', keys: ['Ctrl+E'], aria: 'Control+E' },
  { action: 'focus-composer', label: 'Go to the message box', keys: ['Ctrl+L', '/'], aria: 'Control+L /' },
  { action: 'send', label: 'Send the message', keys: ['Enter'], aria: 'Enter' },
  { action: 'newline', label: 'New line in the message', keys: ['Shift+Enter'] },
  { action: 'stop', label: 'Stop the answer being written', keys: ['Escape'], aria: 'Escape' },
  { action: 'list', label: 'In the conversation list: move, open, rename, delete', keys: ['↑ ↓', 'Enter', 'F2', 'Delete'] },
  { action: 'settings', label: 'Settings', keys: ['Ctrl+,'], aria: 'Control+,' },
  { action: 'models', label: 'Models', keys: ['Ctrl+Shift+M'], aria: 'Control+Shift+M' },
  { action: 'shortcuts', label: 'This list of shortcuts', keys: ['?', 'Ctrl+/'], aria: 'Shift+? Control+/' },
];

/** The `aria-keyshortcuts` value of an action (undefined when it has none). */
export function ariaKeys(action: ShortcutInfo['action']): string | undefined {
  return SHORTCUTS.find((s) => s.action === action)?.aria;
}

/** The key event's parts the table reads. */
export interface KeyLike {
  key: string;
  ctrlKey: boolean;
  metaKey: boolean;
  shiftKey: boolean;
  altKey: boolean;
  defaultPrevented?: boolean;
  isComposing?: boolean;
  target?: EventTarget | null;
}

function inTextField(target: EventTarget | null | undefined): boolean {
  const el = target as { tagName?: string; isContentEditable?: boolean } | null | undefined;
  const tag = el?.tagName?.toLowerCase();
  return tag === 'input' || tag === 'textarea' || tag === 'select' || el?.isContentEditable === true;
}

/**
 * The action of a key press, or `null`. `menuOwnsShortcuts`: true in the app, where the menu's
 * accelerators already send these commands.
 */
export function shortcutCommand(e: KeyLike, opts: { menuOwnsShortcuts: boolean }): ShortcutAction | null {
  if (e.defaultPrevented || e.isComposing) return null;
  const mod = e.ctrlKey || e.metaKey;
  const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
  if (!mod && !e.altKey && !e.shiftKey && key === 'Escape') return 'stop';
  if (!mod && !e.altKey && key === '?' && !inTextField(e.target)) return 'shortcuts';
  if (!mod && !e.altKey && key === '/' && !inTextField(e.target)) return 'focus-composer';
  if (!mod || e.altKey) return null;
  if (!e.shiftKey && key === '/') return 'shortcuts';
  if (!e.shiftKey && key === 'k') return 'search';
  if (!e.shiftKey && key === 'l') return 'focus-composer';
  if (opts.menuOwnsShortcuts) return null;
  if (e.shiftKey) return key === 'm' ? 'models' : null;
  switch (key) {
    case 'n':
      return 'new-conversation';
    case 'f':
      return 'search';
    case 'o':
      return 'attach-images';
    case 'e':
      return 'export-conversation';
    case ',':
      return 'settings';
    default:
      return null;
  }
}
