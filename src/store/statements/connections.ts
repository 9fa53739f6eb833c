/**
 * @module store/statements/connections — the SQL of clinic connections' settings: create, read,
 * change. Pure: statements only.
 */
import { CONNECTION_DEFAULTS } from '../../domain/entities.js';
import type { ConnectionPatch, NewConnection } from '../ports.js';
import type { Statement } from '../sql/statement.js';
import { setClause } from '../sql/values.js';

/** Connection fields a patch may change → their columns. */
const CONNECTION_COLUMNS: Record<keyof ConnectionPatch, string> = {
  config: 'config',
  referenceId: 'reference_id',
  timezone: 'timezone',
  windowPastDays: 'window_past_days',
  windowFutureDays: 'window_future_days',
  statusMap: 'status_map',
  syncIntervalMs: 'sync_interval_ms',
  replayBaseline: 'replay_baseline',
  enabled: 'enabled',
  nextSyncAt: 'next_sync_at',
};

/** A new, enabled connection due for its first sync now, with the defaults for what the input leaves out. */
export function insertConnection(id: string, c: NewConnection): Statement {
  return {
    sql: `INSERT INTO connections (id, account_id, connector, config, access_token_hash, reference_id, timezone,
            window_past_days, window_future_days, status_map, sync_interval_ms, replay_baseline, enabled,
            next_sync_at, consecutive_failures, created_at)
          VALUES (:id, :account_id, :connector, :config, :access_token_hash, :reference_id, :timezone,
            :window_past_days, :window_future_days, :status_map, :sync_interval_ms, :replay_baseline, 1,
            :now, 0, :now)`,
    params: {
      id,
      account_id: c.accountId,
      connector: c.connector,
      config: JSON.stringify(c.config ?? {}),
      access_token_hash: c.accessTokenHash ?? null,
      reference_id: c.referenceId ?? null,
      timezone: c.timezone ?? CONNECTION_DEFAULTS.timezone,
      window_past_days: c.windowPastDays ?? CONNECTION_DEFAULTS.windowPastDays,
      window_future_days: c.windowFutureDays ?? CONNECTION_DEFAULTS.windowFutureDays,
      status_map: c.statusMap ? JSON.stringify(c.statusMap) : null,
      sync_interval_ms: c.syncIntervalMs ?? CONNECTION_DEFAULTS.syncIntervalMs,
      replay_baseline: c.replayBaseline ? 1 : 0,
      now: c.now,
    },
  };
}

/** One connection by id. */
export const selectConnection = (id: string): Statement => ({ sql: 'SELECT * FROM connections WHERE id = :id', params: { id } });

/** The connection whose access token has this hash. */
export const selectConnectionByTokenHash = (accessTokenHash: string): Statement => ({
  sql: 'SELECT * FROM connections WHERE access_token_hash = :access_token_hash',
  params: { access_token_hash: accessTokenHash },
});

/** Connections, oldest first: every one, or an account's. */
export function selectConnections(accountId?: string): Statement {
  return accountId === undefined
    ? { sql: 'SELECT * FROM connections ORDER BY created_at, id', params: {} }
    : { sql: 'SELECT * FROM connections WHERE account_id = :account_id ORDER BY created_at, id', params: { account_id: accountId } };
}

/** Applies a patch to a connection; null when the patch sets nothing. */
export function updateConnection(id: string, patch: ConnectionPatch): Statement | null {
  const set = setClause(patch, CONNECTION_COLUMNS);
  return set ? { sql: `UPDATE connections SET ${set.sql} WHERE id = :id`, params: { ...set.params, id } } : null;
}
