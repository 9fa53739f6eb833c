/**
 * @module store/queue/due-signal — tells dispatchers that new deliveries may be due: those of this
 * process at once, and — where the client can (PostgreSQL NOTIFY/LISTEN) — those of every other
 * process. Polling stays the backstop when a notification is lost.
 */
import { newId } from '../../domain/ids.js';
import type { SqlClient } from '../sql/client.js';

/** The notification channel (per schema) that says deliveries may be due. */
const DUE_CHANNEL = 'ehrsync_deliveries_due';

/** The due-deliveries signal of one store. */
export class DueSignal {
  private readonly listeners = new Set<() => void>();
  private stopListening: (() => Promise<void>) | null = null;
  /** Names this store's notifications, so it can ignore its own. */
  private readonly instance = newId();

  constructor(private readonly db: SqlClient) {}

  /** After a commit (never inside it): wakes this process's listeners and notifies the others. */
  notify(): void {
    this.wakeLocal();
    if (this.db.notify) void this.db.notify(DUE_CHANNEL, this.instance).catch(() => {});
  }

  /** Calls `listener` whenever deliveries may be due; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    // Other processes' commits arrive as notifications; polling stays the backstop if the listener is down.
    if (this.db.listen && !this.stopListening) this.stopListening = this.db.listen(DUE_CHANNEL, (from) => {
        // This store's own commits already woke its listeners.
        if (from !== this.instance) this.wakeLocal();
      });
    return () => this.listeners.delete(listener);
  }

  /** Stops listening for other processes' notifications. */
  async close(): Promise<void> {
    await this.stopListening?.();
    this.stopListening = null;
  }

  private wakeLocal(): void {
    for (const l of this.listeners) {
      try {
        l();
      } catch {
        // A listener's failure is its own; the commit already happened.
      }
    }
  }
}
