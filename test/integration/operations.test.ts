/** Operation events end to end: API request → durable job → EHR write → one event with job_id, no sync echo. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { MemoryConnector } from '../../src/connectors/memory.js';
import type { EventEnvelope } from '../../src/domain/events.js';
import { OperationRunner } from '../../src/operations/runner.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { apiWorld } from '../helpers/api.js';
import { appointment, patient } from '../helpers/fixtures.js';

async function world(t: TestContext) {
  const w = await apiWorld(t);
  const ehr = new MemoryConnector({ now: () => w.clock.now() });
  ehr.providers.set('dr-denenberg', { ehr_id: 'dr-denenberg', name: 'Dr. Michael Denenberg', npi: null });
  ehr.putPatient(patient({ ehr_patient_id: 'p-804', mrn: '804', first_name: 'John', last_name: 'Doe' }));
  ehr.putAppointment(appointment({ ehr_appointment_id: 'E1', patient_ehr_id: 'p-804', datetime: '2026-11-03T15:00:00.000Z' }));
  const runner = new OperationRunner({ store: w.store, clock: w.clock, connectorFor: () => ehr, owner: 'test', random: () => 0.5 });
  const sync = async () => syncConnection({ store: w.store, clock: w.clock, connectorFor: () => ehr }, (await w.store.getConnection(w.alice.connectionId))!);
  const headers = { ...w.alice, 'content-type': 'application/json' };
  const request = async (method: string, url: string, body?: unknown, extra: Record<string, string> = {}) => {
    const r = await w.app.inject({ method: method as 'POST', url, headers: { ...headers, ...extra }, payload: body === undefined ? undefined : JSON.stringify(body) });
    return { status: r.statusCode, body: r.json() as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  };
  const run = async () => {
    await runner.tick();
    await runner.idle();
  };
  const events = async () => (await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).map((e) => JSON.parse(e.body) as EventEnvelope);
  await sync(); // baseline: the patient, the provider and E1 are known
  return { ...w, ehr, runner, sync, request, run, events };
}

const booking = { mrn: '804', provider: 'dr-denenberg', date: '2026-11-05', time: '9:30 am', location: '3', type: 'FOLLOW-UP' };

describe('operations', () => {
  it('a booking yields exactly one appointment.created with job_id, and no sync echo over the next syncs', async (t) => {
    const w = await world(t);
    const accepted = await w.request('POST', '/v1/appointments', booking);
    assert.equal(accepted.status, 200);
    assert.equal(accepted.body.data.message, 'Appointment processing. A webhook event will be sent upon completion.');
    const { job_id } = accepted.body;
    await w.run();
    const [created] = await w.events();
    assert.equal(created?.type, 'appointment.created');
    assert.equal(created?.job_id, job_id);
    assert.deepEqual(Object.keys(created ?? {}), ['id', 'access_token_reference_id', 'object', 'created', 'type', 'job_id', 'data']);
    const data = created?.data as EventEnvelope<'appointment.created'>['data'];
    assert.equal(data.appointment_id, accepted.body.data.appointment_id, 'the id promised in the response');
    // 9:30 am in New York on 2026-11-05 (EST) is 14:30Z.
    assert.equal(data.date_time, '2026-11-05T14:30:00.000Z');
    assert.equal(data.mrn, '804');

    for (let i = 0; i < 3; i++) {
      w.clock.advance(60_000);
      await w.sync();
    }
    assert.equal((await w.events()).length, 1, 'the next syncs do not announce our own write again');
    const log = await w.request('GET', `/v1/webhook-events?job_id=${job_id}`);
    assert.deepEqual(log.body.webhook_events.map((e: { event_type: string }) => e.event_type), ['appointment.created']);
    const job = await w.request('GET', `/v1/jobs/${job_id}`);
    assert.deepEqual([job.body.job.status, job.body.job.attempts], ['succeeded', 1]);

    // A later change by staff to the same appointment is a sync event again.
    const ehrId = job.body.job.ehr_id as string;
    w.ehr.updateAppointment(ehrId, { status: 'arrived' });
    await w.sync();
    const types = (await w.events()).map((e) => [e.type, e.job_id ?? null]);
    assert.deepEqual(types.slice(1), [
      ['appointment.updated', null],
      ['appointment.status_updated', null],
    ]);
    const appt = await w.request('GET', `/v1/appointment/${data.appointment_id}`);
    assert.equal(appt.body.appointments.object_metadata.source, 'cobalt_operation');
  });

  it('Idempotency-Key: a retried request returns the same job; the same key with another body is a 409', async (t) => {
    const w = await world(t);
    const a = await w.request('POST', '/v1/appointments', booking, { 'idempotency-key': 'k-1' });
    const b = await w.request('POST', '/v1/appointments', booking, { 'idempotency-key': 'k-1' });
    assert.equal(b.body.job_id, a.body.job_id);
    assert.equal(b.body.data.appointment_id, a.body.data.appointment_id);
    const c = await w.request('POST', '/v1/appointments', { ...booking, location: '4' }, { 'idempotency-key': 'k-1' });
    assert.equal(c.status, 409);
    await w.run();
    assert.equal(w.ehr.calls.writes, 1, 'written once');
    assert.equal((await w.events()).length, 1);
  });

  it('a transiently failing EHR is retried with backoff, then succeeds; exhausted retries end in appointment.failed', async (t) => {
    const w = await world(t);
    w.ehr.failNextWrites = 2;
    const ok = await w.request('POST', '/v1/appointments', booking);
    await w.run();
    assert.equal((await w.request('GET', `/v1/jobs/${ok.body.job_id}`)).body.job.status, 'queued');
    for (let i = 0; i < 3; i++) {
      w.clock.advance(15_000);
      await w.run();
    }
    const job = (await w.request('GET', `/v1/jobs/${ok.body.job_id}`)).body.job;
    assert.deepEqual([job.status, job.attempts], ['succeeded', 3]);

    w.ehr.failNextWrites = 100;
    const doomed = await w.request('POST', '/v1/appointments', { ...booking, date: '2026-11-06' });
    for (let i = 0; i < 8; i++) {
      await w.run();
      w.clock.advance(90_000);
    }
    const failed = (await w.events()).find((e) => e.job_id === doomed.body.job_id);
    assert.equal(failed?.type, 'appointment.failed');
    const fd = failed?.data as EventEnvelope<'appointment.failed'>['data'];
    assert.equal(fd.appointment_id, doomed.body.data.appointment_id);
    assert.deepEqual(fd.reasons.map((r) => r.code), ['ehr_unavailable']);
    assert.match(fd.failure_reason, /could not be written/);
    assert.equal((await w.request('GET', `/v1/jobs/${doomed.body.job_id}`)).body.job.attempts, 5);
  });

  it('unknown provider, unknown patient, double booking and an EHR refusal end in appointment.failed with reasons', async (t) => {
    const w = await world(t);
    const cases: [Record<string, unknown>, string][] = [
      [{ ...booking, provider: 'dr-nobody' }, 'unknown_provider'],
      [{ ...booking, mrn: '000' }, 'unknown_patient'],
      // E1 is 15:00Z–15:20Z on the 3rd; 10:10 am New York is 15:10Z.
      [{ ...booking, date: '2026-11-03', time: '10:10 am', prevent_double_booking: 'true' }, 'double_booking'],
    ];
    for (const [body, code] of cases) {
      const r = await w.request('POST', '/v1/appointments', body);
      await w.run();
      const e = (await w.events()).find((x) => x.job_id === r.body.job_id);
      assert.equal(e?.type, 'appointment.failed', code);
      assert.deepEqual((e?.data as EventEnvelope<'appointment.failed'>['data']).reasons.map((x) => x.code), [code]);
    }
    w.ehr.rejectWritesWith = 'slot is blocked';
    const refused = await w.request('POST', '/v1/appointments', booking);
    await w.run();
    const e = (await w.events()).find((x) => x.job_id === refused.body.job_id);
    assert.deepEqual((e?.data as EventEnvelope<'appointment.failed'>['data']).reasons, [{ code: 'ehr_rejected', description: 'The EHR rejected the write: slot is blocked' }]);
    assert.equal(w.ehr.calls.writes, 1, 'the checks failed before writing; only the refused write reached the EHR');
  });

  it('a status change through the API: appointment.updated and status_updated with job_id, no echo', async (t) => {
    const w = await world(t);
    const [appt] = (await w.request('GET', '/v1/appointments?start_date=2026-11-01&end_date=2026-11-10')).body.appointments;
    const r = await w.request('PATCH', `/v1/appointments/${appt.id}`, { status: 'cancelled' });
    assert.equal(r.status, 200);
    await w.run();
    const evs = await w.events();
    assert.deepEqual(evs.map((e) => [e.type, e.job_id]), [
      ['appointment.updated', r.body.job_id],
      ['appointment.status_updated', r.body.job_id],
    ]);
    assert.deepEqual((evs[0]?.data as EventEnvelope<'appointment.updated'>['data']).updated_fields, { status: 'cancelled' });
    assert.deepEqual((evs[1]?.data as EventEnvelope<'appointment.status_updated'>['data']).previous_status, 'scheduled');
    await w.sync();
    assert.equal((await w.events()).length, 2);
    assert.equal((await w.request('PATCH', `/v1/appointments/${appt.id}`, { status: 'teleported' })).status, 400);
    assert.equal((await w.request('PATCH', `/v1/appointments/${appt.id}`, { status: 'n' })).status, 200, "the EHR's own code for a no-show (the demo connector's status map) is accepted");
  });

  it('patients: create gives patient.created, update gives patient.updated, both with job_id and without echo', async (t) => {
    const w = await world(t);
    const created = await w.request('POST', '/v1/patients', { first_name: 'Ada', last_name: 'Byron', dob: '1990-12-10', sex: 'Female', phone: '555-0100' });
    assert.equal(created.status, 200);
    await w.run();
    const [pc] = await w.events();
    assert.equal(pc?.type, 'patient.created');
    assert.equal((pc?.data as EventEnvelope<'patient.created'>['data']).patient_id, created.body.patient_id);
    const updated = await w.request('PATCH', `/v1/patients/${created.body.patient_id}`, { phone: '555-0199', email: 'ada@example.com' });
    await w.run();
    const pu = (await w.events())[1];
    assert.deepEqual([pu?.type, pu?.job_id], ['patient.updated', updated.body.job_id]);
    assert.deepEqual(pu?.data, { mrn: (pc?.data as { mrn: string }).mrn, patient_name: 'Ada Byron', updated_fields: { phone: '555-0199', email: 'ada@example.com' } });
    w.clock.advance(600_000);
    await w.sync();
    assert.equal((await w.events()).length, 2);
    assert.match((await w.request('POST', '/v1/patients', { first_name: 'X' })).body.message, /Missing required fields: last_name, dob, sex/);
    assert.match((await w.request('PATCH', `/v1/patients/${created.body.patient_id}`, { first_name: 'Y' })).body.message, /Unexpected fields in request body: first_name/);
  });

  it('erasing a patient also erases the finished writes about them and the events those writes produced, and nobody else\'s', async (t) => {
    const w = await world(t);
    // Another patient whose appointment's EHR id equals John's patient id (FHIR ids are unique per type only).
    w.ehr.putPatient(patient({ ehr_patient_id: 'p-900', mrn: '900', first_name: 'Mary', last_name: 'Major' }));
    w.ehr.putAppointment(appointment({ ehr_appointment_id: 'p-804', patient_ehr_id: 'p-900', patient_mrn: '900', patient_name: 'Mary Major', datetime: '2026-11-04T15:00:00.000Z' }));
    await w.sync();
    const marys = (await w.request('GET', '/v1/appointments?start_date=2026-11-04&end_date=2026-11-04')).body.appointments as { id: string }[];
    assert.equal(marys.length, 1);
    const mary = await w.request('PATCH', `/v1/appointments/${marys[0]!.id}`, { status: 'cancelled' });
    const booked = await w.request('POST', '/v1/appointments', booking);
    const refused = await w.request('POST', '/v1/appointments', { ...booking, provider: 'dr-nobody' }); // appointment.failed, no patient id on it
    const [john] = (await w.request('GET', '/v1/patients?mrn=804')).body.patients;
    const edited = await w.request('PATCH', `/v1/patients/${john.id}`, { phone: '555-0142' });
    const ada = await w.request('POST', '/v1/patients', { first_name: 'Ada', last_name: 'Byron', dob: '1990-12-10', sex: 'Female' });
    await w.run();
    await w.run(); // a tick claims a few writes at a time
    const jobs = [booked, refused, edited].map((r) => r.body.job_id as string);
    assert.deepEqual((await w.events()).filter((e) => jobs.includes(e.job_id as string)).map((e) => e.type).sort(), ['appointment.created', 'appointment.failed', 'patient.updated']);

    const erased = await w.store.erasePatient(w.alice.connectionId, 'p-804');
    assert.equal(erased.operations, 3, 'the booking, the refused booking that named the MRN, the phone change');
    for (const job of jobs) assert.equal((await w.request('GET', `/v1/jobs/${job}`)).status, 404, job);
    const left = await w.events();
    assert.deepEqual(left.filter((e) => e.job_id !== null && e.job_id !== undefined).map((e) => e.job_id).sort(), [ada.body.job_id, mary.body.job_id, mary.body.job_id].sort(), "Ada's and Mary's writes and their events remain");
    for (const job of [ada.body.job_id, mary.body.job_id]) assert.equal((await w.request('GET', `/v1/jobs/${job}`)).status, 200, job);
    const stored = JSON.stringify(left.filter((e) => !JSON.stringify(e).includes('Mary')));
    assert.ok(!stored.includes('"804"') && !stored.includes('555-0142') && !stored.includes('Doe'), 'nothing of John left in events');
  });

  it('retention purges finished writes (their requests hold PHI) with the events, in the purge\'s last call', async (t) => {
    const w = await world(t);
    const booked = await w.request('POST', '/v1/appointments', booking);
    await w.run();
    const job = `/v1/jobs/${booked.body.job_id}`;
    assert.equal(await w.store.purgeEvents(w.clock.now() - 1, 1000), 0);
    assert.equal((await w.request('GET', job)).status, 200, 'not older than the cutoff: kept');
    w.clock.advance(60_000);
    let purged = 0;
    for (let n = 1; n > 0; purged += n) n = await w.store.purgeEvents(w.clock.now(), 1);
    assert.ok(purged >= 1, 'events go in batches of one');
    assert.equal((await w.request('GET', job)).status, 404, 'the finished write is gone too');
  });

  it('a sync that read the EHR before an operation committed does not overwrite or echo it', async (t) => {
    const w = await world(t);
    // The sync loads the projection, then its EHR read is held until the operation has written
    // AND committed: the read then contains the new appointment that the loaded projection lacks.
    const r = await w.request('POST', '/v1/appointments', booking);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let entered!: () => void;
    const readStarted = new Promise<void>((resolve) => (entered = resolve));
    const original = w.ehr.readSchedule.bind(w.ehr);
    w.ehr.readSchedule = async (window, opts) => {
      entered();
      await gate;
      return original(window, opts);
    };
    const racing = w.sync();
    await readStarted;
    await w.run();
    release();
    const out = await racing;
    assert.equal(out.status === 'failed' && out.errorCode, 'conflict', 'the stale sync is refused');
    await w.sync();
    assert.deepEqual((await w.events()).map((e) => e.job_id), [r.body.job_id], 'one event, from the operation');
  });
});
