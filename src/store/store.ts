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
import type { Accounts, Connections, DeliveryQueue, Endpoints, EventLog, Operations, Projection, ProjectionReads, ProviderSettings, PushCommits, Retention, Store, SyncCommits, SyncLeases } from './ports.js';
import { PgDeliveryQueue } from './queue/pg-queue.js';
import { SqliteDeliveryQueue } from './queue/sqlite-queue.js';
import { SqlAccounts } from './concerns/accounts.js';
import { SqlConnections } from './concerns/connections.js';
import { SqlSyncLeases } from './concerns/sync-leases.js';
import { SqlProjection } from './concerns/projection.js';
import { SqlSyncCommits } from './concerns/sync-commits.js';
import { SqlPushCommits } from './concerns/push-commits.js';
import { SqlProjectionReads } from './concerns/reads.js';
import { SqlRetention } from './concerns/retention.js';
import { SqlOperations } from './concerns/operations.js';
import { SqlEndpoints } from './concerns/endpoints.js';
import { SqlEventLog } from './concerns/event-log.js';

/**
 * The methods of each port, by name. `satisfies` makes TypeScript check that each table lists
 * exactly its port's methods, so a method added to a port and not here fails to compile instead of
 * being missing at run time.
 */
const ACCOUNTS = { createAccount: 1, getAccount: 1, findAccountByClientId: 1, listAccounts: 1 } as const satisfies Record<keyof Accounts, 1>;
const CONNECTIONS = { createConnection: 1, getConnection: 1, findConnectionByTokenHash: 1, listConnections: 1, updateConnection: 1 } as const satisfies Record<keyof Connections, 1>;
const SYNC_LEASES = { claimDueConnections: 1, claimConnection: 1, releaseConnection: 1 } as const satisfies Record<keyof SyncLeases, 1>;
const PROJECTION = { listProviders: 1, loadProjection: 1 } as const satisfies Record<keyof Projection, 1>;
const PROVIDER_SETTINGS = { setProviderStatus: 1 } as const satisfies Record<keyof ProviderSettings, 1>;
const SYNC_COMMITS = { startSyncRun: 1, commitSync: 1, failSyncRun: 1, listSyncRuns: 1, listQuarantine: 1 } as const satisfies Record<keyof SyncCommits, 1>;
const PUSH_COMMITS = { findFeedMessage: 1, loadPushSlice: 1, commitPushes: 1 } as const satisfies Record<keyof PushCommits, 1>;
const PROJECTION_READS = { listAppointments: 1, getAppointment: 1, getPatient: 1, listPatients: 1 } as const satisfies Record<keyof ProjectionReads, 1>;
const RETENTION = { purgeEvents: 1, erasePatient: 1 } as const satisfies Record<keyof Retention, 1>;
const OPERATIONS = { createOperation: 1, getOperation: 1, claimDueOperations: 1, rescheduleOperation: 1, completeOperation: 1 } as const satisfies Record<keyof Operations, 1>;
const ENDPOINTS = {
  createEndpoint: 1,
  getEndpoint: 1,
  listEndpoints: 1,
  updateEndpoint: 1,
  deleteEndpoint: 1,
  disableEndpoint: 1,
  enableEndpoint: 1,
  getEndpointHealth: 1,
} as const satisfies Record<keyof Endpoints, 1>;
const EVENT_LOG = {
  listEvents: 1,
  getEvent: 1,
  listDeliveries: 1,
  listEventDeliveries: 1,
  listAttempts: 1,
  redeliverEvent: 1,
  recoverEndpointDeliveries: 1,
  countEndpointDeliveries: 1,
} as const satisfies Record<keyof EventLog, 1>;
const DELIVERY_QUEUE = { leaseDeliveries: 1, recordDeliveryOutcomes: 1, releaseDeliveryLeases: 1, onDeliveriesDue: 1 } as const satisfies Record<keyof DeliveryQueue, 1>;

/** The store over a client (not migrated yet: call `migrate()`). */
export function createStore(client: SqlClient): Store {
  const d = DIALECTS[client.dialect];
  // The queue differs per dialect (hot path); everything else is the same SQL over the context.
  const queue = client.dialect === 'postgres' ? new PgDeliveryQueue(client, d) : new SqliteDeliveryQueue(client, d);
  const ctx: SqlContext = { db: client, d, queue };
  const projection = new SqlProjection(ctx);
  const store: Store = {
    ...methodsOf<Accounts>(new SqlAccounts(ctx), ACCOUNTS),
    ...methodsOf<Connections>(new SqlConnections(ctx), CONNECTIONS),
    ...methodsOf<SyncLeases>(new SqlSyncLeases(ctx), SYNC_LEASES),
    ...methodsOf<Projection>(projection, PROJECTION),
    ...methodsOf<ProviderSettings>(projection, PROVIDER_SETTINGS),
    ...methodsOf<SyncCommits>(new SqlSyncCommits(ctx), SYNC_COMMITS),
    ...methodsOf<PushCommits>(new SqlPushCommits(ctx), PUSH_COMMITS),
    ...methodsOf<ProjectionReads>(new SqlProjectionReads(ctx), PROJECTION_READS),
    ...methodsOf<Retention>(new SqlRetention(ctx), RETENTION),
    ...methodsOf<Operations>(new SqlOperations(ctx), OPERATIONS),
    ...methodsOf<Endpoints>(new SqlEndpoints(ctx), ENDPOINTS),
    ...methodsOf<EventLog>(new SqlEventLog(ctx), EVENT_LOG),
    // The queue also serves the other concerns (QueueHooks): only its port's methods go out.
    ...methodsOf<DeliveryQueue>(queue, DELIVERY_QUEUE),
    migrate: () => client.migrate(),
    close: async () => {
      await queue.close();
      await client.close();
    },
  };
  return store;
}

/** The methods a port's table names, bound to their implementation, as a plain object. */
function methodsOf<T extends object>(part: T, table: Record<keyof T & string, 1>): T {
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(table)) {
    const fn = (part as Record<string, unknown>)[name];
    if (typeof fn !== 'function') throw new Error(`${part.constructor.name} does not implement ${name}`);
    out[name] = (fn as (...args: unknown[]) => unknown).bind(part);
  }
  return out as T;
}
