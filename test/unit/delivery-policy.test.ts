/** Retry tables of both policies (exact), response classification, and signing checked against independent code. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { classify, parseRetryAfter } from '../../src/delivery/classify.js';
import type { Classification } from '../../src/delivery/classify.js';
import { attemptTimeoutMs, decide, durableDelayMs } from '../../src/delivery/retry-policy.js';
import { liveSecrets, webhookHeaders } from '../../src/delivery/sign.js';

const NOW = Date.parse('2026-11-02T15:00:00.000Z');
const mid = () => 0.5;
const c = (statusCode: number | null, errorClass: 'timeout' | 'connection_reset' | null = null, retryAfter: string | null = null): Classification =>
  classify({ statusCode, errorClass, retryAfter }, NOW);

describe('classify', () => {
  it('maps status codes and network failures to outcome kinds', () => {
    const table: [number | null, string, string | null][] = [
      [200, 'success', null],
      [204, 'success', null],
      [299, 'success', null],
      [301, 'redirect', 'http_3xx'],
      [308, 'redirect', 'http_3xx'],
      [400, 'client_error', 'http_4xx'],
      [404, 'client_error', 'http_4xx'],
      [410, 'gone', 'http_410'],
      [429, 'throttled', 'http_429'],
      [500, 'server_error', 'http_5xx'],
      [503, 'server_error', 'http_5xx'],
      [101, 'client_error', 'http_other'],
    ];
    for (const [status, kind, cls] of table) assert.deepEqual([c(status).kind, c(status).errorClass], [kind, cls], String(status));
    assert.deepEqual(c(null, 'timeout'), { kind: 'timeout', errorClass: 'timeout', retryAfterMs: null });
    assert.deepEqual(c(null, 'connection_reset'), { kind: 'network', errorClass: 'connection_reset', retryAfterMs: null });
  });
  it('parses Retry-After as seconds or an HTTP date; ignores garbage', () => {
    assert.equal(parseRetryAfter('120', NOW), 120_000);
    assert.equal(parseRetryAfter(new Date(NOW + 30_000).toUTCString(), NOW), 30_000);
    assert.equal(parseRetryAfter('soon', NOW), null);
    assert.equal(parseRetryAfter('-5', NOW), null);
    assert.equal(parseRetryAfter(null, NOW), null);
    assert.equal(c(429, null, '7').retryAfterMs, 7000);
  });
});

describe('retry policy: cobalt (exactly as documented)', () => {
  const d = (attempt: number, o: Classification) => decide({ policy: 'cobalt', attemptInCycle: attempt, outcome: o, now: NOW, failingSince: null, random: mid });
  it('timeouts: 5 s then 2 s', () => {
    assert.deepEqual([attemptTimeoutMs('cobalt', 1, 99), attemptTimeoutMs('cobalt', 2, 99)], [5000, 2000]);
  });
  it('5xx, 429 and network errors: one retry after 1 s, then failed', () => {
    for (const o of [c(500), c(503), c(429, null, '600'), c(null, 'connection_reset')]) {
      assert.deepEqual(d(1, o), { result: 'retry', nextAttemptAt: NOW + 1000 });
      assert.equal(d(2, o).result, 'failed');
    }
  });
  it('no retry on timeouts, 3xx, other 4xx, 410; never disables', () => {
    for (const o of [c(null, 'timeout'), c(302), c(400), c(404), c(410)]) {
      const r = d(1, o);
      assert.equal(r.result, 'failed');
      assert.equal(r.result === 'failed' ? r.disableEndpoint : 'x', undefined);
    }
    assert.deepEqual(d(1, c(200)), { result: 'succeeded' });
  });
});

describe('retry policy: durable', () => {
  const d = (attempt: number, o: Classification, failingSince: number | null = null, random = mid) =>
    decide({ policy: 'durable', attemptInCycle: attempt, outcome: o, now: NOW, failingSince, random });
  it('the exact schedule (no jitter at the midpoint): 5s 5m 30m 2h 5h 10h 14h 20h 24h, the 10th failure is final', () => {
    const expected = [5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 504e5, 72e6, 864e5];
    const got = expected.map((_, i) => {
      const r = d(i + 1, c(500));
      return r.result === 'retry' ? r.nextAttemptAt - NOW : -1;
    });
    assert.deepEqual(got, expected);
    assert.equal(d(10, c(500)).result, 'failed');
  });
  it('every failure kind is retried (timeouts, 3xx, 4xx too)', () => {
    for (const o of [c(null, 'timeout'), c(302), c(400), c(null, 'connection_reset'), c(429)]) assert.equal(d(1, o).result, 'retry');
    assert.equal(attemptTimeoutMs('durable', 3, 15_000), 15_000);
  });
  it('jitter stays within ±20% and comes from the injected source', () => {
    assert.equal(durableDelayMs(2, () => 0), 240_000);
    assert.equal(durableDelayMs(2, () => 0.999999), 360_000);
  });
  it('Retry-After lengthens the wait, never shortens it, capped at 24 h', () => {
    assert.equal(durableDelayMs(1, mid, 60_000), 60_000);
    assert.equal(durableDelayMs(3, mid, 1_000), 1_800_000);
    assert.equal(durableDelayMs(1, mid, 7 * 86_400_000), 86_400_000);
  });
  it('410 fails the delivery and disables the endpoint', () => {
    const r = d(1, c(410));
    assert.equal(r.result, 'failed');
    assert.match(r.result === 'failed' ? (r.disableEndpoint ?? '') : '', /410/);
  });
  it('an endpoint failing for 5 days (default) is disabled with the reason recorded; 4.9 days is not', () => {
    const r = d(3, c(500), NOW - 5 * 86_400_000);
    assert.equal(r.result, 'failed');
    assert.match(r.result === 'failed' ? (r.disableEndpoint ?? '') : '', /5 days/);
    assert.equal(d(3, c(500), NOW - 4.9 * 86_400_000).result, 'retry');
    const custom = decide({ policy: 'durable', attemptInCycle: 1, outcome: c(500), now: NOW, failingSince: NOW - 2 * 86_400_000, random: mid, disableAfterDays: 2 });
    assert.equal(custom.result, 'failed');
  });
});

describe('signing', () => {
  const body = JSON.stringify({ id: 'e1', object: 'event', data: { mrn: '1', note: 'ünïcode \u2028' } });
  it('cobalt: hex HMAC of the body as Cobalt documents it, ISO event time, attempt, id', () => {
    const secret = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0';
    const h = webhookHeaders({ scheme: 'cobalt', eventId: 'e1', eventCreatedAt: NOW - 5000, attempt: 3, now: NOW, body, secrets: [secret] });
    const payload = JSON.parse(body) as unknown;
    const expected = createHmac('sha256', secret).update(JSON.stringify(payload)).digest('hex');
    assert.deepEqual(h, {
      'content-type': 'application/json',
      'webhook-id': 'e1',
      'webhook-attempt': '3',
      'webhook-timestamp': '2026-11-02T14:59:55.000Z',
      'cobalt-verification': expected,
    });
  });
  it('standard: verifies with the standardwebhooks library for every live secret during a rotation', () => {
    const current = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
    const previous = 'whsec_Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4';
    const now = Date.now();
    const secrets = liveSecrets(current, previous, now + 1000, now);
    assert.deepEqual(secrets, [current, previous]);
    const h = webhookHeaders({ scheme: 'standard', eventId: 'e1', eventCreatedAt: NOW, attempt: 1, now, body, secrets });
    assert.equal(h['webhook-timestamp'], String(Math.floor(now / 1000)));
    for (const s of [current, previous]) assert.deepEqual(new Webhook(s).verify(body, h), JSON.parse(body));
    assert.throws(() => new Webhook('whsec_b3RoZXJvdGhlcm90aGVyb3RoZXJvdGhlcg==').verify(body, h));
  });
  it('the previous secret stops signing when it expires', () => {
    assert.deepEqual(liveSecrets('a', 'b', NOW, NOW), ['a']);
    assert.deepEqual(liveSecrets('a', null, null, NOW), ['a']);
  });
});
