/** The sync engine end to end: memory EHR → detection → real SQLite file, including faults. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { MemoryConnector } from '../../src/connectors/memory.js';
import { EhrError } from '../../src/domain/errors.js';
import type { EventEnvelope } from '../../src/domain/events.js';
import { openStore } from '../../src/store/open.js';
import { SyncScheduler } from '../../src/sync/scheduler.js';
import type { SyncEngineDeps } from '../../src/sync/sync-engine.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { FakeClock } from '../helpers/clock.js';
import { appointment, patient } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/temp.js';

const NOW = Date.parse('2025-07-28T15:00:00.000Z');

async function world(t: TestContext) {
  const store = await openStore(join(tempDir(t), 'ehrsync.db'));
  t.after(() => store.close());
  const clock = new FakeClock(NOW);
  const ehr = new MemoryConnector({ now: () => clock.now() });
  ehr.putPatient(patient({ ehr_patient_id: 'p-804', mrn: '804', first_name: 'John', last_name: 'Doe' }));
  ehr.putAppointment(appointment({ patient_ehr_id: 'p-804' }));
  const account = await store.createAccount({ name: 'Acme', clientId: 'ci_acme', clientSecretHash: 'h', now: NOW });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_1', now: NOW });
  await store.createEndpoint({ accountId: account.id, url: 'https://hooks.example/ehr', secret: 's', now: NOW });
  const deps: SyncEngineDeps = { store, clock, connectorFor: () => ehr, random: () => 0.5 };
  const sync = async () => syncConnection(deps, (await store.getConnection(connection.id))!);
  const events = async (): Promise<EventEnvelope[]> => (await store.listEvents({ accountId: account.id, limit: 1000 })).map((e) => JSON.parse(e.body) as EventEnvelope);
  return { store, clock, ehr, account, connection, deps, sync, events };
}

describe('sync engine', () => {
  it('baseline emits nothing; staff changes then arrive as exact events with deliveries; a re-read emits nothing', async (t) => {
    const w = await world(t);
    const first = await w.sync();
    assert.deepEqual(first, { status: 'succeeded', runId: first.runId, counts: {}, quarantined: 0, baseline: true });

    w.ehr.updateAppointment('482129', { status: '2' });
    w.ehr.updatePatient('p-804', { phone: '555-0000' });
    w.clock.advance(60_000);
    const second = await w.sync();
    assert.equal(second.status, 'succeeded');
    const evs = await w.events();
    assert.deepEqual(evs.map((e) => e.type), ['patient.updated', 'appointment.updated', 'appointment.status_updated']);
    assert.deepEqual((evs[1] as EventEnvelope<'appointment.updated'>).data.updated_fields, { status: '2' });
    assert.deepEqual((evs[2] as EventEnvelope<'appointment.status_updated'>).data, {
      id: (evs[1] as EventEnvelope<'appointment.updated'>).data.id,
      ehr_appointment_id: '482129',
      patient_mrn: '804',
      patient_name: 'John Doe',
      datetime: '2025-07-28T16:00:00.000Z',
      status: 'checked-in',
      previous_status: 'scheduled',
      provider_name: 'Dr. Michael Denenberg',
    });
    for (const e of evs) assert.equal((await w.store.listDeliveries(e.id)).length, 1, `one delivery per subscribed endpoint for ${e.type}`);

    w.clock.advance(60_000);
    await w.sync();
    assert.equal((await w.events()).length, 3, 'an unchanged EHR produces no events');
  });

  it('a failing EHR fails the run with its code, leaves the projection untouched and backs off', async (t) => {
    const w = await world(t);
    await w.sync();
    const before = await w.store.loadProjection(w.connection.id);
    w.ehr.updateAppointment('482129', { status: 'cancelled' });
    w.ehr.failWith = new EhrError('ehr_unavailable', 'EHR answered 503');
    const out = await w.sync();
    assert.deepEqual(out.status === 'failed' && [out.errorCode, out.errorMessage], ['ehr_unavailable', 'EHR answered 503']);
    assert.deepEqual(await w.store.loadProjection(w.connection.id), before);
    assert.equal((await w.events()).length, 0);
    const c = await w.store.getConnection(w.connection.id);
    assert.equal(c?.consecutiveFailures, 1);
    assert.ok((c?.nextSyncAt ?? 0) - NOW > c!.syncIntervalMs, 'the next attempt waits longer than the interval');

    w.ehr.failWith = null;
    await w.sync();
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.updated', 'appointment.status_updated'], 'the change arrives once the EHR recovers');
  });

  it('an EHR that never answers is cut off by the timeout and recorded as ehr_timeout', async (t) => {
    const w = await world(t);
    w.ehr.hang = true;
    const out = await syncConnection({ ...w.deps, timeoutMs: 50 }, w.connection);
    assert.equal(out.status === 'failed' && out.errorCode, 'ehr_timeout');
    assert.equal((await w.store.listSyncRuns(w.connection.id, 1))[0]?.errorCode, 'ehr_timeout');
  });

  it('an appointment moved out of the window is confirmed by a direct read and reported as updated, not deleted', async (t) => {
    const w = await world(t);
    await w.sync();
    w.ehr.updateAppointment('482129', { datetime: '2026-03-01T14:00:00.000Z' });
    await w.sync();
    const [e] = (await w.events()) as EventEnvelope<'appointment.updated'>[];
    assert.equal(e?.type, 'appointment.updated');
    assert.deepEqual(e?.data.updated_fields, { datetime: '2026-03-01T14:00:00.000Z' });
    const reads = w.ehr.calls.readAppointment;
    await w.sync();
    assert.equal(w.ehr.calls.readAppointment, reads, 'once known to be outside the window it is not read again');
  });

  it('a hard-deleted appointment is appointment.deleted after the direct read says gone', async (t) => {
    const w = await world(t);
    await w.store.updateEndpoint((await w.store.listEndpoints(w.account.id))[0]!.id, { eventTypes: ['appointment.deleted'] });
    await w.sync();
    w.ehr.deleteAppointment('482129');
    await w.sync();
    const evs = await w.events();
    assert.deepEqual(evs.map((e) => e.type), ['appointment.deleted']);
    assert.equal((await w.store.listDeliveries(evs[0]!.id)).length, 1, 'delivered to the endpoint that subscribed to the extension');
    assert.equal((await w.store.loadProjection(w.connection.id)).appointments.size, 0);
  });

  it('inactive providers are not synced', async (t) => {
    const w = await world(t);
    await w.sync();
    const [provider] = await w.store.listProviders(w.connection.id);
    await w.store.setProviderStatus(w.connection.id, provider!.id, 'inactive');
    w.ehr.updateAppointment('482129', { status: 'cancelled' });
    w.ehr.putAppointment(appointment({ ehr_appointment_id: 'NEW', patient_ehr_id: 'p-804' }));
    await w.sync();
    assert.deepEqual(await w.events(), []);
  });

  it('patients edited without an appointment change are found through changed-since', async (t) => {
    const w = await world(t);
    // A patient without an appointment in the window, edited just before the baseline.
    w.ehr.putPatient(patient({ ehr_patient_id: 'p-quiet' }));
    await w.sync();
    w.clock.advance(60_000);
    w.ehr.updatePatient('p-804', { email: 'john@new.example' });
    await w.sync();
    const evs = await w.events();
    // Not patient.created for the quiet patient: the baseline read recent changes too.
    assert.deepEqual(evs.map((e) => e.type), ['patient.updated']);
    assert.deepEqual((evs[0] as EventEnvelope<'patient.updated'>).data.updated_fields, { email: 'john@new.example' });
  });

  it('malformed records are quarantined and counted while the rest sync', async (t) => {
    const w = await world(t);
    await w.sync();
    w.ehr.extraAppointments.push({ ...appointment({ ehr_appointment_id: 'BROKEN' }), datetime: '28/07/2025' });
    w.ehr.putAppointment(appointment({ ehr_appointment_id: 'FINE', patient_ehr_id: 'p-804' }));
    const out = await w.sync();
    assert.equal(out.status === 'succeeded' && out.quarantined, 1);
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created']);
    const [q] = await w.store.listQuarantine(w.connection.id, 10);
    assert.equal(q?.ehr_id, 'BROKEN');
    assert.match(q?.reason ?? '', /datetime/);
  });

  it('scheduler: a failing connection backs off while a healthy one keeps syncing', async (t) => {
    const w = await world(t);
    const broken = new MemoryConnector();
    broken.failWith = new EhrError('ehr_unavailable', 'down');
    const other = await w.store.createConnection({ accountId: w.account.id, connector: 'memory', now: NOW });
    const scheduler = new SyncScheduler({ ...w.deps, connectorFor: (c) => (c.id === other.id ? broken : w.ehr) }, { owner: 'test', concurrency: 2 });
    for (let minute = 0; minute < 5; minute++) {
      await scheduler.tick();
      await scheduler.idle();
      w.clock.advance(61_000);
    }
    const healthyRuns = await w.store.listSyncRuns(w.connection.id, 100);
    const brokenRuns = await w.store.listSyncRuns(other.id, 100);
    assert.ok(healthyRuns.length >= 4 && healthyRuns.every((r) => r.status === 'succeeded'), `healthy runs: ${healthyRuns.length}`);
    assert.ok(brokenRuns.length < healthyRuns.length, `broken: ${brokenRuns.length} < healthy: ${healthyRuns.length}`);
    assert.ok(brokenRuns.every((r) => r.status === 'failed' && r.errorCode === 'ehr_unavailable'));
  });
});

