/**
 * @module store/postgres/pg-store — the store on PostgreSQL: the same SQL as SQLite except the two
 * statements of the delivery hot path, which run as single statements (one round trip each
 * instead of a transaction of five to eight), since on PostgreSQL round trips, not rows, cost.
 */
import { outcomeStatements, foldEndpointHealth } from '../outcome-sql.js';
import { toEndpoint } from '../rows.js';
import { dueHeadsSql, SqlStore, toLeased } from '../sql-store.js';
import type { DeliveryOutcome, LeasedDelivery } from '../../domain/delivery.js';
import type { LeaseRequest } from '../ports.js';

/** The Store over a PgClient. */
export class PgStore extends SqlStore {
  /**
   * Quota first (one read), then one statement that picks each endpoint's share of deliveries
   * heading their ordering key, locking them as it finds them and skipping rows other workers are
   * leasing (see dueHeadsSql), takes the leases and returns them with their events and endpoints,
   * committed on its own. `= ANY(ARRAY(...))`, like the fence in dueHeadsSql, keeps the plan
   * index lookups per row whether or not the tables have statistics yet (docs/benchmarks.md
   * tells what the separate locking step this replaced cost).
   */
  override async leaseDeliveries(q: LeaseRequest): Promise<LeasedDelivery[]> {
    if (q.limit <= 0) return [];
    const quota = await this.leaseQuota(this.db, q);
    if (quota.size === 0) return [];
    // A lease is a hint (lost, the delivery is leased again): no wait for the WAL flush (~1.2 ms here).
    const all = this.db.allNonDurable ? this.db.allNonDurable.bind(this.db) : this.db.all.bind(this.db);
    const rows = await all(
      `WITH quota AS (
         SELECT * FROM jsonb_to_recordset(?::jsonb) AS quota(endpoint_id text, n bigint)
       ), candidates AS (
         SELECT c.id FROM quota CROSS JOIN LATERAL (${dueHeadsSql(this.d, 'quota.endpoint_id', 'quota.n', '0')}) c
       ), taken AS (
         UPDATE deliveries SET lease_until = ?, lease_owner = ?, attempts = deliveries.attempts + 1, updated_at = ?
         WHERE deliveries.id = ANY(ARRAY(SELECT id FROM candidates))
         RETURNING deliveries.*
       )
       SELECT taken.*, e.id AS event_id, e.body AS event_body, e.created_at AS event_created_at, row_to_json(p.*) AS endpoint_row
       FROM taken JOIN events e ON e.seq = taken.event_seq JOIN endpoints p ON p.id = taken.endpoint_id
       ORDER BY taken.event_seq`,
      [JSON.stringify([...quota].map(([endpoint_id, n]) => ({ endpoint_id, n }))), q.now, q.now, q.leaseUntil, q.owner, q.now],
    );
    return rows.map((r) => toLeased(r, toEndpoint(r.endpoint_row as Record<string, unknown>)));
  }

  /**
   * The attempts, the deliveries' state and the endpoints' health in one statement (data-modifying
   * CTEs run once, to completion, in one snapshot; the three touch different rows). Disabling an
   * endpoint, rare, takes the general transaction.
   */
  override async recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    if (outcomes.length === 0) return;
    // No scan starts to update (SqlStore.outcomesRecorded): this store's lease records none. Porting
    // them here needs more than the SQLite reasoning: identity values commit out of order, so
    // "new deliveries have newer events than any scanned" does not hold on PostgreSQL.
    const health = foldEndpointHealth(outcomes);
    if (health.some((h) => h.disable)) return super.recordDeliveryOutcomes(outcomes);
    const [attempts, deliveries, endpoints] = outcomeStatements(this.d, outcomes, health);
    await this.db.run(`WITH recorded_attempts AS (${attempts.sql}), recorded_deliveries AS (${deliveries.sql}) ${endpoints.sql}`, [
      ...attempts.params,
      ...deliveries.params,
      ...endpoints.params,
    ]);
  }
}
