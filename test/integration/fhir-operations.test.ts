/** Operation events through the fhir connector's writes, against the demo EHR and Medplum's router over HTTP: one appointment.created with job_id, no sync echo, a later staff change is a sync event. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { Appointment, Patient, Practitioner } from '@medplum/fhirtypes';
import type { EhrConnector } from '../../src/connectors/connector.js';
import { createConnector } from '../../src/connectors/registry.js';
import type { EventEnvelope } from '../../src/domain/events.js';
import { mrnOf } from '../../src/demo-ehr/clinic.js';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import { OperationRunner } from '../../src/operations/runner.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { apiWorld } from '../helpers/api.js';
import { startMedplum } from '../helpers/medplum-server.js';
import { tempDir } from '../helpers/temp.js';
import { SecretBox } from '../../src/domain/secrets.js';

const box = new SecretBox(SecretBox.generateKey());

interface Peer {
  connector: EhrConnector;
  mrn: string;
  providerId: string;
  /** Staff change the appointment's status in the EHR, outside ehrsync. */
  staffCheckIn(ehrId: string): Promise<void>;
  /** How many appointments carry this job id. */
  countByJob(jobId: string): Promise<number>;
}

async function demoPeer(t: TestContext, now: () => number): Promise<Peer> {
  const ehr = await startDemoEhr({ dataDir: tempDir(t), port: 0, now, nativeStatuses: true, clinicSize: { providers: 2, patients: 10, daysBack: 1, daysAhead: 3, perProviderDay: 2 } });
  t.after(() => ehr.close());
  return {
    connector: createConnector({ connector: 'demo', config: { baseUrl: ehr.url } }, { secretBox: box, now }),
    mrn: mrnOf(ehr.clinic.all('Patient')[0]!),
    providerId: ehr.clinic.all('Practitioner')[0]!.id,
    async staffCheckIn(id) {
      ehr.clinic.setStatus(id, 'checked-in');
    },
    async countByJob(job) {
      return ehr.clinic.store.search({ type: 'Appointment', identifier: { system: 'urn:ehrsync:job', value: job }, count: 10, offset: 0 }).total;
    },
  };
}

async function medplumPeer(t: TestContext): Promise<Peer> {
  const server = await startMedplum();
  t.after(() => server.close());
  const repo = server.repo;
  const dr = await repo.createResource<Practitioner>({ resourceType: 'Practitioner', name: [{ prefix: ['Dr.'], given: ['Mel'], family: 'Plum' }] });
  const p = await repo.createResource<Patient>({ resourceType: 'Patient', identifier: [{ system: 'urn:test:mrn', value: '804' }], name: [{ given: ['John'], family: 'Doe' }] });
  await repo.createResource<Appointment>({ resourceType: 'Appointment', status: 'booked', start: '2026-11-03T15:00:00.000Z', end: '2026-11-03T15:20:00.000Z', participant: [{ actor: { reference: `Patient/${p.id}` }, status: 'accepted' }, { actor: { reference: `Practitioner/${dr.id}` }, status: 'accepted' }] });
  return {
    connector: createConnector({ connector: 'fhir', config: { baseUrl: server.baseUrl, mrnSystem: 'urn:test:mrn', writes: true, lastUpdated: true } }, { secretBox: box }),
    mrn: '804',
    providerId: dr.id as string,
    async staffCheckIn(id) {
      const a = await repo.readResource<Appointment>('Appointment', id);
      await repo.updateResource<Appointment>({ ...a, status: 'checked-in' });
    },
    async countByJob(job) {
      return (await repo.searchResources<Appointment>({ resourceType: 'Appointment', filters: [{ code: 'identifier', operator: 'eq' as never, value: `urn:ehrsync:job|${job}` }] })).length;
    },
  };
}

for (const [name, make] of [
  ['demo EHR (native statuses)', (t: TestContext, now: () => number) => demoPeer(t, now)],
  ['Medplum fhir-router', (t: TestContext) => medplumPeer(t)],
] as const) {
  describe(`operations through the fhir connector: ${name}`, () => {
    it('a booking yields exactly one appointment.created with job_id and no sync echo; a rerun job does not write twice', async (t) => {
      const w = await apiWorld(t);
      const peer = await make(t, () => w.clock.now());
      const runner = new OperationRunner({ store: w.store, clock: w.clock, connectorFor: () => peer.connector, owner: 'test', random: () => 0.5 });
      const sync = async () => syncConnection({ store: w.store, clock: w.clock, connectorFor: () => peer.connector }, (await w.store.getConnection(w.alice.connectionId))!);
      const events = async () => (await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).map((e) => JSON.parse(e.body) as EventEnvelope);
      const request = async (method: string, url: string, body?: unknown) => {
        const r = await w.app.inject({ method: method as 'POST', url, headers: { ...w.alice, 'content-type': 'application/json' }, payload: body === undefined ? undefined : JSON.stringify(body) });
        return r.json() as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      };
      assert.equal((await sync()).status, 'succeeded', 'baseline');
      const before = (await events()).length;

      const accepted = await request('POST', '/v1/appointments', { mrn: peer.mrn, provider: peer.providerId, date: '2026-11-05', time: '9:30 am', location: '3', type: 'FOLLOW-UP' });
      const jobId = accepted.job_id as string;
      assert.ok(jobId, JSON.stringify(accepted));
      await runner.tick();
      await runner.idle();
      const created = (await events()).slice(before);
      assert.deepEqual(created.map((e) => [e.type, e.job_id]), [['appointment.created', jobId]]);
      assert.equal((created[0]!.data as EventEnvelope<'appointment.created'>['data']).date_time, '2026-11-05T14:30:00.000Z');
      assert.equal(await peer.countByJob(jobId), 1);

      // The same job written again (a crash after the write, before the commit) finds the first.
      const again = await peer.connector.writes!.createAppointment(
        { patient_ehr_id: 'ignored-because-found', provider_ehr_id: peer.providerId, secondary_provider_ehr_id: null, datetime: '2026-11-05T14:30:00.000Z', duration: 20, location: '3', appointment_type: 'FOLLOW-UP', appointment_mode: null, note: null },
        { signal: new AbortController().signal, idempotencyKey: jobId },
      );
      assert.equal(await peer.countByJob(jobId), 1, 'still one appointment for the job');

      for (let i = 0; i < 3; i++) {
        w.clock.advance(60_000);
        assert.equal((await sync()).status, 'succeeded');
      }
      assert.equal((await events()).length, before + 1, 'no sync echo of our own write');

      await peer.staffCheckIn(String(again.appointment.ehr_appointment_id));
      w.clock.advance(60_000);
      await sync();
      const later = (await events()).slice(before + 1).map((e) => [e.type, e.job_id ?? null]);
      assert.deepEqual(later, [['appointment.updated', null], ['appointment.status_updated', null]]);
    });

    it('a worker that dies after the EHR write, before the commit: another worker reconciles by reading back, one appointment, one event', async (t) => {
      const w = await apiWorld(t);
      const peer = await make(t, () => w.clock.now());
      const sync = async () => syncConnection({ store: w.store, clock: w.clock, connectorFor: () => peer.connector }, (await w.store.getConnection(w.alice.connectionId))!);
      assert.equal((await sync()).status, 'succeeded', 'baseline');
      const before = (await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).length;
      const r = await w.app.inject({ method: 'POST', url: '/v1/appointments', headers: { ...w.alice, 'content-type': 'application/json' }, payload: JSON.stringify({ mrn: peer.mrn, provider: peer.providerId, date: '2026-11-05', time: '10:30 am', location: '3', type: 'FOLLOW-UP' }) });
      const jobId = (r.json() as { job_id: string }).job_id;
      // Worker A writes to the EHR, then freezes forever before committing: as good as killed.
      let wrote!: () => void;
      const written = new Promise<void>((resolve) => (wrote = resolve));
      const dying = new OperationRunner({ store: w.store, clock: w.clock, connectorFor: () => peer.connector, owner: 'a', random: () => 0.5, afterWrite: () => { wrote(); return new Promise<void>(() => {}); } });
      void dying.tick();
      await written;
      assert.equal(await peer.countByJob(jobId), 1);
      assert.equal((await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).length, before, 'nothing committed yet');
      // Its lease runs out; worker B takes the job over.
      w.clock.advance(30 * 60_000);
      const survivor = new OperationRunner({ store: w.store, clock: w.clock, connectorFor: () => peer.connector, owner: 'b', random: () => 0.5 });
      await survivor.tick();
      await survivor.idle();
      assert.equal(await peer.countByJob(jobId), 1, 'the EHR still holds one appointment for the job');
      const after = (await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).slice(before).map((e) => JSON.parse(e.body) as EventEnvelope);
      assert.deepEqual(after.map((e) => [e.type, e.job_id]), [['appointment.created', jobId]]);
      w.clock.advance(60_000);
      await sync();
      assert.equal((await w.store.listEvents({ accountId: w.alice.accountId, limit: 1000 })).length, before + 1, 'no sync echo');
    });
  });
}
