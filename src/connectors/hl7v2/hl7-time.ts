/**
 * @module connectors/hl7v2/hl7-time — pure conversion of HL7 v2 date/times (DTM, and the first
 * component of TS) to ISO 8601 UTC, with zone-local times resolved through the IANA database Intl
 * carries. No I/O, no clock: the instant depends only on the text and the zone named.
 *
 * The format (HL7 v2.4 TS / v2.5 DTM, as HAPI's javadoc quotes the standard):
 * `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]` — precision is the number of digits sent, and "if
 * the time zone is not included, the timezone defaults to that of the local time zone of the
 * sender". ehrsync knows the sender's zone only as the connection's IANA zone, so a time without an
 * offset is read as wall-clock time there. The zone arithmetic (offsets, wall time → instant, DST
 * gaps and overlaps) is domain/clock's, shared with the rest of ehrsync.
 */
import { zonedWallTimeToEpoch } from '../../domain/clock.js';

/** How precise a DTM value is: the last unit it carries. */
export type Hl7Precision = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second';

/** A DTM value taken apart. Missing units are their minimum (month 1, day 1, hour 0 …). */
export interface Hl7DateTimeParts {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
  precision: Hl7Precision;
  /** Minutes east of UTC from the `+/-ZZZZ` suffix; null when the value carries none. */
  offsetMinutes: number | null;
}

const PRECISION_ORDER: readonly Hl7Precision[] = ['year', 'month', 'day', 'hour', 'minute', 'second'];

// Digits in pairs after the year; fractional seconds only after seconds; the offset may follow any
// precision. HL7 allows up to four fraction digits; more are accepted and cut to milliseconds.
const DTM_RE = /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,9}))?)?)?)?)?)?(?:([+-])(\d{2})(\d{2}))?$/;

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : (MONTH_DAYS[month - 1] as number);
}

/**
 * Takes an HL7 DTM apart, or returns null when it is not one (wrong shape, month 13, Feb 30, hour
 * 24, an offset of 25 hours …). Surrounding whitespace is ignored.
 */
export function parseHl7DateTime(value: string): Hl7DateTimeParts | null {
  const m = DTM_RE.exec(value.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, sign, oh, om] = m;
  const present = [y, mo, d, h, mi, s].filter((x) => x !== undefined).length;
  const parts: Hl7DateTimeParts = {
    year: Number(y),
    month: mo === undefined ? 1 : Number(mo),
    day: d === undefined ? 1 : Number(d),
    hour: h === undefined ? 0 : Number(h),
    minute: mi === undefined ? 0 : Number(mi),
    second: s === undefined ? 0 : Number(s),
    millisecond: frac === undefined ? 0 : Number(frac.padEnd(3, '0').slice(0, 3)),
    precision: PRECISION_ORDER[present - 1] as Hl7Precision,
    offsetMinutes: sign === undefined ? null : (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om)),
  };
  if (parts.month < 1 || parts.month > 12 || parts.day < 1 || parts.day > daysInMonth(parts.year, parts.month)) return null;
  if (parts.hour > 23 || parts.minute > 59 || parts.second > 59) return null;
  if (oh !== undefined && (Number(oh) > 23 || Number(om) > 59)) return null;
  return parts;
}

/** True when `p` is at least as precise as `min`. */
export function atLeast(p: Hl7Precision, min: Hl7Precision): boolean {
  return PRECISION_ORDER.indexOf(p) >= PRECISION_ORDER.indexOf(min);
}

/** Epoch milliseconds of a wall-clock time read as if it were UTC (years below 100 included). */
function wallAsUtc(p: Hl7DateTimeParts): number {
  const d = new Date(Date.UTC(2000, p.month - 1, p.day, p.hour, p.minute, p.second, p.millisecond));
  d.setUTCFullYear(p.year); // Date.UTC maps years 0–99 to 1900–1999
  return d.getTime();
}

/**
 * An HL7 DTM → ISO 8601 UTC with milliseconds (`2026-11-05T14:30:00.000Z`), or null when the value
 * is not a DTM or is less precise than `minPrecision` (default: the hour; an appointment "on a day"
 * has no start time). The offset in the value wins; without one the value is wall-clock time in
 * `zone`. Throws RangeError for a zone Intl does not know (check with `isTimeZone`, domain/clock).
 */
export function hl7DateTimeToIso(value: string, zone: string, minPrecision: Hl7Precision = 'hour'): string | null {
  const p = parseHl7DateTime(value);
  if (!p || !atLeast(p.precision, minPrecision)) return null;
  const wall = wallAsUtc(p);
  const epoch = p.offsetMinutes !== null ? wall - p.offsetMinutes * 60_000 : zonedWallTimeToEpoch(wall, zone);
  const d = new Date(epoch);
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/**
 * An HL7 date (DT, or a DTM such as PID-7) → `YYYY-MM-DD`, the calendar date as written (a date of
 * birth is not moved across zones by its offset). `partial` when the value is a real DTM but less
 * precise than a day (`1980`, `198002`), null when it is not a DTM at all.
 */
export function hl7DateToIso(value: string): string | 'partial' | null {
  const p = parseHl7DateTime(value);
  if (!p) return null;
  if (!atLeast(p.precision, 'day')) return 'partial';
  return `${String(p.year).padStart(4, '0')}-${String(p.month).padStart(2, '0')}-${String(p.day).padStart(2, '0')}`;
}
