/**
 * @module store/statements/endpoints — the SQL of webhook endpoints: create, read, change, disable,
 * enable, delete, and their health figures. Pure: statements only.
 */
import type { EpochMs } from '../../domain/clock.js';
import type { NewEndpoint, EndpointPatch } from '../ports.js';
import { SEED_EVENT_TYPES } from '../../domain/events.js';
import type { Statement } from '../sql/statement.js';
import { setClause } from '../sql/values.js';

/** Endpoint fields a patch may change → their columns. */
const ENDPOINT_COLUMNS: Record<keyof EndpointPatch, string> = {
  url: 'url',
  secret: 'secret',
  previousSecret: 'previous_secret',
  previousSecretExpiresAt: 'previous_secret_expires_at',
  signatureScheme: 'signature_scheme',
  retryPolicy: 'retry_policy',
  eventTypes: 'event_types',
  enabled: 'enabled',
  disabledReason: 'disabled_reason',
  failingSince: 'failing_since',
  maxConcurrency: 'max_concurrency',
  disabledAt: 'disabled_at',
};

/** A new, enabled endpoint (defaults: Cobalt's signature, durable retries, the four seed event types). */
export function insertEndpoint(id: string, e: NewEndpoint): Statement {
  return {
    sql: `INSERT INTO endpoints (id, account_id, url, secret, signature_scheme, retry_policy, event_types, max_concurrency, enabled, created_at)
          VALUES (:id, :account_id, :url, :secret, :signature_scheme, :retry_policy, :event_types, :max_concurrency, 1, :now)`,
    params: {
      id,
      account_id: e.accountId,
      url: e.url,
      secret: e.secret,
      signature_scheme: e.signatureScheme ?? 'cobalt',
      retry_policy: e.retryPolicy ?? 'durable',
      event_types: JSON.stringify(e.eventTypes ?? [...SEED_EVENT_TYPES]),
      max_concurrency: e.maxConcurrency ?? null,
      now: e.now,
    },
  };
}

/** One endpoint by id. */
export const selectEndpoint = (id: string): Statement => ({ sql: 'SELECT * FROM endpoints WHERE id = :id', params: { id } });

/** An account's endpoints, oldest first. */
export const selectAccountEndpoints = (accountId: string): Statement => ({
  sql: 'SELECT * FROM endpoints WHERE account_id = :account_id ORDER BY created_at, id',
  params: { account_id: accountId },
});

/** The patch's columns set on one endpoint; null when the patch sets nothing. */
export function updateEndpoint(id: string, patch: EndpointPatch): Statement | null {
  const set = setClause(patch, ENDPOINT_COLUMNS);
  return set && { sql: `UPDATE endpoints SET ${set.sql} WHERE id = :id`, params: { ...set.params, id } };
}

/** Gives a disabled endpoint a disable time when it has none. */
export const stampDisabledAt = (id: string, now: EpochMs): Statement => ({
  sql: 'UPDATE endpoints SET disabled_at = COALESCE(disabled_at, :now) WHERE id = :id',
  params: { id, now },
});

/** Clears an enabled endpoint's disable time. */
export const clearDisabledAt = (id: string): Statement => ({ sql: 'UPDATE endpoints SET disabled_at = NULL WHERE id = :id', params: { id } });

/** Disables an enabled endpoint with a reason (changes nothing when it is disabled already). */
export const disableEndpoint = (id: string, reason: string, now: EpochMs): Statement => ({
  sql: 'UPDATE endpoints SET enabled = 0, disabled_reason = :reason, disabled_at = :now WHERE id = :id AND enabled = 1',
  params: { id, reason, now },
});

/** Enables an endpoint again, clearing the reason and the failure streak. */
export const enableEndpoint = (id: string): Statement => ({
  sql: 'UPDATE endpoints SET enabled = 1, disabled_reason = NULL, disabled_at = NULL, failing_since = NULL, consecutive_failures = 0 WHERE id = :id',
  params: { id },
});

/** Marks an endpoint's pending deliveries skipped, saying why. */
export const skipPendingDeliveries = (endpointId: string, why: string): Statement => ({
  sql: "UPDATE deliveries SET status = 'skipped', last_error = :why WHERE endpoint_id = :endpoint_id AND status = 'pending'",
  params: { endpoint_id: endpointId, why },
});

/** Deletes an endpoint. */
export const deleteEndpoint = (id: string): Statement => ({ sql: 'DELETE FROM endpoints WHERE id = :id', params: { id } });

/** An endpoint's attempts since a time, and how many succeeded. */
export const attemptCounts = (id: string, since: EpochMs): Statement => ({
  sql: "SELECT COUNT(*) AS n, SUM(CASE WHEN outcome = 'succeeded' THEN 1 ELSE 0 END) AS ok FROM attempts WHERE endpoint_id = :id AND started_at >= :since",
  params: { id, since },
});

/** An endpoint's deliveries by status. */
export const deliveryCountsByStatus = (id: string): Statement => ({
  sql: 'SELECT status, COUNT(*) AS n FROM deliveries WHERE endpoint_id = :id GROUP BY status',
  params: { id },
});
