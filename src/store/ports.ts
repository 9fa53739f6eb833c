/**
 * @module store/ports — the store's interfaces, one per concern (accounts, connections, sync leases,
 * projection, provider settings, sync commits, pushed-feed commits, API reads, retention, operations, endpoints, event
 * log, delivery queue), and `Store`, their composition. One SQL implementation per port serves
 * SQLite and PostgreSQL (src/store/store.ts composes them); the contract suite in
 * test/contract/store-contract.ts runs against both.
 *
 * What it guarantees: `commitSync` writes a sync's projection changes, its events and one delivery
 * row per (event, subscribed endpoint) in ONE transaction — the outbox. A crash leaves all of it or
 * none. What it deliberately does not expose: connections, transactions, SQL or driver types.
 * Times are epoch milliseconds; ids are strings. The entities it keeps are domain types
 * (src/domain/entities.ts, src/domain/delivery.ts, src/domain/projection.ts).
 */
import type { EpochMs } from '../domain/clock.js';
import type { AttemptRow, DeliveryOutcome, DeliveryRow, DeliveryStatus, EndpointHealth, LeasedDelivery } from '../domain/delivery.js';
import type { Account, AppointmentRow, Connection, Endpoint, EventRow, Operation, PatientRow, QuarantineRow, RetryPolicyName, SignatureScheme, SyncRun } from '../domain/entities.js';
import type { EventType, StoredEventInput } from '../domain/events.js';
import type { Projected, ProjectionSnapshot, SyncPlan } from '../domain/projection.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';

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

/** Fields of a new operation (queued, no attempt yet). */
export type NewOperation = Pick<Operation, 'id' | 'accountId' | 'connectionId' | 'kind' | 'targetId' | 'targetEhrId' | 'input' | 'idempotencyKey' | 'requestHash'> & { now: EpochMs };

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

/** Customer accounts (API clients) and their credentials. */
export interface Accounts {
  createAccount(input: { name: string; clientId: string; clientSecretHash: string; now: EpochMs }): Promise<Account>;
  getAccount(id: string): Promise<Account | null>;
  /** The account and its stored secret hash, for authentication. */
  findAccountByClientId(clientId: string): Promise<{ account: Account; clientSecretHash: string } | null>;
  listAccounts(): Promise<Account[]>;
}

/** Clinic connections: their settings, as the API, the CLI and the sync read and change them. */
export interface Connections {
  createConnection(input: NewConnection): Promise<Connection>;
  getConnection(id: string): Promise<Connection | null>;
  findConnectionByTokenHash(accessTokenHash: string): Promise<Connection | null>;
  listConnections(accountId?: string): Promise<Connection[]>;
  updateConnection(id: string, patch: ConnectionPatch): Promise<Connection | null>;
}

/** Which worker syncs which connection: leases, so two workers never sync one connection at once. */
export interface SyncLeases {
  /**
   * Leases up to `limit` enabled connections whose sync is due, so no other worker syncs them until
   * `leaseUntil` or `releaseConnection`. Never returns a connection whose lease is still held.
   */
  claimDueConnections(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Connection[]>;
  /** Leases one connection now (manual "sync now"); null when another worker holds it. */
  claimConnection(id: string, now: EpochMs, leaseUntil: EpochMs, owner: string): Promise<Connection | null>;
  releaseConnection(id: string, owner: string): Promise<void>;
}

/** What a sync reads before it plans: the projection and the connection's providers. */
export interface Projection {
  listProviders(connectionId: string): Promise<ProviderRecord[]>;
  loadProjection(connectionId: string): Promise<ProjectionSnapshot>;
}

/** The account's choice of which providers to sync (an inactive provider's appointments are ignored). */
export interface ProviderSettings {
  setProviderStatus(connectionId: string, providerId: string, status: ProviderRecord['status']): Promise<ProviderRecord | null>;
}

/** Sync runs and their commit: the outbox write of a sync (projection, events, deliveries, run outcome in one transaction), failures, history and quarantine. */
export interface SyncCommits {
  startSyncRun(connectionId: string, startedAt: EpochMs): Promise<SyncRun>;
  /** The outbox write: projection + events + deliveries + run outcome, all or nothing. */
  commitSync(commit: SyncCommit): Promise<void>;
  failSyncRun(failure: SyncFailure): Promise<void>;
  listSyncRuns(connectionId: string, limit: number): Promise<SyncRun[]>;
  listQuarantine(connectionId: string, limit: number): Promise<QuarantineRow[]>;
}

/** One message of a pushed feed as the message log keeps it (ids and outcome, never content). */
export interface FeedMessage {
  connectionId: string;
  /** Who sent it: MSH-3 and MSH-4 as `application|facility`. */
  sender: string;
  /** MSH-10: with the sender, what makes a re-sent message recognisable. */
  controlId: string;
  /** MSH-9.1^MSH-9.2, e.g. `SIU^S12`. */
  messageType: string;
  /** MSH-7, when it parsed. */
  messageTimeMs: EpochMs | null;
  /** `applied`, `stale` (older than what is applied), `unsupported` (acknowledged, ignored) or `quarantined`. */
  outcome: 'applied' | 'stale' | 'unsupported' | 'quarantined';
  /** The acknowledgment the sender got, and gets again for a re-send. */
  ackCode: 'AA' | 'AE';
  /** The AE's reason (locations and field names only). */
  errorText: string | null;
  receivedAt: EpochMs;
}

/** What a pushed change reads before it plans: its records in the projection, the providers, and the records' message times. */
export interface PushSlice {
  /** Only the rows asked for; `version` is the connection's projection version. */
  projection: ProjectionSnapshot;
  providers: ProviderRecord[];
  /** MSH-7 last applied, by `recordTimeKey(kind, ehrId)` (detection/push-plan.ts). */
  recordTimes: Map<string, EpochMs>;
}

/** Everything one pushed message commits. */
export interface PushCommit {
  message: FeedMessage;
  plan: SyncPlan;
  /** Stored patients merged into another (A40), removed from the projection. */
  retirePatientEhrIds: readonly string[];
  /** MSH-7 to remember per record applied (kept when a newer one is stored). */
  recordTimes: readonly { kind: 'appointment' | 'patient'; ehrId: string; ms: EpochMs }[];
  /**
   * The projection version the plan was made from. The first commit of a connection in a batch
   * carries it: when another writer changed the projection meanwhile, the whole batch fails with a
   * ConflictError and is planned again.
   */
  projectionVersion?: number;
}

/** The pushed feed's writes: its message log (de-duplication, acknowledgments) and its outbox commit. */
export interface PushCommits {
  /** The log entry of a message already received from this sender with this MSH-10, or null. */
  findFeedMessage(connectionId: string, sender: string, controlId: string): Promise<FeedMessage | null>;
  /** The projection rows, providers and message times a pushed change plans against. */
  loadPushSlice(connectionId: string, keys: { appointmentEhrIds: readonly string[]; patientEhrIds: readonly string[]; patientMrns?: readonly string[] }): Promise<PushSlice>;
  /**
   * Commits pushed messages in ONE transaction (group commit: several senders share one), each
   * with its log entry, projection changes, events, deliveries, quarantine and message times — the
   * same outbox guarantee as `commitSync`. A message whose log entry already exists (received by
   * another process meanwhile) is skipped: its result is `duplicate`. All or nothing.
   */
  commitPushes(batch: readonly PushCommit[]): Promise<('committed' | 'duplicate')[]>;
}

/** The API's cached reads of the projection. */
export interface ProjectionReads {
  /** Projected appointments of a connection starting in a range, ordered by start. */
  listAppointments(filter: AppointmentFilter): Promise<AppointmentRow[]>;
  /** One projected appointment by ehrsync id, or by the EHR's id. */
  getAppointment(connectionId: string, id: string): Promise<AppointmentRow | null>;
  /** One projected patient by ehrsync id, or by the EHR's id. */
  getPatient(connectionId: string, id: string): Promise<PatientRow | null>;
  /** Projected patients of a connection, with the total for pagination. */
  listPatients(filter: PatientFilter): Promise<{ rows: PatientRow[]; total: number }>;
}

/** Deleting what is kept: retention by age, and erasure of one patient. */
export interface Retention {
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
}

/** Writes into the EHR requested through the API, as a durable queue of jobs. */
export interface Operations {
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
}

/** Webhook endpoints of an account and their health. */
export interface Endpoints {
  createEndpoint(input: NewEndpoint): Promise<Endpoint>;
  getEndpoint(id: string): Promise<Endpoint | null>;
  listEndpoints(accountId: string): Promise<Endpoint[]>;
  updateEndpoint(id: string, patch: EndpointPatch): Promise<Endpoint | null>;
  deleteEndpoint(id: string): Promise<boolean>;
  /** Disables an endpoint with a recorded reason; its pending deliveries become skipped. */
  disableEndpoint(id: string, reason: string, now: EpochMs): Promise<Endpoint | null>;
  /** Enables an endpoint again, clearing the reason and the failure streak (skipped deliveries stay skipped until recovered). */
  enableEndpoint(id: string): Promise<Endpoint | null>;
  /** Health figures; success rate over attempts since `since`. Null when the endpoint does not exist. */
  getEndpointHealth(id: string, since: EpochMs): Promise<EndpointHealth | null>;
}

/** The stored events with their deliveries and attempts, and queuing them again. */
export interface EventLog {
  listEvents(query: EventQuery): Promise<EventRow[]>;
  getEvent(id: string): Promise<EventRow | null>;
  /** The deliveries of one event, one per endpoint it was fanned out to. */
  listDeliveries(eventId: string): Promise<DeliveryRow[]>;
  /** The event log joined with deliveries and endpoint URLs, with the total for pagination. */
  listEventDeliveries(filter: EventDeliveryFilter): Promise<{ rows: EventDeliveryRow[]; total: number }>;
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
}

/** The dispatcher's queue: leasing due deliveries and recording the outcomes of their attempts. */
export interface DeliveryQueue {
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
  /**
   * Calls `listener` after new pending deliveries were committed (events, redeliveries,
   * recoveries): by this store at once, and on PostgreSQL by other processes too (NOTIFY/LISTEN);
   * polling stays the backstop.
   * Returns the unsubscribe function.
   */
  onDeliveriesDue(listener: () => void): () => void;
}

/**
 * The database behind ehrsync: every port, plus migrations and closing. Every method is atomic on
 * its own. A consumer names the ports it uses (e.g. the sync engine takes
 * `Projection & SyncCommits`), not the whole store.
 */
export interface Store extends Accounts, Connections, SyncLeases, Projection, ProviderSettings, SyncCommits, PushCommits, ProjectionReads, Retention, Operations, Endpoints, EventLog, DeliveryQueue {
  /** Applies pending numbered migrations; safe to call on every start. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
