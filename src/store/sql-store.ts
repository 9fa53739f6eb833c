/**
 * @module store/sql-store — the Store, written once in SQL over a SqlClient. SQLite and PostgreSQL
 * differ only in their client, their migrations and the fragments in store/dialect.ts.
 */
import type { EpochMs } from '../domain/clock.js';
import type { EventType } from '../domain/events.js';
import { SEED_EVENT_TYPES } from '../domain/events.js';
import { ConflictError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord } from '../domain/records.js';
import type { Projected } from '../domain/projection.js';
import type { ProjectionSnapshot } from '../domain/projection.js';
import type { Dialect } from './sql/dialect.js';
import { DIALECTS } from './sql/dialect.js';
import { ScanStarts } from './queue/scan-starts.js';
import { planLease } from './queue/lease-plan.js';
import { foldEndpointHealth, outcomeStatements } from './outcome-sql.js';
import { toAccount, toAppointmentRow, toAttempt, toOperation, toConnection, toDelivery, toEndpoint, toEvent, toPatientRow, toProvider, toQuarantine, toSyncRun } from './rows.js';
import type { SqlClient, SqlRunner, SqlValue } from './sql/client.js';
import type { QueueHooks } from './concerns/context.js';
import type { Account, AppointmentRow, Connection, Endpoint, EventRow, Operation, PatientRow, QuarantineRow, RecordSource, SyncRun } from '../domain/entities.js';
import type { AppointmentFilter, LeaseRequest, ConnectionPatch, EventDeliveryFilter, EventDeliveryRow, EndpointPatch, EventQuery, NewConnection, NewEndpoint, NewOperation, OperationCommit, PatientFilter, Store, SyncCommit, SyncFailure } from './ports.js';
import type { AttemptRow, DeliveryOutcome, EndpointHealth, LeasedDelivery, DeliveryRow, DeliveryStatus } from '../domain/delivery.js';
import { CONNECTION_DEFAULTS, subscribes } from '../domain/entities.js';

type Row = Record<string, unknown>;

/** Rows per multi-row INSERT: few round trips on PostgreSQL, well under SQLite's parameter limit. */
const INSERT_CHUNK = 100;

/**
 * Inserts rows with multi-row VALUES in chunks. `suffix` is appended (e.g. `RETURNING seq, id`);
 * the rows the statements return are concatenated.
 */
export async function insertMany(
  db: SqlRunner,
  table: string,
  columns: readonly string[],
  rows: readonly (readonly SqlValue[])[],
  suffix = '',
): Promise<Row[]> {
  const out: Row[] = [];
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')} ${suffix}`;
    const params = chunk.flat();
    if (suffix.includes('RETURNING')) out.push(...(await db.all(sql, params)));
    else await db.run(sql, params);
  }
  return out;
}

const CONNECTION_COLUMNS: Record<keyof ConnectionPatch, string> = {
  config: 'config',
  referenceId: 'reference_id',
  timezone: 'timezone',
  windowPastDays: 'window_past_days',
  windowFutureDays: 'window_future_days',
  statusMap: 'status_map',
  syncIntervalMs: 'sync_interval_ms',
  replayBaseline: 'replay_baseline',
  enabled: 'enabled',
  nextSyncAt: 'next_sync_at',
};

const ENDPOINT_COLUMNS: Record<keyof EndpointPatch, string> = {
  url: 'url',
  secret: 'secret',
  previousSecret: 'previous_secret',
  previousSecretExpiresAt: 'previous_secret_expires_at',
  signatureScheme: 'signature_scheme',
  retryPolicy: 'retry_policy',
  eventTypes: 'event_types',
  enabled: 'enabled',
  disabledReason: 'disabled_reason',
  failingSince: 'failing_since',
  maxConcurrency: 'max_concurrency',
  disabledAt: 'disabled_at',
};

/** Escapes LIKE wildcards in user input (the statements use the default escape-less LIKE, so they are dropped). */
function likeEscape(v: string): string {
  return v.replace(/[%_]/g, '');
}

/** Converts a domain value to a bindable SQL value (objects as JSON, booleans as 0/1). */
function toSql(v: unknown): SqlValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Builds `SET a = ?, b = ?` from a patch and a column table; null when the patch is empty. */
function setClause<P extends object>(patch: P, columns: Record<keyof P, string>): { sql: string; params: SqlValue[] } | null {
  const parts: string[] = [];
  const params: SqlValue[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = columns[key as keyof P];
    if (!column) continue;
    parts.push(`${column} = ?`);
    params.push(toSql(value));
  }
  return parts.length === 0 ? null : { sql: parts.join(', '), params };
}

/** A leased delivery from its row joined with its event (`event_id`, `event_body`, `event_created_at`) and its endpoint. */
export function toLeased(r: Record<string, unknown>, endpoint: Endpoint): LeasedDelivery {
  return { delivery: toDelivery(r), body: String(r.event_body), eventCreatedAt: Number(r.event_created_at), endpoint };
}

/**
 * The ids of an endpoint's oldest due, unleased deliveries that head their ordering key (a later
 * event about the same appointment or patient waits while an earlier one is pending), at most
 * `limit`, among deliveries of events from `fromSeq` on (see ScanStarts), ordered by event.
 * `endpoint`, `limit` and `fromSeq` are SQL expressions; the statement then binds `now` twice.
 * On PostgreSQL the rows are locked as they are found, skipping rows another worker is leasing
 * (`FOR UPDATE SKIP LOCKED` inside the LIMIT: the scan goes on past them, so concurrent workers
 * each get their full share instead of colliding on the same heads). Under READ COMMITTED a row
 * changed since the statement began is locked at its latest version and the row's own conditions
 * are checked again there (a lease committed meanwhile excludes it); the per-key check reads the
 * statement's snapshot, which is safe: an earlier event can only stop being pending, never start.
 * A head skipped because another worker holds it is still pending, so it still holds back the
 * next event of its key. (The lock covers `d` only, the one table in that FROM; a join added
 * there would be locked too.)
 * The fence keeps the per-key check a per-row lookup: PostgreSQL would otherwise turn it into an
 * anti-join whose plan, before a fresh table has statistics, scanned the endpoint's whole backlog
 * per candidate (~10 ms per lease at 4,000). The check reads the key's own pending rows through
 * deliveries_pending_order whatever the statistics: the check has no next_attempt_at term, so
 * PostgreSQL's deliveries_pending_seq (its predicate requires one, migration 006) is not a
 * candidate for it. Keep it that way: with a next_attempt_at term here, the planner may walk the
 * endpoint's earlier backlog per check again.
 */
export function dueHeadsSql(d: Dialect, endpoint: string, limit: string, fromSeq: string): string {
  return `SELECT d.id, d.event_seq FROM deliveries d
    WHERE d.endpoint_id = ${endpoint} AND d.event_seq >= ${fromSeq} AND d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)
      AND NOT EXISTS (
        SELECT 1 FROM deliveries e
        WHERE e.endpoint_id = d.endpoint_id AND e.ordering_key = d.ordering_key AND e.status = 'pending' AND e.event_seq < d.event_seq ${d.subqueryFence})
    ORDER BY d.event_seq LIMIT ${limit} ${d.skipLocked}`;
}

/** One endpoint's scan in a lease: where it started, its share, what it found and the first of it. */
interface Scan {
  endpointId: string;
  from: number;
  asked: number;
  got: number;
  /** The event of the first leasable delivery found; null when none was. */
  first: number | null;
}

/** What identifies a quarantined record across syncs (see commitSync). */
const QUARANTINE_KEY_COLUMNS = [
  ['kind', 'text'],
  ['ehr_id', 'text'],
  ['reason', 'text'],
] as const;

/** The columns of notePassed's JSON parameter. */
const PASSED_COLUMNS = [
  ['endpoint_id', 'text'],
  ['from_seq', 'bigint'],
  ['to_seq', 'bigint'],
] as const;

/**
 * Which deliveries a redelivery or a recovery queues again (binds `now` once): the finished ones it
 * names (`finished`, a condition on `status`), and pending ones waiting for a retry, which are made
 * due at once — whoever fixed their endpoint wants what it missed now, not at the retry schedule's
 * next step. (A pending delivery in flight is due, so `next_attempt_at > now` leaves it alone.)
 */
function queueAgain(finished: string): string {
  return `(${finished} OR (status = 'pending' AND next_attempt_at > ?))`;
}

/**
 * The SET of a redelivery or recovery (binds `now` four times): pending, due now, in a new retry
 * cycle. A lease that still holds is kept: a delivery skipped while its attempt was in flight (its
 * endpoint disabled meanwhile) stays that attempt's, so the attempt's outcome is still recorded (the
 * outcome must match owner and attempt) instead of being dropped and the delivery sent again.
 */
const REQUEUE_SET = `status = 'pending', next_attempt_at = ?, retry_from = attempts, updated_at = ?,
  lease_owner = CASE WHEN lease_until >= ? THEN lease_owner END, lease_until = CASE WHEN lease_until >= ? THEN lease_until END`;

/** The notification channel (per schema) that says deliveries may be due. */
const DUE_CHANNEL = 'ehrsync_deliveries_due';

/** The Store over any SqlClient. */
export class SqlStore implements Store {
  protected readonly d: Dialect;

  private readonly dueListeners = new Set<() => void>();
  private stopListening: (() => Promise<void>) | null = null;
  /** Names this store's notifications, so it can ignore its own. */
  private readonly instance = newId();
  /** How far the SQLite lease's scans of each endpoint's queue can skip (see ScanStarts). */
  protected readonly scanStarts = new ScanStarts();

  constructor(protected readonly db: SqlClient) {
    this.d = DIALECTS[db.dialect];
  }

  /**
   * Tells listeners that new deliveries may be due (after the commit, never inside it): those of
   * this process at once, and — on PostgreSQL — those of every other process through NOTIFY.
   */
  protected notifyDue(): void {
    this.wakeLocal();
    if (this.db.notify) void this.db.notify(DUE_CHANNEL, this.instance).catch(() => {});
  }

  private wakeLocal(): void {
    for (const l of this.dueListeners) {
      try {
        l();
      } catch {
        // A listener's failure is its own; the commit already happened.
      }
    }
  }

  onDeliveriesDue(listener: () => void): () => void {
    this.dueListeners.add(listener);
    // Other processes' commits arrive as notifications; polling stays the backstop if the listener is down.
    if (this.db.listen && !this.stopListening) this.stopListening = this.db.listen(DUE_CHANNEL, (from) => {
        // This store's own commits already woke its listeners.
        if (from !== this.instance) this.wakeLocal();
      });
    return () => this.dueListeners.delete(listener);
  }

  /** The hooks other concerns call (transitional, while the store is split into concerns). */
  queueHooks(): QueueHooks {
    return { freeing: (fn) => this.freeing(fn), forgetScans: () => this.scanStarts.forgetAll(), notifyDue: () => this.notifyDue() };
  }

  async migrate(): Promise<void> {
    await this.db.migrate();
  }

  async close(): Promise<void> {
    await this.stopListening?.();
    await this.db.close();
  }

  // ── accounts ──────────────────────────────────────────────────────────────

  async createAccount(input: { name: string; clientId: string; clientSecretHash: string; now: EpochMs }): Promise<Account> {
    const id = newId();
    await this.db.run('INSERT INTO accounts (id, name, client_id, client_secret_hash, created_at) VALUES (?, ?, ?, ?, ?)', [
      id,
      input.name,
      input.clientId,
      input.clientSecretHash,
      input.now,
    ]);
    return { id, name: input.name, clientId: input.clientId, createdAt: input.now };
  }

  async getAccount(id: string): Promise<Account | null> {
    const [r] = await this.db.all('SELECT * FROM accounts WHERE id = ?', [id]);
    return r ? toAccount(r) : null;
  }

  async findAccountByClientId(clientId: string): Promise<{ account: Account; clientSecretHash: string } | null> {
    const [r] = await this.db.all('SELECT * FROM accounts WHERE client_id = ?', [clientId]);
    return r ? { account: toAccount(r), clientSecretHash: String(r.client_secret_hash) } : null;
  }

  async listAccounts(): Promise<Account[]> {
    return (await this.db.all('SELECT * FROM accounts ORDER BY created_at, id')).map(toAccount);
  }

  // ── connections ───────────────────────────────────────────────────────────

  async createConnection(input: NewConnection): Promise<Connection> {
    const id = newId();
    await this.db.run(
      `INSERT INTO connections (id, account_id, connector, config, access_token_hash, reference_id, timezone,
         window_past_days, window_future_days, status_map, sync_interval_ms, replay_baseline, enabled,
         next_sync_at, consecutive_failures, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, 0, ?)`,
      [
        id,
        input.accountId,
        input.connector,
        JSON.stringify(input.config ?? {}),
        input.accessTokenHash ?? null,
        input.referenceId ?? null,
        input.timezone ?? CONNECTION_DEFAULTS.timezone,
        input.windowPastDays ?? CONNECTION_DEFAULTS.windowPastDays,
        input.windowFutureDays ?? CONNECTION_DEFAULTS.windowFutureDays,
        input.statusMap ? JSON.stringify(input.statusMap) : null,
        input.syncIntervalMs ?? CONNECTION_DEFAULTS.syncIntervalMs,
        input.replayBaseline ? 1 : 0,
        input.now,
        input.now,
      ],
    );
    return (await this.getConnection(id)) as Connection;
  }

  async getConnection(id: string): Promise<Connection | null> {
    const [r] = await this.db.all('SELECT * FROM connections WHERE id = ?', [id]);
    return r ? toConnection(r) : null;
  }

  async findConnectionByTokenHash(accessTokenHash: string): Promise<Connection | null> {
    const [r] = await this.db.all('SELECT * FROM connections WHERE access_token_hash = ?', [accessTokenHash]);
    return r ? toConnection(r) : null;
  }

  async listConnections(accountId?: string): Promise<Connection[]> {
    const rows =
      accountId === undefined
        ? await this.db.all('SELECT * FROM connections ORDER BY created_at, id')
        : await this.db.all('SELECT * FROM connections WHERE account_id = ? ORDER BY created_at, id', [accountId]);
    return rows.map(toConnection);
  }

  async updateConnection(id: string, patch: ConnectionPatch): Promise<Connection | null> {
    const set = setClause(patch, CONNECTION_COLUMNS);
    if (set) await this.db.run(`UPDATE connections SET ${set.sql} WHERE id = ?`, [...set.params, id]);
    return this.getConnection(id);
  }

  async claimDueConnections(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Connection[]> {
    const rows = await this.db.transaction((tx) =>
      tx.all(
        `UPDATE connections SET sync_lease_until = ?, sync_lease_owner = ?
         WHERE id IN (
           SELECT id FROM connections
           WHERE enabled = 1 AND next_sync_at <= ? AND (sync_lease_until IS NULL OR sync_lease_until < ?)
           ORDER BY next_sync_at, id LIMIT ? ${this.d.skipLocked})
         RETURNING *`,
        [leaseUntil, owner, now, now, limit],
      ),
    );
    return rows.map(toConnection).sort((a, b) => a.nextSyncAt - b.nextSyncAt || a.id.localeCompare(b.id));
  }

  async claimConnection(id: string, now: EpochMs, leaseUntil: EpochMs, owner: string): Promise<Connection | null> {
    const [r] = await this.db.transaction((tx) =>
      tx.all(
        `UPDATE connections SET sync_lease_until = ?, sync_lease_owner = ?
         WHERE id = ? AND (sync_lease_until IS NULL OR sync_lease_until < ? OR sync_lease_owner = ?)
         RETURNING *`,
        [leaseUntil, owner, id, now, owner],
      ),
    );
    return r ? toConnection(r) : null;
  }

  async releaseConnection(id: string, owner: string): Promise<void> {
    await this.db.run('UPDATE connections SET sync_lease_until = NULL, sync_lease_owner = NULL WHERE id = ? AND sync_lease_owner = ?', [id, owner]);
  }

  // ── providers ─────────────────────────────────────────────────────────────

  async listProviders(connectionId: string): Promise<ProviderRecord[]> {
    return (await this.db.all('SELECT * FROM providers WHERE connection_id = ? ORDER BY name, ehr_id', [connectionId])).map(toProvider);
  }

  async setProviderStatus(connectionId: string, providerId: string, status: ProviderRecord['status']): Promise<ProviderRecord | null> {
    const [r] = await this.db.all('UPDATE providers SET status = ? WHERE connection_id = ? AND id = ? RETURNING *', [status, connectionId, providerId]);
    return r ? toProvider(r) : null;
  }

  // ── sync ──────────────────────────────────────────────────────────────────

  async loadProjection(connectionId: string): Promise<ProjectionSnapshot> {
    const [conn] = await this.db.all<{ projection_version: number }>('SELECT projection_version FROM connections WHERE id = ?', [connectionId]);
    const appointments = new Map<string, Projected<AppointmentRecord>>();
    const patients = new Map<string, Projected<PatientRecord>>();
    for (const r of await this.db.all<{ ehr_id: string; id: string; record: string }>(
      'SELECT ehr_id, id, record FROM projection_appointments WHERE connection_id = ?',
      [connectionId],
    )) {
      appointments.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as AppointmentRecord });
    }
    for (const r of await this.db.all<{ ehr_id: string; id: string; record: string }>(
      'SELECT ehr_id, id, record FROM projection_patients WHERE connection_id = ?',
      [connectionId],
    )) {
      patients.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as PatientRecord });
    }
    return { appointments, patients, version: Number(conn?.projection_version ?? 0) };
  }

  async startSyncRun(connectionId: string, startedAt: EpochMs): Promise<SyncRun> {
    const id = newId();
    await this.db.transaction(async (tx) => {
      // The caller holds the connection's sync lease, so any run still marked running was cut
      // short by a crash: none of it was committed, and the record says so.
      await tx.run(
        "UPDATE sync_runs SET status = 'failed', finished_at = ?, error_code = 'sync_interrupted', error_message = 'The process stopped during this sync; nothing of it was committed.' WHERE connection_id = ? AND status = 'running'",
        [startedAt, connectionId],
      );
      await tx.run("INSERT INTO sync_runs (id, connection_id, started_at, status, counts, quarantined) VALUES (?, ?, ?, 'running', '{}', 0)", [id, connectionId, startedAt]);
    });
    return { id, connectionId, startedAt, finishedAt: null, status: 'running', counts: {}, quarantined: 0, errorCode: null, errorMessage: null };
  }

  async commitSync(c: SyncCommit): Promise<void> {
    const { plan } = c;
    const at = c.finishedAt;
    await this.db.transaction(async (tx) => {
      const [conn] = await tx.all<{ account_id: string; projection_version: number }>('SELECT account_id, projection_version FROM connections WHERE id = ?', [
        c.connectionId,
      ]);
      if (!conn) throw new Error(`connection ${c.connectionId} does not exist`);
      if (c.projectionVersion !== undefined) {
        const bumped = await tx.run('UPDATE connections SET projection_version = projection_version + 1 WHERE id = ? AND projection_version = ?', [c.connectionId, c.projectionVersion]);
        if (bumped === 0) throw new ConflictError('The projection changed while the sync ran (an operation wrote to it); the sync is redone.');
      } else {
        await tx.run('UPDATE connections SET projection_version = projection_version + 1 WHERE id = ?', [c.connectionId]);
      }

      await this.upsertProjection(tx, c.connectionId, plan.upsertAppointments, plan.upsertPatients, 'ehr_sync', at);
      if (plan.deleteAppointmentIds.length > 0) {
        await tx.run(`DELETE FROM projection_appointments WHERE connection_id = ? AND ehr_id IN ${this.d.jsonTextList}`, [
          c.connectionId,
          JSON.stringify(plan.deleteAppointmentIds),
        ]);
      }
      await insertMany(
        tx,
        'providers',
        ['connection_id', 'ehr_id', 'id', 'name', 'npi', 'status', 'updated_at'],
        plan.upsertProviders.map((p) => [c.connectionId, p.ehr_id, p.id, p.name, p.npi, p.status, at]),
        'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET name = excluded.name, npi = excluded.npi, updated_at = excluded.updated_at',
      );
      // A record that stays malformed (or unreadable) is reported by every sync: keep one row per
      // record and reason, the latest, not one per sync (1,440 a day at a one-minute interval).
      const repeated = plan.quarantined.filter((q) => q.ehr_id !== null);
      if (repeated.length > 0) {
        await tx.run(
          `DELETE FROM quarantine WHERE connection_id = ? AND EXISTS (
             SELECT 1 FROM ${this.d.jsonRecords('q', QUARANTINE_KEY_COLUMNS)} WHERE q.kind = quarantine.kind AND q.ehr_id = quarantine.ehr_id AND q.reason = quarantine.reason)`,
          [c.connectionId, JSON.stringify(repeated.map((q) => ({ kind: q.kind, ehr_id: q.ehr_id, reason: q.reason })))],
        );
      }
      await insertMany(
        tx,
        'quarantine',
        ['id', 'connection_id', 'sync_run_id', 'kind', 'ehr_id', 'reason', 'raw', 'created_at'],
        plan.quarantined.map((q) => [newId(), c.connectionId, c.runId, q.kind, q.ehr_id, q.reason, q.raw, at]),
      );
      await this.insertEventsWithDeliveries(tx, conn.account_id, c.connectionId, plan.events);

      await tx.run("UPDATE sync_runs SET status = 'succeeded', finished_at = ?, counts = ?, quarantined = ? WHERE id = ?", [
        at,
        JSON.stringify(plan.counts),
        plan.quarantined.length,
        c.runId,
      ]);
      await tx.run(
        `UPDATE connections SET
           baseline_at = CASE WHEN ? = 1 THEN COALESCE(baseline_at, ?) ELSE baseline_at END,
           patient_cursor = COALESCE(?, patient_cursor),
           next_sync_at = ?, consecutive_failures = 0, last_sync_at = ?
         WHERE id = ?`,
        [c.baselineDone ? 1 : 0, at, c.patientCursor ?? null, c.nextSyncAt, at, c.connectionId],
      );
    });
    if (plan.events.length > 0) this.notifyDue();
  }

  /**
   * Inserts events and, in the same transaction, one delivery per endpoint of the account that
   * subscribes to the event's type: `pending` when the endpoint is enabled, `skipped` (visible,
   * recoverable) when it is disabled.
   */
  protected async insertEventsWithDeliveries(
    tx: SqlRunner,
    accountId: string,
    connectionId: string,
    events: readonly { id: string; type: EventType; orderingKey: string; jobId: string | null; patientEhrId: string | null; createdAt: number; body: string }[],
  ): Promise<void> {
    if (events.length === 0) return;
    const inserted = await insertMany(
      tx,
      'events',
      ['id', 'account_id', 'connection_id', 'type', 'ordering_key', 'job_id', 'patient_ehr_id', 'created_at', 'body'],
      events.map((e) => [e.id, accountId, connectionId, e.type, e.orderingKey, e.jobId, e.patientEhrId, e.createdAt, e.body]),
      'RETURNING seq, id',
    );
    const seqById = new Map(inserted.map((r) => [String(r.id), Number(r.seq)]));
    const endpoints = (await tx.all('SELECT * FROM endpoints WHERE account_id = ?', [accountId])).map(toEndpoint);
    if (endpoints.length === 0) return;
    const deliveries: SqlValue[][] = [];
    for (const e of events) {
      const seq = seqById.get(e.id) as number;
      for (const ep of endpoints) {
        if (!subscribes(ep, e.type)) continue;
        deliveries.push([seq, ep.id, accountId, e.orderingKey, ep.enabled ? 'pending' : 'skipped', e.createdAt, e.createdAt, e.createdAt]);
      }
    }
    await insertMany(
      tx,
      'deliveries',
      ['event_seq', 'endpoint_id', 'account_id', 'ordering_key', 'status', 'next_attempt_at', 'created_at', 'updated_at'],
      deliveries,
    );
  }

  async failSyncRun(f: SyncFailure): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.run("UPDATE sync_runs SET status = 'failed', finished_at = ?, error_code = ?, error_message = ? WHERE id = ?", [
        f.finishedAt,
        f.errorCode,
        f.errorMessage,
        f.runId,
      ]);
      await tx.run('UPDATE connections SET consecutive_failures = consecutive_failures + ?, next_sync_at = ? WHERE id = ?', [
        f.countsAsFailure === false ? 0 : 1,
        f.nextSyncAt,
        f.connectionId,
      ]);
    });
  }

  async listSyncRuns(connectionId: string, limit: number): Promise<SyncRun[]> {
    return (await this.db.all('SELECT * FROM sync_runs WHERE connection_id = ? ORDER BY started_at DESC, id LIMIT ?', [connectionId, limit])).map(toSyncRun);
  }

  async listQuarantine(connectionId: string, limit: number): Promise<QuarantineRow[]> {
    return (await this.db.all('SELECT * FROM quarantine WHERE connection_id = ? ORDER BY created_at DESC, id LIMIT ?', [connectionId, limit])).map(toQuarantine);
  }

  /**
   * Upserts projection rows. A row keeps its id and its source (who first wrote it); its record,
   * start and update time follow the latest write.
   */
  protected async upsertProjection(
    tx: SqlRunner,
    connectionId: string,
    appointments: readonly Projected<AppointmentRecord>[],
    patients: readonly Projected<PatientRecord>[],
    source: RecordSource,
    at: EpochMs,
  ): Promise<void> {
    await insertMany(
      tx,
      'projection_appointments',
      ['connection_id', 'ehr_id', 'id', 'patient_ehr_id', 'start_ms', 'record', 'source', 'created_at', 'updated_at'],
      appointments.map((p) => [connectionId, p.record.ehr_appointment_id, p.id, p.record.patient_ehr_id, Date.parse(p.record.datetime), JSON.stringify(p.record), source, at, at]),
      'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET record = excluded.record, patient_ehr_id = excluded.patient_ehr_id, start_ms = excluded.start_ms, updated_at = excluded.updated_at',
    );
    await insertMany(
      tx,
      'projection_patients',
      ['connection_id', 'ehr_id', 'id', 'mrn', 'record', 'source', 'created_at', 'updated_at'],
      patients.map((p) => [connectionId, p.record.ehr_patient_id, p.id, p.record.mrn, JSON.stringify(p.record), source, at, at]),
      'ON CONFLICT (connection_id, ehr_id) DO UPDATE SET record = excluded.record, mrn = excluded.mrn, updated_at = excluded.updated_at',
    );
  }

  // ── retention and erasure ─────────────────────────────────────────────────

  async purgeEvents(before: EpochMs, limit: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      const rows = await tx.all<{ seq: number }>(
        `SELECT e.seq FROM events e WHERE e.created_at < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = e.seq AND d.status = 'pending')
         ORDER BY e.seq LIMIT ? ${this.d.forUpdate}`,
        [before, limit],
      );
      if (rows.length === 0) {
        await this.purgeRecordsBeside(tx, before);
        return 0;
      }
      // The events are locked (PostgreSQL): a redelivery locks its event first too, so it waits
      // for this purge and then finds the event gone (not found), never half of it. Lock their
      // deliveries and look again: a redelivery committed before our lock made one pending, and
      // that event must stay.
      const locked = await tx.all<{ event_seq: number; status: string }>(
        `SELECT event_seq, status FROM deliveries WHERE event_seq IN ${this.d.jsonIntList} ${this.d.forUpdate}`,
        [JSON.stringify(rows.map((r) => Number(r.seq)))],
      );
      const pending = new Set(locked.filter((d) => d.status === 'pending').map((d) => Number(d.event_seq)));
      const seqs = rows.map((r) => Number(r.seq)).filter((seq) => !pending.has(seq));
      await this.deleteEvents(tx, seqs);
      // Once per purge, not per batch: callers loop until a call deletes fewer than `limit`, and
      // neither table has an index these deletes could use (each is a scan).
      if (seqs.length < limit) await this.purgeRecordsBeside(tx, before);
      return seqs.length;
    });
  }

  /** Retention of what is kept beside the events: quarantined records, and finished writes (their requests hold PHI; GET /v1/jobs/:id answers 404 for them after). */
  private async purgeRecordsBeside(tx: SqlRunner, before: EpochMs): Promise<void> {
    await tx.run('DELETE FROM quarantine WHERE created_at < ?', [before]);
    await tx.run("DELETE FROM operations WHERE status IN ('succeeded', 'failed') AND updated_at < ?", [before]);
  }

  async erasePatient(connectionId: string, patientEhrId: string): Promise<{ events: number; appointments: number; patients: number; quarantined: number; operations: number }> {
    return this.db.transaction(async (tx) => {
      // The finished writes about the patient, whose requests hold PHI: to their record or their
      // appointments (by ehrsync id, or by EHR id within the same kind: FHIR ids are unique per
      // resource type only), and bookings that named their MRN, unless another patient has it too.
      // Their outcome events go too, found by job_id (a failed write's event has no patient id).
      // Writes still running are left to finish (retention purges them later).
      const [pat] = await tx.all<{ id: string; mrn: string | null }>('SELECT id, mrn FROM projection_patients WHERE connection_id = ? AND ehr_id = ?', [connectionId, patientEhrId]);
      const appts = await tx.all<{ id: string; ehr_id: string }>('SELECT id, ehr_id FROM projection_appointments WHERE connection_id = ? AND patient_ehr_id = ?', [connectionId, patientEhrId]);
      const ids = [...(pat ? [String(pat.id)] : []), ...appts.map((a) => String(a.id))];
      const sharedMrn = pat?.mrn == null ? 0 : Number((await tx.all<{ n: number }>('SELECT COUNT(*) AS n FROM projection_patients WHERE connection_id = ? AND mrn = ?', [connectionId, pat.mrn]))[0]?.n ?? 0);
      const mrn = pat?.mrn != null && sharedMrn === 1 ? pat.mrn : null;
      const ops = (await tx.all<{ id: string }>(
        `SELECT id FROM operations WHERE connection_id = ? AND status IN ('succeeded', 'failed') AND (
           target_id IN ${this.d.jsonTextList}
           OR (kind IN ('patient.create', 'patient.update') AND target_ehr_id = ?)
           OR (kind IN ('appointment.create', 'appointment.update') AND target_ehr_id IN ${this.d.jsonTextList})
           ${mrn === null ? '' : `OR (kind = 'appointment.create' AND ${this.d.jsonText('input', 'mrn')} = ?)`})`,
        [connectionId, JSON.stringify(ids), patientEhrId, JSON.stringify(appts.map((a) => String(a.ehr_id))), ...(mrn === null ? [] : [mrn])],
      )).map((r) => String(r.id));
      const seqs = (await tx.all<{ seq: number }>(
        `SELECT seq FROM events WHERE connection_id = ? AND (patient_ehr_id = ? OR job_id IN ${this.d.jsonTextList})`,
        [connectionId, patientEhrId, JSON.stringify(ops)],
      )).map((r) => Number(r.seq));
      await this.deleteEvents(tx, seqs);
      const operations = ops.length === 0 ? 0 : await tx.run(`DELETE FROM operations WHERE id IN ${this.d.jsonTextList}`, [JSON.stringify(ops)]);
      // A deleted pending delivery may have held back the next event of its key. (A purge deletes
      // only events whose deliveries are all final: nothing it deletes holds anything back.)
      if (seqs.length > 0) this.scanStarts.forgetAll();
      const appointments = await tx.run('DELETE FROM projection_appointments WHERE connection_id = ? AND patient_ehr_id = ?', [connectionId, patientEhrId]);
      const patients = await tx.run('DELETE FROM projection_patients WHERE connection_id = ? AND ehr_id = ?', [connectionId, patientEhrId]);
      // Quarantined raw records are free text: match the patient's id as a JSON string value, or as
      // the end of a FHIR reference ("Patient/<id>"), exactly (a LIKE would ignore case on SQLite).
      const quarantined = await tx.run(`DELETE FROM quarantine WHERE connection_id = ? AND (ehr_id = ? OR ${this.d.contains('raw')} OR ${this.d.contains('raw')})`, [
        connectionId,
        patientEhrId,
        JSON.stringify(patientEhrId),
        `Patient/${patientEhrId}"`,
      ]);
      return { events: seqs.length, appointments, patients, quarantined, operations };
    });
  }

  /** Deletes events by sequence number, with their attempts and deliveries. */
  protected async deleteEvents(tx: SqlRunner, seqs: readonly number[]): Promise<void> {
    for (let i = 0; i < seqs.length; i += 500) {
      const list = JSON.stringify(seqs.slice(i, i + 500));
      await tx.run(`DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_seq IN ${this.d.jsonIntList})`, [list]);
      await tx.run(`DELETE FROM deliveries WHERE event_seq IN ${this.d.jsonIntList}`, [list]);
      await tx.run(`DELETE FROM events WHERE seq IN ${this.d.jsonIntList}`, [list]);
    }
  }

  // ── operations ────────────────────────────────────────────────────────────

  async createOperation(o: NewOperation): Promise<{ operation: Operation; existing: boolean }> {
    return this.db.transaction(async (tx) => {
      if (o.idempotencyKey !== null) {
        const [prior] = await tx.all('SELECT * FROM operations WHERE account_id = ? AND idempotency_key = ?', [o.accountId, o.idempotencyKey]);
        if (prior) return { operation: toOperation(prior), existing: true };
      }
      const [row] = await tx.all(
        `INSERT INTO operations (id, account_id, connection_id, kind, target_id, target_ehr_id, input, status, attempts, next_run_at, idempotency_key, request_hash, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?) RETURNING *`,
        [o.id, o.accountId, o.connectionId, o.kind, o.targetId, o.targetEhrId, JSON.stringify(o.input), o.now, o.idempotencyKey, o.requestHash, o.now, o.now],
      );
      return { operation: toOperation(row as Row), existing: false };
    });
  }

  async getOperation(id: string): Promise<Operation | null> {
    const [r] = await this.db.all('SELECT * FROM operations WHERE id = ?', [id]);
    return r ? toOperation(r) : null;
  }

  async claimDueOperations(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Operation[]> {
    const rows = await this.db.transaction((tx) =>
      tx.all(
        `UPDATE operations SET status = 'running', lease_until = ?, lease_owner = ?, attempts = attempts + 1, updated_at = ?
         WHERE id IN (
           SELECT id FROM operations
           WHERE next_run_at <= ? AND (status = 'queued' OR (status = 'running' AND lease_until < ?))
           ORDER BY next_run_at, created_at LIMIT ? ${this.d.skipLocked})
         RETURNING *`,
        [leaseUntil, owner, now, now, now, limit],
      ),
    );
    return rows.map(toOperation).sort((a, b) => a.nextRunAt - b.nextRunAt || a.createdAt - b.createdAt);
  }

  async rescheduleOperation(id: string, owner: string, r: { nextRunAt: EpochMs; errorCode: string; errorMessage: string; now: EpochMs }): Promise<void> {
    await this.db.run(
      "UPDATE operations SET status = 'queued', lease_until = NULL, lease_owner = NULL, next_run_at = ?, error_code = ?, error_message = ?, updated_at = ? WHERE id = ? AND lease_owner = ?",
      [r.nextRunAt, r.errorCode, r.errorMessage, r.now, id, owner],
    );
  }

  async completeOperation(c: OperationCommit): Promise<void> {
    await this.db.transaction(async (tx) => {
      const [op] = await tx.all<{ account_id: string; status: string }>('SELECT account_id, status FROM operations WHERE id = ?', [c.operationId]);
      if (!op) throw new Error(`operation ${c.operationId} does not exist`);
      // Finished already (a second worker after a lease expiry): committing again would double the event.
      if (op.status === 'succeeded' || op.status === 'failed') return;
      if (c.upsertAppointments.length > 0 || c.upsertPatients.length > 0) {
        // A concurrent sync that read before this write must not commit over it.
        await tx.run('UPDATE connections SET projection_version = projection_version + 1 WHERE id = ?', [c.connectionId]);
        await this.upsertProjection(tx, c.connectionId, c.upsertAppointments, c.upsertPatients, 'operation', c.finishedAt);
      }
      await this.insertEventsWithDeliveries(tx, op.account_id, c.connectionId, c.events);
      await tx.run(
        'UPDATE operations SET status = ?, target_ehr_id = COALESCE(?, target_ehr_id), error_code = ?, error_message = ?, lease_until = NULL, lease_owner = NULL, updated_at = ? WHERE id = ?',
        [c.status, c.targetEhrId ?? null, c.errorCode ?? null, c.errorMessage ?? null, c.finishedAt, c.operationId],
      );
    });
    if (c.events.length > 0) this.notifyDue();
  }

  // ── projection reads (the API's cached data) ─────────────────────────────

  async listAppointments(f: AppointmentFilter): Promise<AppointmentRow[]> {
    const where = ['connection_id = ?', 'start_ms >= ?', 'start_ms < ?'];
    const params: SqlValue[] = [f.connectionId, f.fromMs, f.toMs];
    if (f.patientMrn !== undefined) {
      where.push(`${this.d.jsonText('record', 'patient_mrn')} = ?`);
      params.push(f.patientMrn);
    }
    if (f.patientName !== undefined) {
      where.push(`LOWER(${this.d.jsonText('record', 'patient_name')}) LIKE ?`);
      params.push(`%${likeEscape(f.patientName.toLowerCase())}%`);
    }
    if (f.appointmentMode !== undefined) {
      where.push(`${this.d.jsonText('record', 'appointment_mode')} = ?`);
      params.push(f.appointmentMode);
    }
    params.push(f.limit);
    const rows = await this.db.all(`SELECT * FROM projection_appointments WHERE ${where.join(' AND ')} ORDER BY start_ms, id LIMIT ?`, params);
    return rows.map(toAppointmentRow);
  }

  async getAppointment(connectionId: string, id: string): Promise<AppointmentRow | null> {
    const [r] = await this.db.all('SELECT * FROM projection_appointments WHERE connection_id = ? AND (id = ? OR ehr_id = ?) ORDER BY (id = ?) DESC LIMIT 1', [
      connectionId,
      id,
      id,
      id,
    ]);
    return r ? toAppointmentRow(r) : null;
  }

  async getPatient(connectionId: string, id: string): Promise<PatientRow | null> {
    const [r] = await this.db.all('SELECT * FROM projection_patients WHERE connection_id = ? AND (id = ? OR ehr_id = ?) ORDER BY (id = ?) DESC LIMIT 1', [
      connectionId,
      id,
      id,
      id,
    ]);
    return r ? toPatientRow(r) : null;
  }

  async listPatients(f: PatientFilter): Promise<{ rows: PatientRow[]; total: number }> {
    const where = ['connection_id = ?'];
    const params: SqlValue[] = [f.connectionId];
    const exact = (column: string, v: string | undefined): void => {
      if (v === undefined) return;
      where.push(`${column} = ?`);
      params.push(v);
    };
    const partial = (field: string, v: string | undefined): void => {
      if (v === undefined) return;
      where.push(`LOWER(${this.d.jsonText('record', field)}) LIKE ?`);
      params.push(`%${likeEscape(v.toLowerCase())}%`);
    };
    exact('mrn', f.mrn);
    exact('ehr_id', f.ehrId);
    exact(this.d.jsonText('record', 'dob'), f.dob);
    partial('first_name', f.firstName);
    partial('last_name', f.lastName);
    partial('phone', f.phone);
    const whereSql = where.join(' AND ');
    const [count] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM projection_patients WHERE ${whereSql}`, params);
    const rows = await this.db.all(`SELECT * FROM projection_patients WHERE ${whereSql} ORDER BY mrn, id LIMIT ? OFFSET ?`, [...params, f.limit, f.offset]);
    return { rows: rows.map(toPatientRow), total: Number(count?.n ?? 0) };
  }

  async listEventDeliveries(f: EventDeliveryFilter): Promise<{ rows: EventDeliveryRow[]; total: number }> {
    const where = ['e.account_id = ?'];
    const params: SqlValue[] = [f.accountId];
    const add = (cond: string, v: SqlValue | undefined): void => {
      if (v === undefined) return;
      where.push(cond);
      params.push(v);
    };
    add('e.job_id = ?', f.jobId);
    add('e.type = ?', f.type);
    add('d.status = ?', f.deliveryStatus);
    add('e.created_at >= ?', f.createdFrom);
    add('e.created_at <= ?', f.createdTo);
    const from = 'events e LEFT JOIN deliveries d ON d.event_seq = e.seq LEFT JOIN endpoints p ON p.id = d.endpoint_id';
    const whereSql = where.join(' AND ');
    const [count] = await this.db.all<{ n: number }>(`SELECT COUNT(*) AS n FROM ${from} WHERE ${whereSql}`, params);
    const order = f.order === 'asc' ? 'ASC' : 'DESC';
    const rows = await this.db.all(
      `SELECT e.*, d.id AS delivery_id, d.endpoint_id AS delivery_endpoint_id, p.url AS endpoint_url, d.status AS delivery_status,
              d.attempts AS delivery_attempts, d.last_status_code AS delivery_last_status_code
       FROM ${from} WHERE ${whereSql} ORDER BY e.seq ${order}, d.id LIMIT ? OFFSET ?`,
      [...params, f.limit, f.offset],
    );
    return {
      total: Number(count?.n ?? 0),
      rows: rows.map((r) => ({
        event: toEvent(r),
        deliveryId: r.delivery_id === null || r.delivery_id === undefined ? null : Number(r.delivery_id),
        endpointId: r.delivery_endpoint_id === null || r.delivery_endpoint_id === undefined ? null : String(r.delivery_endpoint_id),
        endpointUrl: r.endpoint_url === null || r.endpoint_url === undefined ? null : String(r.endpoint_url),
        deliveryStatus: r.delivery_status === null || r.delivery_status === undefined ? null : (String(r.delivery_status) as DeliveryStatus),
        attempts: Number(r.delivery_attempts ?? 0),
        lastStatusCode: r.delivery_last_status_code === null || r.delivery_last_status_code === undefined ? null : Number(r.delivery_last_status_code),
      })),
    };
  }

  // ── endpoints ─────────────────────────────────────────────────────────────

  async createEndpoint(input: NewEndpoint): Promise<Endpoint> {
    const id = newId();
    await this.db.run(
      `INSERT INTO endpoints (id, account_id, url, secret, signature_scheme, retry_policy, event_types, max_concurrency, enabled, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?)`,
      [
        id,
        input.accountId,
        input.url,
        input.secret,
        input.signatureScheme ?? 'cobalt',
        input.retryPolicy ?? 'durable',
        JSON.stringify(input.eventTypes ?? [...SEED_EVENT_TYPES]),
        input.maxConcurrency ?? null,
        input.now,
      ],
    );
    return (await this.getEndpoint(id)) as Endpoint;
  }

  async getEndpoint(id: string): Promise<Endpoint | null> {
    const [r] = await this.db.all('SELECT * FROM endpoints WHERE id = ?', [id]);
    return r ? toEndpoint(r) : null;
  }

  async listEndpoints(accountId: string): Promise<Endpoint[]> {
    return (await this.db.all('SELECT * FROM endpoints WHERE account_id = ? ORDER BY created_at, id', [accountId])).map(toEndpoint);
  }

  async updateEndpoint(id: string, patch: EndpointPatch): Promise<Endpoint | null> {
    const set = setClause(patch, ENDPOINT_COLUMNS);
    if (!set) return this.getEndpoint(id);
    await this.freeing(async (tx) => {
      await tx.run(`UPDATE endpoints SET ${set.sql} WHERE id = ?`, [...set.params, id]);
      if (patch.enabled === false) {
        // Callers pass disabledAt with their clock; a bare `enabled: false` still gets a time.
        if (patch.disabledAt === undefined) await tx.run('UPDATE endpoints SET disabled_at = COALESCE(disabled_at, ?) WHERE id = ?', [Date.now(), id]);
        await this.skipPending(tx, id, 'endpoint disabled');
      } else if (patch.enabled === true && patch.disabledAt === undefined) {
        await tx.run('UPDATE endpoints SET disabled_at = NULL WHERE id = ?', [id]);
      }
    });
    return this.getEndpoint(id);
  }

  /** Marks an endpoint's pending deliveries skipped (kept and visible; `recoverEndpointDeliveries` queues them again). */
  protected async skipPending(tx: SqlRunner, endpointId: string, why: string): Promise<void> {
    await tx.run("UPDATE deliveries SET status = 'skipped', last_error = ? WHERE endpoint_id = ? AND status = 'pending'", [why, endpointId]);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    // Pending deliveries to a deleted endpoint can never be made; they are kept, marked skipped.
    return this.db.transaction(async (tx) => {
      await this.skipPending(tx, id, 'endpoint deleted');
      return (await tx.run('DELETE FROM endpoints WHERE id = ?', [id])) > 0;
    });
  }

  // ── events ────────────────────────────────────────────────────────────────

  async listEvents(q: EventQuery): Promise<EventRow[]> {
    const where = ['account_id = ?'];
    const params: SqlValue[] = [q.accountId];
    const add = (cond: string, v: SqlValue | undefined): void => {
      if (v === undefined) return;
      where.push(cond);
      params.push(v);
    };
    add('connection_id = ?', q.connectionId);
    add('type = ?', q.type);
    add('job_id = ?', q.jobId);
    add('created_at >= ?', q.createdFrom);
    add('created_at <= ?', q.createdTo);
    add('seq > ?', q.afterSeq);
    const order = q.order === 'desc' ? 'DESC' : 'ASC';
    params.push(q.limit, q.offset ?? 0);
    const rows = await this.db.all(`SELECT * FROM events WHERE ${where.join(' AND ')} ORDER BY seq ${order} LIMIT ? OFFSET ?`, params);
    return rows.map(toEvent);
  }

  async getEvent(id: string): Promise<EventRow | null> {
    const [r] = await this.db.all('SELECT * FROM events WHERE id = ?', [id]);
    return r ? toEvent(r) : null;
  }

  async listDeliveries(eventId: string): Promise<DeliveryRow[]> {
    const rows = await this.db.all(
      'SELECT d.*, e.id AS event_id FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.id = ? ORDER BY d.id',
      [eventId],
    );
    return rows.map(toDelivery);
  }

  // ── delivery queue ────────────────────────────────────────────────────────

  /**
   * Steps 1–2 of a lease: the enabled endpoints with a due, unleased delivery and their free
   * slots (cap − leased), split into fair shares of the batch (round robin across accounts, then
   * endpoints).
   */
  protected async leaseQuota(db: SqlRunner, q: LeaseRequest): Promise<Map<string, number>> {
    // With ownInFlight, the owner's leased rows are left out of `busy` and its exact in-flight count added.
    const own = q.ownInFlight;
    // Only deliveries past an endpoint's scan start count (see ScanStarts).
    const groups = await db.all<{ endpoint_id: string; account_id: string; cap: number; busy: number }>(
      `SELECT p.id AS endpoint_id, p.account_id, COALESCE(p.max_concurrency, ?) AS cap,
              (SELECT COUNT(*) FROM deliveries b WHERE b.endpoint_id = p.id AND b.status = 'pending' AND b.lease_until >= ?${own ? ' AND b.lease_owner <> ?' : ''}) AS busy
       FROM endpoints p
       WHERE p.enabled = 1 AND EXISTS (
         SELECT 1 FROM deliveries d
         WHERE d.endpoint_id = p.id AND d.event_seq >= COALESCE(${this.d.jsonObjectInt('p.id')}, 0) AND d.status = 'pending' AND d.next_attempt_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?))`,
      [q.maxPerEndpoint, q.now, ...(own ? [q.owner] : []), this.scanStarts.json(q.now), q.now, q.now],
    );
    return planLease(
      groups.map((g) => {
        const endpointId = String(g.endpoint_id);
        const cap = q.oneAtATime?.has(endpointId) ? 1 : Number(g.cap);
        return { endpointId, accountId: String(g.account_id), room: cap - Number(g.busy) - (own?.get(endpointId) ?? 0) };
      }),
      q.limit,
    );
  }

  async leaseDeliveries(q: LeaseRequest): Promise<LeasedDelivery[]> {
    if (q.limit <= 0) return [];
    const leased = await this.db.transaction(async (tx) => {
      const quota = await this.leaseQuota(tx, q);
      // 3. Per endpoint, its share of due deliveries heading their ordering key, from its scan start.
      const ids: number[] = [];
      const token = this.scanStarts.begin();
      const scans: Scan[] = [];
      for (const [endpointId, n] of quota) {
        const from = this.scanStarts.from(endpointId, q.now);
        const rows = await tx.all<{ id: number; event_seq: number }>(dueHeadsSql(this.d, '?', '?', '?'), [endpointId, from, q.now, q.now, n]);
        for (const r of rows) ids.push(Number(r.id));
        scans.push({ endpointId, from, asked: n, got: rows.length, first: rows[0] === undefined ? null : Number(rows[0].event_seq) });
      }
      await this.notePassed(tx, token, q.now, scans);
      if (ids.length === 0) return [];
      // 4. Take the leases, re-checking each row.
      const taken = await tx.all(
        `UPDATE deliveries SET lease_until = ?, lease_owner = ?, attempts = attempts + 1, updated_at = ?
         WHERE id IN ${this.d.jsonIntList} AND status = 'pending' AND (lease_until IS NULL OR lease_until < ?)
         RETURNING *`,
        [q.leaseUntil, q.owner, q.now, JSON.stringify(ids), q.now],
      );
      if (taken.length === 0) return [];
      // 5. The events' ids and bytes and the endpoints, by primary key.
      const events = new Map(
        (await tx.all<{ seq: number; id: string; body: string; created_at: number }>(
          `SELECT seq, id, body, created_at FROM events WHERE seq IN ${this.d.jsonIntList}`,
          [JSON.stringify([...new Set(taken.map((r) => Number(r.event_seq)))])],
        )).map((e) => [Number(e.seq), e] as const),
      );
      const endpoints = new Map(
        (await tx.all(`SELECT * FROM endpoints WHERE id IN ${this.d.jsonTextList}`, [JSON.stringify([...new Set(taken.map((r) => String(r.endpoint_id)))])])).map((r) => {
          const e = toEndpoint(r);
          return [e.id, e] as const;
        }),
      );
      return taken.map((r) => {
        const e = events.get(Number(r.event_seq)) as { id: string; body: string; created_at: number };
        return toLeased({ ...r, event_id: e.id, event_body: e.body, event_created_at: e.created_at }, endpoints.get(String(r.endpoint_id)) as Endpoint);
      });
      // A lease is a hint, not a fact: losing it in a power loss only means the delivery is leased
      // again (at-least-once holds; the attempt row is the record). So no fsync for it.
    }, { durable: false });
    return leased.sort((a, b) => a.delivery.eventSeq - b.delivery.eventSeq);
  }

  /**
   * After a lease's scans of endpoints' queues (each from its scan start, its first leasable
   * delivery of event `first`, or none: then everything up to the newest event stored was passed):
   * the next scans skip what these passed, until the first of it can become leasable by itself —
   * a retry falling due, a lease running out (say, one whose outcome could not be recorded). One
   * statement for all the scans worth noting (see ScanStarts.worthNoting), none when there are none.
   */
  protected async notePassed(db: SqlRunner, token: number, now: EpochMs, scans: readonly Scan[]): Promise<void> {
    const worth = scans.filter((x) => (x.first === null || x.first > x.from) && this.scanStarts.worthNoting(x.endpointId, x.got < x.asked));
    if (worth.length === 0) return;
    // Per scan, in one pass over its range, the pending deliveries it passed: blocked, waiting for a
    // retry, or leased (the last two become leasable by themselves, at a time the skip must not
    // outlast). None: no skip. A scan that found nothing passed everything up to the newest event.
    const rows = await db.all<{ endpoint_id: string; from_seq: number; to_seq: number | null; passed: number; next_due: number | null }>(
      `SELECT s.endpoint_id, s.from_seq, s.to_seq, COUNT(d.id) AS passed,
              MIN(CASE WHEN d.next_attempt_at > ? THEN d.next_attempt_at WHEN d.lease_until >= ? THEN d.lease_until + 1 END) AS next_due
       FROM (SELECT r.endpoint_id, r.from_seq, COALESCE(r.to_seq, (SELECT MAX(seq) + 1 FROM events)) AS to_seq FROM ${this.d.jsonRecords('r', PASSED_COLUMNS)}) s
       LEFT JOIN deliveries d ON d.endpoint_id = s.endpoint_id AND d.event_seq >= s.from_seq AND d.event_seq < s.to_seq AND d.status = 'pending'
       GROUP BY s.endpoint_id, s.from_seq, s.to_seq`,
      [now, now, JSON.stringify(worth.map((x) => ({ endpoint_id: x.endpointId, from_seq: x.from, to_seq: x.first })))],
    );
    for (const r of rows) {
      if (Number(r.passed) === 0 || r.to_seq === null) continue;
      this.scanStarts.passed(token, String(r.endpoint_id), now, Number(r.from_seq), Number(r.to_seq), r.next_due === null ? null : Number(r.next_due));
    }
  }

  async recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    await this.db.transaction(async (tx) => {
      const health = foldEndpointHealth(outcomes);
      for (const st of outcomeStatements(this.d, outcomes, health)) await tx.run(st.sql, st.params);
      for (const h of health) if (h.disable) await this.disableIn(tx, h.endpointId, h.disable.reason, h.disable.at);
      // Before the commit: a lease waiting for the writer lock must not scan with the old skips.
      this.outcomesRecorded(outcomes);
    });
  }

  /**
   * Scan starts after outcomes: a final one may let the next event of its key go (the endpoint's
   * skip is forgotten), a retry falls due at its time (the skip holds no longer than that).
   */
  protected outcomesRecorded(outcomes: readonly DeliveryOutcome[]): void {
    for (const o of outcomes) {
      if (o.result === 'retry' && o.nextAttemptAt !== undefined) this.scanStarts.retryAt(o.endpointId, o.nextAttemptAt);
      else this.scanStarts.done(o.endpointId);
    }
  }

  /**
   * Runs a change that can make older deliveries leasable (a release, a redelivery, a recovery, an
   * endpoint change) in a transaction that also clears the scan starts, before its commit: under
   * SQLite's single writer, no lease can scan between the write and the clear.
   */
  private freeing<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.db.transaction(async (tx) => {
      const result = await fn(tx);
      this.scanStarts.forgetAll();
      return result;
    });
  }

  /** Disables an endpoint inside a transaction, skipping its pending deliveries. */
  protected async disableIn(tx: SqlRunner, endpointId: string, reason: string, now: EpochMs): Promise<void> {
    const changed = await tx.run('UPDATE endpoints SET enabled = 0, disabled_reason = ?, disabled_at = ? WHERE id = ? AND enabled = 1', [reason, now, endpointId]);
    if (changed > 0) await this.skipPending(tx, endpointId, `endpoint disabled: ${reason}`);
  }

  async releaseDeliveryLeases(owner: string, deliveryIds?: readonly number[]): Promise<void> {
    const base = "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL, attempts = attempts - 1 WHERE lease_owner = ? AND status = 'pending'";
    await this.freeing(async (tx) => {
      if (deliveryIds === undefined) await tx.run(base, [owner]);
      else if (deliveryIds.length > 0) await tx.run(`${base} AND id IN ${this.d.jsonIntList}`, [owner, JSON.stringify(deliveryIds)]);
    });
  }

  async listAttempts(eventId: string, endpointId?: string): Promise<AttemptRow[]> {
    const rows = await this.db.all(
      `SELECT a.id, a.delivery_id, COALESCE(a.endpoint_id, d.endpoint_id) AS endpoint_id, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error_class, a.response_excerpt, a.outcome
       FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq
       WHERE e.id = ? ${endpointId === undefined ? '' : 'AND d.endpoint_id = ?'} ORDER BY a.started_at, a.id`,
      endpointId === undefined ? [eventId] : [eventId, endpointId],
    );
    return rows.map(toAttempt);
  }

  async redeliverEvent(eventId: string, now: EpochMs, endpointId?: string): Promise<number | null> {
    const queued = await this.freeing(async (tx) => {
      // Locks the event (PostgreSQL) so a purge running now either finishes first (and this finds
      // nothing) or waits for this redelivery (and then keeps the event, now pending).
      const [ev] = await tx.all<{ seq: number; account_id: string; type: string; ordering_key: string }>(`SELECT seq, account_id, type, ordering_key FROM events WHERE id = ? ${this.d.forUpdate}`, [eventId]);
      if (!ev) return null;
      const endpoints = (await tx.all('SELECT * FROM endpoints WHERE account_id = ? AND enabled = 1', [ev.account_id]))
        .map(toEndpoint)
        .filter((e) => (endpointId === undefined ? subscribes(e, ev.type as EventType) : e.id === endpointId));
      let n = 0;
      for (const e of endpoints) {
        const changed = await tx.run(
          `UPDATE deliveries SET ${REQUEUE_SET} WHERE event_seq = ? AND endpoint_id = ? AND ${queueAgain("status <> 'pending'")}`,
          [now, now, now, now, ev.seq, e.id, now],
        );
        if (changed > 0) {
          n += changed;
          continue;
        }
        const [existing] = await tx.all('SELECT id FROM deliveries WHERE event_seq = ? AND endpoint_id = ?', [ev.seq, e.id]);
        if (existing) continue; // pending and due or in flight: it goes anyway
        await tx.run(
          "INSERT INTO deliveries (event_seq, endpoint_id, account_id, ordering_key, status, next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?)",
          [ev.seq, e.id, ev.account_id, ev.ordering_key, now, now, now],
        );
        n++;
      }
      return n;
    });
    if (queued) this.notifyDue();
    return queued;
  }

  async recoverEndpointDeliveries(endpointId: string, since: EpochMs, now: EpochMs): Promise<number> {
    const n = await this.freeing((tx) =>
      tx.run(
        `UPDATE deliveries SET ${REQUEUE_SET} WHERE endpoint_id = ? AND created_at >= ? AND ${queueAgain("status IN ('failed', 'skipped')")}`,
        [now, now, now, now, endpointId, since, now],
      ),
    );
    if (n > 0) this.notifyDue();
    return n;
  }

  async countEndpointDeliveries(endpointId: string, r: { createdFrom: EpochMs; createdTo: EpochMs; finishedFrom: EpochMs }): Promise<Record<DeliveryStatus, number>> {
    const rows = await this.db.all<{ status: string; n: number }>(
      `SELECT status, COUNT(*) AS n FROM deliveries
       WHERE endpoint_id = ? AND created_at >= ? AND created_at <= ? AND (status = 'pending' OR updated_at >= ?)
       GROUP BY status`,
      [endpointId, r.createdFrom, r.createdTo, r.finishedFrom],
    );
    const counts: Record<DeliveryStatus, number> = { pending: 0, succeeded: 0, failed: 0, skipped: 0 };
    for (const row of rows) counts[row.status as DeliveryStatus] = Number(row.n);
    return counts;
  }

  async disableEndpoint(id: string, reason: string, now: EpochMs): Promise<Endpoint | null> {
    await this.db.transaction((tx) => this.disableIn(tx, id, reason, now));
    return this.getEndpoint(id);
  }

  async enableEndpoint(id: string): Promise<Endpoint | null> {
    await this.freeing((tx) => tx.run('UPDATE endpoints SET enabled = 1, disabled_reason = NULL, disabled_at = NULL, failing_since = NULL, consecutive_failures = 0 WHERE id = ?', [id]));
    return this.getEndpoint(id);
  }

  async getEndpointHealth(id: string, since: EpochMs): Promise<EndpointHealth | null> {
    const e = await this.getEndpoint(id);
    if (!e) return null;
    const [a] = await this.db.all<{ n: number; ok: number | null }>(
      "SELECT COUNT(*) AS n, SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS ok FROM attempts WHERE endpoint_id = ? AND started_at >= ?",
      [id, since],
    );
    const counts = new Map(
      (await this.db.all<{ status: string; n: number }>('SELECT status, COUNT(*) AS n FROM deliveries WHERE endpoint_id = ? GROUP BY status', [id])).map((r) => [r.status, Number(r.n)]),
    );
    const attempts = Number(a?.n ?? 0);
    const succeeded = Number(a?.ok ?? 0);
    return {
      endpointId: id,
      enabled: e.enabled,
      disabledReason: e.disabledReason,
      disabledAt: e.disabledAt,
      attempts,
      succeeded,
      successRate: attempts === 0 ? null : succeeded / attempts,
      lastSuccessAt: e.lastSuccessAt,
      lastFailureAt: e.lastFailureAt,
      consecutiveFailures: e.consecutiveFailures,
      failingSince: e.failingSince,
      pending: counts.get('pending') ?? 0,
      failed: counts.get('failed') ?? 0,
      skipped: counts.get('skipped') ?? 0,
    };
  }
}
