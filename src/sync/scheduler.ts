/**
 * @module sync/scheduler — syncs every enabled connection on its interval. Each pass leases the due
 * connections (so two workers never sync one connection at once), runs them with bounded
 * concurrency, and releases them. A slow or failing EHR holds one slot for at most the sync timeout
 * and then backs off (sync-policy), so it never starves the other connections.
 */
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import { describeError } from '../domain/errors.js';
import type { Connection } from '../domain/entities.js';
import type { Sleep } from '../domain/work-loop.js';
import { WorkLoop } from '../domain/work-loop.js';
import type { SyncEngineDeps, SyncOutcome } from './sync-engine.js';
import { syncConnection } from './sync-engine.js';

/** Scheduler settings. */
export interface SchedulerOptions {
  /** This worker's name in leases. */
  owner: string;
  /** Syncs running at once. Default 4. */
  concurrency?: number;
  /** How often to look for due connections. Default 1000 ms. */
  pollMs?: number;
  /** Waits `ms` or until woken; injected for tests. Default: a timer. */
  sleep?: Sleep;
}

/**
 * How long a sync lease holds: longer than the longest possible sync (its timeout) plus a margin.
 * The scheduler and `ehrsync sync` lease with it, so neither can sync a connection the other holds.
 */
export function syncLeaseMs(timeoutMs = 120_000): number {
  return timeoutMs + 30_000;
}

/** Runs syncs for all connections, forever, until stopped. */
export class SyncScheduler {
  private readonly inflight = new Map<string, Promise<SyncOutcome | null>>();
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly log: Logger;
  private readonly loop: WorkLoop;

  constructor(
    private readonly deps: SyncEngineDeps,
    private readonly options: SchedulerOptions,
  ) {
    this.concurrency = options.concurrency ?? 4;
    this.leaseMs = syncLeaseMs(deps.timeoutMs);
    this.log = deps.logger ?? silentLogger;
    // Every pass sleeps the poll interval, as before: a pass starts every due connection that fits,
    // so another at once would find nothing new until a sync finishes or another falls due.
    this.loop = new WorkLoop({
      name: 'sync scheduler',
      pass: async () => {
        await this.tick();
        return false;
      },
      idleMs: options.pollMs ?? 1000,
      clock: deps.clock,
      sleep: options.sleep,
      logger: this.log,
    });
  }

  /** Starts the loop. */
  start(): void {
    this.loop.start();
  }

  /** Makes the loop look for due work now (e.g. after a push from the EHR). */
  wakeUp(): void {
    this.loop.wake();
  }

  /** Stops the loop and waits for syncs in flight to finish. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await Promise.allSettled(this.inflight.values());
  }

  /** One scheduling pass: leases due connections up to the free slots and starts their syncs. Returns how many started. */
  async tick(): Promise<number> {
    const free = this.concurrency - this.inflight.size;
    if (free <= 0) return 0;
    const now = this.deps.clock.now();
    const due = await this.deps.store.claimDueConnections(now, free, now + this.leaseMs, this.options.owner);
    for (const c of due) this.launch(c);
    return due.length;
  }

  /** Syncs one connection now (manual trigger). Null when it is already syncing here or elsewhere. */
  async syncNow(connectionId: string): Promise<SyncOutcome | null> {
    const running = this.inflight.get(connectionId);
    if (running) return null;
    const now = this.deps.clock.now();
    const c = await this.deps.store.claimConnection(connectionId, now, now + this.leaseMs, this.options.owner);
    if (!c) return null;
    return this.launch(c);
  }

  /** Waits until every sync in flight has finished (tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled(this.inflight.values());
  }

  private launch(connection: Connection): Promise<SyncOutcome | null> {
    const p = (async () => {
      try {
        return await syncConnection(this.deps, connection);
      } catch (err) {
        // Only the store failing gets here (EHR failures are outcomes); the lease expires and a later pass retries.
        this.log.error({ connection_id: connection.id, error_code: describeError(err).code }, 'sync could not be recorded');
        return null;
      } finally {
        this.inflight.delete(connection.id);
        await this.deps.store.releaseConnection(connection.id, this.options.owner).catch(() => {});
      }
    })();
    this.inflight.set(connection.id, p);
    return p;
  }
}
