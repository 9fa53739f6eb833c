/**
 * @module store/statements/reads — the SQL of the API's cached reads of the projection:
 * appointments and patients, filtered. Pure: statements only.
 */
import type { AppointmentFilter, PatientFilter } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';
import { containsPattern } from '../sql/values.js';
import { Where } from './where.js';

/** `%value%` for a case-insensitive LIKE, or undefined when there is no value. */
const pattern = (v: string | undefined): string | undefined => (v === undefined ? undefined : containsPattern(v));

/** A connection's projected appointments starting in `[fromMs, toMs)`, by start, filtered by patient MRN, patient name (substring) and mode. */
export function selectAppointments(d: Dialect, f: AppointmentFilter): Statement {
  const w = new Where('connection_id = :connection_id AND start_ms >= :from_ms AND start_ms < :to_ms', { connection_id: f.connectionId, from_ms: f.fromMs, to_ms: f.toMs })
    .add(`${d.jsonText('record', 'patient_mrn')} = :patient_mrn`, 'patient_mrn', f.patientMrn)
    .add(`LOWER(${d.jsonText('record', 'patient_name')}) LIKE :patient_name`, 'patient_name', pattern(f.patientName))
    .add(`${d.jsonText('record', 'appointment_mode')} = :appointment_mode`, 'appointment_mode', f.appointmentMode);
  return { sql: `SELECT * FROM projection_appointments WHERE ${w.sql} ORDER BY start_ms, id LIMIT :limit`, params: { ...w.params, limit: f.limit } };
}

/** One projected row of a connection by ehrsync id or by EHR id; the ehrsync id wins when both match. */
const byEitherId = (table: string, connectionId: string, id: string): Statement => ({
  sql: `SELECT * FROM ${table} WHERE connection_id = :connection_id AND (id = :id OR ehr_id = :id) ORDER BY (id = :id) DESC LIMIT 1`,
  params: { connection_id: connectionId, id },
});

/** One projected appointment by ehrsync id or EHR id. */
export const selectAppointment = (connectionId: string, id: string): Statement => byEitherId('projection_appointments', connectionId, id);

/** One projected patient by ehrsync id or EHR id. */
export const selectPatient = (connectionId: string, id: string): Statement => byEitherId('projection_patients', connectionId, id);

/**
 * A connection's projected patients matching a filter (MRN, EHR id and birth date exactly; first
 * name, last name and phone as case-insensitive substrings): the count and one page, by MRN.
 */
export function patientPage(d: Dialect, f: PatientFilter): { count: Statement; page: Statement } {
  const partial = (field: string): string => `LOWER(${d.jsonText('record', field)}) LIKE :${field}`;
  const w = new Where('connection_id = :connection_id', { connection_id: f.connectionId })
    .add('mrn = :mrn', 'mrn', f.mrn)
    .add('ehr_id = :ehr_id', 'ehr_id', f.ehrId)
    .add(`${d.jsonText('record', 'dob')} = :dob`, 'dob', f.dob)
    .add(partial('first_name'), 'first_name', pattern(f.firstName))
    .add(partial('last_name'), 'last_name', pattern(f.lastName))
    .add(partial('phone'), 'phone', pattern(f.phone));
  return {
    count: { sql: `SELECT COUNT(*) AS n FROM projection_patients WHERE ${w.sql}`, params: w.params },
    page: { sql: `SELECT * FROM projection_patients WHERE ${w.sql} ORDER BY mrn, id LIMIT :limit OFFSET :offset`, params: { ...w.params, limit: f.limit, offset: f.offset } },
  };
}
