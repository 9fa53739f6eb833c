/** The fhir connector against a misbehaving FHIR server: HTML, 401, truncated bodies, 429 with Retry-After, 5xx, timeouts, malformed resources — typed errors, failed runs, quarantine, no secrets in messages. */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { createConnector } from '../../src/connectors/registry.js';
import { EhrError } from '../../src/domain/errors.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { FakeClock } from '../helpers/clock.js';
import type { FakeAnswer } from '../helpers/fake-fhir.js';
import { bundle, startFakeFhir } from '../helpers/fake-fhir.js';
import { tempDir } from '../helpers/temp.js';

const box = new SecretBox(SecretBox.generateKey());
const TOKEN = 'sekret-token-4f2a';
const NOW = Date.parse('2031-03-03T12:00:00.000Z');
const WINDOW = { startMs: NOW - 86_400_000, endMs: NOW + 86_400_000 };
const signal = () => new AbortController().signal;

async function fhirWith(t: TestContext, answer: (req: import('node:http').IncomingMessage, n: number) => FakeAnswer, extra: Record<string, unknown> = {}) {
  const fake = await startFakeFhir(answer);
  t.after(() => fake.close());
  const sleeps: number[] = [];
  const connector = createConnector(
    { connector: 'fhir', config: { baseUrl: fake.baseUrl, auth: { type: 'bearer', token: box.encrypt(TOKEN) }, lastUpdated: false, maxRetries: 2, ...extra } },
    { secretBox: box, sleep: async (ms) => void sleeps.push(ms) },
  );
  return { fake, connector, sleeps };
}

async function failure(p: Promise<unknown>): Promise<EhrError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof EhrError, `an EhrError, got ${String(err)}`);
    assert.ok(!err.message.includes(TOKEN), 'the message never carries the credential');
    return err;
  }
  throw new Error('expected a failure');
}

const appt = (id: string, extra: Record<string, unknown> = {}) => ({
  resourceType: 'Appointment',
  id,
  status: 'booked',
  start: '2031-03-03T15:00:00Z',
  end: '2031-03-03T15:20:00Z',
  participant: [{ actor: { reference: 'Patient/p1' } }, { actor: { reference: 'Practitioner/d1', display: 'Dr. Fake' } }],
  ...extra,
});
const patient = { resourceType: 'Patient', id: 'p1', identifier: [{ system: 'urn:mrn', value: 'M1' }], name: [{ given: ['Al'], family: 'Fake' }] };

describe('fhir connector faults', () => {
  it('sends the bearer token, and a 401 fails as ehr_auth_failed without echoing it', async (t) => {
    const { fake, connector } = await fhirWith(t, () => ({ status: 401, body: { resourceType: 'OperationOutcome', issue: [{ code: 'login', diagnostics: `bad token ${TOKEN}` }] } }));
    const e = await failure(connector.readSchedule(WINDOW, { signal: signal() }));
    assert.equal(e.code, 'ehr_auth_failed');
    assert.equal(fake.requests[0]?.headers.authorization, `Bearer ${TOKEN}`);
    assert.equal(fake.requests.length, 1, 'a refused credential is not retried');
  });

  it('a redirect is not followed (it could lead to an internal address with our credentials): ehr_bad_response naming it', async (t) => {
    const { fake, connector } = await fhirWith(t, (req) => (req.url?.includes('/elsewhere') ? { body: bundle([appt('a1')]) } : { status: 302, headers: { location: '/elsewhere/Appointment' }, body: {} }));
    const e = await failure(connector.readSchedule(WINDOW, { signal: signal() }));
    assert.equal(e.code, 'ehr_bad_response');
    assert.match(e.message, /a redirect/);
    assert.ok(!fake.requests.some((r) => r.url.includes('/elsewhere')), 'never followed');
  });

  it('HTML instead of JSON and a truncated body fail as ehr_bad_response', async (t) => {
    const html = await fhirWith(t, () => ({ raw: '<!doctype html><html><body>Login</body></html>' }));
    assert.equal((await failure(html.connector.readSchedule(WINDOW, { signal: signal() }))).code, 'ehr_bad_response');
    const cut = await fhirWith(t, () => ({ raw: '{"resourceType":"Bundle","entry":[{"resource":{"resourceTy', headers: { 'content-type': 'application/fhir+json' } }));
    const e = await failure(cut.connector.readSchedule(WINDOW, { signal: signal() }));
    assert.equal(e.code, 'ehr_bad_response');
    assert.match(e.message, /not complete JSON/);
  });

  it('429 honours Retry-After, then succeeds; 5xx retries a bounded number of times', async (t) => {
    const limited = await fhirWith(t, (_req, n) => (n === 1 ? { status: 429, headers: { 'retry-after': '2' } } : { body: bundle([]) }));
    const read = await limited.connector.readSchedule(WINDOW, { signal: signal() });
    assert.deepEqual(read.appointments, []);
    assert.ok(limited.sleeps.includes(2000), `waited the server's Retry-After (sleeps: ${limited.sleeps.join(',')})`);
    const down = await fhirWith(t, () => ({ status: 503 }));
    assert.equal((await failure(down.connector.readSchedule(WINDOW, { signal: signal() }))).code, 'ehr_unavailable');
    assert.equal(down.fake.requests.length, 3, 'first try + maxRetries (2)');
  });

  it('a server that never answers fails as ehr_timeout', async (t) => {
    const { connector } = await fhirWith(t, () => ({ hang: true }), { timeoutMs: 200, maxRetries: 0 });
    assert.equal((await failure(connector.readSchedule(WINDOW, { signal: signal() }))).code, 'ehr_timeout');
  });

  it('pages by _offset when the server sends no links; a deleted appointment is gone on 404 and on 410', async (t) => {
    const { fake, connector } = await fhirWith(t, (req) => {
      const u = new URL(req.url ?? '', 'http://x');
      if (u.pathname.endsWith('/Appointment/gone404')) return { status: 404, body: { resourceType: 'OperationOutcome' } };
      if (u.pathname.endsWith('/Appointment/gone410')) return { status: 410, body: { resourceType: 'OperationOutcome' } };
      if (u.pathname.endsWith('/Appointment')) {
        const off = Number(u.searchParams.get('_offset') ?? 0);
        const all = ['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => appt(id));
        return { body: { resourceType: 'Bundle', type: 'searchset', entry: all.slice(off, off + 2).map((resource) => ({ resource })) } };
      }
      if (u.pathname.endsWith('/Patient')) return { body: bundle([patient]) };
      return { body: bundle([]) };
    }, { pageSize: 2, mrnSystem: 'urn:mrn' });
    const read = await connector.readSchedule(WINDOW, { signal: signal() });
    assert.deepEqual(read.appointments.map((a) => a.ehr_appointment_id), ['a1', 'a2', 'a3', 'a4', 'a5']);
    assert.ok(fake.requests.some((r) => r.url.includes('date=ge2031-03-02T12')), 'the window goes out as a date parameter');
    assert.deepEqual(await connector.readAppointment('gone404', { signal: signal() }), { found: false });
    assert.deepEqual(await connector.readAppointment('gone410', { signal: signal() }), { found: false });
  });

  it('a failing EHR fails the sync run with a recorded code; malformed resources are quarantined, the good ones synced', async (t) => {
    const store = await openStore(join(tempDir(t), 'ehrsync.db'));
    t.after(() => store.close());
    let mode: 'html' | 'mixed' = 'html';
    const fake = await startFakeFhir((req) => {
      if (mode === 'html') return { raw: '<html>maintenance</html>' };
      const u = new URL(req.url ?? '', 'http://x');
      if (u.pathname.endsWith('/Appointment')) {
        return {
          body: bundle([
            appt('good'),
            appt('nostart', { start: undefined }),
            appt('badtype', { minutesDuration: 'twenty' }),
            appt('weird', { status: 'totally-unknown' }),
            { resourceType: 'Appointment', status: 'booked' },
          ]),
        };
      }
      if (u.pathname.endsWith('/Patient')) return { body: bundle([patient]) };
      return { body: bundle([]) };
    });
    t.after(() => fake.close());
    const account = await store.createAccount({ name: 'Acme', clientId: 'ci_f', clientSecretHash: 'h', now: NOW });
    const connection = await store.createConnection({ accountId: account.id, connector: 'fhir', config: { baseUrl: fake.baseUrl, mrnSystem: 'urn:mrn', lastUpdated: false, maxRetries: 0 }, now: NOW });
    const clock = new FakeClock(NOW);
    const deps = { store, clock, random: () => 0.5, connectorFor: (c: typeof connection) => createConnector(c, { secretBox: box }) };
    const failed = await syncConnection(deps, (await store.getConnection(connection.id))!);
    assert.deepEqual(failed.status === 'failed' && failed.errorCode, 'ehr_bad_response');
    mode = 'mixed';
    clock.advance(60_000);
    const ok = await syncConnection(deps, (await store.getConnection(connection.id))!);
    assert.equal(ok.status, 'succeeded');
    assert.equal(ok.status === 'succeeded' && ok.quarantined, 4, 'no start, wrong type, unknown FHIR status, no id');
  });

  it('one appointment the EHR will not let us read directly is set aside; the clinic\'s other changes still go out', async (t) => {
    const store = await openStore(join(tempDir(t), 'ehrsync.db'));
    t.after(() => store.close());
    let listed = ['a1', 'a2'];
    let a1Status = 'booked';
    let a2Answer = 400;
    const fake = await startFakeFhir((req) => {
      const u = new URL(req.url ?? '', 'http://x');
      if (u.pathname.endsWith('/Appointment/a2')) return { status: a2Answer, body: { resourceType: 'OperationOutcome' } };
      if (u.pathname.endsWith('/Appointment')) return { body: bundle(listed.map((id) => appt(id, id === 'a1' ? { status: a1Status } : { participant: [{ actor: { reference: 'Patient/50%' } }] }))) };
      if (u.pathname.endsWith('/Patient')) return { body: bundle([patient, { ...patient, id: '50%', identifier: [{ system: 'urn:mrn', value: 'M2' }] }]) };
      return { body: bundle([]) };
    });
    t.after(() => fake.close());
    const account = await store.createAccount({ name: 'Acme', clientId: 'ci_d', clientSecretHash: 'h', now: NOW });
    const connection = await store.createConnection({ accountId: account.id, connector: 'fhir', config: { baseUrl: fake.baseUrl, mrnSystem: 'urn:mrn', lastUpdated: false, maxRetries: 0 }, now: NOW });
    const clock = new FakeClock(NOW);
    const deps = { store, clock, random: () => 0.5, connectorFor: (c: typeof connection) => createConnector(c, { secretBox: box }) };
    const baseline = await syncConnection(deps, (await store.getConnection(connection.id))!);
    assert.equal(baseline.status, 'succeeded', 'a patient reference with a stray % is read as written');

    listed = ['a1']; // a2 drops out of the window: moved or deleted? Its direct read answers 400.
    a1Status = 'arrived';
    clock.advance(60_000);
    const run = await syncConnection(deps, (await store.getConnection(connection.id))!);
    assert.equal(run.status, 'succeeded', 'the refused read does not fail the sync');
    const events = await store.listEvents({ accountId: account.id, limit: 10 });
    assert.deepEqual(events.map((e) => e.type).sort(), ['appointment.status_updated', 'appointment.updated'], "a1's check-in goes out; nothing is decided about a2");
    const [q] = await store.listQuarantine(connection.id, 10);
    assert.deepEqual([q?.ehr_id, /direct read failed \(ehr_/.test(q?.reason ?? '')], ['a2', true]);

    a2Answer = 403; // our credentials refused: that is the connection's problem, not one record's
    clock.advance(60_000);
    const refused = await syncConnection(deps, (await store.getConnection(connection.id))!);
    assert.deepEqual([refused.status, refused.status === 'failed' && refused.errorCode], ['failed', 'ehr_auth_failed']);
  });

  it('asks metadata once whether Patient has _lastUpdated (auto), and goes without when it does not', async (t) => {
    let metadataCalls = 0;
    const { connector } = await fhirWith(t, (req) => {
      if (req.url?.endsWith('/metadata')) {
        metadataCalls++;
        return { body: { resourceType: 'CapabilityStatement', rest: [{ mode: 'server', resource: [{ type: 'Patient', searchParam: [{ name: 'identifier', type: 'token' }] }] }] } };
      }
      return { body: bundle([]) };
    }, { lastUpdated: 'auto' });
    assert.equal(connector.capabilities.patientsChangedSince, true, 'assumed until asked');
    await connector.readSchedule(WINDOW, { signal: signal() });
    await connector.readSchedule(WINDOW, { signal: signal() });
    assert.equal(connector.capabilities.patientsChangedSince, false);
    assert.equal(metadataCalls, 1);
  });

  it('writes work against a server with a fake versionId (always "1") that ignores If-None-Exist and Prefer', async (t) => {
    const { fake, connector } = await fhirWith(t, (req) => {
      const u = new URL(req.url ?? '', 'http://x');
      if (req.method === 'PUT') return { body: {} }; // accepts, echoes nothing
      if (u.pathname.endsWith('/Appointment/a1')) return { body: appt('a1', { meta: { versionId: '1' } }) };
      if (u.pathname.endsWith('/Patient')) return { body: bundle([patient]) };
      return { body: bundle([]) };
    }, { writes: true, mrnSystem: 'urn:mrn' });
    const out = await connector.writes!.updateAppointment('a1', { status: 'cancelled', note: 'called in sick' }, { signal: signal(), idempotencyKey: 'job-9' });
    const put = fake.requests.find((r) => r.method === 'PUT');
    assert.equal(put?.headers['if-match'], 'W/"1"');
    assert.equal(put?.url, '/Appointment/a1');
    assert.equal(out.appointment.ehr_appointment_id, 'a1', 'read back after a PUT that answered no resource');
  });

  it('SMART backend services: a signed client assertion buys a token that is cached and sent', async (t) => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    let tokenCalls = 0;
    let assertion = '';
    const fake = await startFakeFhir((req) => {
      if (req.url?.endsWith('/token')) {
        tokenCalls++;
        return { body: { access_token: 'smart-access-1', expires_in: 300, token_type: 'bearer' } };
      }
      return { body: bundle([]) };
    });
    t.after(() => fake.close());
    const origFetch = fetch;
    const spy: typeof fetch = async (input, init) => {
      if (String(input).endsWith('/token')) assertion = new URLSearchParams(String(init?.body)).get('client_assertion') ?? '';
      return origFetch(input, init);
    };
    const connector = createConnector(
      { connector: 'fhir', config: { baseUrl: fake.baseUrl, lastUpdated: false, auth: { type: 'smart-backend', tokenUrl: `${fake.baseUrl}/token`, clientId: 'app-1', privateKey: box.encrypt(pem), keyId: 'k1', alg: 'ES384' } } },
      { secretBox: box, fetch: spy },
    );
    await connector.readSchedule(WINDOW, { signal: signal() });
    await connector.readSchedule(WINDOW, { signal: signal() });
    assert.equal(tokenCalls, 1, 'the token is cached until it expires');
    const searches = fake.requests.filter((r) => !r.url.endsWith('/token'));
    assert.ok(searches.every((r) => r.headers.authorization === 'Bearer smart-access-1'));
    const [h, c] = assertion.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
    assert.deepEqual([h?.alg, h?.kid, c?.iss, c?.sub, c?.aud], ['ES384', 'k1', 'app-1', 'app-1', `${fake.baseUrl}/token`]);
  });
});
