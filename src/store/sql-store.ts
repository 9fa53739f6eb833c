/**
 * @module store/sql-store — the Store, written once in SQL over a SqlClient. SQLite and PostgreSQL
 * differ only in their client, their migrations and the fragments in store/dialect.ts.
 */
import type { EpochMs } from '../domain/clock.js';
import type { EventType } from '../domain/events.js';
import { ConflictError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord } from '../domain/records.js';
import type { Projected } from '../domain/projection.js';
import type { ProjectionSnapshot } from '../domain/projection.js';
import type { Dialect } from './sql/dialect.js';
import { DIALECTS } from './sql/dialect.js';
import { toAccount, toAppointmentRow, toOperation, toConnection, toEndpoint, toPatientRow, toProvider, toQuarantine, toSyncRun } from './rows.js';
import type { SqlClient, SqlRunner, SqlValue } from './sql/client.js';
import type { QueueHooks } from './concerns/context.js';
import type { Account, AppointmentRow, Connection, Operation, PatientRow, QuarantineRow, RecordSource, SyncRun } from '../domain/entities.js';
import type { AppointmentFilter, ConnectionPatch, NewConnection, NewOperation, OperationCommit, PatientFilter, SyncCommit, SyncFailure } from './ports.js';
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

/** What identifies a quarantined record across syncs (see commitSync). */
const QUARANTINE_KEY_COLUMNS = [
  ['kind', 'text'],
  ['ehr_id', 'text'],
  ['reason', 'text'],
] as const;

/**
 * The concerns not yet moved to src/store/concerns (transitional): they run on the queue's hooks
 * (`freeing`, `forgetScans`, `notifyDue`) like the moved ones.
 */
export class SqlStore {
  protected readonly d: Dialect;

  constructor(
    protected readonly db: SqlClient,
    private readonly queue: QueueHooks,
  ) {
    this.d = DIALECTS[db.dialect];
  }

  private notifyDue(): void {
    this.queue.notifyDue();
  }

  private freeing<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.queue.freeing(fn);
  }

  async migrate(): Promise<void> {
    await this.db.migrate();
  }

  async close(): Promise<void> {
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
      if (seqs.length > 0) this.queue.forgetScans();
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

}
