/**
 * @module operations/runner — runs queued operations as durable jobs: leases them (a job whose
 * worker died is leased again when its lease expires), executes, retries transient EHR failures
 * with backoff, and ends every job with exactly one outcome event.
 */
import type { Clock } from '../domain/clock.js';
import { describeError, EhrError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { EhrConnector } from '../connectors/connector.js';
import type { Connection, Operation } from '../domain/entities.js';
import type { Connections, Operations } from '../store/ports.js';
import type { Sleep } from '../domain/work-loop.js';
import { WorkLoop } from '../domain/work-loop.js';
import type { ExecuteStore } from './execute.js';
import { executeOperation, failureCommit, OperationFailure, reasonsOf } from './execute.js';

/** Delays before attempts 2, 3, ... of an operation whose EHR failed transiently. */
export const OPERATION_RETRY_DELAYS_MS = [2_000, 10_000, 30_000, 60_000] as const;
/** Attempts before an operation fails for good. */
export const OPERATION_MAX_ATTEMPTS = OPERATION_RETRY_DELAYS_MS.length + 1;

/** Delay before the next attempt after `attempt` failed transiently, or null when attempts are exhausted. Pure; ±20% jitter. */
export function operationRetryDelay(attempt: number, random: number): number | null {
  const base = OPERATION_RETRY_DELAYS_MS[attempt - 1];
  return base === undefined ? null : Math.round(base * (0.8 + 0.4 * random));
}

/** The ports the runner uses: the job queue, the job's connection, and what executing reads. A full `Store` satisfies it. */
export type OperationRunnerStore = Operations & Connections & ExecuteStore;

/** What the runner needs. */
export interface OperationRunnerDeps {
  store: OperationRunnerStore;
  connectorFor: (connection: Connection) => EhrConnector;
  clock: Clock;
  logger?: Logger;
  owner: string;
  /** Operations run at once. Default 4. */
  concurrency?: number;
  /** One attempt (checks, write, read-back) longer than this is aborted and retried. Default 60 s. */
  timeoutMs?: number;
  /** How often to look for due operations. Default 500 ms. */
  pollMs?: number;
  /** Waits `ms` or until woken; injected for tests. Default: a timer. */
  sleep?: Sleep;
  random?: () => number;
  newId?: () => string;
  /** Test hook: after the EHR write, before the commit. */
  afterWrite?: (op: Operation) => Promise<void> | void;
}

/** Runs operations until stopped. */
export class OperationRunner {
  private readonly inflight = new Set<Promise<void>>();
  private readonly loop: WorkLoop;

  constructor(private readonly deps: OperationRunnerDeps) {
    // Every pass sleeps the poll interval, as before: a pass starts every due operation that fits,
    // so another at once would find nothing new until one finishes or another falls due.
    this.loop = new WorkLoop({
      name: 'operation runner',
      pass: async () => {
        await this.tick();
        return false;
      },
      idleMs: deps.pollMs ?? 500,
      clock: deps.clock,
      sleep: deps.sleep,
      logger: deps.logger,
    });
  }

  /** Starts the loop. */
  start(): void {
    this.loop.start();
  }

  /** Look for work now (a request was just accepted). */
  wakeUp(): void {
    this.loop.wake();
  }

  /** Stops the loop and waits for the operations in flight. */
  async stop(): Promise<void> {
    await this.loop.stop();
    await Promise.allSettled(this.inflight);
  }

  /** One pass: lease due operations into the free slots and start them. Returns how many started. */
  async tick(): Promise<number> {
    const free = (this.deps.concurrency ?? 4) - this.inflight.size;
    if (free <= 0) return 0;
    const now = this.deps.clock.now();
    const timeout = this.deps.timeoutMs ?? 60_000;
    // The lease outlives one attempt (its timeout) plus a margin, so no second worker starts it meanwhile.
    const ops = await this.deps.store.claimDueOperations(now, free, now + timeout + 30_000, this.deps.owner);
    for (const op of ops) {
      const p = this.run(op).finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
    return ops.length;
  }

  /** Waits for every operation in flight (tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled(this.inflight);
  }

  private async run(op: Operation): Promise<void> {
    const { store, clock } = this.deps;
    const log = this.deps.logger ?? silentLogger;
    const connection = await store.getConnection(op.connectionId);
    if (!connection) return;
    const ids = this.deps.newId ?? newId;
    const timeoutMs = this.deps.timeoutMs ?? 60_000;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new EhrError('ehr_timeout', `The EHR did not answer within ${timeoutMs} ms.`)), timeoutMs);
    const ctx = { store, connection, signal: controller.signal, now: () => clock.now(), newId: ids, afterWrite: this.deps.afterWrite };
    try {
      const commit = await executeOperation({ ...ctx, connector: this.deps.connectorFor(connection) }, op);
      await store.completeOperation(commit);
      log.info({ job_id: op.id, kind: op.kind, attempts: op.attempts }, 'operation succeeded');
    } catch (err) {
      const retryable = !(err instanceof OperationFailure) && describeError(err).retryable;
      const delay = retryable ? operationRetryDelay(op.attempts, (this.deps.random ?? Math.random)()) : null;
      if (delay !== null) {
        const d = describeError(err);
        await store.rescheduleOperation(op.id, this.deps.owner, { nextRunAt: clock.now() + delay, errorCode: d.code, errorMessage: d.message, now: clock.now() });
        log.warn({ job_id: op.id, kind: op.kind, attempts: op.attempts, error_code: d.code }, 'operation will be retried');
        return;
      }
      await store.completeOperation(failureCommit(ctx, op, reasonsOf(err)));
      log.warn({ job_id: op.id, kind: op.kind, attempts: op.attempts, error_code: describeError(err).code }, 'operation failed');
    } finally {
      clearTimeout(timer);
    }
  }
}
