/**
 * @module store/statements/sync-leases — the SQL of sync leases: which worker syncs which
 * connection. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import { PUSH_CONNECTOR_KINDS } from '../../domain/entities.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';

/** A lease's terms: when it is taken, until when it holds, and who holds it. */
export interface LeaseTerms {
  now: EpochMs;
  leaseUntil: EpochMs;
  owner: string;
}

/**
 * Leases up to `limit` enabled connections whose sync is due and whose lease has expired, earliest
 * due first — never a pushed one (an hl7v2 feed has nothing to poll) — returning their rows. On
 * PostgreSQL the candidates skip rows other workers are leasing at the same moment.
 */
export const claimDueConnections = (d: Dialect, t: LeaseTerms, limit: number): Statement => ({
  sql: `UPDATE connections SET sync_lease_until = :lease_until, sync_lease_owner = :owner
        WHERE id IN (
          SELECT id FROM connections
          WHERE enabled = 1 AND next_sync_at <= :now AND (sync_lease_until IS NULL OR sync_lease_until < :now)
            AND connector NOT IN ${d.jsonTextList('pushed')}
          ORDER BY next_sync_at, id LIMIT :limit ${d.skipLocked})
        RETURNING *`,
  params: { lease_until: t.leaseUntil, owner: t.owner, now: t.now, limit, pushed: JSON.stringify(PUSH_CONNECTOR_KINDS) },
});

/** Leases one connection unless another owner's lease still holds (its own lease is renewed), returning its row. */
export const claimConnection = (id: string, t: LeaseTerms): Statement => ({
  sql: `UPDATE connections SET sync_lease_until = :lease_until, sync_lease_owner = :owner
        WHERE id = :id AND (sync_lease_until IS NULL OR sync_lease_until < :now OR sync_lease_owner = :owner)
        RETURNING *`,
  params: { lease_until: t.leaseUntil, owner: t.owner, id, now: t.now },
});

/** Gives a connection's lease back, if `owner` still holds it. */
export const releaseConnection = (id: string, owner: string): Statement => ({
  sql: 'UPDATE connections SET sync_lease_until = NULL, sync_lease_owner = NULL WHERE id = :id AND sync_lease_owner = :owner',
  params: { id, owner },
});
