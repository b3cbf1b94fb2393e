/**
 * Short notices at the bottom of the window ("Conversation deleted · Undo"). Each toast may carry
 * one action; toasts with an action stay long enough to reach it by keyboard, and pause while
 * focused or hovered (the component calls {@link ToastManager.hold}).
 */

/** An action a toast offers (one button). */
export interface ToastAction {
  label: string;
  run: () => void | Promise<void>;
}

/** One toast on screen. */
export interface Toast {
  id: number;
  message: string;
  kind: 'info' | 'error';
  action: ToastAction | null;
}

/** Options of {@link ToastManager.show}. */
export interface ToastOptions {
  kind?: 'info' | 'error';
  action?: ToastAction;
  /** How long it stays, in ms (default 6 s, 10 s with an action; 0: until dismissed). */
  timeoutMs?: number;
}

/** The toasts on screen and their timers. */
export class ToastManager {
  items = $state<Toast[]>([]);
  #nextId = 1;
  readonly #timers = new Map<number, ReturnType<typeof setTimeout>>();
  readonly #timeouts = new Map<number, number>();

  /** Shows a toast; returns its id. */
  show(message: string, opts: ToastOptions = {}): number {
    const id = this.#nextId++;
    this.items.push({ id, message, kind: opts.kind ?? 'info', action: opts.action ?? null });
    const timeout = opts.timeoutMs ?? (opts.action ? 10_000 : 6_000);
    this.#timeouts.set(id, timeout);
    this.#arm(id);
    return id;
  }

  /** Removes a toast. */
  dismiss(id: number): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    this.#timeouts.delete(id);
    this.items = this.items.filter((t) => t.id !== id);
  }

  /** Runs a toast's action, then removes the toast. */
  async act(id: number): Promise<void> {
    const toast = this.items.find((t) => t.id === id);
    this.dismiss(id);
    await toast?.action?.run();
  }

  /** Pauses (`true`) or restarts (`false`) a toast's timer, while the user is on it. */
  hold(id: number, held: boolean): void {
    clearTimeout(this.#timers.get(id));
    this.#timers.delete(id);
    if (!held) this.#arm(id);
  }

  /** Removes every toast and timer. */
  clear(): void {
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    this.#timeouts.clear();
    this.items = [];
  }

  #arm(id: number): void {
    const timeout = this.#timeouts.get(id) ?? 0;
    if (timeout > 0) this.#timers.set(id, setTimeout(() => this.dismiss(id), timeout));
  }
}
