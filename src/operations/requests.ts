/**
 * @module operations/requests — validates write requests (Cobalt's field names and rules) into the
 * inputs of operations. Pure: everything it needs is passed in; bad input throws a BadRequestError
 * whose message names the field.
 */
import { createHash } from 'node:crypto';
import { zonedStartOfDay } from '../domain/clock.js';
import { BadRequestError } from '../domain/errors.js';
import type { PatientRecord } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import { isIsoDate, parseDateTime } from '../detection/validate.js';

/** A validated appointment booking. */
export interface AppointmentCreateInput {
  mrn: string;
  provider_ehr_id: string;
  secondary_provider_ehr_id: string | null;
  /** UTC ISO with milliseconds. */
  datetime: string;
  duration: number;
  location: string | null;
  appointment_type: string | null;
  appointment_mode: string | null;
  note: string | null;
  prevent_double_booking: boolean;
}

/** A validated appointment change. */
export interface AppointmentUpdateInput {
  status?: string;
  datetime?: string;
  note?: string;
}

/** Patient fields a write may set. */
export type PatientInput = Partial<Omit<PatientRecord, 'ehr_patient_id'>>;

/** Patient fields `PATCH /v1/patients/:id` may change (Cobalt: contact and address fields of an active patient). */
export const PATIENT_UPDATABLE_FIELDS = ['phone', 'cell_phone', 'email', 'address_street', 'address_line2', 'address_city', 'address_state', 'address_zip'] as const;
/** Fields `POST /v1/patients` accepts. */
export const PATIENT_CREATE_FIELDS = ['first_name', 'last_name', 'dob', 'sex', 'mrn', ...PATIENT_UPDATABLE_FIELDS] as const;
/** Fields a new patient must have (also shown by `GET /v1/settings`). */
export const REQUIRED_PATIENT_FIELDS = ['first_name', 'last_name', 'dob', 'sex'] as const;

/** A stable hash of a request body, to tell a retried request from a different one reusing an Idempotency-Key. */
export function requestHash(kind: string, target: string, body: unknown): string {
  return createHash('sha256').update(`${kind}\u0000${target}\u0000${stableJson(body)}`).digest('hex');
}

function stableJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  return `{${Object.keys(v as object)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
    .join(',')}}`;
}

function str(body: Record<string, unknown>, field: string, required: boolean, max = 256): string | null {
  const v = body[field];
  if (v === undefined || v === null || v === '') {
    if (required) throw new BadRequestError(`Missing required field: ${field}`);
    return null;
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new BadRequestError(`${field} must be a string.`);
  const s = String(v).trim();
  if (s.length > max) throw new BadRequestError(`${field} is longer than ${max} characters.`);
  return s;
}

function unexpected(body: Record<string, unknown>, allowed: readonly string[]): void {
  const extra = Object.keys(body).filter((k) => !allowed.includes(k));
  if (extra.length > 0) throw new BadRequestError(`Unexpected fields in request body: ${extra.join(', ')}`);
}

/** Cobalt's 12-hour time: "9:30 am", "10:00 PM". "10:00" without am/pm is an error, as Cobalt documents. */
export function parseTwelveHour(time: string): { hour: number; minute: number } | null {
  const m = /^(\d{1,2}):(\d{2})\s*([ap])\.?m\.?$/i.exec(time.trim());
  if (!m) return null;
  const h = Number(m[1]);
  const minute = Number(m[2]);
  if (h < 1 || h > 12 || minute > 59) return null;
  const pm = (m[3] as string).toLowerCase() === 'p';
  return { hour: (h % 12) + (pm ? 12 : 0), minute };
}

function bool(body: Record<string, unknown>, field: string): boolean {
  const v = body[field];
  if (v === undefined || v === null) return false;
  if (v === true || v === 'true') return true;
  if (v === false || v === 'false') return false;
  throw new BadRequestError(`${field} must be "true" or "false".`);
}

const APPOINTMENT_CREATE_FIELDS = ['mrn', 'provider', 'secondary_provider', 'location', 'type', 'note', 'datetime', 'date', 'time', 'prevent_double_booking', 'duration', 'appointment_mode'];

/** Validates `POST /v1/appointments`. `timezone` is the clinic's, for `date` + `time`. */
export function appointmentCreateInput(body: Record<string, unknown>, timezone: string): AppointmentCreateInput {
  unexpected(body, APPOINTMENT_CREATE_FIELDS);
  const mrn = str(body, 'mrn', true) as string;
  const provider = str(body, 'provider', true) as string;
  let datetime: string;
  if (body.datetime !== undefined) {
    if (body.date !== undefined || body.time !== undefined) throw new BadRequestError('Give either datetime, or date and time, not both.');
    const raw = str(body, 'datetime', true) as string;
    const ms = parseDateTime(raw);
    if (Number.isNaN(ms)) throw new BadRequestError('datetime must be ISO 8601 with an offset, e.g. 2026-12-01T10:00:00-05:00.');
    datetime = new Date(ms).toISOString();
  } else {
    const date = str(body, 'date', false);
    const time = str(body, 'time', false);
    if (date === null || time === null) throw new BadRequestError('Missing required field: datetime (or date and time).');
    if (!isIsoDate(date)) throw new BadRequestError('date must be YYYY-MM-DD.');
    const t = parseTwelveHour(time);
    if (!t) throw new BadRequestError('time must be 12-hour with am or pm, e.g. "10:00 am" ("10:00" alone is ambiguous).');
    datetime = new Date(zonedStartOfDay(date, timezone) + (t.hour * 60 + t.minute) * 60_000).toISOString();
  }
  let duration = 30;
  if (body.duration !== undefined) {
    if (typeof body.duration !== 'number' || !Number.isInteger(body.duration) || body.duration < 5 || body.duration > 480) {
      throw new BadRequestError('duration must be a whole number of minutes from 5 to 480.');
    }
    duration = body.duration;
  }
  return {
    mrn,
    provider_ehr_id: provider,
    secondary_provider_ehr_id: str(body, 'secondary_provider', false),
    datetime,
    duration,
    location: str(body, 'location', false),
    appointment_type: str(body, 'type', false),
    appointment_mode: str(body, 'appointment_mode', false),
    note: str(body, 'note', false, 2000),
    prevent_double_booking: bool(body, 'prevent_double_booking'),
  };
}

/** Validates `PATCH /v1/appointments/:id`: a status among the connection's codes, a note, or a new time. */
export function appointmentUpdateInput(body: Record<string, unknown>, statusMap: StatusMap): AppointmentUpdateInput {
  unexpected(body, ['status', 'note', 'datetime']);
  const out: AppointmentUpdateInput = {};
  const status = str(body, 'status', false);
  if (status !== null) {
    if (!Object.hasOwn(statusMap, status)) throw new BadRequestError(`status must be one of the connection's statuses: ${Object.keys(statusMap).join(', ')}.`);
    out.status = status;
  }
  const note = str(body, 'note', false, 2000);
  if (note !== null) out.note = note;
  const datetime = str(body, 'datetime', false);
  if (datetime !== null) {
    const ms = parseDateTime(datetime);
    if (Number.isNaN(ms)) throw new BadRequestError('datetime must be ISO 8601 with an offset, e.g. 2026-12-01T10:00:00-05:00.');
    out.datetime = new Date(ms).toISOString();
  }
  if (Object.keys(out).length === 0) throw new BadRequestError('Nothing to change: give status, note or datetime.');
  return out;
}

function patientFields(body: Record<string, unknown>, allowed: readonly string[]): PatientInput {
  unexpected(body, allowed);
  const out: Record<string, string> = {};
  for (const f of allowed) {
    const v = str(body, f, false);
    if (v !== null) out[f] = v;
  }
  if (out.dob !== undefined && !isIsoDate(out.dob)) throw new BadRequestError('dob must be YYYY-MM-DD.');
  if (out.sex !== undefined && !['male', 'female', 'unknown', 'other'].includes(out.sex.toLowerCase())) throw new BadRequestError('sex must be one of: male, female, unknown.');
  if (out.email !== undefined && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(out.email)) throw new BadRequestError('email is not an email address.');
  if (out.sex !== undefined) out.sex = out.sex.toLowerCase();
  return out;
}

/** Validates `POST /v1/patients`. */
export function patientCreateInput(body: Record<string, unknown>): PatientInput {
  const out = patientFields(body, PATIENT_CREATE_FIELDS);
  const missing = REQUIRED_PATIENT_FIELDS.filter((f) => out[f] === undefined);
  if (missing.length > 0) throw new BadRequestError(`Missing required field${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`);
  return out;
}

/** Validates `PATCH /v1/patients/:id`. */
export function patientUpdateInput(body: Record<string, unknown>): PatientInput {
  const out = patientFields(body, PATIENT_UPDATABLE_FIELDS);
  if (Object.keys(out).length === 0) throw new BadRequestError(`Nothing to change: give one of ${PATIENT_UPDATABLE_FIELDS.join(', ')}.`);
  return out;
}
