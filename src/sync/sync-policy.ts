/**
 * @module sync/sync-policy — when a connection syncs next, and which missing appointments a sync
 * reads directly. Pure: interval with jitter after a success, exponential backoff after failures,
 * so a failing EHR is asked less often and many connections do not all fire in the same second.
 */

/** Longest wait between two attempts of a failing connection (unless its interval is longer). */
export const MAX_BACKOFF_MS = 15 * 60_000;
/** ±10% jitter on every delay. */
export const JITTER = 0.1;

/**
 * Milliseconds until the next sync.
 * @param intervalMs the connection's sync interval
 * @param consecutiveFailures failures in a row, counting the one just recorded (0 after a success)
 * @param random a number in [0, 1), injected for tests
 */
export function nextSyncDelay(intervalMs: number, consecutiveFailures: number, random: number): number {
  const base =
    consecutiveFailures <= 0 ? intervalMs : Math.min(intervalMs * 2 ** Math.min(consecutiveFailures, 20), Math.max(MAX_BACKOFF_MS, intervalMs));
  return Math.max(0, Math.round(base * (1 + (random * 2 - 1) * JITTER)));
}

/**
 * Which of the appointments missing from the window a sync reads directly (moved or deleted?): all
 * of them when they fit in `max`; else `max` in a row from a random start, wrapping around, so that
 * over successive syncs every one is read — a fixed first `max` would leave the rest unchecked for
 * as long as those stay missing.
 * @param random a number in [0, 1), injected for tests
 */
export function directReadTurn<T>(missing: readonly T[], max: number, random: number): T[] {
  if (missing.length <= max) return [...missing];
  const start = Math.floor(random * missing.length) % missing.length;
  return [...missing.slice(start), ...missing.slice(0, start)].slice(0, max);
}
