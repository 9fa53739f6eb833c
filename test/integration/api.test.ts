/** The API end to end in-process (Fastify inject) over a real SQLite store, data filled by real syncs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { MemoryConnector } from '../../src/connectors/memory.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { apiWorld, API_NOW, call } from '../helpers/api.js';
import type { Creds } from '../helpers/api.js';
import { appointment, patient } from '../helpers/fixtures.js';

/** Fills alice's clinic: a baseline, then a check-in and a new booking. */
async function withClinic(t: TestContext) {
  const w = await apiWorld(t);
  const ehr = new MemoryConnector({ now: () => w.clock.now() });
  ehr.putPatient(patient({ ehr_patient_id: 'p-804', mrn: '804', first_name: 'John', last_name: 'Doe', phone: '555-0101' }));
  ehr.putPatient(patient({ ehr_patient_id: 'p-900', mrn: '900', first_name: 'Ana', last_name: 'Lima', dob: '1985-05-05' }));
  ehr.putAppointment(appointment({ ehr_appointment_id: 'E1', patient_ehr_id: 'p-804', datetime: '2026-11-02T18:00:00.000Z' }));
  ehr.putAppointment(appointment({ ehr_appointment_id: 'E2', patient_ehr_id: 'p-900', patient_mrn: '900', patient_name: 'Ana Lima', datetime: '2026-11-04T03:30:00.000Z', appointment_mode: 'telehealth' }));
  const deps = { store: w.store, clock: w.clock, connectorFor: () => ehr };
  const sync = async () => syncConnection(deps, (await w.store.getConnection(w.alice.connectionId))!);
  w.deps.syncNow = async () => sync();
  return { ...w, ehr, sync };
}

describe('API: webhooks', () => {
  it('registers with either spelling, lists with secrets, changes options, rotates, removes', async (t) => {
    const w = await apiWorld(t);
    const a = await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/a' });
    assert.equal(a.status, 200);
    assert.equal(a.body.message, 'Webhook registered successfully');
    assert.match(a.body.webhook_secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal(a.body.webhook_secret_key, a.body.webhook_secret);
    assert.deepEqual([a.body.webhook.id, a.body.webhook.secret, a.body.webhook_id], [a.body.webhook_id, a.body.webhook_secret, a.body.webhook.id]);
    // Endpoints list by creation time, then id: registered at the same instant their order would be random.
    w.clock.advance(1);
    const b = await call(w, w.alice, 'POST', '/v1/webhook', { url: 'https://hooks.example/b', signature_scheme: 'standard', retry_policy: 'cobalt', event_types: ['appointment.created', 'appointment.deleted'] });
    assert.equal(b.status, 200);
    w.clock.set(API_NOW);
    const list = await call(w, w.alice, 'GET', '/v1/webhook');
    assert.deepEqual(list.body.webhook_urls.map((x: { url: string }) => x.url), ['https://hooks.example/a', 'https://hooks.example/b']);
    assert.equal(list.body.webhook_urls[1].signature_scheme, 'standard');
    assert.equal(list.body.webhook_urls[0].secret, a.body.webhook_secret);
    const stored = await w.store.getEndpoint(a.body.webhook_id);
    assert.ok(stored?.secret.startsWith('enc:v1:') && !stored.secret.includes(a.body.webhook_secret), 'secrets are encrypted at rest');

    const patched = await call(w, w.alice, 'PATCH', `/v1/webhook/${b.body.webhook_id}`, { enabled: false, event_types: ['patient.updated'] });
    assert.deepEqual([patched.body.webhook.enabled, patched.body.webhook.event_types, patched.body.webhook.disabled_reason], [false, ['patient.updated'], 'disabled by the account']);

    const rotated = await call(w, w.alice, 'POST', `/v1/webhook/${a.body.webhook_id}/rotate-secret`);
    assert.notEqual(rotated.body.webhook.secret, a.body.webhook_secret);
    const afterRotate = await w.store.getEndpoint(a.body.webhook_id);
    assert.equal(w.secretBox.decrypt(afterRotate!.previousSecret!), a.body.webhook_secret, 'the previous secret is kept');
    assert.equal(afterRotate?.previousSecretExpiresAt, API_NOW + 24 * 3_600_000, 'for 24 hours');

    const all = await call(w, w.alice, 'POST', '/v1/webhook/rotate-secret');
    assert.deepEqual(all.body.webhooks.map((x: { secret: string }) => x.secret), [all.body.webhook_secret_key, all.body.webhook_secret_key]);

    assert.deepEqual((await call(w, w.alice, 'DELETE', `/v1/webhook/${a.body.webhook_id}`)).body, { success: true, message: 'Webhook URL removed successfully' });
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook')).body.webhook_urls.length, 1);
  });

  it('refuses http, credentials in URLs, and private targets; the dev flag allows http to loopback', async (t) => {
    const w = await apiWorld(t);
    for (const [url, reason] of [
      ['http://hooks.example/x', /must use https/],
      ['https://user:pw@hooks.example/x', /must not contain credentials/],
      ['https://internal.example/x', /private, loopback or link-local/],
      ['https://127.0.0.1/x', /private, loopback or link-local/],
      ['https://[::1]/x', /private, loopback or link-local/],
      ['https://169.254.169.254/latest/meta-data', /private, loopback or link-local/],
      ['not a url', /not a valid URL/],
    ] as const) {
      const r = await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: url });
      assert.equal(r.status, 400, url);
      assert.match(r.body.message, reason, url);
    }
    const dev = await apiWorld(t, { endpointUrlPolicy: { allowInsecure: true, allowHosts: [] } });
    assert.equal((await call(dev, dev.alice, 'POST', '/v1/webhook', { webhook_url: 'http://127.0.0.1:9999/hook' })).status, 200);
    assert.equal((await call(dev, dev.alice, 'POST', '/v1/webhook', { webhook_url: 'http://10.0.0.8/hook' })).status, 400, 'dev mode allows loopback, not the private network');
    const listed = await apiWorld(t, { endpointUrlPolicy: { allowInsecure: false, allowHosts: ['internal.example'] } });
    assert.equal((await call(listed, listed.alice, 'POST', '/v1/webhook', { webhook_url: 'https://internal.example/x' })).status, 200, 'allow-listed hosts pass');
  });
});

describe('API: a clinic connection', () => {
  it('settings: the reference id is set and echoed by the next events', async (t) => {
    const w = await withClinic(t);
    const settings = (await call(w, w.alice, 'GET', '/v1/settings')).body.data;
    assert.equal(settings.access_token_reference_id, 'alice_clinic');
    assert.ok(settings.visit_statuses.some((s: { code: string; description: string }) => s.code === 'n' && s.description === 'no-show'), "the demo EHR's own codes are listed (the connector's status map)");
    assert.deepEqual((await call(w, w.alice, 'POST', '/v1/settings', { access_token_reference_id: 'at_ref_123456789' })).body, { success: true, data: { access_token_reference_id: 'at_ref_123456789' } });
    await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/a' });
    await w.sync();
    w.ehr.updateAppointment('E1', { status: 'arrived' });
    await w.sync();
    const events = await call(w, w.alice, 'GET', '/v1/webhook-events');
    assert.deepEqual(events.body.webhook_events.map((e: { access_token_reference_id: string }) => e.access_token_reference_id), ['at_ref_123456789', 'at_ref_123456789']);
  });

  it('appointments and patients are served from what the syncs saw, in the clinic\'s days', async (t) => {
    const w = await withClinic(t);
    w.ehr.updateAppointment('E2', { timezone: null });
    await w.sync();
    // 2026-11-03 in New York runs 05:00Z–05:00Z next day: E2 at 03:30Z on the 4th is the 3rd there.
    const day3 = await call(w, w.alice, 'GET', '/v1/appointments?start_date=2026-11-03&end_date=2026-11-03');
    assert.deepEqual(day3.body.appointments.map((a: { ehr_appointment_id: string }) => a.ehr_appointment_id), ['E2']);
    assert.equal(day3.body.appointments[0].timezone, 'America/New_York', 'without a time zone of its own, the clinic\'s, as in its webhooks');
    const both = await call(w, w.alice, 'GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-05');
    assert.equal(both.body.appointments.length, 2);
    const e1 = both.body.appointments[0];
    assert.equal(e1.patient_name, 'John Doe');
    assert.equal(e1.object_metadata.source, 'ehr_sync');
    assert.match(e1.provider_id, /^[0-9a-f]{32}$/);
    assert.equal((await call(w, w.alice, 'GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-05&appointment_mode=telehealth')).body.appointments.length, 1);
    assert.equal((await call(w, w.alice, 'GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-05&patient_name=ana')).body.appointments.length, 1);
    const one = await call(w, w.alice, 'GET', `/v1/appointment/${e1.id}`);
    assert.equal(one.body.appointments.ehr_appointment_id, 'E1');
    assert.equal((await call(w, w.alice, 'GET', '/v1/appointment/E1')).body.appointments.id, e1.id);
    assert.equal((await call(w, w.alice, 'GET', '/v1/appointment/nope')).status, 404);

    const patients = await call(w, w.alice, 'GET', '/v1/patients?page_size=1&page=2');
    assert.deepEqual(patients.body.pagination, { current_page: 2, total_pages: 2, total_count: 2, page_size: 1 });
    assert.equal(patients.body.patients[0].mrn, '900');
    assert.equal((await call(w, w.alice, 'GET', '/v1/patients?last_name=LIM')).body.patients[0].first_name, 'Ana');
    assert.equal((await call(w, w.alice, 'GET', '/v1/patients?dob=1985-05-05')).body.patients.length, 1);
  });

  it('providers: an inactive provider\'s schedule is not synced until active again', async (t) => {
    const w = await withClinic(t);
    await w.sync();
    const providers = await call(w, w.alice, 'GET', '/v1/providers');
    assert.equal(providers.body.providers.length, 1);
    const p = providers.body.providers[0];
    assert.deepEqual([p.ehr_id, p.status], ['dr-denenberg', 'active']);
    const off = await call(w, w.alice, 'PATCH', `/v1/providers/${p.id}`, { status: 'INACTIVE' });
    assert.deepEqual(off.body, { success: true, message: 'Provider status updated successfully.', provider_id: p.id });
    await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/a' });
    w.ehr.updateAppointment('E1', { status: 'cancelled' });
    await w.sync();
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events')).body.webhook_events.length, 0);
    await call(w, w.alice, 'PATCH', '/v1/providers/ehr/dr-denenberg', { status: 'active' });
    await w.sync();
    assert.deepEqual((await call(w, w.alice, 'GET', '/v1/webhook-events?sort=created_at')).body.webhook_events.map((e: { event_type: string }) => e.event_type), [
      'appointment.updated',
      'appointment.status_updated',
    ]);
    assert.equal((await call(w, w.alice, 'PATCH', `/v1/providers/${p.id}`, { status: 'paused' })).status, 400);
    assert.equal((await call(w, w.alice, 'PATCH', '/v1/providers/nope', { status: 'active' })).status, 404);
  });

  it('the event log: one row per webhook URL, filters, pagination, Cobalt\'s field names', async (t) => {
    const w = await withClinic(t);
    await w.sync();
    await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/a' });
    await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/b' });
    w.ehr.updateAppointment('E1', { location: '9' });
    w.ehr.updatePatient('p-804', { phone: '555-7777' });
    await w.sync();
    const all = await call(w, w.alice, 'GET', '/v1/webhook-events?page_size=3');
    assert.equal(all.body.pagination.total_count, 4);
    assert.equal(all.body.webhook_events.length, 3);
    const row = all.body.webhook_events[0];
    assert.deepEqual(Object.keys(row), [
      'event_id',
      'event_type',
      'webhook_id',
      'webhook_url',
      'delivery_status',
      'delivery_attempts',
      'response_status_code',
      'data',
      'created_at',
      'job_id',
      'access_token_reference_id',
    ]);
    assert.equal(row.delivery_status, 'pending');
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events?event_type=patient.updated')).body.pagination.total_count, 2);
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events?delivery_status=success')).body.pagination.total_count, 0);
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events?start_date=2026-11-03')).body.pagination.total_count, 0);
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events?start_date=2026-11-02&end_date=2026-11-02')).body.pagination.total_count, 4);
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook-events?job_id=none')).body.pagination.total_count, 0);
  });

  it('sync now, sync runs and quarantined records', async (t) => {
    const w = await withClinic(t);
    const now = await call(w, w.alice, 'POST', '/v1/sync');
    assert.equal(now.body.sync_run.status, 'succeeded');
    w.ehr.extraAppointments.push({ ...appointment({ ehr_appointment_id: 'BAD' }), datetime: 'tomorrow-ish' });
    w.clock.advance(60_000);
    await call(w, w.alice, 'POST', '/v1/sync');
    const runs = await call(w, w.alice, 'GET', '/v1/sync-runs?limit=5');
    assert.deepEqual(runs.body.sync_runs.map((r: { quarantined: number }) => r.quarantined), [1, 0]);
    const q = await call(w, w.alice, 'GET', '/v1/quarantine');
    assert.equal(q.body.quarantined[0].ehr_id, 'BAD');
    assert.match(q.body.quarantined[0].reason, /datetime/);
  });

  it('connections: created with a token shown once that opens the clinic routes; admin creates accounts', async (t) => {
    const w = await apiWorld(t);
    const created = await call(w, w.alice, 'POST', '/v1/connections', { connector: 'fhir', base_url: 'https://ehr.example/fhir', reference_id: 'clinic_2', timezone: 'America/Chicago', config: { auth: { type: 'bearer', token: 'sekret-bearer' } } });
    assert.equal(created.status, 201);
    assert.match(created.body.access_token, /^at_/);
    assert.equal(created.body.connection.config.auth.token, '***', 'connector secrets are never shown');
    const stored = await w.store.getConnection(created.body.connection.id);
    assert.equal(w.secretBox.decrypt(String((stored?.config.auth as { token: string }).token)), 'sekret-bearer', 'and stored encrypted');
    const settings = await call(w, { ...w.alice, access_token: created.body.access_token }, 'GET', '/v1/settings');
    assert.deepEqual([settings.body.data.access_token_reference_id, settings.body.data.timezone], ['clinic_2', 'America/Chicago']);
    assert.equal((await call(w, w.alice, 'GET', '/v1/connections')).body.connections.length, 2);
    const patched = await call(w, w.alice, 'PATCH', `/v1/connections/${created.body.connection.id}`, { window_future_days: 30, enabled: false });
    assert.deepEqual([patched.body.connection.window_future_days, patched.body.connection.enabled], [30, false]);
    assert.equal((await call(w, w.alice, 'POST', '/v1/connections', { connector: 'fhir', base_url: 'ftp://x' })).status, 400);
    // EHR addresses set through the API follow the webhook URL rules: the server fetches them.
    const refused: [Record<string, unknown>, RegExp][] = [
      [{ connector: 'fhir', base_url: 'http://ehr.example/fhir' }, /base_url must use https/],
      [{ connector: 'fhir', base_url: 'https://internal.example/fhir' }, /base_url host "internal.example" resolves to a private, loopback or link-local address/],
      [{ connector: 'fhir', base_url: 'https://ehr.example/fhir', config: { auth: { type: 'smart-backend', clientId: 'c', privateKey: 'k', tokenUrl: 'https://internal.example/token' } } }, /config\.auth\.tokenUrl host "internal\.example" resolves to a private/],
    ];
    for (const [body, message] of refused) {
      const r = await call(w, w.alice, 'POST', '/v1/connections', body);
      assert.deepEqual([r.status, message.test(r.body.message)], [400, true], `${JSON.stringify(body)}: ${r.body.message}`);
    }
    const moved = await call(w, w.alice, 'PATCH', `/v1/connections/${created.body.connection.id}`, { config: { baseUrl: 'https://internal.example/fhir' } });
    assert.deepEqual([moved.status, /config\.baseUrl host/.test(moved.body.message)], [400, true], moved.body.message);
    const unknown = await call(w, w.alice, 'POST', '/v1/connections', { connector: 'fhir', base_url: 'https://ehr.example/fhir', config: { pageSzie: 50 } });
    assert.equal(unknown.status, 400);
    assert.match(JSON.stringify(unknown.body), /config\.pageSzie/, 'an unknown connector setting is refused by name');

    const admin = await w.app.inject({ method: 'POST', url: '/v1/admin/accounts', headers: { authorization: 'Bearer admin-token-for-tests', 'content-type': 'application/json' }, payload: { name: 'Carol' } });
    assert.equal(admin.statusCode, 201);
    const carol = admin.json() as { client_id: string; client_secret: string };
    assert.equal((await call(w, { client_id: carol.client_id, client_secret: carol.client_secret }, 'GET', '/v1/webhook')).status, 200);
    assert.equal((await w.app.inject({ method: 'POST', url: '/v1/admin/accounts', headers: { authorization: 'Bearer wrong' }, payload: { name: 'X' } })).statusCode, 401);
  });

  it('operations: health, readiness, metrics, the OpenAPI document and docs page', async (t) => {
    const w = await withClinic(t);
    await call(w, w.alice, 'GET', '/v1/settings');
    assert.deepEqual((await w.app.inject('/healthz')).json(), { success: true, status: 'ok' });
    assert.equal((await w.app.inject('/readyz')).statusCode, 200);
    const metrics = (await w.app.inject('/metrics')).body;
    assert.match(metrics, /ehrsync_http_requests_total\{method="GET",route="\/v1\/settings",status="200"\} 1/);
    const doc = (await w.app.inject('/openapi.json')).json() as { openapi: string; paths: Record<string, unknown> };
    assert.equal(doc.openapi, '3.0.3');
    for (const path of ['/v1/webhook', '/v1/webhook/{id}/rotate-secret', '/v1/webhook-events', '/v1/appointments', '/v1/appointment/{id}', '/v1/patients', '/v1/providers/{id}', '/v1/settings', '/v1/sync']) {
      assert.ok(path in doc.paths, `OpenAPI documents ${path}`);
    }
    const docs = await w.app.inject('/docs/');
    assert.equal(docs.statusCode, 200);
    assert.match(docs.body, /swagger/i);
  });
});

describe('API: tenants see only their own data', () => {
  it('every route answers 401/404 (never data) with another account\'s credentials', async (t) => {
    const w = await withClinic(t);
    await w.sync();
    const hook = await call(w, w.alice, 'POST', '/v1/webhook', { webhook_url: 'https://hooks.example/alice' });
    w.ehr.updateAppointment('E1', { location: '5' });
    await w.sync();
    const appt = (await call(w, w.alice, 'GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-05')).body.appointments[0];
    const provider = (await call(w, w.alice, 'GET', '/v1/providers')).body.providers[0];
    const bobWithAliceToken = { client_id: w.bob.client_id, client_secret: w.bob.client_secret, access_token: w.alice.access_token };
    const cases: [string, string, unknown, Partial<Creds>, number][] = [
      ['PATCH', `/v1/webhook/${hook.body.webhook_id}`, { enabled: false }, w.bob, 404],
      ['DELETE', `/v1/webhook/${hook.body.webhook_id}`, undefined, w.bob, 404],
      ['POST', `/v1/webhook/${hook.body.webhook_id}/rotate-secret`, undefined, w.bob, 404],
      ['GET', `/v1/connections/${w.alice.connectionId}`, undefined, w.bob, 404],
      ['PATCH', `/v1/connections/${w.alice.connectionId}`, { enabled: false }, w.bob, 404],
      ['GET', '/v1/settings', undefined, bobWithAliceToken, 401],
      ['POST', '/v1/settings', { access_token_reference_id: 'x' }, bobWithAliceToken, 401],
      ['GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-05', undefined, bobWithAliceToken, 401],
      ['GET', `/v1/appointment/${appt.id}`, undefined, w.bob, 404],
      ['GET', '/v1/patients', undefined, bobWithAliceToken, 401],
      ['GET', '/v1/providers', undefined, bobWithAliceToken, 401],
      ['PATCH', `/v1/providers/${provider.id}`, { status: 'inactive' }, w.bob, 404],
      ['POST', '/v1/sync', undefined, bobWithAliceToken, 401],
      ['GET', '/v1/sync-runs', undefined, bobWithAliceToken, 401],
      ['GET', '/v1/quarantine', undefined, bobWithAliceToken, 401],
    ];
    for (const [method, url, body, creds, status] of cases) {
      const r = await call(w, creds, method, url, body);
      assert.equal(r.status, status, `${method} ${url}`);
      assert.equal(r.body.success, false);
    }
    assert.equal((await call(w, w.bob, 'GET', '/v1/webhook')).body.webhook_urls.length, 0);
    assert.equal((await call(w, w.bob, 'GET', '/v1/webhook-events')).body.pagination.total_count, 0);
    assert.equal((await call(w, w.bob, 'GET', '/v1/connections')).body.connections.length, 1);
    assert.equal((await call(w, w.alice, 'GET', '/v1/webhook')).body.webhook_urls[0].enabled, true, 'alice\'s endpoint untouched');
  });
});
