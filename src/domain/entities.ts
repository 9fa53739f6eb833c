/**
 * @module domain/entities — the things ehrsync keeps and every stage talks about: accounts, clinic
 * connections, webhook endpoints, sync runs, stored events, projection rows and operations (writes
 * into the EHR). Plain data; the store persists them (src/store), the API and CLI show them.
 * Times are epoch milliseconds; ids are strings.
 */
import type { EpochMs } from './clock.js';
import type { EventType } from './events.js';
import type { AppointmentRecord, PatientRecord, QuarantineItem } from './records.js';
import type { StatusMap } from './status.js';

/** A customer account (one API client). */
export interface Account {
  id: string;
  name: string;
  clientId: string;
  createdAt: EpochMs;
}

/** One clinic's EHR connection. */
export interface Connection {
  id: string;
  accountId: string;
  /** Connector kind: `memory`, `demo`, `fhir`, ... */
  connector: string;
  /** Connector settings (base URL, identifier systems, ...); secrets in it are stored encrypted by the caller. */
  config: Record<string, unknown>;
  /** The customer's label, echoed as `access_token_reference_id` in every event (null until set). */
  referenceId: string | null;
  timezone: string;
  windowPastDays: number;
  windowFutureDays: number;
  statusMap: StatusMap | null;
  syncIntervalMs: number;
  /** Replay the baseline as `created` events instead of emitting nothing. */
  replayBaseline: boolean;
  enabled: boolean;
  /** When the baseline sync committed; null until then. */
  baselineAt: EpochMs | null;
  /** Where the next `patients changed since` read starts (EHR server time, ISO 8601). */
  patientCursor: string | null;
  nextSyncAt: EpochMs;
  consecutiveFailures: number;
  lastSyncAt: EpochMs | null;
  createdAt: EpochMs;
}

/** Defaults for a new connection (documented in docs/configuration.md). */
export const CONNECTION_DEFAULTS = {
  timezone: 'UTC',
  windowPastDays: 7,
  windowFutureDays: 60,
  syncIntervalMs: 60_000,
} as const;

/** How webhooks to an endpoint are signed. */
export type SignatureScheme = 'cobalt' | 'standard';
/** How failed deliveries to an endpoint are retried. */
export type RetryPolicyName = 'cobalt' | 'durable';

/** A webhook endpoint of an account. */
export interface Endpoint {
  id: string;
  accountId: string;
  url: string;
  /** The signing secret as stored (encrypted by the caller). */
  secret: string;
  /** The secret before the last rotation, valid until `previousSecretExpiresAt`. */
  previousSecret: string | null;
  previousSecretExpiresAt: EpochMs | null;
  signatureScheme: SignatureScheme;
  retryPolicy: RetryPolicyName;
  /** Event types delivered to this endpoint. */
  eventTypes: EventType[];
  enabled: boolean;
  disabledReason: string | null;
  /** Start of the current run of only-failures; null after any success. */
  failingSince: EpochMs | null;
  /** Most deliveries in flight to this endpoint at once; null for the dispatcher's default. */
  maxConcurrency: number | null;
  /** When it was disabled (by the account, a 410, or N days of failures); null while enabled. */
  disabledAt: EpochMs | null;
  /** Failed attempts since the last success. */
  consecutiveFailures: number;
  lastSuccessAt: EpochMs | null;
  lastFailureAt: EpochMs | null;
  createdAt: EpochMs;
}

/** One sync of one connection. */
export interface SyncRun {
  id: string;
  connectionId: string;
  startedAt: EpochMs;
  finishedAt: EpochMs | null;
  status: 'running' | 'succeeded' | 'failed';
  counts: Partial<Record<EventType, number>>;
  quarantined: number;
  errorCode: string | null;
  errorMessage: string | null;
}

/** A quarantined record as stored. */
export interface QuarantineRow extends QuarantineItem {
  id: string;
  connectionId: string;
  syncRunId: string;
  createdAt: EpochMs;
}

/** A stored event. */
export interface EventRow {
  seq: number;
  id: string;
  accountId: string;
  connectionId: string;
  type: EventType;
  orderingKey: string;
  jobId: string | null;
  createdAt: EpochMs;
  /** The exact bytes (UTF-8 JSON) that are signed and sent. */
  body: string;
}

/** Who wrote a projection row: a sync that read the EHR, or ehrsync's own write (an operation). */
export type RecordSource = 'ehr_sync' | 'operation';

/** An appointment as the projection holds it (the API's cached reads). */
export interface AppointmentRow {
  id: string;
  connectionId: string;
  record: AppointmentRecord;
  source: RecordSource;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

/** A patient as the projection holds it. */
export interface PatientRow {
  id: string;
  connectionId: string;
  record: PatientRecord;
  source: RecordSource;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

/** What an operation writes. */
export type OperationKind = 'appointment.create' | 'appointment.update' | 'patient.create' | 'patient.update';
/** Where an operation stands. */
export type OperationStatus = 'queued' | 'running' | 'succeeded' | 'failed';

/** A write into the EHR requested through the API, run as a durable job. */
export interface Operation {
  /** The job_id. */
  id: string;
  accountId: string;
  connectionId: string;
  kind: OperationKind;
  /** ehrsync's id of the appointment or patient, known when the request is accepted. */
  targetId: string;
  targetEhrId: string | null;
  input: Record<string, unknown>;
  status: OperationStatus;
  attempts: number;
  nextRunAt: EpochMs;
  idempotencyKey: string | null;
  requestHash: string;
  errorCode: string | null;
  errorMessage: string | null;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

/** Whether an endpoint receives events of a type (its subscription). */
export function subscribes(endpoint: Pick<Endpoint, 'eventTypes'>, type: EventType): boolean {
  return endpoint.eventTypes.includes(type);
}

/** Connector kinds whose EHR pushes its changes to ehrsync: never polled, never written through. */
export const PUSH_CONNECTOR_KINDS = ['hl7v2'] as const;

/** True for a connection whose EHR pushes its changes (no sync to run, no connector to write through). */
export function isPushConnector(kind: string): boolean {
  return (PUSH_CONNECTOR_KINDS as readonly string[]).includes(kind);
}
