/**
 * @module store/statements/outbox — the SQL of the writes shared by sync commits, finished
 * operations and retention: events with their deliveries (the outbox), projection upserts, the
 * projection version, and deleting events. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { RecordSource } from '../../domain/entities.js';
import type { StoredEventInput } from '../../domain/events.js';
import type { Projected } from '../../domain/projection.js';
import type { AppointmentRecord, PatientRecord } from '../../domain/records.js';
import type { SqlValue } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';
import { insertRows } from '../sql/values.js';

/** Events of a connection, returning each one's `seq` and `id` (multi-row inserts, in chunks). */
export function insertEvents(accountId: string, connectionId: string, events: readonly StoredEventInput[]): Statement[] {
  return insertRows(
    'events',
    ['id', 'account_id', 'connection_id', 'type', 'ordering_key', 'job_id', 'patient_ehr_id', 'created_at', 'body'],
    events.map((e) => [e.id, accountId, connectionId, e.type, e.orderingKey, e.jobId, e.patientEhrId, e.createdAt, e.body]),
    'RETURNING seq, id',
  );
}

/** Every endpoint of an account, enabled or not (a disabled one gets its deliveries as skipped). */
export const selectFanOutEndpoints = (accountId: string): Statement => ({
  sql: 'SELECT * FROM endpoints WHERE account_id = :account_id',
  params: { account_id: accountId },
});

/** A new delivery: event, endpoint, account, ordering key, status, and the event's creation time. */
export type NewDelivery = readonly [eventSeq: number, endpointId: string, accountId: string, orderingKey: string, status: 'pending' | 'skipped', at: EpochMs];

/** Deliveries, due (and created) when their event was created (multi-row inserts, in chunks). */
export function insertDeliveries(deliveries: readonly NewDelivery[]): Statement[] {
  return insertRows(
    'deliveries',
    ['event_seq', 'endpoint_id', 'account_id', 'ordering_key', 'status', 'next_attempt_at', 'created_at', 'updated_at'],
    deliveries.map(([seq, endpointId, accountId, key, status, at]): SqlValue[] => [seq, endpointId, accountId, key, status, at, at, at]),
  );
}

/**
 * Upserts projected appointments. A row keeps its id and its source (who first wrote it); its
 * record, patient, start and update time follow the latest write.
 */
export function upsertAppointments(connectionId: string, rows: readonly Projected<AppointmentRecord>[], source: RecordSource, at: EpochMs): Statement[] {
  return insertRows(
    'projection_appointments',
    ['connection_id', 'ehr_id', 'id', 'patient_ehr_id', 'start_ms', 'record', 'source', 'created_at', 'updated_at'],
    rows.map((p) => [connectionId, p.record.ehr_appointment_id, p.id, p.record.patient_ehr_id, Date.parse(p.record.datetime), JSON.stringify(p.record), source, at, at]),
    'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET record = excluded.record, patient_ehr_id = excluded.patient_ehr_id, start_ms = excluded.start_ms, updated_at = excluded.updated_at',
  );
}

/** Upserts projected patients. A row keeps its id and its source; its record, MRN and update time follow the latest write. */
export function upsertPatients(connectionId: string, rows: readonly Projected<PatientRecord>[], source: RecordSource, at: EpochMs): Statement[] {
  return insertRows(
    'projection_patients',
    ['connection_id', 'ehr_id', 'id', 'mrn', 'record', 'source', 'created_at', 'updated_at'],
    rows.map((p) => [connectionId, p.record.ehr_patient_id, p.id, p.record.mrn, JSON.stringify(p.record), source, at, at]),
    'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET record = excluded.record, mrn = excluded.mrn, updated_at = excluded.updated_at',
  );
}

/**
 * Bumps a connection's projection version, so a sync that read the projection before this write
 * fails its commit instead of overwriting it. With `expected`, only when the version is still that
 * (the sync's own check: no row changed means another writer came first).
 */
export function bumpProjectionVersion(connectionId: string, expected?: number): Statement {
  return expected === undefined
    ? { sql: 'UPDATE connections SET projection_version = projection_version + 1 WHERE id = :id', params: { id: connectionId } }
    : {
        sql: 'UPDATE connections SET projection_version = projection_version + 1 WHERE id = :id AND projection_version = :expected',
        params: { id: connectionId, expected },
      };
}

/** Events deleted per batch of `deleteEvents`. */
export const DELETE_EVENTS_CHUNK = 500;

/** Deletes events (their sequence numbers, as a JSON list) with their deliveries and attempts: children first. */
export function deleteEvents(d: Dialect, seqList: string): Statement[] {
  const seqs = d.jsonIntList('seqs');
  return [
    { sql: `DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq IN ${seqs})`, params: { seqs: seqList } },
    { sql: `DELETE FROM deliveries WHERE event_seq IN ${seqs}`, params: { seqs: seqList } },
    { sql: `DELETE FROM events WHERE seq IN ${seqs}`, params: { seqs: seqList } },
  ];
}
