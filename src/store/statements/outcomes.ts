/**
 * @module store/statements/outcomes — the statements that record a batch of delivery attempts: the attempt
 * rows, the deliveries' new state and the endpoints' health, three statements whatever the batch
 * size (each reads its rows from one JSON parameter). Pure: SQL text and parameters only.
 */
import type { DeliveryOutcome } from '../../domain/delivery.js';
import type { Dialect } from '../sql/dialect.js';
import { DIALECTS } from '../sql/dialect.js';
import type { Statement } from '../sql/statement.js';

/** An endpoint's health change folded from the batch's outcomes, in the order attempts finished. */
export interface EndpointHealthChange {
  endpointId: string;
  /** True when some attempt succeeded: the counters restart from the failures after the last success. */
  reset: boolean;
  /** Failures after the last success (reset), or failures to add (no success). */
  failures: number;
  /** First failure after the last success (reset), or first failure of the batch (kept if already failing). */
  failingSince: number | null;
  lastSuccessAt: number | null;
  lastFailureAt: number | null;
  /** Set when an outcome says to disable the endpoint: the reason and when. */
  disable: { reason: string; at: number } | null;
}

const end = (o: DeliveryOutcome): number => o.startedAt + Math.round(o.durationMs);

/** Folds outcomes into one health change per endpoint. */
export function foldEndpointHealth(outcomes: readonly DeliveryOutcome[]): EndpointHealthChange[] {
  const byEndpoint = new Map<string, DeliveryOutcome[]>();
  for (const o of [...outcomes].sort((a, b) => end(a) - end(b))) {
    const list = byEndpoint.get(o.endpointId) ?? [];
    list.push(o);
    byEndpoint.set(o.endpointId, list);
  }
  // In endpoint id order: workers recording at once lock endpoint rows in the same order, so they
  // wait for each other instead of deadlocking.
  return [...byEndpoint].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([endpointId, list]) => {
    const lastOk = list.map((o, i) => (o.result === 'succeeded' ? i : -1)).reduce((a, b) => Math.max(a, b), -1);
    const failsAfter = list.slice(lastOk + 1);
    const lastFail = [...list].reverse().find((o) => o.result !== 'succeeded');
    const disable = list.find((o) => o.disableEndpoint !== undefined);
    return {
      endpointId,
      reset: lastOk >= 0,
      failures: lastOk >= 0 ? failsAfter.length : list.length,
      failingSince: lastOk >= 0 ? (failsAfter[0]?.startedAt ?? null) : (list[0] as DeliveryOutcome).startedAt,
      lastSuccessAt: lastOk >= 0 ? end(list[lastOk] as DeliveryOutcome) : null,
      lastFailureAt: lastFail ? end(lastFail) : null,
      disable: disable ? { reason: disable.disableEndpoint as string, at: end(disable) } : null,
    };
  });
}

const ATTEMPT_COLUMNS = [
  ['delivery_id', 'bigint'],
  ['endpoint_id', 'text'],
  ['attempt', 'bigint'],
  ['started_at', 'bigint'],
  ['duration_ms', 'bigint'],
  ['status_code', 'bigint'],
  ['error_class', 'text'],
  ['response_excerpt', 'text'],
  ['outcome', 'text'],
] as const;

const OUTCOME_COLUMNS = [
  ['id', 'bigint'],
  ['owner', 'text'],
  ['attempt', 'bigint'],
  ['status', 'text'],
  ['next_attempt_at', 'bigint'],
  ['status_code', 'bigint'],
  ['error', 'text'],
  ['updated_at', 'bigint'],
] as const;

const HEALTH_COLUMNS = [
  ['endpoint_id', 'text'],
  ['reset', 'bigint'],
  ['failures', 'bigint'],
  ['failing_since', 'bigint'],
  ['last_success_at', 'bigint'],
  ['last_failure_at', 'bigint'],
] as const;

/**
 * The three statements recording `outcomes` (non-empty), given their `foldEndpointHealth`.
 * Disabling an endpoint is not among them: the caller does it after, in the same transaction
 * (see `EndpointHealthChange.disable`).
 */
export function outcomeStatements(d: Dialect, outcomes: readonly DeliveryOutcome[], health: readonly EndpointHealthChange[]): [attempts: Statement, deliveries: Statement, endpoints: Statement] {
  const attempts: Statement = {
    sql: `INSERT INTO attempts (${ATTEMPT_COLUMNS.map(([c]) => c).join(', ')})
          SELECT ${ATTEMPT_COLUMNS.map(([c]) => `a.${c}`).join(', ')} FROM ${d.jsonRecords('a', ATTEMPT_COLUMNS, 'attempts')}
          WHERE EXISTS (SELECT 1 FROM deliveries x WHERE x.id = a.delivery_id ${d.subqueryFence})`,
    params: {
      attempts: JSON.stringify(
        outcomes.map((o) => ({
          delivery_id: o.deliveryId,
          endpoint_id: o.endpointId,
          attempt: o.attempt,
          started_at: o.startedAt,
          duration_ms: Math.round(o.durationMs),
          status_code: o.statusCode,
          error_class: o.errorClass,
          response_excerpt: o.responseExcerpt,
          outcome: o.result,
        })),
      ),
    },
  };
  // A delivery skipped meanwhile (endpoint disabled) is not revived by a retry, but a final answer
  // (it did arrive, or it finally failed) is recorded as what happened. Only the lease this attempt
  // was made under records: same owner and same attempt number (a lease taken over after expiry,
  // even by the same owner, counted a new attempt), so a late outcome cannot clear a newer lease.
  // (The attempt row is kept either way, for a delivery that still exists: the request was made.)
  // The ids once more, as a list (Dialect.idIn): PostgreSQL finds the rows by primary key through
  // it instead of hashing the record set against a scan of the table; the EXISTS above is fenced
  // for the same reason.
  const deliveries: Statement = {
    sql: `UPDATE deliveries SET status = CASE WHEN deliveries.status = 'pending' OR o.status <> 'pending' THEN o.status ELSE deliveries.status END,
            next_attempt_at = o.next_attempt_at, last_status_code = o.status_code, last_error = o.error, lease_until = NULL, lease_owner = NULL, updated_at = o.updated_at
          FROM ${d.jsonRecords('o', OUTCOME_COLUMNS, 'outcomes')}
          WHERE ${d.idIn('deliveries.id', 'ids')} AND deliveries.id = o.id AND deliveries.lease_owner = o.owner AND deliveries.attempts = o.attempt`,
    params: {
      outcomes: JSON.stringify(
        outcomes.map((o) => ({
          id: o.deliveryId,
          owner: o.owner,
          attempt: o.attempt,
          status: o.result === 'retry' ? 'pending' : o.result,
          next_attempt_at: o.nextAttemptAt ?? o.startedAt,
          status_code: o.statusCode,
          error: o.error,
          updated_at: end(o),
        })),
      ),
      ids: JSON.stringify(outcomes.map((o) => o.deliveryId)),
    },
  };
  const endpoints: Statement = {
    sql: `UPDATE endpoints SET
            consecutive_failures = CASE WHEN h.reset = 1 THEN h.failures ELSE endpoints.consecutive_failures + h.failures END,
            failing_since = CASE WHEN h.reset = 1 THEN h.failing_since ELSE COALESCE(endpoints.failing_since, h.failing_since) END,
            last_success_at = COALESCE(h.last_success_at, endpoints.last_success_at),
            last_failure_at = COALESCE(h.last_failure_at, endpoints.last_failure_at)
          FROM ${d.jsonRecords('h', HEALTH_COLUMNS, 'health')}
          WHERE endpoints.id = h.endpoint_id`,
    params: {
      health: JSON.stringify(
        health.map((h) => ({
          endpoint_id: h.endpointId,
          reset: h.reset ? 1 : 0,
          failures: h.failures,
          failing_since: h.failingSince,
          last_success_at: h.lastSuccessAt,
          last_failure_at: h.lastFailureAt,
        })),
      ),
    },
  };
  return [attempts, deliveries, endpoints];
}

/**
 * PostgreSQL only: the three outcome statements as one. Data-modifying CTEs run once, to
 * completion, in one snapshot, and the three touch different rows. Their parameters have distinct
 * names.
 */
export function pgOutcomesInOneStatement(outcomes: readonly DeliveryOutcome[], health: readonly EndpointHealthChange[]): Statement {
  const [attempts, deliveries, endpoints] = outcomeStatements(DIALECTS.postgres, outcomes, health);
  return {
    sql: `WITH recorded_attempts AS (${attempts.sql}), recorded_deliveries AS (${deliveries.sql}) ${endpoints.sql}`,
    params: { ...attempts.params, ...deliveries.params, ...endpoints.params },
  };
}
