/**
 * The dispatcher end to end against real receivers on 127.0.0.1: signatures checked with Cobalt's
 * documented receiver code and the standardwebhooks library; every fault a receiver can produce;
 * per-key ordering; isolation of a slow endpoint. Time is a fake clock; nothing asserts durations.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { HttpSender } from '../../src/delivery/http-sender.js';
import { newSigningSecret } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/ports.js';
import { FakeClock } from '../helpers/clock.js';
import { emitEvents } from '../helpers/outbox.js';
import { startReceiver, startSilentServer } from '../helpers/receiver.js';
import { tempDir } from '../helpers/temp.js';

const T0 = Date.parse('2026-11-02T15:00:00.000Z');

async function setup(t: TestContext) {
  const store = await openStore(join(tempDir(t), 'ehrsync.db'));
  t.after(() => store.close());
  const account = await store.createAccount({ name: 'Acme', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_1', now: T0 });
  const clock = new FakeClock(T0);
  return { store, account, connection, clock };
}

function dispatcher(t: TestContext, store: Store, clock: FakeClock, over: Partial<ConstructorParameters<typeof Dispatcher>[0]> = {}): Dispatcher {
  const d = new Dispatcher({ store, clock, allowPrivateAddresses: true, httpTimeoutMs: 400, random: () => 0.5, ...over });
  t.after(() => d.stop());
  return d;
}

/** Cobalt's documented receiver check (its webhook docs; docs/delivery.md "Verifying cobalt-verification"), written as its docs show. */
function cobaltVerify(payload: unknown, signature: string, secretKey: string): boolean {
  const expectedSignature = crypto.createHmac('sha256', secretKey).update(JSON.stringify(payload)).digest('hex');
  const a = Buffer.from(signature);
  const b = Buffer.from(expectedSignature);
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

describe('delivery: signatures and headers', () => {
  it('cobalt endpoints verify with Cobalt\'s documented code; standard endpoints with the standardwebhooks library, old and new secret during a rotation', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const cobaltSecret = newSigningSecret();
    const oldSecret = newSigningSecret();
    const newSecret = newSigningSecret();
    const cobalt = await store.createEndpoint({ accountId: account.id, url: rx.url('/ok/cobalt'), secret: cobaltSecret, now: T0 });
    const standard = await store.createEndpoint({ accountId: account.id, url: rx.url('/ok/standard'), secret: newSecret, signatureScheme: 'standard', now: T0 });
    await store.updateEndpoint(standard.id, { previousSecret: oldSecret, previousSecretExpiresAt: Date.now() + 86_400_000 });
    clock.set(Date.now()); // standardwebhooks checks the timestamp against the real time
    const ids = await emitEvents(store, connection.id, ['a', 'b', 'c'], T0);
    await dispatcher(t, store, clock).drain();

    const toCobalt = rx.received.filter((r) => r.path === '/ok/cobalt');
    const toStandard = rx.received.filter((r) => r.path === '/ok/standard');
    assert.deepEqual(toCobalt.map((r) => r.headers['webhook-id']).sort(), [...ids].sort());
    for (const r of toCobalt) {
      const payload = JSON.parse(r.body) as { id: string; created: string };
      assert.ok(cobaltVerify(payload, String(r.headers['cobalt-verification']), cobaltSecret), 'Cobalt\'s receiver code accepts it');
      assert.ok(!cobaltVerify(payload, String(r.headers['cobalt-verification']), newSigningSecret()));
      assert.equal(r.headers['webhook-id'], payload.id);
      assert.equal(r.headers['webhook-timestamp'], payload.created);
      assert.equal(r.headers['webhook-attempt'], '1');
      assert.equal(r.headers['content-type'], 'application/json');
    }
    for (const r of toStandard) {
      for (const secret of [newSecret, oldSecret]) assert.deepEqual(new Webhook(secret).verify(r.body, r.headers as Record<string, string>), JSON.parse(r.body));
      assert.match(String(r.headers['webhook-timestamp']), /^\d+$/);
    }
    assert.equal(toStandard.length, 3);
    const [d] = await store.listDeliveries(ids[0]!);
    assert.equal(d?.status, 'succeeded');
    assert.deepEqual(
      (await store.listAttempts(ids[0]!, cobalt.id)).map((a) => [a.attempt, a.statusCode, a.outcome, a.responseExcerpt]),
      [[1, 200, 'succeeded', 'ok']],
    );
  });

  it('refuses loopback targets at connect time unless allowed (the address is checked again after registration)', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const ep = await store.createEndpoint({ accountId: account.id, url: rx.url('/ok/x'), secret: newSigningSecret(), now: T0 });
    const [id] = await emitEvents(store, connection.id, ['a'], T0);
    await dispatcher(t, store, clock, { allowPrivateAddresses: false }).drain();
    assert.equal(rx.received.length, 0);
    assert.deepEqual((await store.listAttempts(id!, ep.id)).map((a) => a.errorClass), ['blocked_address']);
    const sender = new HttpSender({ policy: { allowInsecure: false, allowHosts: [] } });
    t.after(() => sender.close());
    // https, so the scheme passes and the name reaches the connect-time lookup.
    const viaName = await sender.send({ url: rx.url('/ok/y').replace('http://127.0.0.1', 'https://localhost'), headers: {}, body: '{}', timeoutMs: 1000 });
    assert.equal(viaName.errorClass, 'blocked_address', 'a name resolving to loopback is refused in the lookup');
  });

  it('sends nothing over http once dev mode is off, even to an endpoint registered while it was on', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const ep = await store.createEndpoint({ accountId: account.id, url: rx.url('/ok/plain'), secret: newSigningSecret(), now: T0 });
    const [id] = await emitEvents(store, connection.id, ['a'], T0);
    const hosts = { allowHosts: ['127.0.0.1'] }; // the address itself is allowed: only the scheme is in question
    await dispatcher(t, store, clock, { urlPolicy: { allowInsecure: false, ...hosts } }).drain();
    assert.equal(rx.received.length, 0, 'not one byte of the payload over plain http');
    assert.deepEqual((await store.listAttempts(id!, ep.id)).map((a) => a.errorClass), ['blocked_address']);
    clock.advance(6000);
    await dispatcher(t, store, clock, { urlPolicy: { allowInsecure: true, ...hosts } }).drain();
    assert.equal(rx.received.length, 1, 'dev mode on: delivered');
  });
});

describe('delivery: faulty receivers', () => {
  it('durable policy: each fault is recorded and rescheduled per policy; 410 disables; once receivers heal everything else arrives', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const silent = await startSilentServer(t);
    const paths = ['/500', '/429', '/429ra', '/410', '/302', '/400', '/garbage-body', '/garbage-http', '/reset', '/hang'];
    const eps = new Map<string, string>();
    for (const p of paths) eps.set(p, (await store.createEndpoint({ accountId: account.id, url: rx.url(p), secret: newSigningSecret(), now: T0 })).id);
    eps.set('/never', (await store.createEndpoint({ accountId: account.id, url: silent.url, secret: newSigningSecret(), now: T0 })).id);
    const [id] = await emitEvents(store, connection.id, ['k'], T0);
    const d = dispatcher(t, store, clock);
    await d.drain();

    const byEndpoint = async () => new Map((await store.listDeliveries(id!)).map((x) => [x.endpointId, x]));
    const rows = await byEndpoint();
    const expect: Record<string, [string, string | null, number | null]> = {
      '/500': ['pending', 'http_5xx', T0 + 5000],
      '/429': ['pending', 'http_429', T0 + 5000],
      '/429ra': ['pending', 'http_429', T0 + 60_000],
      '/410': ['failed', 'http_410', null],
      '/302': ['pending', 'http_3xx', T0 + 5000],
      '/400': ['pending', 'http_4xx', T0 + 5000],
      '/garbage-body': ['succeeded', null, null],
      '/garbage-http': ['pending', 'invalid_response', T0 + 5000],
      '/reset': ['pending', 'connection_reset', T0 + 5000],
      '/hang': ['pending', 'timeout', T0 + 5000],
      '/never': ['pending', 'timeout', T0 + 5000],
    };
    for (const [p, [status, errorClass, next]] of Object.entries(expect)) {
      const row = rows.get(eps.get(p)!)!;
      const [attempt] = await store.listAttempts(id!, eps.get(p));
      assert.deepEqual([row.status, attempt?.errorClass ?? null, next === null ? null : row.nextAttemptAt], [status, errorClass, next], p);
    }
    const garbage = await store.listAttempts(id!, eps.get('/garbage-body'));
    assert.ok(garbage[0]!.responseExcerpt!.length <= 1024 && !garbage[0]!.responseExcerpt!.includes('\u0000'), 'excerpt truncated and storable');
    const gone = await store.getEndpoint(eps.get('/410')!);
    assert.deepEqual([gone?.enabled, /410/.test(gone?.disabledReason ?? '')], [false, true]);

    rx.heal(...paths);
    clock.advance(61_000);
    await d.drain();
    const after = await byEndpoint();
    for (const p of paths.filter((x) => x !== '/410')) assert.equal(after.get(eps.get(p)!)?.status, 'succeeded', p);
    assert.equal(after.get(eps.get('/never')!)?.status, 'pending', 'the silent server never answers: still retrying, not lost');
    const retried = rx.received.filter((r) => r.path === '/500').map((r) => [r.headers['webhook-id'], r.headers['webhook-attempt']]);
    assert.deepEqual(retried, [[id, '1'], [id, '2']], 'same webhook-id, attempt counts up');
  });

  it('logs an endpoint once when it starts failing and once when it answers again, with ids and codes only', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const secret = newSigningSecret();
    const failing = await store.createEndpoint({ accountId: account.id, url: rx.url('/500/hook?token=sekrit'), secret, now: T0 });
    await store.createEndpoint({ accountId: account.id, url: rx.url('/ok'), secret, now: T0 });
    const lines: { level: string; fields: Record<string, unknown>; message: string }[] = [];
    const log = (level: string) => (fields: Record<string, unknown>, message: string) => lines.push({ level, fields, message });
    const d = dispatcher(t, store, clock, { logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') } });
    await emitEvents(store, connection.id, ['a', 'b', 'c'], T0);
    await d.drain();
    clock.advance(6000); // the retries fall due: they fail again
    await d.drain();
    rx.heal('/500');
    clock.advance(6 * 60_000); // the second retry, 5 min later: it succeeds
    await d.drain();

    const health = lines.filter((l) => l.message.startsWith('endpoint '));
    assert.deepEqual(
      health.map((l) => [l.level, l.fields.endpoint_id, l.message.split(':')[0]]),
      [
        ['warn', failing.id, 'endpoint failing'],
        ['info', failing.id, 'endpoint answering again'],
      ],
      'six failed attempts, one line; the healthy endpoint, none',
    );
    assert.deepEqual([health[0]!.fields.status_code, health[0]!.fields.error_class], [500, 'http_5xx']);
    const everything = JSON.stringify(lines);
    assert.ok(!everything.includes('sekrit') && !everything.includes('127.0.0.1'), 'no URL (nor its query) in the log');
    assert.ok(!everything.includes('patient'), 'no payload in the log');
  });

  it('cobalt policy: 5xx, 429 and network errors retried once after 1 s, then failed; 4xx, 3xx not retried; exhausted deliveries stay visible as failed', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const paths = ['/500', '/429ra', '/reset', '/400', '/302', '/ok'];
    const eps = new Map<string, string>();
    for (const p of paths) eps.set(p, (await store.createEndpoint({ accountId: account.id, url: rx.url(p), secret: newSigningSecret(), retryPolicy: 'cobalt', now: T0 })).id);
    const [id] = await emitEvents(store, connection.id, ['k'], T0);
    const d = dispatcher(t, store, clock);
    await d.drain();
    let rows = new Map((await store.listDeliveries(id!)).map((x) => [x.endpointId, x]));
    for (const p of ['/500', '/429ra', '/reset']) assert.deepEqual([rows.get(eps.get(p)!)?.status, rows.get(eps.get(p)!)?.nextAttemptAt], ['pending', T0 + 1000], p);
    for (const p of ['/400', '/302']) assert.equal(rows.get(eps.get(p)!)?.status, 'failed', p);
    clock.advance(1000);
    await d.drain();
    rows = new Map((await store.listDeliveries(id!)).map((x) => [x.endpointId, x]));
    for (const p of ['/500', '/429ra', '/reset', '/400', '/302']) assert.deepEqual([rows.get(eps.get(p)!)?.status, rows.get(eps.get(p)!)?.attempts], ['failed', p === '/400' || p === '/302' ? 1 : 2], p);
    assert.equal(rows.get(eps.get('/ok')!)?.status, 'succeeded');
    const listed = await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'failed', order: 'asc', limit: 50, offset: 0 });
    assert.equal(listed.total, 5);
    assert.deepEqual(rx.received.filter((r) => r.path === '/500').map((r) => r.headers['webhook-attempt']), ['1', '2']);

    // Redelivery: same webhook-id, a new cycle, attempt numbers keep counting.
    rx.heal('/500');
    assert.equal(await store.redeliverEvent(id!, clock.now(), eps.get('/500')), 1);
    await d.drain();
    const last = rx.received.filter((r) => r.path === '/500').at(-1);
    assert.deepEqual([last?.headers['webhook-id'], last?.headers['webhook-attempt'], last?.status], [id, '3', 200]);
  });
});

describe('delivery: ordering and isolation', () => {
  it('per-key ordering: events of one key arrive in detection order even when some fail first; different keys go in parallel', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    // First attempts at /held are held until several keys are in flight at once, then all answered.
    const ep = await store.createEndpoint({ accountId: account.id, url: rx.url('/held'), secret: newSigningSecret(), now: T0 });
    const keys = Array.from({ length: 24 }, (_, i) => `key${i % 4}`);
    const ids = await emitEvents(store, connection.id, keys, T0);
    const d = dispatcher(t, store, clock, { maxPerEndpoint: 8 });
    const draining = d.drain();
    for (let i = 0; i < 200 && rx.held() < 4; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(rx.held(), 4, 'one head per key in flight, four keys in parallel');
    const releaser = setInterval(() => rx.release(), 5);
    await draining;
    clearInterval(releaser);
    const order = new Map<string, number[]>();
    for (const r of rx.received) {
      const e = JSON.parse(r.body) as { data: { id: string; n: number } };
      order.set(e.data.id, [...(order.get(e.data.id) ?? []), e.data.n]);
    }
    for (const [key, ns] of order) assert.deepEqual(ns, [...ns].sort((a, b) => a - b), key);
    assert.equal(rx.received.length, 24);
    for (const id of ids) assert.equal((await store.listDeliveries(id)).find((x) => x.endpointId === ep.id)?.status, 'succeeded');
  });

  it('a failing head blocks only its own key until it is final', async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    await store.createEndpoint({ accountId: account.id, url: rx.url('/500'), secret: newSigningSecret(), now: T0 });
    await emitEvents(store, connection.id, ['a', 'a', 'b'], T0);
    const d = dispatcher(t, store, clock);
    await d.drain();
    const seen = rx.received.map((r) => (JSON.parse(r.body) as { data: { id: string; n: number } }).data);
    assert.deepEqual(seen.map((x) => `${x.id}${x.n}`).sort(), ['a0', 'b2'], 'the second "a" waits behind the failing first');
  });

  it('a full process cap is freed by the outcome commit itself, not by the polling backstop', { timeout: 60_000 }, async (t) => {
    const { store, account, connection } = await setup(t);
    const rx = await startReceiver(t);
    await store.createEndpoint({ accountId: account.id, url: rx.url('/ok'), secret: newSigningSecret(), now: T0 });
    await emitEvents(store, connection.id, Array.from({ length: 40 }, (_, i) => `c${i}`), T0);
    // Two in flight at most, and a poll an hour away: were a commit not to wake the loop, the
    // first two deliveries would be the only ones before the test's timeout. Outcome commits take
    // a few ms, as over a network (PostgreSQL), so the loop looks for room before they land.
    const record = store.recordDeliveryOutcomes.bind(store);
    store.recordDeliveryOutcomes = async (outcomes) => {
      await new Promise((r) => setTimeout(r, 5));
      return record(outcomes);
    };
    const d = new Dispatcher({ store, allowPrivateAddresses: true, maxInFlight: 2, maxPerEndpoint: 8, pollIntervalMs: 3_600_000 });
    d.start();
    t.after(() => d.stop());
    while ((await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'succeeded', order: 'asc', limit: 1, offset: 0 })).total < 40) await new Promise((r) => setTimeout(r, 20));
    assert.equal(rx.received.filter((r) => r.path === '/ok').length, 40);
  });

  it('a chain of events about one appointment goes out as fast as outcomes commit, not one per poll', { timeout: 60_000 }, async (t) => {
    const { store, account, connection } = await setup(t);
    const rx = await startReceiver(t);
    await store.createEndpoint({ accountId: account.id, url: rx.url('/ok'), secret: newSigningSecret(), now: T0 });
    await emitEvents(store, connection.id, Array.from({ length: 20 }, () => 'same-appointment'), T0);
    // Outcome commits take a few ms, as over a network (PostgreSQL): the loop leases (and finds the
    // next event blocked behind the unrecorded one) before the commit lands. A poll an hour away.
    const record = store.recordDeliveryOutcomes.bind(store);
    store.recordDeliveryOutcomes = async (outcomes) => {
      await new Promise((r) => setTimeout(r, 5));
      return record(outcomes);
    };
    const d = new Dispatcher({ store, allowPrivateAddresses: true, pollIntervalMs: 3_600_000 });
    d.start();
    t.after(() => d.stop());
    while ((await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'succeeded', order: 'asc', limit: 1, offset: 0 })).total < 20) await new Promise((r) => setTimeout(r, 20));
    const sent = rx.received.map((r) => (JSON.parse(r.body) as { data: { n: number } }).data.n);
    assert.deepEqual(sent, Array.from({ length: 20 }, (_, i) => i), 'in order, each once');
  });

  it('isolation: an endpoint whose attempts time out gets one attempt at a time until it answers (so endpoints that hang hold one connection each)', { timeout: 60_000 }, async (t) => {
    const { store, account, connection, clock } = await setup(t);
    const rx = await startReceiver(t);
    const ep = await store.createEndpoint({ accountId: account.id, url: rx.url('/hang'), secret: newSigningSecret(), now: T0 });
    await emitEvents(store, connection.id, Array.from({ length: 30 }, (_, i) => `k${i}`), T0);
    // The fake clock stands still: timed-out attempts wait for retries that never fall due, so
    // every request that arrives is a new delivery from the backlog.
    // A timeout long enough for the first four to be sent before the first times out, even on a
    // loaded machine (200 ms was not, with four copies of the test running at once).
    const d = dispatcher(t, store, clock, { httpTimeoutMs: 1500, maxPerEndpoint: 4, pollIntervalMs: 20 });
    d.start();
    const hang = () => rx.received.filter((r) => r.path === '/hang');
    for (let i = 0; i < 3000 && hang().length < 8; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(hang().length >= 8, `the backlog kept being attempted (${hang().length} requests)`);
    assert.equal(Math.max(...hang().slice(0, 4).map((r) => r.openWith)), 4, 'before any timed out, the endpoint got its cap of four');
    assert.deepEqual(
      hang().slice(4, 8).map((r) => r.openWith),
      [1, 1, 1, 1],
      'after its attempts timed out, one at a time: each new request arrived when the previous one was gone',
    );
    rx.heal('/hang');
    for (let i = 0; i < 3000 && rx.received.filter((r) => r.path === '/hang' && r.status === 200).length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    await d.stop();
    const answered = rx.received.filter((r) => r.path === '/hang' && r.status === 200);
    assert.ok(answered.length >= 4, 'once healed, its deliveries were answered');
    assert.equal((await store.getEndpoint(ep.id))?.enabled, true);
  });

  it('isolation: an endpoint that never answers does not hold back a healthy one (in-flight cap per endpoint)', async (t) => {
    const { store, account, connection } = await setup(t);
    const rx = await startReceiver(t);
    const other = await store.createAccount({ name: 'Other', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
    const otherConn = await store.createConnection({ accountId: other.id, connector: 'memory', now: T0 });
    await store.createEndpoint({ accountId: account.id, url: rx.url('/held'), secret: newSigningSecret(), now: T0 });
    await store.createEndpoint({ accountId: other.id, url: rx.url('/ok'), secret: newSigningSecret(), now: T0 });
    await emitEvents(store, connection.id, Array.from({ length: 60 }, (_, i) => `s${i}`), T0);
    await emitEvents(store, otherConn.id, Array.from({ length: 60 }, (_, i) => `h${i}`), T0);
    const d = new Dispatcher({ store, allowPrivateAddresses: true, httpTimeoutMs: 60_000, maxPerEndpoint: 4, pollIntervalMs: 50 });
    d.start();
    const healthy = () => rx.received.filter((r) => r.path === '/ok' && r.status === 200).length;
    for (let i = 0; i < 2000 && healthy() < 60; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(healthy(), 60, 'every healthy delivery went while the other endpoint held its requests');
    assert.equal(rx.held(), 4, 'the stuck endpoint holds exactly its cap');
    assert.equal(rx.maxConcurrent.get('held'), 4);
    const releaser = setInterval(() => rx.release(), 5);
    for (let i = 0; i < 2000 && rx.received.filter((r) => r.path === '/held').length < 60; i++) await new Promise((r) => setTimeout(r, 10));
    clearInterval(releaser);
    rx.release();
    await d.stop();
    const counts = await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'succeeded', order: 'asc', limit: 1, offset: 0 });
    assert.equal(counts.total, 60);
  });
});
