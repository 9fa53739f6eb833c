/**
 * @module store/queue/pg-queue — the delivery queue on PostgreSQL. Round trips, not rows, are the
 * cost there, so the lease is the quota read plus one statement (pick each endpoint's share, lock
 * as found, take the leases, return them with their events and endpoints), and recording a batch
 * of outcomes is one statement. Several processes share the queue: no in-process scan starts
 * (identity values commit out of order, so "new deliveries have newer events than any scanned",
 * which the SQLite skips rely on, does not hold here).
 */
import type { DeliveryOutcome, LeasedDelivery } from '../../domain/delivery.js';
import type { DeliveryQueue, LeaseRequest } from '../ports.js';
import { toEndpoint, toLeased } from '../rows.js';
import type { SqlClient, SqlRunner } from '../sql/client.js';
import type { Dialect } from '../sql/dialect.js';
import { bind, run } from '../sql/statement.js';
import { pgLeaseInOneStatement } from '../statements/delivery-queue.js';
import { foldEndpointHealth, pgOutcomesInOneStatement } from '../statements/outcomes.js';
import type { QueueHooks, SqlContext } from '../concerns/context.js';
import { DueSignal } from './due-signal.js';
import { leaseQuota, recordOutcomes, releaseDeliveryLeases } from './shared.js';

/** The PostgreSQL delivery queue; also the hooks the rest of the store calls (QueueHooks). */
export class PgDeliveryQueue implements DeliveryQueue, QueueHooks {
  private readonly due: DueSignal;
  private readonly ctx: SqlContext;

  constructor(
    private readonly db: SqlClient,
    private readonly d: Dialect,
  ) {
    this.due = new DueSignal(db);
    this.ctx = { db, d, queue: this };
  }

  /**
   * Quota first (one read), then one statement (statements/delivery-queue.ts `pgLeaseInOneStatement`),
   * committed on its own. docs/benchmarks.md tells what the separate locking step this replaced cost.
   */
  async leaseDeliveries(q: LeaseRequest): Promise<LeasedDelivery[]> {
    if (q.limit <= 0) return [];
    const quota = await leaseQuota(this.db, this.d, q, '{}');
    if (quota.size === 0) return [];
    // A lease is a hint (lost, the delivery is leased again): no wait for the WAL flush (~1.2 ms here).
    const { text, values } = bind(pgLeaseInOneStatement(quota, q));
    const rows = this.db.allNonDurable ? await this.db.allNonDurable(text, values) : await this.db.all(text, values);
    return rows.map((r) => toLeased(r, toEndpoint(r.endpoint_row as Record<string, unknown>)));
  }

  /**
   * The attempts, the deliveries' state and the endpoints' health in one statement. Disabling an
   * endpoint, rare, takes the general transaction.
   */
  async recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    const health = foldEndpointHealth(outcomes);
    if (health.some((h) => h.disable)) return recordOutcomes(this.ctx, outcomes);
    await run(this.db, pgOutcomesInOneStatement(outcomes, health));
  }

  releaseDeliveryLeases(owner: string, deliveryIds?: readonly number[]): Promise<void> {
    return releaseDeliveryLeases(this.ctx, owner, deliveryIds);
  }

  onDeliveriesDue(listener: () => void): () => void {
    return this.due.subscribe(listener);
  }

  /** No scan starts here: a plain transaction. */
  freeing<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.db.transaction(fn);
  }

  forgetScans(): void {}

  notifyDue(): void {
    this.due.notify();
  }

  /** Stops listening for other processes' notifications. */
  close(): Promise<void> {
    return this.due.close();
  }
}
