/** @module domain/clock — time passed in, never read from a global inside decisions. */

/** Milliseconds since the Unix epoch; every decision takes one of these instead of reading the clock. */
export type EpochMs = number;

/** Where I/O loops get the time from; tests inject a fake. */
export interface Clock {
  now(): EpochMs;
}

/** The real clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** ISO 8601 in UTC with milliseconds, e.g. `2025-07-28T16:05:48.929Z` (the envelope's `created` format). */
export function isoUtc(ms: EpochMs): string {
  return new Date(ms).toISOString();
}

const DAY_MS = 86_400_000;

/** A half-open time window `[startMs, endMs)`. */
export interface TimeWindow {
  startMs: EpochMs;
  endMs: EpochMs;
}

/**
 * The sync window for a connection: from the start of the UTC day `pastDays` ago to the end of the
 * UTC day `futureDays` ahead. Whole days keep the window stable through a day, so an appointment
 * does not flicker in and out between two syncs minutes apart.
 */
export function syncWindow(now: EpochMs, pastDays: number, futureDays: number): TimeWindow {
  const startOfToday = Math.floor(now / DAY_MS) * DAY_MS;
  return { startMs: startOfToday - pastDays * DAY_MS, endMs: startOfToday + (futureDays + 1) * DAY_MS };
}

/** True when `ms` lies inside the window. */
export function inWindow(ms: EpochMs, window: TimeWindow): boolean {
  return ms >= window.startMs && ms < window.endMs;
}
