/**
 * @module store/statements/operations — the SQL of writes into the EHR requested through the API:
 * a durable queue of jobs (create, lease, reschedule, finish). Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { NewOperation, OperationCommit } from '../ports.js';
import type { Dialect } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';

/** The account's operation recorded under an idempotency key. */
export const selectByIdempotencyKey = (accountId: string, idempotencyKey: string): Statement => ({
  sql: 'SELECT * FROM operations WHERE account_id = :account_id AND idempotency_key = :idempotency_key',
  params: { account_id: accountId, idempotency_key: idempotencyKey },
});

/** A new operation, queued and due now, returning its row. */
export const insertOperation = (o: NewOperation): Statement => ({
  sql: `INSERT INTO operations (id, account_id, connection_id, kind, target_id, target_ehr_id, input, status, attempts, next_run_at, idempotency_key, request_hash, created_at, updated_at)
        VALUES (:id, :account_id, :connection_id, :kind, :target_id, :target_ehr_id, :input, 'queued', 0, :now, :idempotency_key, :request_hash, :now, :now) RETURNING *`,
  params: {
    id: o.id,
    account_id: o.accountId,
    connection_id: o.connectionId,
    kind: o.kind,
    target_id: o.targetId,
    target_ehr_id: o.targetEhrId,
    input: JSON.stringify(o.input),
    now: o.now,
    idempotency_key: o.idempotencyKey,
    request_hash: o.requestHash,
  },
});

/** One operation by id. */
export const selectOperation = (id: string): Statement => ({ sql: 'SELECT * FROM operations WHERE id = :id', params: { id } });

/**
 * Leases up to `limit` due operations — queued, or running with an expired lease (their worker
 * died) — earliest due first, counting the attempt and returning their rows. On PostgreSQL the
 * candidates skip rows other workers are leasing at the same moment.
 */
export const claimDueOperations = (d: Dialect, t: { now: EpochMs; leaseUntil: EpochMs; owner: string }, limit: number): Statement => ({
  sql: `UPDATE operations SET status = 'running', lease_until = :lease_until, lease_owner = :owner, attempts = attempts + 1, updated_at = :now
        WHERE id IN (
          SELECT id FROM operations
          WHERE next_run_at <= :now AND (status = 'queued' OR (status = 'running' AND lease_until < :now))
          ORDER BY next_run_at, created_at LIMIT :limit ${d.skipLocked})
        RETURNING *`,
  params: { lease_until: t.leaseUntil, owner: t.owner, now: t.now, limit },
});

/** Puts an operation `owner` holds back in the queue, due at `nextRunAt`, recording why. */
export const rescheduleOperation = (id: string, owner: string, r: { nextRunAt: EpochMs; errorCode: string; errorMessage: string; now: EpochMs }): Statement => ({
  sql: `UPDATE operations SET status = 'queued', lease_until = NULL, lease_owner = NULL, next_run_at = :next_run_at, error_code = :error_code, error_message = :error_message, updated_at = :now
        WHERE id = :id AND lease_owner = :owner`,
  params: { next_run_at: r.nextRunAt, error_code: r.errorCode, error_message: r.errorMessage, now: r.now, id, owner },
});

/** The account and status of the operation being finished. */
export const selectOperationState = (id: string): Statement => ({
  sql: 'SELECT account_id, status FROM operations WHERE id = :id',
  params: { id },
});

/** Records a finished operation's outcome (the EHR id it wrote, kept when none is given) and ends its lease. */
export const finishOperation = (c: OperationCommit): Statement => ({
  sql: `UPDATE operations SET status = :status, target_ehr_id = COALESCE(:target_ehr_id, target_ehr_id), error_code = :error_code, error_message = :error_message,
          lease_until = NULL, lease_owner = NULL, updated_at = :finished_at
        WHERE id = :id`,
  params: {
    status: c.status,
    target_ehr_id: c.targetEhrId ?? null,
    error_code: c.errorCode ?? null,
    error_message: c.errorMessage ?? null,
    finished_at: c.finishedAt,
    id: c.operationId,
  },
});
