/**
 * @module delivery/retry-policy — after each attempt, what happens next: done, retry when, give up,
 * disable the endpoint (pure: time, attempt numbers and the jitter source are passed in).
 */
import type { EpochMs } from '../domain/clock.js';
import type { Classification } from './classify.js';

/** Retry policy names (mirrors the store's `RetryPolicyName`). */
export type PolicyName = 'cobalt' | 'durable';

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const DAY = 24 * H;

/** Cobalt, exactly as documented: attempt 1 with a 5 s timeout; on 5xx, 429 or network error one retry after 1 s with a 2 s timeout; no retry on timeouts, 3xx or other 4xx. */
export const COBALT_POLICY = { timeoutsMs: [5 * S, 2 * S], retryDelayMs: 1 * S } as const;

/**
 * The durable schedule: delay before attempt n+1 after attempt n failed (Standard Webhooks' example
 * schedule). 10 attempts over about 3 days; the 10th failure is final.
 */
export const DURABLE_DELAYS_MS: readonly number[] = [5 * S, 5 * M, 30 * M, 2 * H, 5 * H, 10 * H, 14 * H, 20 * H, 24 * H];

/** Jitter of the durable schedule: each delay is scaled by a factor in [1 − J, 1 + J). */
export const DURABLE_JITTER = 0.2;
/** A receiver's `Retry-After` is honoured up to this long (a longer value is cut to it). */
export const RETRY_AFTER_MAX_MS = 1 * DAY;
/** Default: an endpoint whose attempts have only failed for this many days is disabled. */
export const DEFAULT_DISABLE_AFTER_DAYS = 5;

/** What a policy decides from. */
export interface DecisionInput {
  policy: PolicyName;
  /** 1-based number of this attempt within the current retry cycle (a redelivery starts a new cycle). */
  attemptInCycle: number;
  outcome: Classification;
  now: EpochMs;
  /** When the endpoint's current run of only-failures began (before this attempt); null if its last attempt succeeded. */
  failingSince: EpochMs | null;
  /** Jitter source, [0, 1). */
  random: () => number;
  /** Days of only failures after which a durable endpoint is disabled. */
  disableAfterDays?: number;
}

/** What happens next. `disableEndpoint` carries the recorded reason when the endpoint must stop receiving. */
export type Decision =
  | { result: 'succeeded' }
  | { result: 'retry'; nextAttemptAt: EpochMs; disableEndpoint?: undefined }
  | { result: 'failed'; reason: string; disableEndpoint?: string };

/** The HTTP timeout of an attempt. Cobalt's are fixed; `durable` uses the configured timeout. */
export function attemptTimeoutMs(policy: PolicyName, attemptInCycle: number, durableTimeoutMs: number): number {
  if (policy === 'cobalt') return attemptInCycle <= 1 ? COBALT_POLICY.timeoutsMs[0] : COBALT_POLICY.timeoutsMs[1];
  return durableTimeoutMs;
}

/** Decides what follows an attempt. */
export function decide(i: DecisionInput): Decision {
  const { outcome } = i;
  if (outcome.kind === 'success') return { result: 'succeeded' };
  return i.policy === 'cobalt' ? decideCobalt(i) : decideDurable(i);
}

function decideCobalt(i: DecisionInput): Decision {
  const k = i.outcome.kind;
  const retryable = k === 'server_error' || k === 'throttled' || k === 'network';
  if (!retryable) return { result: 'failed', reason: `not retried under the cobalt policy (${i.outcome.errorClass})` };
  if (i.attemptInCycle >= 2) return { result: 'failed', reason: `gave up after 2 attempts (${i.outcome.errorClass})` };
  return { result: 'retry', nextAttemptAt: i.now + COBALT_POLICY.retryDelayMs };
}

function decideDurable(i: DecisionInput): Decision {
  const days = i.disableAfterDays ?? DEFAULT_DISABLE_AFTER_DAYS;
  if (i.outcome.kind === 'gone') {
    return { result: 'failed', reason: 'the endpoint answered 410 Gone', disableEndpoint: 'The endpoint answered 410 Gone: it asked not to receive webhooks any more.' };
  }
  if (i.failingSince !== null && i.now - i.failingSince >= days * DAY) {
    return {
      result: 'failed',
      reason: `endpoint disabled after ${days} days of only failures`,
      disableEndpoint: `Every attempt failed for ${days} days (since ${new Date(i.failingSince).toISOString()}).`,
    };
  }
  const delay = durableDelayMs(i.attemptInCycle, i.random, i.outcome.retryAfterMs);
  if (delay === null) return { result: 'failed', reason: `exhausted after ${DURABLE_DELAYS_MS.length + 1} attempts (${i.outcome.errorClass})` };
  return { result: 'retry', nextAttemptAt: i.now + delay };
}

/**
 * The wait after failed attempt `attemptInCycle` of the durable schedule, or null when it was the
 * last. Jitter spreads retries of many deliveries that failed together. `Retry-After` can only
 * lengthen the wait (never shorter than the schedule, so a receiver cannot burn through the
 * attempts), up to RETRY_AFTER_MAX_MS.
 */
export function durableDelayMs(attemptInCycle: number, random: () => number, retryAfterMs: number | null = null): number | null {
  const base = DURABLE_DELAYS_MS[attemptInCycle - 1];
  if (base === undefined) return null;
  const jittered = Math.round(base * (1 - DURABLE_JITTER + 2 * DURABLE_JITTER * random()));
  return retryAfterMs === null ? jittered : Math.max(jittered, Math.min(retryAfterMs, RETRY_AFTER_MAX_MS));
}
