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

/** Offset of `zone` from UTC at instant `ms`, in milliseconds (positive east of Greenwich). */
export function zoneOffsetMs(ms: EpochMs, zone: string): number {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: zone,
    hourCycle: 'h23',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  }).formatToParts(new Date(ms));
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(ms / 1000) * 1000;
}

/** The instant a calendar day (`YYYY-MM-DD`) starts in `zone` (clinic days, for date-range reads). */
export function zonedStartOfDay(date: string, zone: string): EpochMs {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d);
  // Two passes settle days that start next to a DST change.
  const first = guess - zoneOffsetMs(guess, zone);
  return guess - zoneOffsetMs(first, zone);
}
