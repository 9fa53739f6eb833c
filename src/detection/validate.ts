/**
 * @module detection/validate — turns connector candidates into trusted records, or quarantines them
 * with a reason. Pure: no I/O, no clock. One bad record never blocks the good ones of the same read.
 */
import { isTimeZone } from '../domain/clock.js';
import type { AppointmentRecord, Candidate, PatientRecord, QuarantineItem } from '../domain/records.js';

/** Most characters of a raw record kept in quarantine: enough to see the problem, bounded in size. */
const RAW_EXCERPT_CHARS = 2000;

/** Either a valid record or the reason it is not. */
export type Validated<T> = { ok: true; record: T } | { ok: false; reason: string };

// ISO 8601 date-time with a UTC designator or an offset. A time without one is ambiguous (whose
// local time?), so it is rejected rather than guessed.
const DATETIME_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-](\d{2}):?(\d{2}))$/;
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function validCalendarDate(y: number, m: number, d: number): boolean {
  if (m < 1 || m > 12 || d < 1) return false;
  // Day 0 of the next month is the last day of this one.
  return d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
}

/** Parses an ISO 8601 date-time with offset into epoch ms, or NaN. Rejects Feb 30 and friends (Date.parse rolls them over). */
export function parseDateTime(value: string): number {
  const m = DATETIME_RE.exec(value);
  if (!m) return NaN;
  const [, y, mo, d, h, mi, s, oh, om] = m;
  if (!validCalendarDate(Number(y), Number(mo), Number(d))) return NaN;
  if (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59)) return NaN;
  if ((oh !== undefined && Number(oh) > 23) || (om !== undefined && Number(om) > 59)) return NaN;
  return Date.parse(value);
}

/** True for a real calendar date in `YYYY-MM-DD` form. */
export function isIsoDate(value: string): boolean {
  const m = DATE_RE.exec(value);
  return m !== null && validCalendarDate(Number(m[1]), Number(m[2]), Number(m[3]));
}

// Each check returns the normalized value or a reason string wrapped so the two cannot be confused.
class Problem {
  constructor(readonly reason: string) {}
}

/** Longest id (and MRN) kept: far above any EHR's, and small enough for the databases' indexes. */
export const MAX_ID_LENGTH = 255;
/** Longest other text value kept. */
const MAX_TEXT_LENGTH = 2000;
/** Fields holding ids: held to MAX_ID_LENGTH. */
const ID_FIELDS = new Set(['ehr_appointment_id', 'ehr_patient_id', 'patient_ehr_id', 'patient_mrn', 'mrn', 'provider_ehr_id', 'secondary_provider_ehr_id']);

/**
 * A text value the stores can hold: no NUL character (PostgreSQL text refuses it) and not longer
 * than its field allows. Reasons name the field, never the value.
 */
function storable(field: string, t: string): string | Problem {
  if (t.includes('\u0000')) return new Problem(`${field} contains a NUL character`);
  const max = ID_FIELDS.has(field) ? MAX_ID_LENGTH : MAX_TEXT_LENGTH;
  if (t.length > max) return new Problem(`${field} is longer than ${max} characters`);
  return t;
}

function requiredString(c: Record<string, unknown>, field: string): string | Problem {
  const v = c[field];
  if (v === undefined || v === null) return new Problem(`${field} is missing`);
  if (typeof v !== 'string') return new Problem(`${field} must be a string, got ${typeName(v)}`);
  const t = v.trim();
  if (t === '') return new Problem(`${field} is empty`);
  return storable(field, t);
}

function optionalString(c: Record<string, unknown>, field: string): string | null | Problem {
  const v = c[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') return new Problem(`${field} must be a string or null, got ${typeName(v)}`);
  const t = v.trim();
  return t === '' ? null : storable(field, t);
}

/**
 * An id as the stores can key by it (trimmed), or null: not a string, empty, with a NUL character
 * or longer than MAX_ID_LENGTH. Such a record fails validation; callers that look records up by id
 * before validating (a pushed message's slice) skip its id instead of sending it to the database.
 */
export function storableId(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const t = raw.trim();
  return t === '' || t.includes('\u0000') || t.length > MAX_ID_LENGTH ? null : t;
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

/** A bounded excerpt of a raw record for the quarantine table. */
export function rawExcerpt(candidate: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(candidate) ?? String(candidate);
  } catch {
    text = String(candidate);
  }
  return text.length > RAW_EXCERPT_CHARS ? `${text.slice(0, RAW_EXCERPT_CHARS)}…` : text;
}

/**
 * The problems of a validation reason, each with the field it names first: the inverse of how
 * `validateAppointment` / `validatePatient` write a reason (problems joined by "; ", each starting
 * with its field's name). `field` is '' for a problem about the whole record.
 */
export function reasonProblems(reason: string): { field: string; text: string }[] {
  return reason.split('; ').map((text) => {
    const first = text.split(' ')[0] ?? '';
    return { field: /^[a-z_]+$/.test(first) ? first : '', text };
  });
}

/** Validates and normalizes one appointment candidate. `datetime` comes out as UTC ISO with milliseconds. */
export function validateAppointment(candidate: Candidate<AppointmentRecord>): Validated<AppointmentRecord> {
  if (candidate === null || typeof candidate !== 'object' || Array.isArray(candidate)) {
    return { ok: false, reason: `appointment must be an object, got ${typeName(candidate)}` };
  }
  const c = candidate as Record<string, unknown>;
  const id = requiredString(c, 'ehr_appointment_id');
  const mrn = requiredString(c, 'patient_mrn');
  const status = requiredString(c, 'status');
  const patientName = optionalString(c, 'patient_name');
  const patientEhrId = optionalString(c, 'patient_ehr_id');
  const timezone = optionalString(c, 'timezone');
  const location = optionalString(c, 'location');
  const providerEhrId = optionalString(c, 'provider_ehr_id');
  const providerName = optionalString(c, 'provider_name');
  const secondary = optionalString(c, 'secondary_provider_ehr_id');
  const type = optionalString(c, 'appointment_type');
  const mode = optionalString(c, 'appointment_mode');
  const problems = [id, mrn, status, patientName, patientEhrId, timezone, location, providerEhrId, providerName, secondary, type, mode]
    .filter((x): x is Problem => x instanceof Problem)
    .map((p) => p.reason);

  let datetime = '';
  const rawStart = c.datetime;
  if (typeof rawStart !== 'string') {
    problems.push(rawStart === undefined || rawStart === null ? 'datetime is missing' : `datetime must be a string, got ${typeName(rawStart)}`);
  } else {
    const ms = parseDateTime(rawStart.trim());
    if (Number.isNaN(ms)) problems.push(`datetime is not an ISO 8601 date-time with offset: ${JSON.stringify(rawStart.slice(0, 40))}`);
    else datetime = new Date(ms).toISOString();
  }

  let duration: number | null = null;
  const rawDuration = c.duration;
  if (rawDuration !== undefined && rawDuration !== null) {
    if (typeof rawDuration !== 'number' || !Number.isFinite(rawDuration) || rawDuration < 0) {
      problems.push(`duration must be a non-negative number of minutes, got ${typeName(rawDuration)} ${JSON.stringify(rawDuration)}`);
    } else duration = rawDuration;
  }

  if (timezone !== null && !(timezone instanceof Problem) && !isTimeZone(timezone)) problems.push(`timezone is not an IANA time zone: ${JSON.stringify(timezone)}`);

  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };
  return {
    ok: true,
    record: {
      ehr_appointment_id: id as string,
      patient_ehr_id: patientEhrId as string | null,
      patient_mrn: mrn as string,
      patient_name: (patientName as string | null) ?? '',
      datetime,
      timezone: timezone as string | null,
      duration,
      location: location as string | null,
      status: status as string,
      provider_ehr_id: providerEhrId as string | null,
      provider_name: providerName as string | null,
      secondary_provider_ehr_id: secondary as string | null,
      appointment_type: type as string | null,
      appointment_mode: mode as string | null,
    },
  };
}

/** Validates and normalizes one patient candidate. */
export function validatePatient(candidate: Candidate<PatientRecord>): Validated<PatientRecord> {
  if (candidate === null || typeof candidate !== 'object' || Array.isArray(candidate)) {
    return { ok: false, reason: `patient must be an object, got ${typeName(candidate)}` };
  }
  const c = candidate as Record<string, unknown>;
  const id = requiredString(c, 'ehr_patient_id');
  const mrn = requiredString(c, 'mrn');
  const first = optionalString(c, 'first_name');
  const last = optionalString(c, 'last_name');
  const dob = optionalString(c, 'dob');
  const rest = {
    sex: optionalString(c, 'sex'),
    phone: optionalString(c, 'phone'),
    cell_phone: optionalString(c, 'cell_phone'),
    email: optionalString(c, 'email'),
    address_street: optionalString(c, 'address_street'),
    address_line2: optionalString(c, 'address_line2'),
    address_city: optionalString(c, 'address_city'),
    address_state: optionalString(c, 'address_state'),
    address_zip: optionalString(c, 'address_zip'),
  };
  const problems = [id, mrn, first, last, dob, ...Object.values(rest)]
    .filter((x): x is Problem => x instanceof Problem)
    .map((p) => p.reason);
  if (typeof dob === 'string' && !isIsoDate(dob)) problems.push(`dob must be a date YYYY-MM-DD: ${JSON.stringify(dob.slice(0, 20))}`);
  if (first === null && last === null) problems.push('patient has neither first_name nor last_name');
  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };
  return {
    ok: true,
    record: {
      ehr_patient_id: id as string,
      mrn: mrn as string,
      first_name: (first as string | null) ?? '',
      last_name: (last as string | null) ?? '',
      dob: dob as string | null,
      sex: rest.sex as string | null,
      phone: rest.phone as string | null,
      cell_phone: rest.cell_phone as string | null,
      email: rest.email as string | null,
      address_street: rest.address_street as string | null,
      address_line2: rest.address_line2 as string | null,
      address_city: rest.address_city as string | null,
      address_state: rest.address_state as string | null,
      address_zip: rest.address_zip as string | null,
    },
  };
}

/** The valid records of one read keyed by EHR id, and what was quarantined. */
export interface ValidatedBatch<T> {
  records: Map<string, T>;
  quarantined: QuarantineItem[];
  /** Ids present in the read but not usable (invalid or conflicting duplicates): never treated as missing. */
  unusableIds: Set<string>;
}

/**
 * Validates a whole read. Identical duplicates (paging overlap) collapse silently; duplicates that
 * disagree are all quarantined, because neither copy can be trusted as the EHR's state.
 */
export function validateBatch<T>(
  kind: 'appointment' | 'patient',
  candidates: readonly unknown[],
  validate: (c: never) => Validated<T>,
  idOf: (r: T) => string,
  same: (a: T, b: T) => boolean,
): ValidatedBatch<T> {
  const records = new Map<string, T>();
  const quarantined: QuarantineItem[] = [];
  const unusableIds = new Set<string>();
  const conflicting = new Map<string, unknown[]>();
  const idField = kind === 'appointment' ? 'ehr_appointment_id' : 'ehr_patient_id';
  for (const candidate of candidates) {
    const v = validate(candidate as never);
    if (!v.ok) {
      const rawId = candidate !== null && typeof candidate === 'object' ? (candidate as Record<string, unknown>)[idField] : undefined;
      const ehrId = storableId(rawId);
      if (ehrId !== null) unusableIds.add(ehrId);
      quarantined.push({ kind, ehr_id: ehrId, reason: v.reason, raw: rawExcerpt(candidate) });
      continue;
    }
    const id = idOf(v.record);
    const seenConflict = conflicting.get(id);
    if (seenConflict) {
      seenConflict.push(candidate);
      continue;
    }
    const prior = records.get(id);
    if (prior === undefined) {
      records.set(id, v.record);
    } else if (!same(prior, v.record)) {
      records.delete(id);
      conflicting.set(id, [prior, candidate]);
    }
  }
  for (const [id, copies] of conflicting) {
    unusableIds.add(id);
    quarantined.push({
      kind,
      ehr_id: id,
      reason: `duplicate ${kind} id ${JSON.stringify(id)} appears ${copies.length} times with different content in one read`,
      raw: rawExcerpt(copies),
    });
  }
  // An id that had one invalid copy and one valid copy is not trustworthy either.
  for (const id of unusableIds) {
    if (records.delete(id)) {
      quarantined.push({ kind, ehr_id: id, reason: `${kind} id ${JSON.stringify(id)} appears more than once and one copy is invalid`, raw: '' });
    }
  }
  return { records, quarantined, unusableIds };
}
