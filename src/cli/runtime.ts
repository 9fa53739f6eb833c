/**
 * @module cli/runtime — the composition root: opens the store and starts the roles this process
 * runs (api, sync, delivery; the HL7 listener when configured) from one validated Config, and stops them in the safe order. `serve`
 * and `demo` both start ehrsync through here, so there is one wiring to get right.
 */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../api/app.js';
import type { EhrConnector } from '../connectors/connector.js';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../domain/clock.js';
import { Dispatcher } from '../delivery/dispatcher.js';
import { describeError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Logger } from '../domain/logger.js';
import { Metrics } from '../domain/metrics.js';
import { SecretBox } from '../domain/secrets.js';
import { WorkLoop } from '../domain/work-loop.js';
import { OperationRunner } from '../operations/runner.js';
import { openStore } from '../store/open.js';
import type { Connection } from '../domain/entities.js';
import type { Store } from '../store/ports.js';
import { SyncScheduler } from '../sync/scheduler.js';
import { Hl7Feed } from '../sync/hl7-feed.js';
import { PushIngest } from '../sync/push-ingest.js';
import type { MllpAddress } from '../connectors/hl7v2/mllp-server.js';
import { MllpServer } from '../connectors/hl7v2/mllp-server.js';
import type { Config } from './config.js';

/** Builds the connector of a connection (the registry in production; tests pass their own). */
export type ConnectorFactory = (connection: Connection, deps: { secretBox: SecretBox; logger: Logger }) => EhrConnector;

/** What starting ehrsync needs besides its Config. */
export interface RuntimeOptions {
  config: Config;
  logger: Logger;
  createConnector: ConnectorFactory;
  clock?: Clock;
  /** This process's name in leases; default `<pid>-<random>`. */
  owner?: string;
  /** How often the sync scheduler looks for due connections. Default 1000 ms. */
  syncPollMs?: number;
}

/** A running ehrsync process. */
export interface Runtime {
  store: Store;
  secretBox: SecretBox;
  metrics: Metrics;
  /** The API's base URL, when this process runs the api role. */
  apiUrl: string | null;
  api: FastifyInstance | null;
  scheduler: SyncScheduler | null;
  operations: OperationRunner | null;
  dispatcher: Dispatcher | null;
  /** Where the HL7 v2 listener is bound, when `hl7Port` is set. */
  hl7Address: MllpAddress | null;
  /** Stops accepting work, lets work in flight finish, closes connectors and the store. */
  close(): Promise<void>;
}

/** Retention purges this often (from the start of one purge to the next). */
const PURGE_EVERY_MS = 6 * 3600_000;

/**
 * Caches one connector per connection, rebuilt when the connection's settings change (a PATCH of
 * its config must take effect at the next sync without a restart).
 */
export class ConnectorCache {
  private readonly byId = new Map<string, { key: string; connector: EhrConnector }>();

  constructor(
    private readonly build: (connection: Connection) => EhrConnector,
  ) {}

  /** The connector for this connection's current settings. */
  get(connection: Connection): EhrConnector {
    const key = JSON.stringify([connection.connector, connection.config, connection.statusMap, connection.timezone]);
    const hit = this.byId.get(connection.id);
    if (hit && hit.key === key) return hit.connector;
    if (hit) void Promise.resolve(hit.connector.close?.()).catch(() => {});
    const connector = this.build(connection);
    this.byId.set(connection.id, { key, connector });
    return connector;
  }

  /** Closes every connector. */
  async closeAll(): Promise<void> {
    const all = [...this.byId.values()];
    this.byId.clear();
    await Promise.allSettled(all.map((c) => c.connector.close?.()));
  }
}

/** Starts ehrsync with the roles of `config`. */
export async function startRuntime(options: RuntimeOptions): Promise<Runtime> {
  const { config, logger } = options;
  const clock = options.clock ?? systemClock;
  const owner = options.owner ?? `${process.pid}-${newId().slice(0, 8)}`;
  const store = await openStore(config.database);
  const secretBox = new SecretBox(config.encryptionKey);
  const metrics = new Metrics();
  const connectors = new ConnectorCache((c) => options.createConnector(c, { secretBox, logger }));
  const connectorFor = (c: Connection): EhrConnector => connectors.get(c);
  const has = (role: Config['roles'][number]): boolean => config.roles.includes(role);

  let scheduler: SyncScheduler | null = null;
  let operations: OperationRunner | null = null;
  let dispatcher: Dispatcher | null = null;
  let retention: WorkLoop | null = null;
  if (has('sync')) {
    scheduler = new SyncScheduler(
      { store, connectorFor, clock, logger, metrics, timeoutMs: config.syncTimeoutSeconds * 1000 },
      { owner, concurrency: config.syncConcurrency, pollMs: options.syncPollMs },
    );
    // Writes go to the EHR, so they run where syncs run (same credentials, same rate limits).
    operations = new OperationRunner({ store, connectorFor, clock, logger, owner });
  }
  const urlPolicy = { allowInsecure: config.allowInsecureEndpoints, allowHosts: config.endpointAllowHosts };
  if (has('delivery')) {
    dispatcher = new Dispatcher({
      store,
      clock,
      logger,
      metrics,
      owner,
      urlPolicy,
      decryptSecret: (stored) => secretBox.decrypt(stored),
      maxInFlight: config.deliveryConcurrency,
      disableAfterDays: config.endpointDisableAfterDays,
    });
  }
  if (has('delivery') && config.retentionDays > 0) {
    // One purge at start, then one every PURGE_EVERY_MS (fixed rate, like an interval), never two
    // at once; a failed purge is retried at the next. Its timer does not keep the process alive.
    retention = new WorkLoop({
      name: 'retention',
      pass: async (now) => {
        const before = now - config.retentionDays * 86_400_000;
        let n = 0;
        for (let batch = 1; batch > 0; n += batch) batch = await store.purgeEvents(before, 1000);
        if (n > 0) logger.info({ purged: n }, 'purged events past retention');
        return false;
      },
      idleMs: PURGE_EVERY_MS,
      fixedRate: true,
      clock,
      keepAlive: false,
      onError: (err) => logger.warn({ error_code: describeError(err).code }, 'purge failed; retrying later'),
    });
  }

  let api: FastifyInstance | null = null;
  let apiUrl: string | null = null;
  if (has('api')) {
    api = await buildApi({
      store,
      secretBox,
      clock,
      logger,
      metrics,
      endpointUrlPolicy: urlPolicy,
      adminToken: config.adminToken,
      rateLimitPerSecond: config.rateLimitPerSecond,
      syncNow: scheduler ? (id) => scheduler.syncNow(id) : undefined,
      wakeOperations: operations ? () => operations.wakeUp() : undefined,
      ready: async () => {
        try {
          await store.getAccount('__readiness_probe__');
          return true;
        } catch {
          return false;
        }
      },
    });
  }

  // The HL7 v2 listener: pushed messages are applied here, whatever the roles (they are the EHR's
  // sync). A message is acknowledged only once its change is committed.
  let hl7: MllpServer | null = null;
  let ingest: PushIngest | null = null;
  if (config.hl7Port !== null) {
    ingest = new PushIngest({ store, clock, logger });
    const feed = new Hl7Feed({ store, ingest, clock, logger, maxBytes: config.hl7MaxMessageBytes });
    hl7 = new MllpServer({
      onMessage: feed.handle,
      host: config.hl7Host,
      port: config.hl7Port,
      tls: config.hl7TlsCertFile !== null && config.hl7TlsKeyFile !== null ? { certFile: config.hl7TlsCertFile, keyFile: config.hl7TlsKeyFile } : undefined,
      maxBytes: config.hl7MaxMessageBytes,
      allowFrom: config.hl7AllowFrom.length > 0 ? config.hl7AllowFrom : undefined,
      logger,
    });
  }

  let closed: Promise<void> | null = null;
  const teardown = async (): Promise<void> => {
    // No purge starts from here on; the one in progress (if any) is waited for with the roles.
    const retentionStopped = retention?.stop();
    // Stop taking requests first, then let syncs, jobs and deliveries in flight commit, then close.
    // Each step runs even when an earlier one failed, so the store is always closed.
    await Promise.allSettled([api?.close(), hl7?.close()]);
    await Promise.allSettled([ingest?.idle()]);
    await Promise.allSettled([scheduler?.stop(), operations?.stop(), dispatcher?.stop(), retentionStopped]);
    await Promise.allSettled([connectors.closeAll()]);
    await store.close();
  };
  let hl7Address: MllpAddress | null = null;
  try {
    if (api) apiUrl = await api.listen({ host: config.host, port: config.port });
    if (hl7) hl7Address = await hl7.listen();
  } catch (err) {
    // e.g. a port is taken: close what was opened. Nothing has run yet (no sync, no delivery): the
    // background roles start only once every listener is bound.
    await teardown();
    throw err;
  }
  scheduler?.start();
  operations?.start();
  dispatcher?.start();
  retention?.start();

  return {
    store,
    secretBox,
    metrics,
    api,
    apiUrl,
    scheduler,
    operations,
    dispatcher,
    hl7Address,
    close() {
      closed ??= teardown();
      return closed;
    },
  };
}
