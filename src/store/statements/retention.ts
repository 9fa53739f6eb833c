/**
 * @module store/statements/retention — the SQL of deleting what is kept: retention by age (events
 * whose deliveries are final, quarantined records, finished writes) and the erasure of one patient.
 * Deleting the events themselves is statements/outbox.ts's `deleteEvents`. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';

// ── retention ───────────────────────────────────────────────────────────────

/**
 * The oldest events created before `before` without a pending delivery, at most `limit`, locked
 * (PostgreSQL) until the purge commits.
 */
export const selectPurgeableEvents = (d: Dialect, before: EpochMs, limit: number): Statement => ({
  sql: `SELECT e.seq FROM events e WHERE e.created_at < :before
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')
        ORDER BY e.seq LIMIT :limit ${d.forUpdate}`,
  params: { before, limit },
});

/** The deliveries of events (sequence numbers), with their status, locked (PostgreSQL) until the purge commits. */
export const lockEventDeliveries = (d: Dialect, seqs: readonly number[]): Statement => ({
  sql: `SELECT event_seq, status FROM deliveries WHERE event_seq IN ${d.jsonIntList('seqs')} ${d.forUpdate}`,
  params: { seqs: JSON.stringify(seqs) },
});

/** Quarantined records created before `before`. */
export const deleteOldQuarantine = (before: EpochMs): Statement => ({
  sql: 'DELETE FROM quarantine WHERE created_at < :before',
  params: { before },
});

/** The pushed feed's message log entries received before `before` (a re-send after that is applied again, as new). */
export const deleteOldFeedMessages = (before: EpochMs): Statement => ({
  sql: 'DELETE FROM hl7_messages WHERE received_at < :before',
  params: { before },
});

/** Finished writes (succeeded or failed) last changed before `before`: their requests hold PHI. */
export const deleteFinishedOperations = (before: EpochMs): Statement => ({
  sql: "DELETE FROM operations WHERE status IN ('succeeded', 'failed') AND updated_at < :before",
  params: { before },
});

// ── erasure ─────────────────────────────────────────────────────────────────

/** A patient's projected row (ehrsync id and MRN). */
export const selectPatientRecord = (connectionId: string, patientEhrId: string): Statement => ({
  sql: 'SELECT id, mrn FROM projection_patients WHERE connection_id = :connection_id AND ehr_id = :ehr_id',
  params: { connection_id: connectionId, ehr_id: patientEhrId },
});

/** A patient's projected appointments (ehrsync and EHR ids). */
export const selectPatientAppointments = (connectionId: string, patientEhrId: string): Statement => ({
  sql: 'SELECT id, ehr_id FROM projection_appointments WHERE connection_id = :connection_id AND patient_ehr_id = :patient_ehr_id',
  params: { connection_id: connectionId, patient_ehr_id: patientEhrId },
});

/** How many of a connection's projected patients have this MRN. */
export const countPatientsWithMrn = (connectionId: string, mrn: string): Statement => ({
  sql: 'SELECT COUNT(*) AS n FROM projection_patients WHERE connection_id = :connection_id AND mrn = :mrn',
  params: { connection_id: connectionId, mrn },
});

/** What identifies a patient's finished writes (see selectErasableOperations). */
export interface PatientWrites {
  /** ehrsync ids of the patient's record and appointments. */
  targetIds: readonly string[];
  patientEhrId: string;
  /** EHR ids of the patient's appointments. */
  appointmentEhrIds: readonly string[];
  /** The patient's MRN, when no other patient of the connection has it; else null. */
  mrn: string | null;
}

/**
 * The finished writes about a patient: to their record or their appointments (by ehrsync id, or by
 * EHR id within the same kind: FHIR ids are unique per resource type only), and bookings that
 * named their MRN (exactly, as a JSON field). Writes still running are left out.
 */
export function selectErasableOperations(d: Dialect, connectionId: string, w: PatientWrites): Statement {
  return {
    sql: `SELECT id FROM operations WHERE connection_id = :connection_id AND status IN ('succeeded', 'failed') AND (
            target_id IN ${d.jsonTextList('target_ids')}
            OR (kind IN ('patient.create', 'patient.update') AND target_ehr_id = :patient_ehr_id)
            OR (kind IN ('appointment.create', 'appointment.update') AND target_ehr_id IN ${d.jsonTextList('appointment_ehr_ids')})
            ${w.mrn === null ? '' : `OR (kind = 'appointment.create' AND ${d.jsonText('input', 'mrn')} = :mrn)`})`,
    params: {
      connection_id: connectionId,
      target_ids: JSON.stringify(w.targetIds),
      patient_ehr_id: w.patientEhrId,
      appointment_ehr_ids: JSON.stringify(w.appointmentEhrIds),
      ...(w.mrn === null ? {} : { mrn: w.mrn }),
    },
  };
}

/** The events about a patient, and the outcome events of the given writes (by job id: a failed write's event has no patient id). */
export const selectPatientEvents = (d: Dialect, connectionId: string, patientEhrId: string, operationIds: readonly string[]): Statement => ({
  sql: `SELECT seq FROM events WHERE connection_id = :connection_id AND (patient_ehr_id = :patient_ehr_id OR job_id IN ${d.jsonTextList('job_ids')})`,
  params: { connection_id: connectionId, patient_ehr_id: patientEhrId, job_ids: JSON.stringify(operationIds) },
});

/** Deletes writes by id. */
export const deleteOperations = (d: Dialect, ids: readonly string[]): Statement => ({
  sql: `DELETE FROM operations WHERE id IN ${d.jsonTextList('ids')}`,
  params: { ids: JSON.stringify(ids) },
});

/** Deletes a patient's projected appointments. */
export const deletePatientAppointments = (connectionId: string, patientEhrId: string): Statement => ({
  sql: 'DELETE FROM projection_appointments WHERE connection_id = :connection_id AND patient_ehr_id = :patient_ehr_id',
  params: { connection_id: connectionId, patient_ehr_id: patientEhrId },
});

/** Deletes a patient's projected record. */
export const deletePatientRecord = (connectionId: string, patientEhrId: string): Statement => ({
  sql: 'DELETE FROM projection_patients WHERE connection_id = :connection_id AND ehr_id = :ehr_id',
  params: { connection_id: connectionId, ehr_id: patientEhrId },
});

/**
 * Deletes the quarantined records naming a patient. Raw records are free text: the patient's id is
 * matched as a JSON string value, or as the end of a FHIR reference ("Patient/<id>"), exactly (a
 * LIKE would ignore case on SQLite).
 */
export const deletePatientQuarantine = (d: Dialect, connectionId: string, patientEhrId: string): Statement => ({
  sql: `DELETE FROM quarantine WHERE connection_id = :connection_id
          AND (ehr_id = :ehr_id OR ${d.contains('raw', 'json_id')} OR ${d.contains('raw', 'reference')})`,
  params: { connection_id: connectionId, ehr_id: patientEhrId, json_id: JSON.stringify(patientEhrId), reference: `Patient/${patientEhrId}"` },
});

/** Deletes the feed's message times of a patient and of their appointments (EHR ids given as a JSON list). */
export const deletePatientRecordTimes = (d: Dialect, connectionId: string, patientEhrId: string, appointmentEhrIds: readonly string[]): Statement => ({
  sql: `DELETE FROM hl7_record_times WHERE connection_id = :connection_id
          AND ((kind = 'patient' AND ehr_id = :ehr_id) OR (kind = 'appointment' AND ehr_id IN ${d.jsonTextList('appointment_ids')}))`,
  params: { connection_id: connectionId, ehr_id: patientEhrId, appointment_ids: JSON.stringify(appointmentEhrIds) },
});
