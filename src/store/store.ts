/**
 * @module store/store — builds the Store from its ports' SQL implementations over one client: each
 * concern (src/store/concerns) implements its port, the dialect's delivery queue (src/store/queue)
 * implements the hot path, and the store is their composition.
 */
import type { SqlClient } from './sql/client.js';
import { DIALECTS } from './sql/dialect.js';
import type { SqlContext } from './concerns/context.js';
import type { Store } from './ports.js';
import { SqlStore } from './sql-store.js';
import { PgDeliveryQueue } from './queue/pg-queue.js';
import { SqliteDeliveryQueue } from './queue/sqlite-queue.js';
import { SqlAccounts } from './concerns/accounts.js';
import { SqlConnections } from './concerns/connections.js';
import { SqlSyncLeases } from './concerns/sync-leases.js';
import { SqlProjection } from './concerns/projection.js';
import { SqlSyncCommits } from './concerns/sync-commits.js';
import { SqlProjectionReads } from './concerns/reads.js';
import { SqlRetention } from './concerns/retention.js';
import { SqlOperations } from './concerns/operations.js';
import { SqlEndpoints } from './concerns/endpoints.js';
import { SqlEventLog } from './concerns/event-log.js';

/** The store over a client (not migrated yet: call `migrate()`). */
export function createStore(client: SqlClient): Store {
  const d = DIALECTS[client.dialect];
  // The queue differs per dialect (hot path); everything else is the same SQL over the context.
  const queue = client.dialect === 'postgres' ? new PgDeliveryQueue(client, d) : new SqliteDeliveryQueue(client, d);
  const ctx: SqlContext = { db: client, d, queue };
  const legacy = new SqlStore(client, queue);
  const lifecycle = {
    migrate: (): Promise<void> => client.migrate(),
    close: async (): Promise<void> => {
      await queue.close();
      await client.close();
    },
  };
  return compose<Store>([
    legacy,
    new SqlAccounts(ctx),
    new SqlConnections(ctx),
    new SqlSyncLeases(ctx),
    new SqlProjection(ctx),
    new SqlSyncCommits(ctx),
    new SqlProjectionReads(ctx),
    new SqlRetention(ctx),
    new SqlOperations(ctx),
    new SqlEndpoints(ctx),
    new SqlEventLog(ctx),
    queue,
    lifecycle,
  ]);
}

/** One object with the methods of every part, bound to it; a later part's method wins. */
function compose<T>(parts: readonly object[]): T {
  const out: Record<string, unknown> = {};
  for (const part of parts) {
    if (Object.getPrototypeOf(part) === Object.prototype) {
      Object.assign(out, part);
      continue;
    }
    const own = new Set<string>();
    // Most derived first: a subclass's override wins over its base's method.
    for (let proto = Object.getPrototypeOf(part) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
      for (const name of Object.getOwnPropertyNames(proto)) {
        const fn = (part as Record<string, unknown>)[name];
        if (name === 'constructor' || own.has(name) || typeof fn !== 'function') continue;
        own.add(name);
        out[name] = (fn as (...args: unknown[]) => unknown).bind(part);
      }
    }
  }
  return out as T;
}
