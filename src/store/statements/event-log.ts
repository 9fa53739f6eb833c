/**
 * @module store/statements/event-log — the SQL of the stored events with their deliveries and
 * attempts: reads for the API, and queuing events again (redelivery, recovery). Pure.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { EventDeliveryFilter, EventQuery } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';
import { Where } from './where.js';

/** Events of an account matching a query, by sequence. */
export function selectEvents(q: EventQuery): Statement {
  const w = new Where('account_id = :account_id', { account_id: q.accountId })
    .add('connection_id = :connection_id', 'connection_id', q.connectionId)
    .add('type = :type', 'type', q.type)
    .add('job_id = :job_id', 'job_id', q.jobId)
    .add('created_at >= :created_from', 'created_from', q.createdFrom)
    .add('created_at <= :created_to', 'created_to', q.createdTo)
    .add('seq > :after_seq', 'after_seq', q.afterSeq);
  return {
    sql: `SELECT * FROM events WHERE ${w.sql} ORDER BY seq ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT :limit OFFSET :offset`,
    params: { ...w.params, limit: q.limit, offset: q.offset ?? 0 },
  };
}

/** One event by id. */
export const selectEvent = (id: string): Statement => ({ sql: 'SELECT * FROM events WHERE id = :id', params: { id } });

/** The deliveries of one event. */
export const selectEventDeliveries = (eventId: string): Statement => ({
  sql: 'SELECT d.*, e.id AS event_id FROM deliveries d JOIN events e ON e.seq = d.event_seq WHERE e.id = :event_id ORDER BY d.id',
  params: { event_id: eventId },
});

/** The event log joined with deliveries and endpoint URLs: the count and one page. */
export function eventDeliveryPage(f: EventDeliveryFilter): { count: Statement; page: Statement } {
  const w = new Where('e.account_id = :account_id', { account_id: f.accountId })
    .add('e.job_id = :job_id', 'job_id', f.jobId)
    .add('e.type = :type', 'type', f.type)
    .add('d.status = :delivery_status', 'delivery_status', f.deliveryStatus)
    .add('e.created_at >= :created_from', 'created_from', f.createdFrom)
    .add('e.created_at <= :created_to', 'created_to', f.createdTo);
  const from = 'events e LEFT JOIN deliveries d ON d.event_seq = e.seq LEFT JOIN endpoints p ON p.id = d.endpoint_id';
  return {
    count: { sql: `SELECT COUNT(*) AS n FROM ${from} WHERE ${w.sql}`, params: w.params },
    page: {
      sql: `SELECT e.*, d.id AS delivery_id, d.endpoint_id AS delivery_endpoint_id, p.url AS endpoint_url, d.status AS delivery_status,
                   d.attempts AS delivery_attempts, d.last_status_code AS delivery_last_status_code
            FROM ${from} WHERE ${w.sql} ORDER BY e.seq ${f.order === 'asc' ? 'ASC' : 'DESC'}, d.id LIMIT :limit OFFSET :offset`,
      params: { ...w.params, limit: f.limit, offset: f.offset },
    },
  };
}

/** Attempts of an event's deliveries, oldest first; optionally of one endpoint. */
export function selectAttempts(eventId: string, endpointId?: string): Statement {
  return {
    sql: `SELECT a.id, a.delivery_id, COALESCE(a.endpoint_id, d.endpoint_id) AS endpoint_id, a.attempt, a.started_at, a.duration_ms, a.status_code, a.error_class, a.response_excerpt, a.outcome
          FROM attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN events e ON e.seq = d.event_seq
          WHERE e.id = :event_id ${endpointId === undefined ? '' : 'AND d.endpoint_id = :endpoint_id'} ORDER BY a.started_at, a.id`,
    params: endpointId === undefined ? { event_id: eventId } : { event_id: eventId, endpoint_id: endpointId },
  };
}

/**
 * Locks an event for a redelivery (PostgreSQL), so a purge running now either finishes first (and
 * the redelivery finds nothing) or waits for it (and then keeps the event, now pending).
 */
export const lockEvent = (d: Dialect, id: string): Statement => ({
  sql: `SELECT seq, account_id, type, ordering_key FROM events WHERE id = :id ${d.forUpdate}`,
  params: { id },
});

/** An account's enabled endpoints. */
export const selectEnabledEndpoints = (accountId: string): Statement => ({
  sql: 'SELECT * FROM endpoints WHERE account_id = :account_id AND enabled = 1',
  params: { account_id: accountId },
});

/**
 * Which deliveries a redelivery or a recovery queues again: the finished ones it names (`finished`,
 * a condition on `status`), and pending ones waiting for a retry, which are made due at once —
 * whoever fixed their endpoint wants what it missed now, not at the retry schedule's next step. (A
 * pending delivery in flight is due, so `next_attempt_at > :now` leaves it alone.)
 */
function queueAgain(finished: string): string {
  return `(${finished} OR (status = 'pending' AND next_attempt_at > :now))`;
}

/**
 * The SET of a redelivery or recovery: pending, due now, in a new retry cycle. A lease that still
 * holds is kept: a delivery skipped while its attempt was in flight (its endpoint disabled
 * meanwhile) stays that attempt's, so the attempt's outcome is still recorded (the outcome must
 * match owner and attempt) instead of being dropped and the delivery sent again.
 */
const REQUEUE_SET = `status = 'pending', next_attempt_at = :now, retry_from = attempts, updated_at = :now,
  lease_owner = CASE WHEN lease_until >= :now THEN lease_owner END, lease_until = CASE WHEN lease_until >= :now THEN lease_until END`;

/** Queues again an event's delivery to one endpoint when it is finished or waiting for a retry. */
export const requeueEventDelivery = (eventSeq: number, endpointId: string, now: EpochMs): Statement => ({
  sql: `UPDATE deliveries SET ${REQUEUE_SET} WHERE event_seq = :event_seq AND endpoint_id = :endpoint_id AND ${queueAgain("status <> 'pending'")}`,
  params: { event_seq: eventSeq, endpoint_id: endpointId, now },
});

/** An event's delivery to one endpoint, if any. */
export const selectDeliveryOf = (eventSeq: number, endpointId: string): Statement => ({
  sql: 'SELECT id FROM deliveries WHERE event_seq = :event_seq AND endpoint_id = :endpoint_id',
  params: { event_seq: eventSeq, endpoint_id: endpointId },
});

/** A new pending delivery, due now (a redelivery to an endpoint that never had the event). */
export const insertDelivery = (ev: { seq: number; account_id: string; ordering_key: string }, endpointId: string, now: EpochMs): Statement => ({
  sql: `INSERT INTO deliveries (event_seq, endpoint_id, account_id, ordering_key, status, next_attempt_at, created_at, updated_at)
        VALUES (:event_seq, :endpoint_id, :account_id, :ordering_key, 'pending', :now, :now, :now)`,
  params: { event_seq: ev.seq, endpoint_id: endpointId, account_id: ev.account_id, ordering_key: ev.ordering_key, now },
});

/** Queues again an endpoint's failed and skipped deliveries created since a time, and makes due its retries. */
export const recoverDeliveries = (endpointId: string, since: EpochMs, now: EpochMs): Statement => ({
  sql: `UPDATE deliveries SET ${REQUEUE_SET} WHERE endpoint_id = :endpoint_id AND created_at >= :since AND ${queueAgain("status IN ('failed', 'skipped')")}`,
  params: { endpoint_id: endpointId, since, now },
});

/** An endpoint's deliveries created in a range, by status: pending ones, and finished ones changed since `finishedFrom`. */
export const countDeliveries = (endpointId: string, r: { createdFrom: EpochMs; createdTo: EpochMs; finishedFrom: EpochMs }): Statement => ({
  sql: `SELECT status, COUNT(*) AS n FROM deliveries
        WHERE endpoint_id = :endpoint_id AND created_at >= :created_from AND created_at <= :created_to AND (status = 'pending' OR updated_at >= :finished_from)
        GROUP BY status`,
  params: { endpoint_id: endpointId, created_from: r.createdFrom, created_to: r.createdTo, finished_from: r.finishedFrom },
});
