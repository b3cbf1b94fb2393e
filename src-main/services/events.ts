/**
 * The event bus main → renderer: services publish typed events here; the Electron wiring
 * forwards them to the window's `webContents`, the web harness to its WebSocket clients.
 */
import type { EventContract, EventName, OwleryEvent } from '../../src-shared/ipc/index.ts';
import { SILENT } from '../logging/logger.ts';
import type { Logger } from '../logging/logger.ts';

/** A sink for every event. */
export type EventListener = (event: OwleryEvent) => void;

/** Fan-out of {@link OwleryEvent}s to any number of listeners; a failing listener does not stop the others. */
export class EventBus {
  private readonly listeners = new Set<EventListener>();

  /** `log` records listeners that throw. */
  constructor(private readonly log: Logger = SILENT) {}

  /** Publishes one event. */
  emit<E extends EventName>(type: E, payload: EventContract[E]): void {
    const event = { type, payload } as OwleryEvent;
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error('an event listener failed', err, { event: type });
      }
    }
  }

  /** Receives every event. Returns an unsubscribe function. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
