/**
 * @module store/statements/push-commits — the SQL of a pushed feed (HL7 v2): its message log, the
 * slice of the projection one message plans against, and message times per record. Pure:
 * statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { FeedMessage, PushCommit } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';
import { insertRows } from '../sql/values.js';

/** A message's log entry by its sender and MSH-10. */
export const selectFeedMessage = (connectionId: string, sender: string, controlId: string): Statement => ({
  sql: 'SELECT * FROM hl7_messages WHERE connection_id = :connection_id AND sender = :sender AND control_id = :control_id',
  params: { connection_id: connectionId, sender, control_id: controlId },
});

/** Logs a message unless it already is (a re-send received by another process): 0 rows changed then. */
export const insertFeedMessage = (m: FeedMessage): Statement => ({
  sql: `INSERT INTO hl7_messages (connection_id, sender, control_id, message_type, message_time_ms, outcome, ack_code, error_text, received_at)
        VALUES (:connection_id, :sender, :control_id, :message_type, :message_time_ms, :outcome, :ack_code, :error_text, :received_at)
        ON CONFLICT (connection_id, sender, control_id) DO NOTHING`,
  params: {
    connection_id: m.connectionId,
    sender: m.sender,
    control_id: m.controlId,
    message_type: m.messageType,
    message_time_ms: m.messageTimeMs,
    outcome: m.outcome,
    ack_code: m.ackCode,
    error_text: m.errorText,
    received_at: m.receivedAt,
  },
});

/** Projected appointments of a connection by EHR id (given as a JSON list). */
export const selectAppointmentsByEhrId = (d: Dialect, connectionId: string, ehrIds: readonly string[]): Statement => ({
  sql: `SELECT ehr_id, id, record FROM projection_appointments WHERE connection_id = :connection_id AND ehr_id IN ${d.jsonTextList('ehr_ids')}`,
  params: { connection_id: connectionId, ehr_ids: JSON.stringify(ehrIds) },
});

/** Projected patients of a connection by EHR id (given as a JSON list). */
export const selectPatientsByEhrId = (d: Dialect, connectionId: string, ehrIds: readonly string[]): Statement => ({
  sql: `SELECT ehr_id, id, record FROM projection_patients WHERE connection_id = :connection_id AND ehr_id IN ${d.jsonTextList('ehr_ids')}`,
  params: { connection_id: connectionId, ehr_ids: JSON.stringify(ehrIds) },
});

/** Projected patients of a connection by MRN (given as a JSON list): the records a merge names by MRN. */
export const selectPatientsByMrn = (d: Dialect, connectionId: string, mrns: readonly string[]): Statement => ({
  sql: `SELECT ehr_id, id, record FROM projection_patients WHERE connection_id = :connection_id AND mrn IN ${d.jsonTextList('mrns')}`,
  params: { connection_id: connectionId, mrns: JSON.stringify(mrns) },
});

/**
 * The message times of some appointments and patients of a connection. One branch per kind, so
 * each is a lookup on the primary key (an OR of the two made both dialects scan the connection).
 */
export const selectRecordTimes = (d: Dialect, connectionId: string, appointmentEhrIds: readonly string[], patientEhrIds: readonly string[]): Statement => ({
  sql: `SELECT kind, ehr_id, message_time_ms FROM hl7_record_times
        WHERE connection_id = :connection_id AND kind = 'appointment' AND ehr_id IN ${d.jsonTextList('appointment_ids')}
        UNION ALL
        SELECT kind, ehr_id, message_time_ms FROM hl7_record_times
        WHERE connection_id = :connection_id AND kind = 'patient' AND ehr_id IN ${d.jsonTextList('patient_ids')}`,
  params: { connection_id: connectionId, appointment_ids: JSON.stringify(appointmentEhrIds), patient_ids: JSON.stringify(patientEhrIds) },
});

/** Remembers message times per record; a stored newer time is kept. */
export function upsertRecordTimes(connectionId: string, times: PushCommit['recordTimes']): Statement[] {
  return insertRows(
    'hl7_record_times',
    ['connection_id', 'kind', 'ehr_id', 'message_time_ms'],
    times.map((t) => [connectionId, t.kind, t.ehrId, t.ms]),
    `ON CONFLICT (connection_id, kind, ehr_id) DO UPDATE SET message_time_ms =
       CASE WHEN excluded.message_time_ms > hl7_record_times.message_time_ms THEN excluded.message_time_ms ELSE hl7_record_times.message_time_ms END`,
  );
}

/**
 * Removes patients merged into another from the projection. Their message times stay: a message
 * about a merged record that arrives late is then still recognised as older, and not learned again.
 */
export const deletePatients = (d: Dialect, connectionId: string, ehrIds: readonly string[]): Statement[] => [
  {
    sql: `DELETE FROM projection_patients WHERE connection_id = :connection_id AND ehr_id IN ${d.jsonTextList('ehr_ids')}`,
    params: { connection_id: connectionId, ehr_ids: JSON.stringify(ehrIds) },
  },
];

/**
 * Records that a connection's feed delivered: `last_sync_at` (what status pages show as freshness)
 * and, on the first message, `baseline_at` (a feed has no baseline read; its first message is it).
 */
export const markFed = (connectionId: string, at: EpochMs): Statement => ({
  sql: 'UPDATE connections SET last_sync_at = :at, baseline_at = COALESCE(baseline_at, :at) WHERE id = :id',
  params: { at, id: connectionId },
});
