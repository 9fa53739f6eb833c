/** Bad input never gets a 5xx: a table of malformed requests with the message each must name, then a fuzz. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { Webhook } from 'standardwebhooks';
import { API_NOW, apiWorld } from '../helpers/api.js';
import { appointment } from '../helpers/fixtures.js';
import { emptyPlan } from '../helpers/outbox.js';

it('malformed requests get a 4xx with {success:false, message} naming the problem', async (t) => {
  const w = await apiWorld(t, { bodyLimit: 4096 });
  const hook = (await w.app.inject({ method: 'POST', url: '/v1/webhook', headers: { ...w.alice, 'content-type': 'application/json' }, payload: { webhook_url: 'https://hooks.example/a' } })).json() as { webhook_id: string };
  const json = { 'content-type': 'application/json' };
  const cases: { name: string; method: string; url: string; headers?: Record<string, string>; payload?: string; status: number; message: RegExp }[] = [
    { name: 'no credentials', method: 'GET', url: '/v1/webhook', headers: {}, status: 401, message: /client_id and client_secret/ },
    { name: 'wrong secret', method: 'GET', url: '/v1/webhook', headers: { client_id: w.alice.client_id, client_secret: 'cs_wrong' }, status: 401, message: /Invalid client_id or client_secret/ },
    { name: 'unknown client id', method: 'GET', url: '/v1/webhook', headers: { client_id: 'ci_nobody', client_secret: 'x' }, status: 401, message: /Invalid client_id/ },
    { name: 'no access token', method: 'GET', url: '/v1/settings', headers: { client_id: w.alice.client_id, client_secret: w.alice.client_secret }, status: 401, message: /access_token/ },
    { name: 'bad access token', method: 'GET', url: '/v1/settings', headers: { ...w.alice, access_token: 'at_forged' }, status: 401, message: /Invalid access_token/ },
    { name: 'bad JSON', method: 'POST', url: '/v1/webhook', headers: json, payload: '{"webhook_url": ', status: 400, message: /not valid JSON/ },
    { name: 'JSON that is not an object', method: 'POST', url: '/v1/webhook', headers: json, payload: '[1,2]', status: 400, message: /Request body must be a JSON object/ },
    { name: 'no body where one is expected', method: 'POST', url: '/v1/webhook', status: 400, message: /Request body must be a JSON object/ },
    { name: 'missing url', method: 'POST', url: '/v1/webhook', headers: json, payload: '{}', status: 400, message: /Missing required field: webhook_url/ },
    { name: 'url of wrong type', method: 'POST', url: '/v1/webhook', headers: json, payload: '{"webhook_url": 42}', status: 400, message: /webhook_url must be string/ },
    { name: 'unknown field', method: 'POST', url: '/v1/webhook', headers: json, payload: '{"webhook_url":"https://hooks.example/x","colour":"red"}', status: 400, message: /Unexpected fields in request body: colour/ },
    { name: 'unknown scheme', method: 'POST', url: '/v1/webhook', headers: json, payload: '{"webhook_url":"https://hooks.example/x","signature_scheme":"md5"}', status: 400, message: /signature_scheme must be one of: cobalt, standard/ },
    { name: 'unknown event type', method: 'POST', url: '/v1/webhook', headers: json, payload: '{"webhook_url":"https://hooks.example/x","event_types":["appointment.exploded"]}', status: 400, message: /event_types.0 must be one of/ },
    { name: 'oversized body', method: 'POST', url: '/v1/webhook', headers: json, payload: JSON.stringify({ webhook_url: `https://hooks.example/${'x'.repeat(5000)}` }), status: 413, message: /too large/ },
    { name: 'form body', method: 'POST', url: '/v1/webhook', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: 'webhook_url=x', status: 415, message: /application\/json/ },
    { name: 'unknown webhook id', method: 'DELETE', url: '/v1/webhook/nope', status: 404, message: /No webhook "nope"/ },
    { name: 'patch with nothing valid', method: 'PATCH', url: `/v1/webhook/${hook.webhook_id}`, headers: json, payload: '{"enabled":"yes"}', status: 400, message: /enabled must be boolean/ },
    { name: 'missing dates', method: 'GET', url: '/v1/appointments', status: 400, message: /Missing required parameters: start_date, end_date/ },
    { name: 'bad date', method: 'GET', url: '/v1/appointments?start_date=2026-13-01&end_date=2026-12-01', status: 400, message: /Invalid date format. Use ISO format \(YYYY-MM-DD\)/ },
    { name: 'reversed dates', method: 'GET', url: '/v1/appointments?start_date=2026-12-05&end_date=2026-12-01', status: 400, message: /end_date must be after start_date/ },
    { name: 'range too long', method: 'GET', url: '/v1/appointments?start_date=2026-01-01&end_date=2026-12-31', status: 400, message: /cannot exceed 93 days/ },
    { name: 'unknown query parameter', method: 'GET', url: '/v1/patients?shoe_size=9', status: 400, message: /Unexpected query parameters: shoe_size/ },
    { name: 'page 0', method: 'GET', url: '/v1/patients?page=0', status: 400, message: /page must be >= 1/ },
    { name: 'page past any offset', method: 'GET', url: '/v1/patients?page=1000000000000000000', status: 400, message: /page must be <= 1000000/ },
    { name: 'event page past any offset', method: 'GET', url: '/v1/webhook-events?page=1000000000000000000', status: 400, message: /page must be <= 1000000/ },
    { name: 'last day of the calendar', method: 'GET', url: '/v1/appointments?start_date=9999-12-31&end_date=9999-12-31', status: 400, message: /dates must be from 1000-01-01 to 9998-12-31/ },
    { name: 'page_size too big', method: 'GET', url: '/v1/webhook-events?page_size=101', status: 400, message: /page_size must be <= 100/ },
    { name: 'page not a number', method: 'GET', url: '/v1/webhook-events?page=two', status: 400, message: /page must be integer/ },
    { name: 'bad delivery_status', method: 'GET', url: '/v1/webhook-events?delivery_status=lost', status: 400, message: /delivery_status must be one of/ },
    { name: 'bad event-log date', method: 'GET', url: '/v1/webhook-events?start_date=yesterday', status: 400, message: /Invalid date format for start_date/ },
    { name: 'settings with extra field', method: 'POST', url: '/v1/settings', headers: json, payload: '{"access_token_reference_id":"a","b":1}', status: 400, message: /Unexpected fields in request body: b/ },
    { name: 'settings without the id', method: 'POST', url: '/v1/settings', headers: json, payload: '{}', status: 400, message: /Missing required field: access_token_reference_id/ },
    { name: 'provider status missing', method: 'PATCH', url: '/v1/providers/x', headers: json, payload: '{}', status: 400, message: /Missing required field: status/ },
    { name: 'bad dob filter', method: 'GET', url: '/v1/patients?dob=1-2-3', status: 400, message: /dob/ },
    { name: 'connection with unknown connector', method: 'POST', url: '/v1/connections', headers: json, payload: '{"connector":"fax","base_url":"https://x.example"}', status: 400, message: /connector must be one of: demo, fhir/ },
    { name: 'connection with bad zone', method: 'POST', url: '/v1/connections', headers: json, payload: '{"connector":"fhir","base_url":"https://x.example","timezone":"Moon/Base"}', status: 400, message: /IANA time zone/ },
    { name: 'admin without token', method: 'POST', url: '/v1/admin/accounts', headers: { ...json, client_id: '', client_secret: '' }, payload: '{"name":"x"}', status: 401, message: /admin token/ },
    { name: 'unknown route', method: 'GET', url: '/v1/teleport', status: 404, message: /No route GET \/v1\/teleport/ },
  ];
  for (const c of cases) {
    const headers = c.headers === undefined ? { ...w.alice } : c.name.startsWith('no ') || c.name.startsWith('wrong') || c.name.startsWith('unknown client') || c.name.startsWith('bad access') ? c.headers : { ...w.alice, ...c.headers };
    const r = await w.app.inject({ method: c.method as 'GET', url: c.url, headers, payload: c.payload });
    assert.equal(r.statusCode, c.status, `${c.name}: ${r.body}`);
    const body = r.json() as { success: boolean; message: string; code: string };
    assert.equal(body.success, false, c.name);
    assert.match(body.message, c.message, c.name);
    assert.equal(typeof body.code, 'string', c.name);
  }
});

it('router-level errors (bad URL encoding, over-long parameters, media types, methods) answer in the API\'s shape, bounded, never echoing the input', async (t) => {
  const w = await apiWorld(t);
  const long = 'x'.repeat(5000);
  const cases: { name: string; method: string; url: string; headers?: Record<string, string>; payload?: string; status: number; message: RegExp }[] = [
    { name: 'a NUL and a non-UTF-8 byte percent-encoded in the path', method: 'DELETE', url: '/v1/webhook/%00%ff', status: 400, message: /bad percent-encoding/ },
    { name: 'a broken percent-encoding', method: 'GET', url: '/v1/%zz', status: 400, message: /bad percent-encoding/ },
    { name: 'a 5,000-character id', method: 'GET', url: `/v1/appointment/${long}`, status: 414, message: /path parameter is too long/ },
    { name: 'a 5,000-character unknown route', method: 'GET', url: `/v1/${long}`, status: 404, message: /^No route GET \/v1\/x+…$/ },
    { name: 'a text/plain body', method: 'POST', url: '/v1/webhook', headers: { 'content-type': 'text/plain' }, payload: 'https://hooks.example/a', status: 415, message: /application\/json/ },
    { name: 'a method the route does not have', method: 'PUT', url: '/v1/webhook', status: 404, message: /No route PUT \/v1\/webhook/ },
    { name: 'broken JSON: where it breaks, once, without quoting it', method: 'POST', url: '/v1/webhook', headers: { 'content-type': 'application/json' }, payload: '{"webhook_url": "https://hooks.example/a", oops}', status: 400, message: /^Request body is not valid JSON at character 44\.$/ },
    { name: 'JSON cut short', method: 'POST', url: '/v1/webhook', headers: { 'content-type': 'application/json; charset=utf-8' }, payload: '{"webhook_url": ', status: 400, message: /^Request body is not valid JSON \(it ends too early\)\.$/ },
    { name: 'prototype poisoning', method: 'POST', url: '/v1/webhook', headers: { 'content-type': 'application/json' }, payload: '{"webhook_url":"https://hooks.example/a","__proto__":{"admin":true}}', status: 400, message: /sets __proto__/ },
  ];
  for (const c of cases) {
    const r = await w.app.inject({ method: c.method as 'GET', url: c.url, headers: { ...w.alice, ...c.headers }, payload: c.payload });
    assert.equal(r.statusCode, c.status, `${c.name}: ${r.body.slice(0, 200)}`);
    const body = r.json() as { success: boolean; message: string; code: string };
    assert.equal(body.success, false, c.name);
    assert.match(body.message, c.message, c.name);
    assert.equal(typeof body.code, 'string', c.name);
    assert.ok(r.body.length < 500, `${c.name}: the answer is short (${r.body.length} bytes), the input not echoed`);
  }
  // The longest id ehrsync stores (255 characters) is addressable: its route answers (not found), not the router or the schema.
  const r = await w.app.inject({ method: 'GET', url: `/v1/appointment/${'a'.repeat(255)}`, headers: { ...w.alice } });
  assert.equal(r.statusCode, 404, r.body.slice(0, 200));
  assert.doesNotMatch((r.json() as { message: string }).message, /^No route/, 'the route itself answered');
});

it('a webhook registered with the caller\'s own secret signs with it; a malformed one is refused by name', async (t) => {
  const w = await apiWorld(t);
  const json = { ...w.alice, 'content-type': 'application/json' };
  const mine = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
  const ok = await w.app.inject({ method: 'POST', url: '/v1/webhook', headers: json, payload: { webhook_url: 'https://hooks.example/own', webhook_secret: mine } });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.equal((ok.json() as { webhook_secret: string }).webhook_secret, mine, 'the receiver started with it verifies the first delivery');
  assert.doesNotThrow(() => new Webhook(mine), 'a valid Standard Webhooks key');
  for (const bad of ['hunter2', 'whsec_', 'whsec_c2hvcnQ=', `whsec_${'A'.repeat(200)}`, 'whsec_not base64!!']) {
    const r = await w.app.inject({ method: 'POST', url: '/v1/webhook', headers: json, payload: { webhook_url: 'https://hooks.example/bad', webhook_secret: bad } });
    assert.equal(r.statusCode, 400, bad);
    assert.match((r.json() as { message: string }).message, /webhook_secret/, bad);
  }
});

it('rate limit: a client over its limit gets 429; requests sent with its client_id from another address do not use up its limit', async (t) => {
  const w = await apiWorld(t, { rateLimitPerSecond: 2 }); // bursts of 4
  const forged = { client_id: w.alice.client_id, client_secret: 'cs_guess' };
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await w.app.inject({ method: 'GET', url: '/v1/webhook', headers: forged, remoteAddress: '203.0.113.9' })).statusCode);
  assert.deepEqual(statuses, [401, 401, 401, 401, 429, 429], 'the sender of the forged requests is limited');
  const own = await w.app.inject({ method: 'GET', url: '/v1/webhook', headers: { ...w.alice }, remoteAddress: '198.51.100.7' });
  assert.equal(own.statusCode, 200, 'alice, from her own address, is not');
  const limited = await w.app.inject({ method: 'GET', url: '/v1/webhook', headers: { ...w.alice }, remoteAddress: '203.0.113.9' });
  assert.deepEqual([limited.statusCode, limited.headers['retry-after']], [429, '1']);
});

it('appointments: a range holding more than 10,000 is refused with a 400 naming the fix, never cut short', async (t) => {
  const w = await apiWorld(t);
  const day = Date.parse('2026-11-03T14:00:00.000Z');
  const upsertAppointments = Array.from({ length: 10_001 }, (_, i) => ({
    id: i.toString(16).padStart(32, '0'),
    record: appointment({ ehr_appointment_id: `A${i}`, datetime: new Date(day + (i % 600) * 60_000).toISOString() }),
  }));
  const run = await w.store.startSyncRun(w.alice.connectionId, API_NOW);
  await w.store.commitSync({ runId: run.id, connectionId: w.alice.connectionId, plan: { ...emptyPlan(w.alice.connectionId, API_NOW, 'alice_clinic'), upsertAppointments }, finishedAt: API_NOW, baselineDone: true, nextSyncAt: API_NOW });
  const all = await w.app.inject({ method: 'GET', url: '/v1/appointments?start_date=2026-11-03&end_date=2026-11-03', headers: { ...w.alice } });
  assert.equal(all.statusCode, 400);
  assert.match((all.json() as { message: string }).message, /More than 10,000 appointments in this range; ask for a shorter range or filter/);
  const some = await w.app.inject({ method: 'GET', url: '/v1/appointments?start_date=2026-11-03&end_date=2026-11-03&patient_mrn=nobody', headers: { ...w.alice } });
  assert.deepEqual([some.statusCode, (some.json() as { appointments: unknown[] }).appointments.length], [200, 0]);
});

it('fuzz: no JSON body or query string produces a 5xx', async (t) => {
  const w = await apiWorld(t);
  const routes: [string, string][] = [
    ['POST', '/v1/webhook'],
    ['PATCH', '/v1/webhook/x'],
    ['POST', '/v1/settings'],
    ['POST', '/v1/connections'],
    ['PATCH', '/v1/providers/x'],
    ['PATCH', `/v1/connections/${w.alice.connectionId}`],
  ];
  const field = fc.constantFrom('webhook_url', 'url', 'signature_scheme', 'retry_policy', 'event_types', 'enabled', 'access_token_reference_id', 'connector', 'base_url', 'timezone', 'status', 'window_past_days', 'status_map', 'config', 'sync_interval_seconds');
  const body = fc.oneof(fc.jsonValue(), fc.dictionary(field, fc.jsonValue()), fc.string());
  await fc.assert(
    fc.asyncProperty(fc.constantFrom(...routes), body, async ([method, url], payload) => {
      const r = await w.app.inject({ method: method as 'POST', url, headers: { ...w.alice, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
      return r.statusCode < 500 && (r.statusCode < 400 || (r.json() as { success: boolean }).success === false);
    }),
    { numRuns: 300 },
  );
  const queryKey = fc.constantFrom('start_date', 'end_date', 'page', 'page_size', 'event_type', 'delivery_status', 'sort', 'dob', 'mrn', 'patient_name', 'limit', 'x');
  await fc.assert(
    fc.asyncProperty(fc.constantFrom('/v1/appointments', '/v1/patients', '/v1/webhook-events', '/v1/sync-runs', '/v1/quarantine'), fc.dictionary(queryKey, fc.string()), async (path, query) => {
      const r = await w.app.inject({ method: 'GET', url: path, query, headers: { ...w.alice } });
      return r.statusCode < 500;
    }),
    { numRuns: 300 },
  );
});
