/**
 * @module store/concerns/sync-commits — the SyncCommits port in SQL: sync runs, the outbox write of
 * a successful sync (projection, providers, quarantine, events with their deliveries and the run's
 * outcome in one transaction), failures, history and quarantine.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { QuarantineRow, SyncRun } from '../../domain/entities.js';
import { ConflictError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import type { SyncCommit, SyncCommits, SyncFailure } from '../ports.js';
import { toQuarantine, toSyncRun } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import { bumpProjectionVersion } from '../statements/outbox.js';
import * as sql from '../statements/sync-commits.js';
import type { SqlContext } from './context.js';
import { insertEventsWithDeliveries, upsertProjection } from './outbox.js';

/** Sync runs and their commits over SQL. */
export class SqlSyncCommits implements SyncCommits {
  constructor(private readonly ctx: SqlContext) {}

  async startSyncRun(connectionId: string, startedAt: EpochMs): Promise<SyncRun> {
    const id = newId();
    await this.ctx.db.transaction(async (tx) => {
      // The caller holds the connection's sync lease, so any run still marked running was cut
      // short by a crash: none of it was committed, and the record says so.
      await run(tx, sql.failInterruptedRuns(connectionId, startedAt));
      await run(tx, sql.insertSyncRun(id, connectionId, startedAt));
    });
    return { id, connectionId, startedAt, finishedAt: null, status: 'running', counts: {}, quarantined: 0, errorCode: null, errorMessage: null };
  }

  async commitSync(c: SyncCommit): Promise<void> {
    const { plan } = c;
    const at = c.finishedAt;
    const { d } = this.ctx;
    await this.ctx.db.transaction(async (tx) => {
      const conn = await one<{ account_id: string; projection_version: number }>(tx, sql.selectCommitConnection(c.connectionId));
      if (!conn) throw new Error(`connection ${c.connectionId} does not exist`);
      const bumped = await run(tx, bumpProjectionVersion(c.connectionId, c.projectionVersion));
      if (c.projectionVersion !== undefined && bumped === 0) {
        throw new ConflictError('The projection changed while the sync ran (an operation wrote to it); the sync is redone.');
      }

      await upsertProjection(tx, c.connectionId, plan.upsertAppointments, plan.upsertPatients, 'ehr_sync', at);
      if (plan.deleteAppointmentIds.length > 0) await run(tx, sql.deleteAppointments(d, c.connectionId, plan.deleteAppointmentIds));
      for (const st of sql.upsertProviders(c.connectionId, plan.upsertProviders, at)) await run(tx, st);
      // A record that stays malformed (or unreadable) is reported by every sync: keep one row per
      // record and reason, the latest, not one per sync (1,440 a day at a one-minute interval).
      const repeated = plan.quarantined.filter((q) => q.ehr_id !== null);
      if (repeated.length > 0) await run(tx, sql.deleteRepeatedQuarantine(d, c.connectionId, repeated));
      const quarantineIds = plan.quarantined.map(() => newId());
      for (const st of sql.insertQuarantine(c.connectionId, c.runId, plan.quarantined, quarantineIds, at)) await run(tx, st);
      await insertEventsWithDeliveries(tx, conn.account_id, c.connectionId, plan.events);

      await run(tx, sql.finishSyncRun(c));
      await run(tx, sql.advanceConnection(c));
    });
    if (plan.events.length > 0) this.ctx.queue.notifyDue();
  }

  async failSyncRun(f: SyncFailure): Promise<void> {
    await this.ctx.db.transaction(async (tx) => {
      await run(tx, sql.failSyncRun(f));
      await run(tx, sql.noteSyncFailure(f));
    });
  }

  async listSyncRuns(connectionId: string, limit: number): Promise<SyncRun[]> {
    return (await all(this.ctx.db, sql.selectSyncRuns(connectionId, limit))).map(toSyncRun);
  }

  async listQuarantine(connectionId: string, limit: number): Promise<QuarantineRow[]> {
    return (await all(this.ctx.db, sql.selectQuarantine(connectionId, limit))).map(toQuarantine);
  }
}
