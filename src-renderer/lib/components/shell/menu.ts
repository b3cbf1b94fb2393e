/** Types and helpers shared by the shell's small widgets. */

/** One entry of an {@link ActionsMenu}. */
export interface MenuItem {
  label: string;
  run: () => void;
  /** Shown in the danger colour (delete). */
  danger?: boolean;
}

/**
 * Focuses the `index`-th element matching `[data-nav-item]` inside the element with id
 * `containerId` (`-1`: the last). Returns whether something got focus.
 */
export function focusNavItem(containerId: string, index = 0): boolean {
  const items = document.getElementById(containerId)?.querySelectorAll<HTMLElement>('[data-nav-item]');
  if (!items || items.length === 0) return false;
  const i = index < 0 ? items.length - 1 : Math.min(index, items.length - 1);
  items[i]!.focus();
  return true;
}

/** Focuses the element with `id` (and selects its text when `select`). Returns whether it exists. */
export function focusById(id: string, select = false): boolean {
  const el = document.getElementById(id) as HTMLInputElement | HTMLTextAreaElement | null;
  if (!el) return false;
  el.focus();
  if (select && typeof el.select === 'function') el.select();
  return true;
}

/** The ids the shell's shortcuts focus. */
export const IDS = {
  composer: 'composer-input',
  search: 'conversation-search',
  list: 'conversation-list',
  results: 'search-results',
  main: 'main-content',
  sidebar: 'sidebar',
} as const;
