/**
 * @module delivery/attempt — the pure steps of one delivery attempt around its only I/O:
 * prepare (secrets → signed headers and timeout) → send (the Sender, called by the dispatcher) →
 * classify (classify.ts) → decide (retry-policy.ts) → outcome (the DeliveryOutcome to record).
 * Time, secrets and jitter are passed in; nothing here logs, counts or reads a clock.
 */
import type { EpochMs } from '../domain/clock.js';
import type { DeliveryOutcome, DeliveryRow, LeasedDelivery } from '../domain/delivery.js';
import type { Classification, SendResult } from './classify.js';
import type { SendRequest } from './http-sender.js';
import type { Decision, DecisionInput } from './retry-policy.js';
import { attemptTimeoutMs } from './retry-policy.js';
import { liveSecrets, webhookHeaders } from './sign.js';

/** An attempt that could not be prepared (nothing was sent) is tried again this much later. */
export const UNPREPARED_RETRY_MS = 60_000;

/** The dispatcher's settings an attempt depends on; fixed for the dispatcher's life. */
export interface AttemptSettings {
  /** Turns a stored signing secret into the plaintext (SecretBox.decrypt); may throw. */
  decrypt: (stored: string) => string;
  /** HTTP timeout of `durable` attempts (the `cobalt` policy has its own). */
  durableTimeoutMs: number;
  /** Days of only failures after which a `durable` endpoint is disabled. */
  disableAfterDays: number;
  /** Jitter source in [0, 1). */
  random: () => number;
}

/** 1-based number of the leased attempt within its retry cycle (a redelivery starts a new cycle). */
export function attemptInCycle(d: DeliveryRow): number {
  return Math.max(1, d.attempts - d.retryFrom);
}

/**
 * Prepare: the request of an attempt at `now` — the stored bytes, headers signed with the live
 * secrets (the current one, and the previous one until it expires), the policy's timeout. Throws
 * what `decrypt` throws: then nothing can be sent (see unpreparedOutcome).
 */
export function prepareAttempt(l: LeasedDelivery, settings: AttemptSettings, now: EpochMs): SendRequest {
  const { delivery: d, endpoint: ep } = l;
  const secrets = liveSecrets(settings.decrypt(ep.secret), ep.previousSecret === null ? null : settings.decrypt(ep.previousSecret), ep.previousSecretExpiresAt, now);
  const headers = webhookHeaders({ scheme: ep.signatureScheme, eventId: d.eventId, eventCreatedAt: l.eventCreatedAt, attempt: d.attempts, now, body: l.body, secrets });
  return { url: ep.url, headers, body: l.body, timeoutMs: attemptTimeoutMs(ep.retryPolicy, attemptInCycle(d), settings.durableTimeoutMs) };
}

/** Decide's input for a classified attempt (feed it to retry-policy's `decide`). */
export function decisionInput(l: LeasedDelivery, outcome: Classification, now: EpochMs, settings: AttemptSettings): DecisionInput {
  const ep = l.endpoint;
  return { policy: ep.retryPolicy, attemptInCycle: attemptInCycle(l.delivery), outcome, now, failingSince: ep.failingSince, random: settings.random, disableAfterDays: settings.disableAfterDays };
}

/**
 * Outcome: what is recorded of an attempt that was sent. The delivery row's error says why it
 * failed for good (the policy's reason) or why it is retried (`<class> (HTTP <status>); retrying`).
 */
export function attemptOutcome(l: LeasedDelivery, owner: string, startedAt: EpochMs, result: SendResult, outcome: Classification, decision: Decision): DeliveryOutcome {
  const d = l.delivery;
  return {
    deliveryId: d.id,
    endpointId: l.endpoint.id,
    owner,
    attempt: d.attempts,
    startedAt,
    durationMs: result.durationMs,
    statusCode: result.statusCode,
    errorClass: outcome.errorClass,
    responseExcerpt: result.bodyExcerpt,
    result: decision.result,
    nextAttemptAt: decision.result === 'retry' ? decision.nextAttemptAt : undefined,
    error:
      decision.result === 'succeeded' ? null : decision.result === 'failed' ? decision.reason : `${outcome.errorClass ?? 'failure'}${result.statusCode === null ? '' : ` (HTTP ${result.statusCode})`}; retrying`,
    disableEndpoint: decision.result === 'failed' ? decision.disableEndpoint : undefined,
  };
}

/**
 * Outcome of an attempt that failed before sending (a secret that cannot be decrypted): nothing
 * went out, so it is not final — class `internal`, retried UNPREPARED_RETRY_MS later, `error`
 * saying why, visible in the attempt log.
 */
export function unpreparedOutcome(l: LeasedDelivery, owner: string, startedAt: EpochMs, error: string): DeliveryOutcome {
  return {
    deliveryId: l.delivery.id,
    endpointId: l.endpoint.id,
    owner,
    attempt: l.delivery.attempts,
    startedAt,
    durationMs: 0,
    statusCode: null,
    errorClass: 'internal',
    responseExcerpt: null,
    result: 'retry',
    nextAttemptAt: startedAt + UNPREPARED_RETRY_MS,
    error,
  };
}
