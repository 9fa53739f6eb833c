/**
 * @module delivery/dispatcher — the flow control of webhook delivery: leases due deliveries from
 * the queue into free slots (a WorkLoop between leases), runs each attempt's steps (attempt.ts:
 * prepare, send, classify, decide, outcome), counts and logs them, and records outcomes in group
 * commits. Per-key ordering, per-endpoint caps and fairness are decided by the store's lease; the
 * dispatcher keeps a global in-flight cap. Time comes from the injected clock only.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../domain/clock.js';
import { ConfigError, describeError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { Metrics } from '../domain/metrics.js';
import type { DeliveryOutcome, LeasedDelivery } from '../domain/delivery.js';
import { WorkLoop } from '../domain/work-loop.js';
import type { DeliveryQueue } from '../store/ports.js';
import { isTransientDbError } from '../store/transient.js';
import type { AttemptSettings } from './attempt.js';
import { attemptOutcome, decisionInput, prepareAttempt, unpreparedOutcome } from './attempt.js';
import { classify } from './classify.js';
import { HttpSender } from './http-sender.js';
import type { Sender } from './http-sender.js';
import { COBALT_POLICY, decide, DEFAULT_DISABLE_AFTER_DAYS } from './retry-policy.js';
import type { EndpointUrlPolicy } from '../domain/network-policy.js';

/** A lease must outlast the longest HTTP timeout by at least this much (time to record the outcome). */
export const LEASE_MARGIN_MS = 10_000;

/** Backoff of retries to record outcomes: first wait, longest wait, and the limit while stopping. */
const RECORD_RETRY_FIRST_MS = 100;
const RECORD_RETRY_MAX_MS = 5000;
const RECORD_RETRY_STOPPING_MS = 5000;

/** Longest wait between an outcome and the next lease when fewer than the lease threshold completed. */
const COALESCE_MS = 15;

/** Options of the dispatcher. Every one but `store` has a default. */
export interface DispatcherOptions {
  /** The delivery queue (a full `Store` will do). */
  store: DeliveryQueue;
  /** Where decisions and leases get the time; tests inject a fake. Default: the system clock. */
  clock?: Clock;
  /** Sends attempts. Default: an undici HttpSender with `urlPolicy`. */
  sender?: Sender;
  logger?: Logger;
  metrics?: Metrics;
  /** Turns a stored signing secret into the plaintext (SecretBox.decrypt). Default: identity. */
  decryptSecret?: (stored: string) => string;
  /** HTTP timeout of `durable` attempts (the `cobalt` policy has Cobalt's own 5 s / 2 s). Default 15 000. */
  httpTimeoutMs?: number;
  /** How long a lease holds; at least the longest timeout + LEASE_MARGIN_MS. Default longest timeout + 30 s. */
  leaseMs?: number;
  /** Deliveries leased, and outcomes recorded, per store call. Default 100. */
  batchSize?: number;
  /** In-flight cap per endpoint (an endpoint's own `maxConcurrency` wins). Default 8. */
  maxPerEndpoint?: number;
  /** In-flight cap for this process. Default 256. */
  maxInFlight?: number;
  /** Polling backstop when nothing wakes the loop (other processes' commits, retries coming due). Default 1000. */
  pollIntervalMs?: number;
  /** Connect-time address rules for the default sender. Default: https rules, no private addresses. */
  urlPolicy?: EndpointUrlPolicy;
  /** Shortcut for the default sender: allow private and loopback addresses (tests, dev). */
  allowPrivateAddresses?: boolean;
  /** Days of only failures after which a `durable` endpoint is disabled. Default 5. */
  disableAfterDays?: number;
  /** Jitter source in [0, 1). Default Math.random. */
  random?: () => number;
  /** Lease owner id. Default a random one per dispatcher. */
  owner?: string;
}

/** Delivers webhooks. `start()`/`stop()` run it as a service; `drain()` runs it until nothing is due (tests, CLI). */
export class Dispatcher {
  private readonly store: DeliveryQueue;
  private readonly clock: Clock;
  private readonly sender: Sender;
  private readonly ownSender: boolean;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  /** What attempts are prepared and decided with (secrets, timeout, retry policy settings). */
  private readonly attemptSettings: AttemptSettings;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly maxPerEndpoint: number;
  private readonly maxInFlight: number;
  /** The lease loop: a pass leases once; it sleeps the poll interval unless woken. */
  private readonly loop: WorkLoop;
  /** The lease owner id of this dispatcher. */
  readonly owner: string;

  private unsubscribe: (() => void) | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  /** The last lease got less than it asked for (or had no room): a commit may unblock more. */
  private leaseFellShort = false;
  /** Attempts finished whose outcome is not recorded (or given up) yet: their leases are still held. */
  private unrecorded = 0;
  /** Attempts in flight per endpoint id: the store counts this instead of the rows this dispatcher holds. */
  private readonly inFlightByEndpoint = new Map<string, number>();
  /** Endpoints whose last attempt timed out: leased one at a time until one answers (LeaseRequest.oneAtATime). */
  private readonly timingOut = new Set<string>();
  /** Endpoints this dispatcher logged as failing and has not seen succeed since (see noteHealth). */
  private readonly failingLogged = new Set<string>();
  private readonly outcomes: DeliveryOutcome[] = [];
  private flushing: Promise<void> | null = null;
  /** Attempts finished since the last lease: the loop leases again in batches, not per outcome. */
  private finishedSinceLease = 0;
  private readonly leaseThreshold: number;
  /** Buffered outcomes that trigger a commit at once; fewer wait up to COALESCE_MS for company. */
  private readonly flushThreshold: number;
  private coalesceTimer: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;

  constructor(o: DispatcherOptions) {
    this.store = o.store;
    this.clock = o.clock ?? systemClock;
    this.logger = o.logger ?? silentLogger;
    this.metrics = o.metrics;
    const httpTimeoutMs = o.httpTimeoutMs ?? 15_000;
    this.attemptSettings = {
      decrypt: o.decryptSecret ?? ((s) => s),
      durableTimeoutMs: httpTimeoutMs,
      disableAfterDays: o.disableAfterDays ?? DEFAULT_DISABLE_AFTER_DAYS,
      random: o.random ?? Math.random,
    };
    const longest = Math.max(httpTimeoutMs, ...COBALT_POLICY.timeoutsMs);
    this.leaseMs = o.leaseMs ?? longest + 30_000;
    if (this.leaseMs < longest + LEASE_MARGIN_MS) {
      // A lease that can expire while its attempt is still running lets a second worker send the
      // same delivery concurrently (Svix/Convoy duplicate reports): refuse the configuration.
      throw new ConfigError(`delivery leaseMs (${this.leaseMs}) must be at least the longest HTTP timeout (${longest}) + ${LEASE_MARGIN_MS} ms.`);
    }
    this.batchSize = o.batchSize ?? 100;
    this.maxPerEndpoint = o.maxPerEndpoint ?? 8;
    this.leaseThreshold = Math.max(1, Math.floor(Math.min(this.batchSize, this.maxPerEndpoint) / 2));
    this.maxInFlight = o.maxInFlight ?? 256;
    // Leasing does not wait for outcomes to be recorded, so recording can take bigger batches: one
    // durable commit (an fsync on SQLite, a WAL flush on PostgreSQL) per up to a batch of outcomes.
    // Unrecorded outcomes count against maxInFlight, hence at most half of it.
    this.flushThreshold = Math.max(1, Math.min(this.batchSize, Math.floor(this.maxInFlight / 2)));
    this.loop = new WorkLoop({
      name: 'dispatcher',
      pass: () => this.leasePass(),
      idleMs: o.pollIntervalMs ?? 1000,
      clock: this.clock,
      keepAlive: false,
      onError: (err) => this.logger.error({ error: describeError(err).code, message: describeError(err).message }, 'leasing deliveries failed; retrying after the poll interval'),
    });
    this.owner = o.owner ?? `dispatcher-${randomBytes(6).toString('hex')}`;
    this.ownSender = o.sender === undefined;
    this.sender =
      o.sender ??
      new HttpSender({ policy: o.urlPolicy ?? { allowInsecure: false, allowHosts: [], allowPrivate: o.allowPrivateAddresses ?? false }, connectionsPerOrigin: Math.max(this.maxInFlight, 1) });
  }

  /** Starts delivering in the background. */
  start(): void {
    if (this.loop.isRunning) return;
    this.unsubscribe = this.store.onDeliveriesDue(() => this.loop.wake());
    this.loop.start();
  }

  /**
   * Stops: leases nothing new, lets attempts in flight finish (each is bounded by its timeout),
   * records their outcomes and gives back any lease left. Closes the default sender.
   */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    this.coalesceTimer = null;
    await this.loop.stop();
    await this.settle();
    await this.store.releaseDeliveryLeases(this.owner).catch((err: unknown) => this.logger.warn({ error: describeError(err).code }, 'could not release delivery leases'));
    if (this.ownSender) await this.sender.close();
  }

  /** Delivers until nothing is due at the clock's current time: every due attempt made and recorded. */
  async drain(): Promise<void> {
    for (;;) {
      const leased = await this.leaseOnce();
      if (leased === 0 && this.inFlight.size === 0 && this.outcomes.length === 0 && !this.flushing) return;
      await this.settle();
    }
  }

  /** Waits for the attempts in flight and the outcome flush. */
  private async settle(): Promise<void> {
    while (this.inFlight.size > 0 || this.flushing || this.outcomes.length > 0) {
      if (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
      else if (this.flushing) await this.flushing;
      else this.flush();
    }
  }

  /**
   * One pass of the lease loop. A full batch with room left means more may be due right away: the
   * loop leases again at once; anything less waits for a wake (an outcome, a commit, new work).
   */
  private async leasePass(): Promise<boolean> {
    const full = (await this.leaseOnce()) >= this.batchSize;
    return full && this.inFlight.size < this.maxInFlight;
  }

  /** Leases what fits under the in-flight cap and starts the attempts; returns how many. */
  private async leaseOnce(): Promise<number> {
    // The process cap bounds the leases it holds (in flight or awaiting their record), so a crash
    // leaves at most maxInFlight deliveries to be attempted again.
    const room = this.maxInFlight - this.inFlight.size - this.unrecorded;
    if (room <= 0) {
      this.leaseFellShort = true;
      return 0;
    }
    const now = this.clock.now();
    // Leasing does not wait for outcomes to be recorded: the store counts this dispatcher's attempts
    // in flight (exact, from here) rather than the rows it holds, so the next lease overlaps the
    // outcome commit instead of following it (on PostgreSQL, a round trip and a WAL flush).
    this.finishedSinceLease = 0;
    const leased = await this.store.leaseDeliveries({
      now,
      limit: Math.min(this.batchSize, room),
      leaseUntil: now + this.leaseMs,
      owner: this.owner,
      maxPerEndpoint: this.maxPerEndpoint,
      ownInFlight: new Map(this.inFlightByEndpoint),
      oneAtATime: new Set(this.timingOut),
    });
    for (const l of leased) {
      const endpointId = l.endpoint.id;
      this.inFlightByEndpoint.set(endpointId, (this.inFlightByEndpoint.get(endpointId) ?? 0) + 1);
      const p: Promise<void> = this.attempt(l).then((outcome) => {
        this.outcomes.push(outcome);
        this.unrecorded++;
        this.inFlight.delete(p);
        const left = (this.inFlightByEndpoint.get(endpointId) ?? 1) - 1;
        if (left > 0) this.inFlightByEndpoint.set(endpointId, left);
        else this.inFlightByEndpoint.delete(endpointId);
        // Cleared by an attempt that got an answer or failed otherwise (refused, reset, DNS):
        // neither holds a connection for long. Not by one that could not be prepared ('internal'):
        // nothing was sent.
        if (outcome.errorClass === 'timeout') this.timingOut.add(endpointId);
        else if (outcome.errorClass !== 'internal') this.timingOut.delete(endpointId);
        this.noteHealth(endpointId, outcome);
        this.finishedSinceLease++;
        this.scheduleFlush();
        this.scheduleLease();
      });
      this.inFlight.add(p);
    }
    this.leaseFellShort = leased.length < Math.min(this.batchSize, room);
    return leased.length;
  }

  /**
   * Logs an endpoint's first failed attempt (warn) and its first success after failing (info), once
   * each per change, so an operator watching the log learns that an endpoint is failing without a
   * line per attempt (the health API has the counts). Ids, status and error class only: never the
   * URL, which may carry credentials in its query.
   */
  private noteHealth(endpointId: string, o: DeliveryOutcome): void {
    if (o.errorClass === 'internal') return; // nothing was sent: says nothing about the endpoint
    if (o.result === 'succeeded') {
      if (this.failingLogged.delete(endpointId)) this.logger.info({ endpoint_id: endpointId }, 'endpoint answering again: deliveries to it succeed');
    } else if (!this.failingLogged.has(endpointId)) {
      this.failingLogged.add(endpointId);
      this.logger.warn({ endpoint_id: endpointId, status_code: o.statusCode, error_class: o.errorClass }, 'endpoint failing: its deliveries are retried per its policy (GET /v1/webhook/{id}/health)');
    }
  }

  /**
   * Makes one attempt: prepare → send (the only I/O) → classify → decide → outcome (attempt.ts),
   * counting and logging it on the way. Never throws: a failure of ours is an attempt outcome.
   */
  private async attempt(l: LeasedDelivery): Promise<DeliveryOutcome> {
    const startedAt = this.clock.now();
    try {
      const request = prepareAttempt(l, this.attemptSettings, startedAt);
      const result = await this.sender.send(request);
      const now = this.clock.now();
      const outcome = classify(result, now);
      const decision = decide(decisionInput(l, outcome, now, this.attemptSettings));
      this.metrics?.deliveryAttempts.inc({ outcome: outcome.kind });
      this.metrics?.deliveryLatency.observe(result.durationMs / 1000);
      if (decision.result !== 'retry') this.metrics?.deliveries.inc({ status: decision.result });
      if (decision.result === 'failed') {
        // Ids and classes only: never the payload, the response body or the URL's query.
        this.logger.warn({ event_id: l.delivery.eventId, endpoint_id: l.endpoint.id, attempt: l.delivery.attempts, status_code: result.statusCode, error_class: outcome.errorClass }, 'delivery failed for good');
        if (decision.disableEndpoint) this.logger.warn({ endpoint_id: l.endpoint.id }, 'endpoint disabled');
      }
      return attemptOutcome(l, this.owner, startedAt, result, outcome, decision);
    } catch (err) {
      // A failure before sending (a secret that cannot be decrypted): nothing went out, so the
      // attempt is not final; it is retried in a minute and visible in the attempt log.
      const e = describeError(err);
      this.logger.error({ event_id: l.delivery.eventId, endpoint_id: l.endpoint.id, error: e.code }, 'could not prepare a delivery attempt');
      return unpreparedOutcome(l, this.owner, startedAt, e.message);
    }
  }

  /**
   * Records one batch of outcomes. A failure (PostgreSQL restarting, a deadlock between workers)
   * is retried with backoff while the leases hold (while stopping, for RECORD_RETRY_STOPPING_MS at
   * most): an attempt that was made but not recorded is sent again after its lease, a duplicate.
   * Given up, those deliveries are attempted again after their lease: at-least-once.
   */
  private async record(batch: DeliveryOutcome[]): Promise<void> {
    // Retrying is worth it only while the batch's leases hold (the earliest one, less the margin):
    // past that, another worker may have taken the deliveries over. The store refuses a late
    // outcome anyway (it must match the lease's attempt), so this only bounds the waiting.
    const firstTry = this.clock.now();
    let earliestStart = Number.POSITIVE_INFINITY;
    for (const o of batch) if (o.startedAt < earliestStart) earliestStart = o.startedAt;
    const giveUpAt = Math.max(firstTry, earliestStart + this.leaseMs - LEASE_MARGIN_MS);
    // The waits below are real (setTimeout), the deadlines in clock time. A test's clock may stand
    // still: the time waited so far is a floor of the time gone by, so the retries still end.
    let waited = 0;
    for (let delay = RECORD_RETRY_FIRST_MS, tries = 1; ; delay = Math.min(delay * 2, RECORD_RETRY_MAX_MS), tries++) {
      try {
        await this.store.recordDeliveryOutcomes(batch);
        if (tries > 1) this.logger.warn({ count: batch.length, tries }, 'recorded delivery outcomes after retrying');
        return;
      } catch (err) {
        const e = describeError(err);
        const deadline = this.loop.isRunning ? giveUpAt : Math.min(giveUpAt, firstTry + RECORD_RETRY_STOPPING_MS);
        const now = Math.max(this.clock.now(), firstTry + waited);
        // A permanent error (a constraint, a bug) fails the same way on every try: give up at once.
        if (!isTransientDbError(err) || now + delay > deadline) {
          this.logger.error({ error: e.code, message: e.message, count: batch.length, tries }, 'recording delivery outcomes failed; those deliveries will be attempted again after their lease');
          return;
        }
        if (tries === 1) this.logger.warn({ error: e.code, message: e.message, count: batch.length }, 'recording delivery outcomes failed; retrying with backoff');
        await new Promise((r) => setTimeout(r, delay));
        waited += delay;
      }
    }
  }

  /**
   * Flushes at once when a batch's worth of outcomes wait (or nothing else is in flight);
   * otherwise within COALESCE_MS, so outcomes finishing close together share one durable commit.
   */
  private scheduleFlush(): void {
    if (this.outcomes.length >= this.flushThreshold || this.inFlight.size === 0) {
      this.flush();
      return;
    }
    if (this.flushTimer !== null) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, COALESCE_MS);
  }

  /** Writes buffered outcomes in batches; one flush at a time (group commit: outcomes arriving meanwhile go in the next). */
  private flush(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.flushing || this.outcomes.length === 0) return;
    this.flushing = (async () => {
      while (this.outcomes.length > 0) {
        const batch = this.outcomes.splice(0, this.batchSize);
        await this.record(batch);
        this.unrecorded -= batch.length;
        // A commit can unblock leasing two ways: unrecorded outcomes counted against maxInFlight,
        // and a delivery still pending in the store blocks the next event of its ordering key
        // (on PostgreSQL the lease may have run, on another connection, before this commit). So a
        // commit wakes the loop whenever the last lease got less than it asked for; waiting for
        // the polling backstop would send a chain of events about one appointment at one per
        // poll interval. (A lease that got all it asked for had nothing blocked to wait for.)
        if (this.leaseFellShort) this.loop.wake();
      }
    })().finally(() => {
      this.flushing = null;
      // An outcome that arrived after the loop's last look would otherwise wait for the next one.
      if (this.outcomes.length > 0) this.scheduleFlush();
    });
  }

  /**
   * Wakes the loop to lease once enough attempts finished (a lease scans the due queue: worth it
   * for several free slots, not after every single outcome, which would cap throughput at one
   * delivery per scan), or at once when nothing is in flight; otherwise within COALESCE_MS.
   */
  private scheduleLease(): void {
    if (this.finishedSinceLease >= this.leaseThreshold || this.inFlight.size === 0) {
      if (this.coalesceTimer !== null) clearTimeout(this.coalesceTimer);
      this.coalesceTimer = null;
      this.loop.wake();
    } else if (this.coalesceTimer === null) {
      this.coalesceTimer = setTimeout(() => {
        this.coalesceTimer = null;
        this.loop.wake();
      }, COALESCE_MS);
      this.coalesceTimer.unref?.();
    }
  }
}
