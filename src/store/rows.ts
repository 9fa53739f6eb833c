/**
 * @module store/rows — database rows ↔ domain objects, shared by both dialects (both schemas use
 * the same column names and types: TEXT, integer milliseconds, 0/1 flags, JSON as TEXT).
 */
import type { EventType } from '../domain/events.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord } from '../domain/records.js';
import type { Account, AppointmentRow, Operation, OperationKind, OperationStatus, Connection, Endpoint, EventRow, PatientRow, QuarantineRow, SyncRun } from '../domain/entities.js';
import type { AttemptRow, DeliveryRow, DeliveryStatus, LeasedDelivery } from '../domain/delivery.js';

type Row = Record<string, unknown>;

const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const bool = (v: unknown): boolean => v === 1 || v === true || v === '1';
const json = <T>(v: unknown, fallback: T): T => (v === null || v === undefined ? fallback : (JSON.parse(String(v)) as T));

/** accounts row → Account. */
export function toAccount(r: Row): Account {
  return { id: str(r.id), name: str(r.name), clientId: str(r.client_id), createdAt: num(r.created_at) };
}

/** connections row → Connection. */
export function toConnection(r: Row): Connection {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    connector: str(r.connector),
    config: json(r.config, {}),
    referenceId: strOrNull(r.reference_id),
    timezone: str(r.timezone),
    windowPastDays: num(r.window_past_days),
    windowFutureDays: num(r.window_future_days),
    statusMap: json(r.status_map, null),
    syncIntervalMs: num(r.sync_interval_ms),
    replayBaseline: bool(r.replay_baseline),
    enabled: bool(r.enabled),
    baselineAt: numOrNull(r.baseline_at),
    patientCursor: strOrNull(r.patient_cursor),
    nextSyncAt: num(r.next_sync_at),
    consecutiveFailures: num(r.consecutive_failures),
    lastSyncAt: numOrNull(r.last_sync_at),
    createdAt: num(r.created_at),
  };
}

/** providers row → ProviderRecord. */
export function toProvider(r: Row): ProviderRecord {
  return { id: str(r.id), ehr_id: str(r.ehr_id), name: strOrNull(r.name), npi: strOrNull(r.npi), status: r.status === 'inactive' ? 'inactive' : 'active' };
}

/** endpoints row → Endpoint. */
export function toEndpoint(r: Row): Endpoint {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    url: str(r.url),
    secret: str(r.secret),
    previousSecret: strOrNull(r.previous_secret),
    previousSecretExpiresAt: numOrNull(r.previous_secret_expires_at),
    signatureScheme: r.signature_scheme === 'standard' ? 'standard' : 'cobalt',
    retryPolicy: r.retry_policy === 'cobalt' ? 'cobalt' : 'durable',
    eventTypes: json<EventType[]>(r.event_types, []),
    enabled: bool(r.enabled),
    disabledReason: strOrNull(r.disabled_reason),
    failingSince: numOrNull(r.failing_since),
    maxConcurrency: numOrNull(r.max_concurrency),
    disabledAt: numOrNull(r.disabled_at),
    consecutiveFailures: num(r.consecutive_failures ?? 0),
    lastSuccessAt: numOrNull(r.last_success_at),
    lastFailureAt: numOrNull(r.last_failure_at),
    createdAt: num(r.created_at),
  };
}

/** sync_runs row → SyncRun. */
export function toSyncRun(r: Row): SyncRun {
  const status = r.status === 'succeeded' || r.status === 'failed' ? r.status : 'running';
  return {
    id: str(r.id),
    connectionId: str(r.connection_id),
    startedAt: num(r.started_at),
    finishedAt: numOrNull(r.finished_at),
    status,
    counts: json(r.counts, {}),
    quarantined: num(r.quarantined),
    errorCode: strOrNull(r.error_code),
    errorMessage: strOrNull(r.error_message),
  };
}

/** quarantine row → QuarantineRow. */
export function toQuarantine(r: Row): QuarantineRow {
  return {
    id: str(r.id),
    connectionId: str(r.connection_id),
    syncRunId: str(r.sync_run_id),
    kind: r.kind === 'patient' || r.kind === 'message' ? r.kind : 'appointment',
    ehr_id: strOrNull(r.ehr_id),
    reason: str(r.reason),
    raw: str(r.raw),
    createdAt: num(r.created_at),
  };
}

/** events row → EventRow. */
export function toEvent(r: Row): EventRow {
  return {
    seq: num(r.seq),
    id: str(r.id),
    accountId: str(r.account_id),
    connectionId: str(r.connection_id),
    type: str(r.type) as EventType,
    orderingKey: str(r.ordering_key),
    jobId: strOrNull(r.job_id),
    createdAt: num(r.created_at),
    body: str(r.body),
  };
}

/** deliveries row (joined with events for `event_id`) → DeliveryRow. */
export function toDelivery(r: Row): DeliveryRow {
  return {
    id: num(r.id),
    eventSeq: num(r.event_seq),
    eventId: str(r.event_id),
    endpointId: str(r.endpoint_id),
    accountId: str(r.account_id),
    orderingKey: str(r.ordering_key),
    status: str(r.status) as DeliveryStatus,
    attempts: num(r.attempts),
    nextAttemptAt: num(r.next_attempt_at),
    lastStatusCode: numOrNull(r.last_status_code),
    lastError: strOrNull(r.last_error),
    retryFrom: num(r.retry_from ?? 0),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** attempts row → AttemptRow. */
export function toAttempt(r: Row): AttemptRow {
  return {
    id: num(r.id),
    deliveryId: num(r.delivery_id),
    endpointId: strOrNull(r.endpoint_id),
    attempt: num(r.attempt),
    startedAt: num(r.started_at),
    durationMs: num(r.duration_ms),
    statusCode: numOrNull(r.status_code),
    errorClass: strOrNull(r.error_class),
    responseExcerpt: strOrNull(r.response_excerpt),
    outcome: str(r.outcome) as AttemptRow['outcome'],
  };
}

/** projection_appointments row → AppointmentRow. */
export function toAppointmentRow(r: Row): AppointmentRow {
  return {
    id: str(r.id),
    connectionId: str(r.connection_id),
    record: json<AppointmentRecord>(r.record, {} as AppointmentRecord),
    source: r.source === 'operation' ? 'operation' : 'ehr_sync',
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** projection_patients row → PatientRow. */
export function toPatientRow(r: Row): PatientRow {
  return {
    id: str(r.id),
    connectionId: str(r.connection_id),
    record: json<PatientRecord>(r.record, {} as PatientRecord),
    source: r.source === 'operation' ? 'operation' : 'ehr_sync',
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** operations row → Operation. */
export function toOperation(r: Row): Operation {
  return {
    id: str(r.id),
    accountId: str(r.account_id),
    connectionId: str(r.connection_id),
    kind: str(r.kind) as OperationKind,
    targetId: str(r.target_id),
    targetEhrId: strOrNull(r.target_ehr_id),
    input: json(r.input, {}),
    status: str(r.status) as OperationStatus,
    attempts: num(r.attempts),
    nextRunAt: num(r.next_run_at),
    idempotencyKey: strOrNull(r.idempotency_key),
    requestHash: str(r.request_hash),
    errorCode: strOrNull(r.error_code),
    errorMessage: strOrNull(r.error_message),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** A leased delivery from its row joined with its event (`event_id`, `event_body`, `event_created_at`) and its endpoint. */
export function toLeased(r: Row, endpoint: Endpoint): LeasedDelivery {
  return { delivery: toDelivery(r), body: String(r.event_body), eventCreatedAt: Number(r.event_created_at), endpoint };
}
