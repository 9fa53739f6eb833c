/**
 * @module store/concerns/operations — the Operations port in SQL: writes into the EHR requested
 * through the API, kept as a durable queue of jobs; a finished one commits its projection rows,
 * events with deliveries and outcome in one transaction (like a sync's outbox write).
 */
import type { EpochMs } from '../../domain/clock.js';
import type { Operation } from '../../domain/entities.js';
import type { NewOperation, OperationCommit, Operations } from '../ports.js';
import { toOperation } from '../rows.js';
import { all, one, run } from '../sql/statement.js';
import { bumpProjectionVersion } from '../statements/outbox.js';
import * as sql from '../statements/operations.js';
import type { SqlContext } from './context.js';
import { insertEventsWithDeliveries, upsertProjection } from './outbox.js';

/** Operations over SQL. */
export class SqlOperations implements Operations {
  constructor(private readonly ctx: SqlContext) {}

  async createOperation(o: NewOperation): Promise<{ operation: Operation; existing: boolean }> {
    return this.ctx.db.transaction(async (tx) => {
      if (o.idempotencyKey !== null) {
        const prior = await one(tx, sql.selectByIdempotencyKey(o.accountId, o.idempotencyKey));
        if (prior) return { operation: toOperation(prior), existing: true };
      }
      const row = await one(tx, sql.insertOperation(o));
      return { operation: toOperation(row as Record<string, unknown>), existing: false };
    });
  }

  async getOperation(id: string): Promise<Operation | null> {
    const r = await one(this.ctx.db, sql.selectOperation(id));
    return r ? toOperation(r) : null;
  }

  async claimDueOperations(now: EpochMs, limit: number, leaseUntil: EpochMs, owner: string): Promise<Operation[]> {
    const rows = await this.ctx.db.transaction((tx) => all(tx, sql.claimDueOperations(this.ctx.d, { now, leaseUntil, owner }, limit)));
    // RETURNING gives no order: earliest due first, as the candidates were picked.
    return rows.map(toOperation).sort((a, b) => a.nextRunAt - b.nextRunAt || a.createdAt - b.createdAt);
  }

  async rescheduleOperation(id: string, owner: string, r: { nextRunAt: EpochMs; errorCode: string; errorMessage: string; now: EpochMs }): Promise<void> {
    await run(this.ctx.db, sql.rescheduleOperation(id, owner, r));
  }

  async completeOperation(c: OperationCommit): Promise<void> {
    await this.ctx.db.transaction(async (tx) => {
      const op = await one<{ account_id: string; status: string }>(tx, sql.selectOperationState(c.operationId));
      if (!op) throw new Error(`operation ${c.operationId} does not exist`);
      // Finished already (a second worker after a lease expiry): committing again would double the event.
      if (op.status === 'succeeded' || op.status === 'failed') return;
      if (c.upsertAppointments.length > 0 || c.upsertPatients.length > 0) {
        // A concurrent sync that read before this write must not commit over it.
        await run(tx, bumpProjectionVersion(c.connectionId));
        await upsertProjection(tx, c.connectionId, c.upsertAppointments, c.upsertPatients, 'operation', c.finishedAt);
      }
      await insertEventsWithDeliveries(tx, op.account_id, c.connectionId, c.events);
      await run(tx, sql.finishOperation(c));
    });
    if (c.events.length > 0) this.ctx.queue.notifyDue();
  }
}
