/**
 * @module delivery/dispatcher — the loop that delivers webhooks: leases due deliveries from the
 * store, signs and POSTs their stored bytes, classifies the answer, lets the endpoint's retry
 * policy decide what follows, and records every attempt in batches. Per-key ordering, per-endpoint
 * caps and fairness are decided by the store's lease; the dispatcher keeps a global in-flight cap.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../domain/clock.js';
import { ConfigError, describeError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import { silentLogger } from '../domain/logger.js';
import type { Metrics } from '../domain/metrics.js';
import type { DeliveryOutcome, LeasedDelivery } from '../domain/delivery.js';
import type { Store } from '../store/ports.js';
import { isTransientDbError } from '../store/transient.js';
import { classify } from './classify.js';
import { HttpSender } from './http-sender.js';
import type { Sender } from './http-sender.js';
import { attemptTimeoutMs, COBALT_POLICY, decide, DEFAULT_DISABLE_AFTER_DAYS } from './retry-policy.js';
import { liveSecrets, webhookHeaders } from './sign.js';
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
  store: Store;
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
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly sender: Sender;
  private readonly ownSender: boolean;
  private readonly logger: Logger;
  private readonly metrics: Metrics | undefined;
  private readonly decrypt: (stored: string) => string;
  private readonly httpTimeoutMs: number;
  private readonly leaseMs: number;
  private readonly batchSize: number;
  private readonly maxPerEndpoint: number;
  private readonly maxInFlight: number;
  private readonly pollIntervalMs: number;
  private readonly disableAfterDays: number;
  private readonly random: () => number;
  /** The lease owner id of this dispatcher. */
  readonly owner: string;

  private running = false;
  private loop: Promise<void> | null = null;
  private unsubscribe: (() => void) | null = null;
  private wakeFlag = false;
  private wakeUp: (() => void) | null = null;
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
  private outcomes: DeliveryOutcome[] = [];
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
    this.decrypt = o.decryptSecret ?? ((s) => s);
    this.httpTimeoutMs = o.httpTimeoutMs ?? 15_000;
    const longest = Math.max(this.httpTimeoutMs, ...COBALT_POLICY.timeoutsMs);
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
    this.pollIntervalMs = o.pollIntervalMs ?? 1000;
    this.disableAfterDays = o.disableAfterDays ?? DEFAULT_DISABLE_AFTER_DAYS;
    this.random = o.random ?? Math.random;
    this.owner = o.owner ?? `dispatcher-${randomBytes(6).toString('hex')}`;
    this.ownSender = o.sender === undefined;
    this.sender =
      o.sender ??
      new HttpSender({ policy: o.urlPolicy ?? { allowInsecure: false, allowHosts: [], allowPrivate: o.allowPrivateAddresses ?? false }, connectionsPerOrigin: Math.max(this.maxInFlight, 1) });
  }

  /** Starts delivering in the background. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.store.onDeliveriesDue(() => this.wake());
    this.loop = this.run();
  }

  /**
   * Stops: leases nothing new, lets attempts in flight finish (each is bounded by its timeout),
   * records their outcomes and gives back any lease left. Closes the default sender.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = null;
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    this.coalesceTimer = null;
    this.wake();
    await this.loop;
    this.loop = null;
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

  private wake(): void {
    this.wakeFlag = true;
    this.wakeUp?.();
  }

  private async run(): Promise<void> {
    while (this.running) {
      let full = false;
      try {
        // A full batch means more may be due right away; anything less waits for a wake.
        full = (await this.leaseOnce()) >= this.batchSize;
      } catch (err) {
        this.logger.error({ error: describeError(err).code, message: describeError(err).message }, 'leasing deliveries failed; retrying after the poll interval');
      }
      if (!this.running) break;
      if (!full || this.inFlight.size >= this.maxInFlight) await this.sleepUntilWoken();
    }
  }

  private async sleepUntilWoken(): Promise<void> {
    if (this.wakeFlag) {
      this.wakeFlag = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wakeUp = null;
        this.wakeFlag = false;
        resolve();
      };
      const timer = setTimeout(done, this.pollIntervalMs);
      timer.unref?.();
      this.wakeUp = done;
    });
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

  /** Makes one attempt; never throws (a failure of ours is recorded as an attempt outcome). */
  private async attempt(l: LeasedDelivery): Promise<DeliveryOutcome> {
    const { delivery: d, endpoint: ep } = l;
    const startedAt = this.clock.now();
    const attemptInCycle = Math.max(1, d.attempts - d.retryFrom);
    const base = { deliveryId: d.id, endpointId: ep.id, owner: this.owner, attempt: d.attempts, startedAt };
    try {
      const secrets = liveSecrets(this.decrypt(ep.secret), ep.previousSecret === null ? null : this.decrypt(ep.previousSecret), ep.previousSecretExpiresAt, startedAt);
      const headers = webhookHeaders({ scheme: ep.signatureScheme, eventId: d.eventId, eventCreatedAt: l.eventCreatedAt, attempt: d.attempts, now: startedAt, body: l.body, secrets });
      const result = await this.sender.send({ url: ep.url, headers, body: l.body, timeoutMs: attemptTimeoutMs(ep.retryPolicy, attemptInCycle, this.httpTimeoutMs) });
      const now = this.clock.now();
      const outcome = classify(result, now);
      const decision = decide({ policy: ep.retryPolicy, attemptInCycle, outcome, now, failingSince: ep.failingSince, random: this.random, disableAfterDays: this.disableAfterDays });
      this.metrics?.deliveryAttempts.inc({ outcome: outcome.kind });
      this.metrics?.deliveryLatency.observe(result.durationMs / 1000);
      if (decision.result !== 'retry') this.metrics?.deliveries.inc({ status: decision.result });
      if (decision.result === 'failed') {
        // Ids and classes only: never the payload, the response body or the URL's query.
        this.logger.warn({ event_id: d.eventId, endpoint_id: ep.id, attempt: d.attempts, status_code: result.statusCode, error_class: outcome.errorClass }, 'delivery failed for good');
      }
      if (decision.result === 'failed' && decision.disableEndpoint) this.logger.warn({ endpoint_id: ep.id }, 'endpoint disabled');
      const error =
        decision.result === 'succeeded' ? null : decision.result === 'failed' ? decision.reason : `${outcome.errorClass ?? 'failure'}${result.statusCode === null ? '' : ` (HTTP ${result.statusCode})`}; retrying`;
      return {
        ...base,
        durationMs: result.durationMs,
        statusCode: result.statusCode,
        errorClass: outcome.errorClass,
        responseExcerpt: result.bodyExcerpt,
        result: decision.result,
        nextAttemptAt: decision.result === 'retry' ? decision.nextAttemptAt : undefined,
        error,
        disableEndpoint: decision.result === 'failed' ? decision.disableEndpoint : undefined,
      };
    } catch (err) {
      // A failure before sending (a secret that cannot be decrypted): nothing went out, so the
      // attempt is not final; it is retried in a minute and visible in the attempt log.
      const e = describeError(err);
      this.logger.error({ event_id: d.eventId, endpoint_id: ep.id, error: e.code }, 'could not prepare a delivery attempt');
      return { ...base, durationMs: 0, statusCode: null, errorClass: 'internal', responseExcerpt: null, result: 'retry', nextAttemptAt: startedAt + 60_000, error: e.message };
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
    const firstTry = Date.now();
    const earliestStart = Math.min(...batch.map((o) => o.startedAt));
    const giveUpAt = firstTry + Math.max(0, earliestStart + this.leaseMs - LEASE_MARGIN_MS - this.clock.now());
    for (let delay = RECORD_RETRY_FIRST_MS, tries = 1; ; delay = Math.min(delay * 2, RECORD_RETRY_MAX_MS), tries++) {
      try {
        await this.store.recordDeliveryOutcomes(batch);
        if (tries > 1) this.logger.warn({ count: batch.length, tries }, 'recorded delivery outcomes after retrying');
        return;
      } catch (err) {
        const e = describeError(err);
        const deadline = this.running ? giveUpAt : Math.min(giveUpAt, firstTry + RECORD_RETRY_STOPPING_MS);
        // A permanent error (a constraint, a bug) fails the same way on every try: give up at once.
        if (!isTransientDbError(err) || Date.now() + delay > deadline) {
          this.logger.error({ error: e.code, message: e.message, count: batch.length, tries }, 'recording delivery outcomes failed; those deliveries will be attempted again after their lease');
          return;
        }
        if (tries === 1) this.logger.warn({ error: e.code, message: e.message, count: batch.length }, 'recording delivery outcomes failed; retrying with backoff');
        await new Promise((r) => setTimeout(r, delay));
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
        if (this.leaseFellShort) this.wake();
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
      this.wake();
    } else if (this.coalesceTimer === null) {
      this.coalesceTimer = setTimeout(() => {
        this.coalesceTimer = null;
        this.wake();
      }, COALESCE_MS);
      this.coalesceTimer.unref?.();
    }
  }
}
