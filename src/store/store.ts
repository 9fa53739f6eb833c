/**
 * @module store/store — builds the Store from its ports' SQL implementations over one client: each
 * concern (src/store/concerns) implements its port with the statements of src/store/statements,
 * the dialect's delivery queue (src/store/queue) implements the hot path, and the store is their
 * composition. A new query goes into the statements and concern of its port; a new port gets a
 * concern class and a line here.
 */
import type { SqlClient } from './sql/client.js';
import { DIALECTS } from './sql/dialect.js';
import type { SqlContext } from './concerns/context.js';
import type { Accounts, Connections, DeliveryQueue, Endpoints, EventLog, Operations, Projection, ProjectionReads, Retention, Store, SyncCommits, SyncLeases } from './ports.js';
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
  return {
    ...methodsOf<Accounts>(new SqlAccounts(ctx)),
    ...methodsOf<Connections>(new SqlConnections(ctx)),
    ...methodsOf<SyncLeases>(new SqlSyncLeases(ctx)),
    ...methodsOf<Projection>(new SqlProjection(ctx)),
    ...methodsOf<SyncCommits>(new SqlSyncCommits(ctx)),
    ...methodsOf<ProjectionReads>(new SqlProjectionReads(ctx)),
    ...methodsOf<Retention>(new SqlRetention(ctx)),
    ...methodsOf<Operations>(new SqlOperations(ctx)),
    ...methodsOf<Endpoints>(new SqlEndpoints(ctx)),
    ...methodsOf<EventLog>(new SqlEventLog(ctx)),
    // The queue also serves the other concerns (QueueHooks): only its port's methods go out.
    ...methodsOf<DeliveryQueue>(queue, ['leaseDeliveries', 'recordDeliveryOutcomes', 'releaseDeliveryLeases', 'onDeliveriesDue']),
    migrate: () => client.migrate(),
    close: async () => {
      await queue.close();
      await client.close();
    },
  };
}

/** The methods of `part` (those named, or all of its class's), bound to it, as a plain object. */
function methodsOf<T extends object>(part: T, names?: readonly (keyof T & string)[]): T {
  const proto = Object.getPrototypeOf(part) as object;
  const out: Record<string, unknown> = {};
  for (const name of names ?? Object.getOwnPropertyNames(proto)) {
    const fn = (part as Record<string, unknown>)[name];
    if (name !== 'constructor' && typeof fn === 'function') out[name] = (fn as (...args: unknown[]) => unknown).bind(part);
  }
  return out as T;
}
