/**
 * @module store/statements/sync-commits — the SQL of sync runs: starting one, the commit of a
 * successful sync (besides the shared outbox writes of statements/outbox.ts), failures, history
 * and quarantine. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { ProviderRecord, QuarantineItem } from '../../domain/records.js';
import type { SyncCommit, SyncFailure } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';
import { insertRows } from '../sql/values.js';

/**
 * Marks a connection's runs still running as failed: the caller holds the connection's sync lease,
 * so any run still marked running was cut short by a crash, and none of it was committed.
 */
export const failInterruptedRuns = (connectionId: string, at: EpochMs): Statement => ({
  sql: `UPDATE sync_runs SET status = 'failed', finished_at = :at, error_code = 'sync_interrupted',
          error_message = 'The process stopped during this sync; nothing of it was committed.'
        WHERE connection_id = :connection_id AND status = 'running'`,
  params: { at, connection_id: connectionId },
});

/** A new running sync run. */
export const insertSyncRun = (id: string, connectionId: string, startedAt: EpochMs): Statement => ({
  sql: "INSERT INTO sync_runs (id, connection_id, started_at, status, counts, quarantined) VALUES (:id, :connection_id, :started_at, 'running', '{}', 0)",
  params: { id, connection_id: connectionId, started_at: startedAt },
});

/** The account and projection version of the connection a commit writes to. */
export const selectCommitConnection = (connectionId: string): Statement => ({
  sql: 'SELECT account_id, projection_version FROM connections WHERE id = :id',
  params: { id: connectionId },
});

/** Deletes projected appointments by EHR id (given as a JSON list). */
export const deleteAppointments = (d: Dialect, connectionId: string, ehrIds: readonly string[]): Statement => ({
  sql: `DELETE FROM projection_appointments WHERE connection_id = :connection_id AND ehr_id IN ${d.jsonTextList('ehr_ids')}`,
  params: { connection_id: connectionId, ehr_ids: JSON.stringify(ehrIds) },
});

/** Upserts providers; a provider keeps its id and its status (set by hand), its name and NPI follow the EHR. */
export function upsertProviders(connectionId: string, providers: readonly ProviderRecord[], at: EpochMs): Statement[] {
  return insertRows(
    'providers',
    ['connection_id', 'ehr_id', 'id', 'name', 'npi', 'status', 'updated_at'],
    providers.map((p) => [connectionId, p.ehr_id, p.id, p.name, p.npi, p.status, at]),
    'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET name = excluded.name, npi = excluded.npi, updated_at = excluded.updated_at',
  );
}

/** What identifies a quarantined record across syncs (see deleteRepeatedQuarantine). */
const QUARANTINE_KEY_COLUMNS = [
  ['kind', 'text'],
  ['ehr_id', 'text'],
  ['reason', 'text'],
] as const;

/**
 * Deletes a connection's quarantined rows for records quarantined again (same kind, EHR id and
 * reason): a record that stays malformed (or unreadable) is reported by every sync, and the
 * connection keeps one row per record and reason, the latest, not one per sync (1,440 a day at a
 * one-minute interval).
 */
export const deleteRepeatedQuarantine = (d: Dialect, connectionId: string, items: readonly QuarantineItem[]): Statement => ({
  sql: `DELETE FROM quarantine WHERE connection_id = :connection_id AND EXISTS (
          SELECT 1 FROM ${d.jsonRecords('q', QUARANTINE_KEY_COLUMNS, 'keys')} WHERE q.kind = quarantine.kind AND q.ehr_id = quarantine.ehr_id AND q.reason = quarantine.reason)`,
  params: { connection_id: connectionId, keys: JSON.stringify(items.map((q) => ({ kind: q.kind, ehr_id: q.ehr_id, reason: q.reason }))) },
});

/** Quarantined records of a sync run (`ids` gives each its row id). */
export function insertQuarantine(connectionId: string, runId: string, items: readonly QuarantineItem[], ids: readonly string[], at: EpochMs): Statement[] {
  return insertRows(
    'quarantine',
    ['id', 'connection_id', 'sync_run_id', 'kind', 'ehr_id', 'reason', 'raw', 'created_at'],
    items.map((q, i) => [ids[i] as string, connectionId, runId, q.kind, q.ehr_id, q.reason, q.raw, at]),
  );
}

/** Marks a sync run succeeded, with its counts per event type and how many records it quarantined. */
export const finishSyncRun = (c: SyncCommit): Statement => ({
  sql: "UPDATE sync_runs SET status = 'succeeded', finished_at = :at, counts = :counts, quarantined = :quarantined WHERE id = :id",
  params: { at: c.finishedAt, counts: JSON.stringify(c.plan.counts), quarantined: c.plan.quarantined.length, id: c.runId },
});

/**
 * After a successful sync: the baseline time (set once, by the first successful sync), the patient
 * cursor (kept when the sync has none), the next sync, and the failure streak reset.
 */
export const advanceConnection = (c: SyncCommit): Statement => ({
  sql: `UPDATE connections SET
          baseline_at = CASE WHEN :baseline_done = 1 THEN COALESCE(baseline_at, :at) ELSE baseline_at END,
          patient_cursor = COALESCE(:patient_cursor, patient_cursor),
          next_sync_at = :next_sync_at, consecutive_failures = 0, last_sync_at = :at
        WHERE id = :id`,
  params: { baseline_done: c.baselineDone ? 1 : 0, at: c.finishedAt, patient_cursor: c.patientCursor ?? null, next_sync_at: c.nextSyncAt, id: c.connectionId },
});

/** Marks a sync run failed, with its error. */
export const failSyncRun = (f: SyncFailure): Statement => ({
  sql: "UPDATE sync_runs SET status = 'failed', finished_at = :finished_at, error_code = :error_code, error_message = :error_message WHERE id = :id",
  params: { finished_at: f.finishedAt, error_code: f.errorCode, error_message: f.errorMessage, id: f.runId },
});

/** After a failed sync: the next sync, and the failure streak one longer unless the failure says nothing about the EHR. */
export const noteSyncFailure = (f: SyncFailure): Statement => ({
  sql: 'UPDATE connections SET consecutive_failures = consecutive_failures + :failures, next_sync_at = :next_sync_at WHERE id = :id',
  params: { failures: f.countsAsFailure === false ? 0 : 1, next_sync_at: f.nextSyncAt, id: f.connectionId },
});

/** A connection's latest sync runs. */
export const selectSyncRuns = (connectionId: string, limit: number): Statement => ({
  sql: 'SELECT * FROM sync_runs WHERE connection_id = :connection_id ORDER BY started_at DESC, id LIMIT :limit',
  params: { connection_id: connectionId, limit },
});

/** A connection's latest quarantined records. */
export const selectQuarantine = (connectionId: string, limit: number): Statement => ({
  sql: 'SELECT * FROM quarantine WHERE connection_id = :connection_id ORDER BY created_at DESC, id LIMIT :limit',
  params: { connection_id: connectionId, limit },
});
