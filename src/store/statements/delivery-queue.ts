/**
 * @module store/statements/delivery-queue — the SQL of the dispatcher's queue: which endpoints have
 * room (the quota), the due heads of an endpoint's queue, taking leases, what a scan passed, the
 * PostgreSQL single-statement lease, and giving leases back. Pure: statements only. The outcome
 * statements are in statements/outcomes.ts.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { LeaseRequest } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import { DIALECTS } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';

/**
 * The enabled endpoints with a due, unleased delivery past their scan start, with their cap and the
 * slots busy. With `ownInFlight`, the owner's leased rows are left out of `busy` (the caller adds its
 * exact in-flight count instead). `scanStarts` is a JSON object {endpoint id: first event sequence
 * to look at} (see queue/scan-starts.ts; `{}` where none are kept).
 */
export function quotaCandidates(d: Dialect, q: LeaseRequest, scanStarts: string): Statement {
  const own = q.ownInFlight !== undefined;
  return {
    sql: `SELECT p.id AS endpoint_id, p.account_id, COALESCE(p.max_concurrency, :max_per_endpoint) AS cap,
                 (SELECT COUNT(*) FROM deliveries b WHERE b.endpoint_id = p.id AND b.status = 'pending' AND b.lease_until >= :now${own ? ' AND b.lease_owner <> :owner' : ''}) AS busy
          FROM endpoints p
          WHERE p.enabled = 1 AND EXISTS (
            SELECT 1 FROM deliveries d
            WHERE d.endpoint_id = p.id AND d.event_seq >= COALESCE(${d.jsonObjectInt('p.id', 'scan_starts')}, 0) AND d.status = 'pending' AND d.next_attempt_at <= :now AND (d.lease_until IS NULL OR d.lease_until < :now))`,
    params: own ? { max_per_endpoint: q.maxPerEndpoint, now: q.now, owner: q.owner, scan_starts: scanStarts } : { max_per_endpoint: q.maxPerEndpoint, now: q.now, scan_starts: scanStarts },
  };
}

/**
 * The ids of an endpoint's oldest due, unleased deliveries that head their ordering key (a later
 * event about the same appointment or patient waits while an earlier one is pending), at most
 * `limit`, among deliveries of events from `fromSeq` on (see ScanStarts), ordered by event.
 * `endpoint`, `limit` and `fromSeq` are SQL expressions (parameters or columns); binds `:now`.
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
 * PostgreSQL's deliveries_pending_seq (its predicate requires one) is not a candidate for it. Keep
 * it that way: with a next_attempt_at term here, the planner may walk the endpoint's earlier
 * backlog per check again.
 */
export function dueHeadsSql(d: Dialect, endpoint: string, limit: string, fromSeq: string): string {
  return `SELECT d.id, d.event_seq FROM deliveries d
    WHERE d.endpoint_id = ${endpoint} AND d.event_seq >= ${fromSeq} AND d.status = 'pending' AND d.next_attempt_at <= :now AND (d.lease_until IS NULL OR d.lease_until < :now)
      AND NOT EXISTS (
        SELECT 1 FROM deliveries e
        WHERE e.endpoint_id = d.endpoint_id AND e.ordering_key = d.ordering_key AND e.status = 'pending' AND e.event_seq < d.event_seq ${d.subqueryFence})
    ORDER BY d.event_seq LIMIT ${limit} ${d.skipLocked}`;
}

/** One endpoint's due heads from a scan start (SQLite's lease, one statement per endpoint). */
export const dueHeads = (d: Dialect, endpointId: string, fromSeq: number, limit: number, now: EpochMs): Statement => ({
  sql: dueHeadsSql(d, ':endpoint_id', ':limit', ':from_seq'),
  params: { endpoint_id: endpointId, from_seq: fromSeq, limit, now },
});

/** Takes the leases of the given deliveries, re-checking each row, counting the attempt; returns the rows. */
export const takeLeases = (d: Dialect, ids: readonly number[], q: LeaseRequest): Statement => ({
  sql: `UPDATE deliveries SET lease_until = :lease_until, lease_owner = :owner, attempts = attempts + 1, updated_at = :now
        WHERE id IN ${d.jsonIntList('ids')} AND status = 'pending' AND (lease_until IS NULL OR lease_until < :now)
        RETURNING *`,
  params: { lease_until: q.leaseUntil, owner: q.owner, now: q.now, ids: JSON.stringify(ids) },
});

/** Events' ids, bytes and creation times, by sequence number. */
export const eventBodies = (d: Dialect, seqs: readonly number[]): Statement => ({
  sql: `SELECT seq, id, body, created_at FROM events WHERE seq IN ${d.jsonIntList('seqs')}`,
  params: { seqs: JSON.stringify(seqs) },
});

/** Endpoints by id. */
export const endpointsById = (d: Dialect, ids: readonly string[]): Statement => ({
  sql: `SELECT * FROM endpoints WHERE id IN ${d.jsonTextList('ids')}`,
  params: { ids: JSON.stringify(ids) },
});

/** The columns of passedScans' JSON parameter. */
const PASSED_COLUMNS = [
  ['endpoint_id', 'text'],
  ['from_seq', 'bigint'],
  ['to_seq', 'bigint'],
] as const;

/**
 * Per scan of an endpoint's queue (from `from_seq` to `to_seq`, or to past the newest event when
 * null), in one pass over its range: how many pending deliveries it passed (blocked, waiting for a
 * retry, or leased), and when the first of those can become leasable by itself (a retry falling
 * due, a lease running out).
 */
export const passedScans = (d: Dialect, now: EpochMs, scans: readonly { endpoint_id: string; from_seq: number; to_seq: number | null }[]): Statement => ({
  sql: `SELECT s.endpoint_id, s.from_seq, s.to_seq, COUNT(d.id) AS passed,
               MIN(CASE WHEN d.next_attempt_at > :now THEN d.next_attempt_at WHEN d.lease_until >= :now THEN d.lease_until + 1 END) AS next_due
        FROM (SELECT r.endpoint_id, r.from_seq, COALESCE(r.to_seq, (SELECT MAX(seq) + 1 FROM events)) AS to_seq FROM ${d.jsonRecords('r', PASSED_COLUMNS, 'scans')}) s
        LEFT JOIN deliveries d ON d.endpoint_id = s.endpoint_id AND d.event_seq >= s.from_seq AND d.event_seq < s.to_seq AND d.status = 'pending'
        GROUP BY s.endpoint_id, s.from_seq, s.to_seq`,
  params: { now, scans: JSON.stringify(scans) },
});

/**
 * PostgreSQL only (data-modifying CTEs, jsonb): the whole lease in one statement: per endpoint of the quota, its share of due heads
 * (locked as found, see dueHeadsSql), the leases taken, and the rows returned with their events and
 * endpoints. `= ANY(ARRAY(...))`, like the fence in dueHeadsSql, keeps the plan index lookups per
 * row whether or not the tables have statistics yet.
 */
export const pgLeaseInOneStatement = (quota: ReadonlyMap<string, number>, q: LeaseRequest): Statement => ({
  sql: `WITH quota AS (
          SELECT * FROM jsonb_to_recordset(:quota::jsonb) AS quota(endpoint_id text, n bigint)
        ), candidates AS (
          SELECT c.id FROM quota CROSS JOIN LATERAL (${dueHeadsSql(DIALECTS.postgres, 'quota.endpoint_id', 'quota.n', '0')}) c
        ), taken AS (
          UPDATE deliveries SET lease_until = :lease_until, lease_owner = :owner, attempts = deliveries.attempts + 1, updated_at = :now
          WHERE deliveries.id = ANY(ARRAY(SELECT id FROM candidates))
          RETURNING deliveries.*
        )
        SELECT taken.*, e.id AS event_id, e.body AS event_body, e.created_at AS event_created_at, row_to_json(p.*) AS endpoint_row
        FROM taken JOIN events e ON e.seq = taken.event_seq JOIN endpoints p ON p.id = taken.endpoint_id
        ORDER BY taken.event_seq`,
  params: { quota: JSON.stringify([...quota].map(([endpoint_id, n]) => ({ endpoint_id, n }))), now: q.now, lease_until: q.leaseUntil, owner: q.owner },
});

/** Gives back an owner's leases not attempted (all of them, or those of the given deliveries), uncounting the attempt. */
export function releaseLeases(d: Dialect, owner: string, deliveryIds?: readonly number[]): Statement {
  const base = "UPDATE deliveries SET lease_until = NULL, lease_owner = NULL, attempts = attempts - 1 WHERE lease_owner = :owner AND status = 'pending'";
  return deliveryIds === undefined
    ? { sql: base, params: { owner } }
    : { sql: `${base} AND id IN ${d.jsonIntList('ids')}`, params: { owner, ids: JSON.stringify(deliveryIds) } };
}
