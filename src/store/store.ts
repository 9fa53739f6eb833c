/**
 * @module store/store — the one interface between ehrsync and its database (DESIGN §8). SQLite and
 * PostgreSQL implement it; the contract suite in test/contract/store-contract.ts runs against both.
 *
 * What it guarantees: `commitSync` writes a sync's projection changes, its events and one delivery
 * row per (event, subscribed endpoint) in ONE transaction — the outbox. A crash leaves all of it or
 * none. What it deliberately does not expose: connections, transactions, SQL or driver types.
 * Times are epoch milliseconds; ids are strings.
 */
import type { EpochMs } from '../domain/clock.js';
import type { EventType, StoredEventInput } from '../domain/events.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord, QuarantineItem } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import type { Projected } from '../detection/diff.js';
import type { ProjectionSnapshot, SyncPlan } from '../detection/plan.js';

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

/** Fields a caller sets when creating a connection. */
export interface NewConnection {
  accountId: string;
  connector: string;
  config?: Record<string, unknown>;
  /** SHA-256 of the access token (the token itself is never stored). */
  accessTokenHash?: string | null;
  referenceId?: string | null;
  timezone?: string;
  windowPastDays?: number;
  windowFutureDays?: number;
  statusMap?: StatusMap | null;
  syncIntervalMs?: number;
  replayBaseline?: boolean;
  now: EpochMs;
}

/** Connection fields that can change after creation. */
export type ConnectionPatch = Partial<
  Pick<Connection, 'config' | 'referenceId' | 'timezone' | 'windowPastDays' | 'windowFutureDays' | 'statusMap' | 'syncIntervalMs' | 'replayBaseline' | 'enabled' | 'nextSyncAt'>
>;

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

/** Fields a caller sets when creating an endpoint. */
export interface NewEndpoint {
  accountId: string;
  url: string;
  secret: string;
  signatureScheme?: SignatureScheme;
  retryPolicy?: RetryPolicyName;
  eventTypes?: EventType[];
  maxConcurrency?: number | null;
  now: EpochMs;
}

/**
 * Endpoint fields that can change after creation. `enabled: false` also marks the endpoint's pending
 * deliveries `skipped` (kept, visible, recoverable).
 */
export type EndpointPatch = Partial<
  Pick<Endpoint, 'url' | 'secret' | 'previousSecret' | 'previousSecretExpiresAt' | 'signatureScheme' | 'retryPolicy' | 'eventTypes' | 'enabled' | 'disabledReason' | 'failingSince' | 'maxConcurrency' | 'disabledAt'>
>;

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

/** Filters for reading projected appointments; the range is on the appointment's start. */
export interface AppointmentFilter {
  connectionId: string;
  fromMs: EpochMs;
  /** Exclusive. */
  toMs: EpochMs;
  patientMrn?: string;
  /** Case-insensitive substring. */
  patientName?: string;
  appointmentMode?: string;
  limit: number;
}

/** Filters for reading projected patients. Names match case-insensitive substrings. */
export interface PatientFilter {
  connectionId: string;
  mrn?: string;
  ehrId?: string;
  firstName?: string;
  lastName?: string;
  dob?: string;
  phone?: string;
  limit: number;
  offset: number;
}

/** Filters for the event log with its deliveries (Cobalt's `GET /v1/webhook-events`). */
export interface EventDeliveryFilter {
  accountId: string;
  jobId?: string;
  type?: EventType;
  deliveryStatus?: DeliveryStatus;
  createdFrom?: EpochMs;
  /** Inclusive. */
  createdTo?: EpochMs;
  order: 'asc' | 'desc';
  limit: number;
  offset: number;
}

/** One event and one of its deliveries (an event no endpoint received appears once, without a delivery). */
export interface EventDeliveryRow {
  event: EventRow;
  deliveryId: number | null;
  endpointId: string | null;
  endpointUrl: string | null;
  deliveryStatus: DeliveryStatus | null;
  attempts: number;
  lastStatusCode: number | null;
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

/** Fields of a new operation. */
export interface NewOperation {
  id: string;
  accountId: string;
  connectionId: string;
  kind: OperationKind;
  targetId: string;
  targetEhrId: string | null;
  input: Record<string, unknown>;
  idempotencyKey: string | null;
  requestHash: string;
  now: EpochMs;
}

/** Everything a finished operation commits, in one transaction (like a sync's outbox write). */
export interface OperationCommit {
  operationId: string;
  connectionId: string;
  status: 'succeeded' | 'failed';
  targetEhrId?: string | null;
  /** Projection rows as the EHR holds them after the write: the next sync then sees no change. */
  upsertAppointments: Projected<AppointmentRecord>[];
  upsertPatients: Projected<PatientRecord>[];
  events: StoredEventInput[];
  errorCode?: string;
  errorMessage?: string;
  finishedAt: EpochMs;
}

/** Where a delivery stands: `pending` (due or waiting for a retry), `succeeded`, `failed` (exhausted or not retryable), `skipped` (endpoint disabled or deleted). */
export type DeliveryStatus = 'pending' | 'succeeded' | 'failed' | 'skipped';

/** One (event, endpoint) delivery. */
export interface DeliveryRow {
  id: number;
  eventSeq: number;
  eventId: string;
  endpointId: string;
  accountId: string;
  orderingKey: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: EpochMs;
  lastStatusCode: number | null;
  lastError: string | null;
  /** `attempts` when the current retry cycle began (a redelivery starts a new cycle). */
  retryFrom: number;
  createdAt: EpochMs;
  updatedAt: EpochMs;
}

/** What `leaseDeliveries` takes. */
export interface LeaseRequest {
  now: EpochMs;
  /** Most deliveries to lease in this call. */
  limit: number;
  /** The lease holds until then; it must outlast the HTTP timeout plus a margin. */
  leaseUntil: EpochMs;
  /** Who holds the lease (one id per dispatcher process). */
  owner: string;
  /** In-flight cap per endpoint, for endpoints without their own `maxConcurrency`. */
  maxPerEndpoint: number;
  /**
   * The owner's attempts still in flight, per endpoint id. Given, the owner's own leases count
   * against the cap by this (its exact in-flight count) instead of by the rows it holds: a lease
   * whose attempt has finished but whose outcome is not recorded yet holds no connection, so the
   * owner can lease again while it records. Other owners' leases always count as rows.
   */
  ownInFlight?: ReadonlyMap<string, number>;
  /**
   * Endpoints to lease one delivery at a time, whatever their cap: the owner's last attempt to each
   * timed out. An endpoint that hangs then holds one connection instead of its cap, so a crowd of
   * them cannot take every slot of the owner from endpoints that answer.
   */
  oneAtATime?: ReadonlySet<string>;
}

/** A leased delivery with what sending it needs. `delivery.attempts` already counts this attempt. */
export interface LeasedDelivery {
  delivery: DeliveryRow;
  /** The exact bytes to send. */
  body: string;
  eventCreatedAt: EpochMs;
  endpoint: Endpoint;
}

/** The result of one attempt, as the dispatcher records it. */
export interface DeliveryOutcome {
  deliveryId: number;
  endpointId: string;
  /** The lease owner; an outcome from a worker that lost its lease is recorded as an attempt but does not change the delivery. */
  owner: string;
  attempt: number;
  startedAt: EpochMs;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  /** Truncated response body (never logged). */
  responseExcerpt: string | null;
  /** `retry` keeps the delivery pending until `nextAttemptAt`. */
  result: 'succeeded' | 'retry' | 'failed';
  nextAttemptAt?: EpochMs;
  /** Why it failed or will be retried, for the delivery row. */
  error: string | null;
  /** When set, the endpoint is disabled with this reason and its pending deliveries are skipped. */
  disableEndpoint?: string;
}

/** One recorded attempt. */
export interface AttemptRow {
  id: number;
  deliveryId: number;
  endpointId: string | null;
  attempt: number;
  startedAt: EpochMs;
  durationMs: number;
  statusCode: number | null;
  errorClass: string | null;
  responseExcerpt: string | null;
  outcome: 'succeeded' | 'retry' | 'failed';
}

/** Health figures of an endpoint. */
export interface EndpointHealth {
  endpointId: string;
  enabled: boolean;
  disabledReason: string | null;
  disabledAt: EpochMs | null;
  /** Attempts since `since`, and how many succeeded. */
  attempts: number;
  succeeded: number;
  /** succeeded / attempts since `since`; null without attempts. */
  successRate: number | null;
  lastSuccessAt: EpochMs | null;
  lastFailureAt: EpochMs | null;
  consecutiveFailures: number;
  failingSince: EpochMs | null;
  /** Deliveries by status, now. */
  pending: number;
  failed: number;
  skipped: number;
}

/** Everything a successful sync commits, in one transaction. */
export interface SyncCommit {
  runId: string;
  connectionId: string;
  plan: SyncPlan;
  finishedAt: EpochMs;
  /** Marks the baseline done (first successful sync). */
  baselineDone: boolean;
  /** New `patients changed since` cursor, or undefined to keep it. */
  patientCursor?: string;
  nextSyncAt: EpochMs;
  /**
   * The projection version the plan was made from (`loadProjection().version`). The commit fails
   * with a ConflictError when another writer (an operation) changed the projection meanwhile, so a
   * sync never overwrites or re-announces what it did not see. Omit to skip the check.
   */
  projectionVersion?: number;
}

/** What a failed sync records. */
export interface SyncFailure {
  runId: string;
  connectionId: string;
  finishedAt: EpochMs;
  errorCode: string;
  errorMessage: string;
  nextSyncAt: EpochMs;
  /** False for failures that say nothing about the EHR (a conflict with a concurrent write): no backoff. */
  countsAsFailure?: boolean;
}

/** Filters for listing events. */
export interface EventQuery {
  accountId: string;
  connectionId?: string;
  type?: EventType;
  jobId?: string;
  createdFrom?: EpochMs;
  createdTo?: EpochMs;
  /** After this sequence number (exclusive). */
  afterSeq?: number;
  limit: number;
  offset?: number;
  order?: 'asc' | 'desc';
}

/** The database behind ehrsync. Every method is atomic on its own. */
export interface Store {
  /** Applies pending numbered migrations; safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;

  createAccount(input: { name: string; clientId: string; clientSecretHash: string; now: EpochMs }): Promise<Account>;
  getAccount(id: string): Promise<Account | null>;
  /** The account and its stored secret hash, for authentication. */
  findAccountByClientId(clientId: string): Promise<{ account: Account; clientSecretHash: string } | null>;
  listAccounts(): Promise<Account[]>;

  createConnection(input: NewConnection): Promise<Connection>;
  getConnection(id: string): Promise<Connection | null>;
  findConnectionByTokenHash(accessTokenHash: string): Promise<Connection | null>;
  listConnections(accountId?: string): Promise<Connection[]>;
  updateConnection(id: string, patch: ConnectionPatch): Promise<Connection | null>;
  /**
   * Leases up to `limit` enabled connections whose sync is due, so no other worker syncs them until
   * `leaseUntil` or `releaseConnection`. Never returns a connection whose lease is still held.
   */
  claimDueConnections(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Connection[]>;
  /** Leases one connection now (manual "sync now"); null when another worker holds it. */
  claimConnection(id: string, now: EpochMs, leaseUntil: EpochMs, owner: string): Promise<Connection | null>;
  releaseConnection(id: string, owner: string): Promise<void>;

  listProviders(connectionId: string): Promise<ProviderRecord[]>;
  setProviderStatus(connectionId: string, providerId: string, status: ProviderRecord['status']): Promise<ProviderRecord | null>;

  loadProjection(connectionId: string): Promise<ProjectionSnapshot>;
  startSyncRun(connectionId: string, startedAt: EpochMs): Promise<SyncRun>;
  /** The outbox write: projection + events + deliveries + run outcome, all or nothing. */
  commitSync(commit: SyncCommit): Promise<void>;
  failSyncRun(failure: SyncFailure): Promise<void>;
  listSyncRuns(connectionId: string, limit: number): Promise<SyncRun[]>;
  listQuarantine(connectionId: string, limit: number): Promise<QuarantineRow[]>;

  /** Projected appointments of a connection starting in a range, ordered by start. */
  listAppointments(filter: AppointmentFilter): Promise<AppointmentRow[]>;
  /** One projected appointment by ehrsync id, or by the EHR's id. */
  getAppointment(connectionId: string, id: string): Promise<AppointmentRow | null>;
  /** One projected patient by ehrsync id, or by the EHR's id. */
  getPatient(connectionId: string, id: string): Promise<PatientRow | null>;
  /** Projected patients of a connection, with the total for pagination. */
  listPatients(filter: PatientFilter): Promise<{ rows: PatientRow[]; total: number }>;
  /** The event log joined with deliveries and endpoint URLs, with the total for pagination. */
  listEventDeliveries(filter: EventDeliveryFilter): Promise<{ rows: EventDeliveryRow[]; total: number }>;

  /**
   * Retention: deletes events created before `before` whose every delivery is final (succeeded,
   * failed or skipped), with their deliveries and attempts, at most `limit` per call. The call that
   * deletes fewer than `limit` (the last of a loop) also deletes quarantined records and finished
   * writes older than `before`. Events still pending delivery are never purged. Returns the number
   * of events deleted.
   */
  purgeEvents(before: EpochMs, limit: number): Promise<number>;
  /**
   * Erasure: deletes everything stored about one patient of a connection — events about them with
   * their deliveries and attempts, their appointments and patient record in the projection, and
   * quarantined records naming them. Returns what was deleted.
   */
  erasePatient(connectionId: string, patientEhrId: string): Promise<{ events: number; appointments: number; patients: number; quarantined: number; operations: number }>;

  /**
   * Records a requested write. With an idempotency key already used by the account, returns the
   * existing operation instead (`existing: true`) and creates nothing.
   */
  createOperation(input: NewOperation): Promise<{ operation: Operation; existing: boolean }>;
  getOperation(id: string): Promise<Operation | null>;
  /** Leases due operations (queued, or running with an expired lease: their worker died) and counts the attempt. */
  claimDueOperations(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Operation[]>;
  /** Puts a leased operation back in the queue for a later attempt, recording why. */
  rescheduleOperation(id: string, owner: string, retry: { nextRunAt: EpochMs; errorCode: string; errorMessage: string; now: EpochMs }): Promise<void>;
  /** Finishes an operation: projection, events with deliveries, and its outcome, all or nothing. */
  completeOperation(commit: OperationCommit): Promise<void>;

  createEndpoint(input: NewEndpoint): Promise<Endpoint>;
  getEndpoint(id: string): Promise<Endpoint | null>;
  listEndpoints(accountId: string): Promise<Endpoint[]>;
  updateEndpoint(id: string, patch: EndpointPatch): Promise<Endpoint | null>;
  deleteEndpoint(id: string): Promise<boolean>;

  listEvents(query: EventQuery): Promise<EventRow[]>;
  getEvent(id: string): Promise<EventRow | null>;
  /** The deliveries of one event, one per endpoint it was fanned out to. */
  listDeliveries(eventId: string): Promise<DeliveryRow[]>;

  // ── delivery (the dispatcher's queue) ──
  /**
   * Leases due deliveries: pending, due, not leased, to an enabled endpoint with room under its
   * in-flight cap, and the first pending one of its (endpoint, ordering key) — so a later event about
   * the same appointment or patient is never attempted while an earlier one is pending. Picks round
   * robin across accounts, then across endpoints. Counts the attempt.
   */
  leaseDeliveries(req: LeaseRequest): Promise<LeasedDelivery[]>;
  /** Records attempts and their consequences (delivery status, endpoint health, disabling) in one transaction. */
  recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void>;
  /** Gives back leases not attempted (graceful stop), uncounting the attempt. Without ids, all of the owner's. */
  releaseDeliveryLeases(owner: string, deliveryIds?: readonly number[]): Promise<void>;
  /** Attempts of an event's deliveries, oldest first; optionally of one endpoint. */
  listAttempts(eventId: string, endpointId?: string): Promise<AttemptRow[]>;
  /**
   * Queues an event again (same event id, so the same `webhook-id`) to one endpoint of its account
   * (even one not subscribed to its type) or to every enabled endpoint subscribed to it. A new retry
   * cycle starts. A delivery of it still waiting for a retry is made due now (a new cycle too); one
   * in flight is left to its attempt. Returns the number of deliveries queued; null when the event
   * does not exist.
   */
  redeliverEvent(eventId: string, now: EpochMs, endpointId?: string): Promise<number | null>;
  /**
   * Queues again every failed or skipped delivery of an endpoint created at or after `since`, and
   * makes due now those still waiting for a retry (not in flight), each in a new retry cycle.
   * Returns how many.
   */
  recoverEndpointDeliveries(endpointId: string, since: EpochMs, now: EpochMs): Promise<number>;
  /**
   * Deliveries of an endpoint created in `[createdFrom, createdTo]`, by status: every pending one,
   * and finished ones only when they changed at or after `finishedFrom` (what `ehrsync recover
   * --wait` watches after a recovery at `finishedFrom`).
   */
  countEndpointDeliveries(endpointId: string, range: { createdFrom: EpochMs; createdTo: EpochMs; finishedFrom: EpochMs }): Promise<Record<DeliveryStatus, number>>;
  /** Disables an endpoint with a recorded reason; its pending deliveries become skipped. */
  disableEndpoint(id: string, reason: string, now: EpochMs): Promise<Endpoint | null>;
  /** Enables an endpoint again, clearing the reason and the failure streak (skipped deliveries stay skipped until recovered). */
  enableEndpoint(id: string): Promise<Endpoint | null>;
  /** Health figures; success rate over attempts since `since`. Null when the endpoint does not exist. */
  getEndpointHealth(id: string, since: EpochMs): Promise<EndpointHealth | null>;
  /**
   * Calls `listener` after this store committed new pending deliveries (events, redeliveries,
   * recoveries), so an in-process dispatcher wakes at once; other processes rely on polling.
   * Returns the unsubscribe function.
   */
  onDeliveriesDue(listener: () => void): () => void;
}

/** Default event types of a new endpoint: the four seed types (DESIGN §3). */
export { SEED_EVENT_TYPES as DEFAULT_ENDPOINT_EVENT_TYPES } from '../domain/events.js';

/** Helper for implementations: the endpoints (of an event's account) that receive an event type. */
export function subscribes(endpoint: Pick<Endpoint, 'eventTypes'>, type: EventType): boolean {
  return endpoint.eventTypes.includes(type);
}
