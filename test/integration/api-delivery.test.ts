/** The delivery routes: attempts of an event, redelivery, endpoint health, enable, recover — over a real store and dispatcher (fake sender). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { MemoryConnector } from '../../src/connectors/memory.js';
import type { SendRequest } from '../../src/delivery/http-sender.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { apiWorld, call } from '../helpers/api.js';
import { appointment, patient } from '../helpers/fixtures.js';

it('API delivery routes: attempts, health, redeliver, disable/enable, recover; other tenants see nothing', async (t) => {
  const w = await apiWorld(t);
  const ehr = new MemoryConnector({ now: () => w.clock.now() });
  ehr.putPatient(patient({ ehr_patient_id: 'p-804', mrn: '804' }));
  ehr.putAppointment(appointment({ ehr_appointment_id: 'E1', patient_ehr_id: 'p-804', datetime: '2026-11-02T18:00:00.000Z' }));
  const sync = async () => syncConnection({ store: w.store, clock: w.clock, connectorFor: () => ehr }, (await w.store.getConnection(w.alice.connectionId))!);

  const good = (await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/good', max_concurrency: 2 })).body;
  const bad = (await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/bad', signature_scheme: 'standard' })).body;
  assert.equal(good.webhook.max_concurrency, 2);
  await sync();
  ehr.updateAppointment('E1', { status: 'arrived' });
  await sync();

  const sent: SendRequest[] = [];
  const sender = {
    send: async (r: SendRequest) => {
      sent.push(r);
      return { statusCode: r.url.endsWith('/bad') ? 503 : 200, retryAfter: null, errorClass: null, durationMs: 3, bodyExcerpt: r.url.endsWith('/bad') ? 'down' : 'ok' };
    },
    close: async () => {},
  };
  const d = new Dispatcher({ store: w.store, clock: w.clock, sender, decryptSecret: (s) => w.secretBox.decrypt(s), random: () => 0.5 });
  await d.drain();
  assert.ok(sent.some((r) => r.headers['cobalt-verification']) && sent.some((r) => r.headers['webhook-signature']));

  const events = (await call(w, w.alice, 'GET', '/v1/webhook-events?sort=created_at')).body.webhook_events;
  const eventId: string = events[0].event_id;
  const attempts = await call(w, w.alice, 'GET', `/v1/webhook-events/${eventId}/attempts`);
  assert.deepEqual(
    attempts.body.attempts.map((a: { webhook_id: string; response_status_code: number; outcome: string; error_class: string | null }) => [a.webhook_id, a.response_status_code, a.outcome, a.error_class]).sort(),
    [[good.webhook_id, 200, 'succeeded', null], [bad.webhook_id, 503, 'retry', 'http_5xx']].sort(),
  );
  assert.equal((await call(w, w.alice, 'GET', `/v1/webhook-events/${eventId}/attempts?webhook_id=${good.webhook_id}`)).body.attempts.length, 1);
  assert.equal((await call(w, w.bob, 'GET', `/v1/webhook-events/${eventId}/attempts`)).status, 404, 'another tenant\'s event is not found');

  const health = (await call(w, w.alice, 'GET', `/v1/webhook/${bad.webhook_id}/health`)).body.health;
  assert.deepEqual([health.state, health.success_rate, health.consecutive_failures, health.deliveries.pending], ['failing', 0, 1, 2], 'one failure so far: the second event of the same appointment waits behind it');
  assert.match(health.disables_at, /^2026-11-07T/);
  const goodHealth = (await call(w, w.alice, 'GET', `/v1/webhook/${good.webhook_id}/health?since=2026-11-01T00:00:00Z`)).body.health;
  assert.deepEqual([goodHealth.state, goodHealth.success_rate, goodHealth.attempts], ['healthy', 1, 2]);
  assert.equal((await call(w, w.alice, 'GET', `/v1/webhook/${good.webhook_id}/health?since=yesterday`)).status, 400);

  const redo = await call(w, w.alice, 'POST', `/v1/webhook-events/${eventId}/redeliver`, { webhook_id: good.webhook_id });
  assert.deepEqual([redo.status, redo.body.queued, redo.body.message], [200, 1, '1 delivery queued.']);
  await d.drain();
  assert.equal((await call(w, w.alice, 'POST', `/v1/webhook-events/${eventId}/redeliver`)).body.queued, 2, 'no body: every subscribed endpoint (the bad one\'s delivery, waiting for its retry, is made due now)');
  assert.equal((await call(w, w.alice, 'POST', '/v1/webhook-events/nope/redeliver', {})).status, 404);
  assert.equal((await call(w, w.bob, 'POST', `/v1/webhook-events/${eventId}/redeliver`, {})).status, 404);
  await d.drain();
  const again = sent.filter((r) => r.url.endsWith('/good') && r.headers['webhook-id'] === eventId);
  assert.deepEqual(again.map((r) => r.headers['webhook-attempt']), ['1', '2', '3']);
  const badAgain = sent.filter((r) => r.url.endsWith('/bad') && r.headers['webhook-id'] === eventId);
  assert.deepEqual(badAgain.map((r) => r.headers['webhook-attempt']), ['1', '2'], 'the bad endpoint got its retry at once, without the clock reaching its time');

  const off = await call(w, w.alice, 'PATCH', `/v1/webhook/${bad.webhook_id}`, { enabled: false });
  assert.equal(off.body.webhook.disabled_at, '2026-11-02T15:00:00.000Z');
  const refused = await call(w, w.alice, 'POST', `/v1/webhook/${bad.webhook_id}/recover`, { since: '2026-11-01T00:00:00Z' });
  assert.deepEqual([refused.status, refused.body.code], [409, 'endpoint_disabled']);
  assert.equal((await call(w, w.alice, 'POST', `/v1/webhook-events/${eventId}/redeliver`, { webhook_id: bad.webhook_id })).status, 409);
  const on = await call(w, w.alice, 'POST', `/v1/webhook/${bad.webhook_id}/enable`);
  assert.deepEqual([on.body.webhook.enabled, on.body.webhook.disabled_reason], [true, null]);
  assert.equal((await call(w, w.alice, 'POST', `/v1/webhook/${bad.webhook_id}/recover`, { since: 'not a time' })).status, 400);
  const recovered = await call(w, w.alice, 'POST', `/v1/webhook/${bad.webhook_id}/recover`, { since: '2026-11-01T00:00:00Z' });
  assert.deepEqual([recovered.status, recovered.body.queued], [200, 2], 'the deliveries skipped while disabled');
  assert.equal((await call(w, w.bob, 'POST', `/v1/webhook/${bad.webhook_id}/recover`, { since: '2026-11-01T00:00:00Z' })).status, 404);
  assert.equal((await call(w, w.bob, 'GET', `/v1/webhook/${bad.webhook_id}/health`)).status, 404);
});
