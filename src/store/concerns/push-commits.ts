/**
 * @module store/concerns/push-commits — the PushCommits port in SQL: a pushed feed's message log,
 * the projection slice one message plans against, and the group commit of several messages' outbox
 * writes in one transaction.
 */
import type { EpochMs } from '../../domain/clock.js';
import { ConflictError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import type { Projected } from '../../domain/projection.js';
import type { AppointmentRecord, PatientRecord } from '../../domain/records.js';
import type { RecordKind } from '../../detection/push-plan.js';
import { recordTimeKey } from '../../detection/push-plan.js';
import type { FeedMessage, PushCommit, PushCommits, PushSlice } from '../ports.js';
import { toProvider } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import type { SqlRunner } from '../sql/client.js';
import * as sql from '../statements/push-commits.js';
import { selectProjectionVersion, selectProviders } from '../statements/projection.js';
import { bumpProjectionVersion } from '../statements/outbox.js';
import { deleteAppointments, deleteRepeatedQuarantine, insertQuarantine, selectCommitConnection, upsertProviders } from '../statements/sync-commits.js';
import type { SqlContext } from './context.js';
import { insertEventsWithDeliveries, upsertProjection } from './outbox.js';

interface ProjectedRow {
  ehr_id: string;
  id: string;
  record: string;
}

interface FeedMessageRow {
  connection_id: string;
  sender: string;
  control_id: string;
  message_type: string;
  message_time_ms: number | string | null;
  outcome: FeedMessage['outcome'];
  ack_code: FeedMessage['ackCode'];
  error_text: string | null;
  received_at: number | string;
}

function toFeedMessage(r: FeedMessageRow): FeedMessage {
  return {
    connectionId: r.connection_id,
    sender: r.sender,
    controlId: r.control_id,
    messageType: r.message_type,
    messageTimeMs: r.message_time_ms === null ? null : Number(r.message_time_ms),
    outcome: r.outcome,
    ackCode: r.ack_code,
    errorText: r.error_text,
    receivedAt: Number(r.received_at),
  };
}

/** The pushed feed's reads and writes over SQL. */
export class SqlPushCommits implements PushCommits {
  constructor(private readonly ctx: SqlContext) {}

  async findFeedMessage(connectionId: string, sender: string, controlId: string): Promise<FeedMessage | null> {
    const r = await one<FeedMessageRow>(this.ctx.db, sql.selectFeedMessage(connectionId, sender, controlId));
    return r ? toFeedMessage(r) : null;
  }

  async loadPushSlice(connectionId: string, keys: { appointmentEhrIds: readonly string[]; patientEhrIds: readonly string[]; patientMrns?: readonly string[] }): Promise<PushSlice> {
    const { db, d } = this.ctx;
    // The version first, then the rows (as loadProjection): rows read after it are at least as new,
    // so a write committed in between fails the commit's version check instead of going unseen.
    const version = await one<{ projection_version: number }>(db, selectProjectionVersion(connectionId));
    const [apptRows, patientRows, mrnRows, providers, times] = await Promise.all([
      keys.appointmentEhrIds.length === 0 ? [] : all<ProjectedRow>(db, sql.selectAppointmentsByEhrId(d, connectionId, keys.appointmentEhrIds)),
      keys.patientEhrIds.length === 0 ? [] : all<ProjectedRow>(db, sql.selectPatientsByEhrId(d, connectionId, keys.patientEhrIds)),
      keys.patientMrns?.length ? all<ProjectedRow>(db, sql.selectPatientsByMrn(d, connectionId, keys.patientMrns)) : [],
      all(db, selectProviders(connectionId)),
      all<{ kind: string; ehr_id: string; message_time_ms: number | string }>(db, sql.selectRecordTimes(d, connectionId, keys.appointmentEhrIds, keys.patientEhrIds)),
    ]);
    // Patients found by MRN (a merge naming them so) need their message times too: a late merge
    // must not retire a record that changed after it.
    const extra = mrnRows.map((r) => r.ehr_id).filter((id) => !keys.patientEhrIds.includes(id));
    if (extra.length > 0) times.push(...(await all<{ kind: string; ehr_id: string; message_time_ms: number | string }>(db, sql.selectRecordTimes(d, connectionId, [], extra))));
    const appointments = new Map<string, Projected<AppointmentRecord>>();
    for (const r of apptRows) appointments.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as AppointmentRecord });
    const patients = new Map<string, Projected<PatientRecord>>();
    for (const r of [...patientRows, ...mrnRows]) patients.set(r.ehr_id, { id: r.id, record: JSON.parse(r.record) as PatientRecord });
    return {
      projection: { appointments, patients, version: Number(version?.projection_version ?? 0) },
      providers: providers.map(toProvider),
      recordTimes: new Map(times.map((t) => [recordTimeKey(t.kind as RecordKind, t.ehr_id), Number(t.message_time_ms)])),
    };
  }

  async commitPushes(batch: readonly PushCommit[]): Promise<('committed' | 'duplicate')[]> {
    if (batch.length === 0) return [];
    let queued = false;
    const results = await this.ctx.db.transaction(async (tx) => {
      const accounts = new Map<string, string>();
      // The connections' rows are locked (the version bump) in id order, whatever the order of the
      // messages: two processes committing batches of the same clinics cannot deadlock.
      const first = new Map<string, PushCommit>();
      for (const c of batch) if (!first.has(c.message.connectionId)) first.set(c.message.connectionId, c);
      for (const c of [...first.values()].sort((a, b) => (a.message.connectionId < b.message.connectionId ? -1 : 1))) {
        const connectionId = c.message.connectionId;
        const conn = await one<{ account_id: string }>(tx, selectCommitConnection(connectionId));
        if (!conn) throw new Error(`connection ${connectionId} does not exist`);
        accounts.set(connectionId, conn.account_id);
        // Every write to the projection bumps its version; the batch's first commit of a connection
        // checks it was planned on the version it read (an operation may have written meanwhile).
        const bumped = await run(tx, bumpProjectionVersion(connectionId, c.projectionVersion));
        if (c.projectionVersion !== undefined && bumped === 0) throw new ConflictError('The projection changed while pushed messages were planned; they are planned again.');
      }
      const out: ('committed' | 'duplicate')[] = [];
      const fed = new Map<string, EpochMs>();
      for (const c of batch) {
        const result = await this.commitOne(tx, c, accounts.get(c.message.connectionId)!);
        if (result === 'committed' && c.plan.events.length > 0) queued = true;
        if (result === 'committed') fed.set(c.message.connectionId, Math.max(c.message.receivedAt, fed.get(c.message.connectionId) ?? 0));
        out.push(result);
      }
      for (const [connectionId, at] of fed) await run(tx, sql.markFed(connectionId, at));
      return out;
    });
    if (queued) this.ctx.queue.notifyDue();
    return results;
  }

  private async commitOne(tx: SqlRunner, c: PushCommit, accountId: string): Promise<'committed' | 'duplicate'> {
    const { d } = this.ctx;
    const { message: m, plan } = c;
    const at: EpochMs = m.receivedAt;
    if ((await run(tx, sql.insertFeedMessage(m))) === 0) return 'duplicate';
    await upsertProjection(tx, m.connectionId, plan.upsertAppointments, plan.upsertPatients, 'ehr_sync', at);
    if (plan.deleteAppointmentIds.length > 0) await run(tx, deleteAppointments(d, m.connectionId, plan.deleteAppointmentIds));
    if (c.retirePatientEhrIds.length > 0) for (const st of sql.deletePatients(d, m.connectionId, c.retirePatientEhrIds)) await run(tx, st);
    for (const st of upsertProviders(m.connectionId, plan.upsertProviders, at)) await run(tx, st);
    for (const st of sql.upsertRecordTimes(m.connectionId, c.recordTimes)) await run(tx, st);
    if (plan.quarantined.length > 0) {
      // A record quarantined again for the same reason keeps one row, the latest (as a sync's do).
      const repeated = plan.quarantined.filter((q) => q.ehr_id !== null);
      if (repeated.length > 0) await run(tx, deleteRepeatedQuarantine(d, m.connectionId, repeated));
      // The quarantine's run id names the message: `hl7v2:<MSH-10>`, what the sender's logs show.
      for (const st of insertQuarantine(m.connectionId, `hl7v2:${m.controlId}`, plan.quarantined, plan.quarantined.map(() => newId()), at)) await run(tx, st);
    }
    await insertEventsWithDeliveries(tx, accountId, m.connectionId, plan.events);
    return 'committed';
  }
}
