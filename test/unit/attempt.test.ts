/**
 * The pure steps of a delivery attempt (delivery/attempt.ts): prepare (signatures checked with the
 * independent standardwebhooks package and Cobalt's documented HMAC), the outcome of every kind of
 * decision with the delivery row's error strings, and an attempt that cannot be prepared — run
 * through a real Dispatcher over an in-memory DeliveryQueue, to show nothing is sent.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import type { AttemptSettings } from '../../src/delivery/attempt.js';
import { attemptInCycle, attemptOutcome, decisionInput, prepareAttempt, unpreparedOutcome, UNPREPARED_RETRY_MS } from '../../src/delivery/attempt.js';
import type { SendResult } from '../../src/delivery/classify.js';
import { classify } from '../../src/delivery/classify.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import type { SendRequest, Sender } from '../../src/delivery/http-sender.js';
import { decide } from '../../src/delivery/retry-policy.js';
import type { DeliveryOutcome, LeasedDelivery } from '../../src/domain/delivery.js';
import type { Endpoint } from '../../src/domain/entities.js';
import { newSigningSecret } from '../../src/domain/secrets.js';
import type { DeliveryQueue, LeaseRequest } from '../../src/store/ports.js';
import { FakeClock } from '../helpers/clock.js';

const T0 = Date.parse('2026-11-02T15:00:00.000Z');
const BODY = JSON.stringify({ id: 'evt_1', object: 'event', created: '2026-11-02T14:59:00.000Z', type: 'appointment.updated', data: { n: 1, name: 'Zoë \u2028' } });
const plain: AttemptSettings = { decrypt: (s) => s, durableTimeoutMs: 15_000, disableAfterDays: 5, random: () => 0.5 };

function leased(over: Partial<Endpoint> = {}, delivery: { attempts?: number; retryFrom?: number } = {}): LeasedDelivery {
  const endpoint: Endpoint = {
    id: 'ep_1',
    accountId: 'acc_1',
    url: 'https://receiver.example/hook',
    secret: newSigningSecret(),
    previousSecret: null,
    previousSecretExpiresAt: null,
    signatureScheme: 'cobalt',
    retryPolicy: 'durable',
    eventTypes: [],
    enabled: true,
    disabledReason: null,
    failingSince: null,
    maxConcurrency: null,
    disabledAt: null,
    consecutiveFailures: 0,
    lastSuccessAt: null,
    lastFailureAt: null,
    createdAt: T0,
    ...over,
  };
  return {
    delivery: {
      id: 7,
      eventSeq: 1,
      eventId: 'evt_1',
      endpointId: endpoint.id,
      accountId: 'acc_1',
      orderingKey: 'k',
      status: 'pending',
      attempts: delivery.attempts ?? 1,
      nextAttemptAt: T0,
      lastStatusCode: null,
      lastError: null,
      retryFrom: delivery.retryFrom ?? 0,
      createdAt: T0,
      updatedAt: T0,
    },
    body: BODY,
    eventCreatedAt: T0 - 60_000,
    endpoint,
  };
}

const answered = (statusCode: number | null, errorClass: SendResult['errorClass'] = null): SendResult => ({ statusCode, retryAfter: null, errorClass, durationMs: 12, bodyExcerpt: statusCode === null ? null : 'body' });

/** classify → decide → outcome, as the dispatcher chains them. */
function outcomeOf(l: LeasedDelivery, result: SendResult, now = T0 + 20): DeliveryOutcome {
  const c = classify(result, now);
  return attemptOutcome(l, 'owner_1', T0, result, c, decide(decisionInput(l, c, now, plain)));
}

describe('attempt: prepare', () => {
  it('standard scheme: signed with the current and the unexpired previous secret (verified by standardwebhooks)', () => {
    const now = Date.now(); // standardwebhooks checks webhook-timestamp against the real time
    const current = newSigningSecret();
    const previous = newSigningSecret();
    const l = leased({ signatureScheme: 'standard', secret: current, previousSecret: previous, previousSecretExpiresAt: now + 3_600_000 });
    const req = prepareAttempt(l, plain, now);
    assert.equal(req.url, l.endpoint.url);
    assert.equal(req.body, BODY, 'the stored bytes, unchanged');
    assert.equal(req.timeoutMs, 15_000, 'durable: the configured timeout');
    assert.equal(req.headers['webhook-id'], 'evt_1');
    assert.equal(req.headers['webhook-timestamp'], String(Math.floor(now / 1000)));
    assert.equal(req.headers['webhook-signature']?.split(' ').length, 2);
    for (const secret of [current, previous]) assert.deepEqual(new Webhook(secret).verify(req.body, req.headers), JSON.parse(BODY));
    assert.throws(() => new Webhook(newSigningSecret()).verify(req.body, req.headers));
  });

  it('standard scheme: an expired previous secret no longer signs', () => {
    const now = Date.now();
    const current = newSigningSecret();
    const previous = newSigningSecret();
    const req = prepareAttempt(leased({ signatureScheme: 'standard', secret: current, previousSecret: previous, previousSecretExpiresAt: now - 1 }), plain, now);
    assert.equal(req.headers['webhook-signature']?.split(' ').length, 1);
    assert.deepEqual(new Webhook(current).verify(req.body, req.headers), JSON.parse(BODY));
    assert.throws(() => new Webhook(previous).verify(req.body, req.headers));
  });

  it('secrets are decrypted with the given function before signing', () => {
    const secret = newSigningSecret();
    const settings: AttemptSettings = { ...plain, decrypt: (s) => s.replace(/^enc:/, '') };
    const req = prepareAttempt(leased({ secret: `enc:${secret}` }), settings, T0);
    assert.equal(req.headers['cobalt-verification'], createHmac('sha256', secret).update(BODY, 'utf8').digest('hex'));
  });

  it('cobalt scheme and policy: Cobalt\'s HMAC, the event\'s creation time, and the policy\'s 5 s then 2 s timeouts per retry cycle', () => {
    const l = leased({ retryPolicy: 'cobalt' });
    const req = prepareAttempt(l, plain, T0);
    assert.equal(req.headers['cobalt-verification'], createHmac('sha256', l.endpoint.secret).update(BODY, 'utf8').digest('hex'));
    assert.equal(req.headers['webhook-timestamp'], new Date(T0 - 60_000).toISOString());
    assert.equal(req.headers['webhook-attempt'], '1');
    assert.equal(req.timeoutMs, 5_000);
    const second = leased({ retryPolicy: 'cobalt' }, { attempts: 2 });
    assert.equal(prepareAttempt(second, plain, T0).timeoutMs, 2_000);
    assert.equal(prepareAttempt(second, plain, T0).headers['webhook-attempt'], '2');
    // A redelivery starts a new cycle: attempt 3 overall, the first of its cycle.
    const redelivered = leased({ retryPolicy: 'cobalt' }, { attempts: 3, retryFrom: 2 });
    assert.equal(attemptInCycle(redelivered.delivery), 1);
    assert.equal(prepareAttempt(redelivered, plain, T0).timeoutMs, 5_000);
  });

  it('a secret that cannot be decrypted: prepare throws, and the outcome is an internal retry in 60 s', () => {
    const settings: AttemptSettings = { ...plain, decrypt: () => { throw new Error('unsupported state or unable to authenticate data'); } };
    const l = leased();
    assert.throws(() => prepareAttempt(l, settings, T0), /unable to authenticate/);
    assert.deepEqual(unpreparedOutcome(l, 'owner_1', T0, 'unsupported state or unable to authenticate data'), {
      deliveryId: 7,
      endpointId: 'ep_1',
      owner: 'owner_1',
      attempt: 1,
      startedAt: T0,
      durationMs: 0,
      statusCode: null,
      errorClass: 'internal',
      responseExcerpt: null,
      result: 'retry',
      nextAttemptAt: T0 + UNPREPARED_RETRY_MS,
      error: 'unsupported state or unable to authenticate data',
    });
    assert.equal(UNPREPARED_RETRY_MS, 60_000);
  });
});

describe('attempt: outcome', () => {
  const base = { deliveryId: 7, endpointId: 'ep_1', owner: 'owner_1', attempt: 1, startedAt: T0, durationMs: 12 };

  it('success', () => {
    assert.deepEqual(outcomeOf(leased(), answered(200)), {
      ...base,
      statusCode: 200,
      errorClass: null,
      responseExcerpt: 'body',
      result: 'succeeded',
      nextAttemptAt: undefined,
      error: null,
      disableEndpoint: undefined,
    });
  });

  it('retry: when the policy says, and why (with the HTTP status when there was one)', () => {
    // durable, attempt 1, jitter 0.5: the schedule's 5 s exactly, from the time of the answer.
    assert.deepEqual(outcomeOf(leased(), answered(503), T0 + 20), {
      ...base,
      statusCode: 503,
      errorClass: 'http_5xx',
      responseExcerpt: 'body',
      result: 'retry',
      nextAttemptAt: T0 + 20 + 5_000,
      error: 'http_5xx (HTTP 503); retrying',
      disableEndpoint: undefined,
    });
    const timedOut = outcomeOf(leased(), answered(null, 'timeout'));
    assert.equal(timedOut.result, 'retry');
    assert.equal(timedOut.errorClass, 'timeout');
    assert.equal(timedOut.error, 'timeout; retrying');
    assert.equal(timedOut.responseExcerpt, null);
  });

  it('failed: the policy\'s reason', () => {
    assert.deepEqual(outcomeOf(leased({ retryPolicy: 'cobalt' }), answered(400)), {
      ...base,
      statusCode: 400,
      errorClass: 'http_4xx',
      responseExcerpt: 'body',
      result: 'failed',
      nextAttemptAt: undefined,
      error: 'not retried under the cobalt policy (http_4xx)',
      disableEndpoint: undefined,
    });
    const exhausted = outcomeOf(leased({}, { attempts: 10 }), answered(500));
    assert.equal(exhausted.result, 'failed');
    assert.equal(exhausted.error, 'exhausted after 10 attempts (http_5xx)');
  });

  it('failed and the endpoint disabled: 410 Gone, and days of only failures', () => {
    const gone = outcomeOf(leased(), answered(410));
    assert.equal(gone.result, 'failed');
    assert.equal(gone.error, 'the endpoint answered 410 Gone');
    assert.equal(gone.disableEndpoint, 'The endpoint answered 410 Gone: it asked not to receive webhooks any more.');
    const failingSince = T0 - 6 * 86_400_000;
    const stale = outcomeOf(leased({ failingSince }), answered(500));
    assert.equal(stale.result, 'failed');
    assert.equal(stale.error, 'endpoint disabled after 5 days of only failures');
    assert.equal(stale.disableEndpoint, `Every attempt failed for 5 days (since ${new Date(failingSince).toISOString()}).`);
  });
});

/** A DeliveryQueue in memory: leases what it is given once, keeps what is recorded. */
class MemoryQueue implements DeliveryQueue {
  readonly recorded: DeliveryOutcome[] = [];
  readonly requests: LeaseRequest[] = [];
  constructor(private due: LeasedDelivery[]) {}
  async leaseDeliveries(req: LeaseRequest): Promise<LeasedDelivery[]> {
    this.requests.push(req);
    return this.due.splice(0, req.limit);
  }
  async recordDeliveryOutcomes(outcomes: readonly DeliveryOutcome[]): Promise<void> {
    this.recorded.push(...outcomes);
  }
  async releaseDeliveryLeases(): Promise<void> {}
  onDeliveriesDue(): () => void {
    return () => {};
  }
}

class SpySender implements Sender {
  readonly sent: SendRequest[] = [];
  constructor(private readonly answer: SendResult) {}
  async send(req: SendRequest): Promise<SendResult> {
    this.sent.push(req);
    return this.answer;
  }
  async close(): Promise<void> {}
}

describe('attempt: through the dispatcher', () => {
  it('a secret that cannot be decrypted: nothing is sent; an internal retry in 60 s is recorded', async () => {
    const queue = new MemoryQueue([leased()]);
    const sender = new SpySender(answered(200));
    const d = new Dispatcher({ store: queue, sender, clock: new FakeClock(T0), owner: 'owner_1', decryptSecret: () => { throw new Error('unsupported state or unable to authenticate data'); } });
    await d.drain();
    assert.equal(sender.sent.length, 0);
    assert.deepEqual(queue.recorded, [unpreparedOutcome(leased(), 'owner_1', T0, 'unsupported state or unable to authenticate data')]);
  });

  it('sends what prepare builds and records what outcome builds', async () => {
    const l = leased();
    const queue = new MemoryQueue([l]);
    const sender = new SpySender(answered(503));
    const d = new Dispatcher({ store: queue, sender, clock: new FakeClock(T0), owner: 'owner_1', random: () => 0.5 });
    await d.drain();
    assert.deepEqual(sender.sent, [prepareAttempt(l, plain, T0)]);
    const c = classify(answered(503), T0);
    assert.deepEqual(queue.recorded, [attemptOutcome(l, 'owner_1', T0, answered(503), c, decide(decisionInput(l, c, T0, plain)))]);
    assert.equal(queue.recorded[0]?.error, 'http_5xx (HTTP 503); retrying');
  });
});
