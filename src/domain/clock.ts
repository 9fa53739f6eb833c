/** @module domain/clock — time passed in, never read from a global inside decisions; IANA time-zone arithmetic (offsets, wall time → instant) through Intl. */

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

// Time zones, through the IANA database Intl carries. One formatter per zone: creating one costs
// tens of microseconds, and a sync converts thousands of times. A zone Intl rejects is cached too
// (as null), so a bad zone on every record of a read is not a thrown RangeError each time. The
// cache is bounded; it is not state a result depends on, so the functions below stay pure.
const ZONE_CACHE_MAX = 1000;
const zoneFormatters = new Map<string, Intl.DateTimeFormat | null>();

/** The zone's formatter, or null when Intl does not know the zone. */
function zoneFormatter(zone: string): Intl.DateTimeFormat | null {
  let f = zoneFormatters.get(zone);
  if (f === undefined) {
    try {
      f = new Intl.DateTimeFormat('en-US', {
        timeZone: zone,
        hourCycle: 'h23',
        era: 'short',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      f = null;
    }
    if (zoneFormatters.size < ZONE_CACHE_MAX) zoneFormatters.set(zone, f);
  }
  return f;
}

/** True when Intl knows the IANA zone (e.g. `America/New_York`, `UTC`); false for anything else, a non-string or `''` included. */
export function isTimeZone(zone: string): boolean {
  // An empty or absent zone would give Intl's default zone, not an error.
  if (typeof zone !== 'string' || zone.trim() === '') return false;
  return zoneFormatter(zone) !== null;
}

/**
 * Offset of `zone` from UTC at instant `ms`, in milliseconds (positive east of Greenwich: UTC−5 →
 * −18,000,000): the zone's wall clock at that instant (read through Intl, to the second) minus UTC.
 * Throws RangeError for a zone Intl does not know (check with `isTimeZone`).
 */
export function zoneOffsetMs(ms: EpochMs, zone: string): number {
  const f = isTimeZone(zone) ? zoneFormatter(zone) : null;
  if (f === null) throw new RangeError(`Invalid time zone specified: ${String(zone).slice(0, 64)}`);
  const whole = Math.floor(ms / 1000) * 1000; // Intl shows no milliseconds
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(whole))) parts[p.type] = p.value;
  const year = parts.era === 'BC' || parts.era === 'B' ? 1 - Number(parts.year) : Number(parts.year);
  const wall = new Date(Date.UTC(2000, Number(parts.month) - 1, Number(parts.day), Number(parts.hour), Number(parts.minute), Number(parts.second)));
  wall.setUTCFullYear(year); // Date.UTC maps years 0–99 to 1900–1999
  return wall.getTime() - whole;
}

/**
 * The instant at which the zone's clocks show `wallMs` (a wall-clock time encoded as if UTC).
 *
 * Around a DST change a wall time can be ambiguous (the repeated hour in autumn) or not exist (the
 * skipped hour in spring). Resolved as Temporal's and java.time's default ("compatible") does: an
 * ambiguous time is the earlier instant (the first time the clock shows it); a skipped time moves
 * forward by the length of the gap (02:30 on a spring-forward night in New York is 03:30 EDT). A
 * clinic that books into the skipped hour meant the hour that followed, not the one before.
 *
 * The zone's offsets a day before and a day after are the only candidates (no zone changes its
 * offset twice within two days). Throws RangeError for a zone Intl does not know.
 */
export function zonedWallTimeToEpoch(wallMs: number, zone: string): EpochMs {
  const before = zoneOffsetMs(wallMs - DAY_MS, zone);
  const after = zoneOffsetMs(wallMs + DAY_MS, zone);
  const valid = [...new Set([before, after])]
    .map((offset) => wallMs - offset)
    .filter((t) => zoneOffsetMs(t, zone) === wallMs - t)
    .sort((a, b) => a - b);
  if (valid.length > 0) return valid[0] as number;
  return wallMs - before; // in the gap: the offset in force before it carries the wall time forward
}

/** The instant a calendar day (`YYYY-MM-DD`) starts in `zone` (clinic days, for date-range reads). */
export function zonedStartOfDay(date: string, zone: string): EpochMs {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  const guess = Date.UTC(y, m - 1, d);
  // Two passes settle days that start next to a DST change.
  const first = guess - zoneOffsetMs(guess, zone);
  return guess - zoneOffsetMs(first, zone);
}
