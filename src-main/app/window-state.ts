/**
 * The main window's position and size, remembered between runs in `<userData>/window-state.json`,
 * and brought back onto a visible display when the screens changed meanwhile.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../settings/json-file-storage.ts';

/** What is remembered. */
export interface WindowState {
  x?: number;
  y?: number;
  width: number;
  height: number;
  maximized: boolean;
}

/** A display's usable area. */
export interface DisplayArea {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The default window. */
export const DEFAULT_WINDOW_STATE: WindowState = { width: 1200, height: 800, maximized: false };
/** The smallest window. */
export const MIN_WINDOW = { width: 640, height: 480 } as const;

const file = (dir: string) => join(dir, 'window-state.json');

/** Reads the remembered state; defaults when there is none or it is unreadable. */
export function loadWindowState(dir: string): WindowState {
  try {
    const raw = JSON.parse(readFileSync(file(dir), 'utf8')) as Record<string, unknown>;
    const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : undefined);
    const width = num(raw.width);
    const height = num(raw.height);
    if (width === undefined || height === undefined) return { ...DEFAULT_WINDOW_STATE };
    return { x: num(raw.x), y: num(raw.y), width, height, maximized: raw.maximized === true };
  } catch {
    return { ...DEFAULT_WINDOW_STATE };
  }
}

/** Writes the state (atomically). Failures are ignored: losing the window position is harmless. */
export function saveWindowState(dir: string, state: WindowState): void {
  try {
    writeFileAtomic(file(dir), JSON.stringify(state));
  } catch {
    // Read-only profile folder: start with the defaults next time.
  }
}

/**
 * Clamps a remembered state to the displays: the size fits the largest display, and the window
 * keeps its position only when its title bar area is on a display (else the OS centres it).
 */
export function fitToDisplays(state: WindowState, displays: readonly DisplayArea[]): WindowState {
  if (displays.length === 0) return { ...DEFAULT_WINDOW_STATE };
  const maxW = Math.max(...displays.map((d) => d.width));
  const maxH = Math.max(...displays.map((d) => d.height));
  const width = Math.min(Math.max(state.width, MIN_WINDOW.width), maxW);
  const height = Math.min(Math.max(state.height, MIN_WINDOW.height), maxH);
  const out: WindowState = { width, height, maximized: state.maximized };
  if (state.x !== undefined && state.y !== undefined) {
    const titleX = state.x + Math.min(width, 200) / 2;
    const titleY = state.y + 10;
    const visible = displays.some((d) => titleX >= d.x && titleX < d.x + d.width && titleY >= d.y && titleY < d.y + d.height);
    if (visible) {
      out.x = state.x;
      out.y = state.y;
    }
  }
  return out;
}
