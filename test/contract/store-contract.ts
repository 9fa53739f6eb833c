/**
 * The Store contract: one suite every Store implementation passes (SQLite now, PostgreSQL next).
 * Call `storeContract(name, open)` from a test file; `open` returns a fresh, migrated, empty store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { EventEnvelope } from '../../src/domain/events.js';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';
import type { SyncInput } from '../../src/detection/plan.js';
import type { SyncPlan } from '../../src/domain/projection.js';
import { planSync } from '../../src/detection/plan.js';
import type { DeliveryOutcome, LeasedDelivery } from '../../src/domain/delivery.js';
import type { Store } from '../../src/store/ports.js';
import type { StoredEventInput } from '../../src/domain/events.js';
import { appointment, patient } from '../helpers/fixtures.js';

/** Opens a fresh, migrated, empty store for one test. */
export type OpenStore = (t: TestContext) => Promise<Store>;

const T0 = Date.parse('2026-11-02T15:00:00.000Z');

let n = 0;

function plan(connectionId: string, over: Partial<SyncInput> = {}): SyncPlan {
  return planSync({
    connection: { id: connectionId, referenceId: 'clinic_1', timezone: 'UTC', statusMap: DEFAULT_STATUS_MAP },
    now: T0,
    baseline: null,
    projection: { appointments: new Map(), patients: new Map() },
    providers: new Map(),
    appointmentReads: [],
    patientReads: [],
    seenProviders: [],
    goneAppointmentIds: [],
    connectorQuarantine: [],
    newId: () => `${connectionId.slice(0, 8)}${String(++n).padStart(24, '0')}`,
    ...over,
  });
}

async function setup(store: Store) {
  const account = await store.createAccount({ name: 'Acme Health', clientId: `ci_${Math.random()}`, clientSecretHash: 'hash', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_1', now: T0 });
  return { account, connection };
}

/** Registers the contract suite for one implementation. */
export function storeContract(name: string, open: OpenStore): void {
  describe(`Store contract: ${name}`, () => {
    it('accounts: created, found by client id with the secret hash, listed', async (t) => {
      const store = await open(t);
      const a = await store.createAccount({ name: 'Acme', clientId: 'ci_acme', clientSecretHash: 'h1', now: T0 });
      const found = await store.findAccountByClientId('ci_acme');
      assert.deepEqual(found, { account: a, clientSecretHash: 'h1' });
      assert.equal(await store.findAccountByClientId('ci_other'), null);
      assert.deepEqual(await store.getAccount(a.id), a);
      assert.deepEqual(await store.listAccounts(), [a]);
      await assert.rejects(store.createAccount({ name: 'Dup', clientId: 'ci_acme', clientSecretHash: 'h', now: T0 }), 'client ids are unique');
    });

    it('connections: defaults, patch, token lookup, per-account listing', async (t) => {
      const store = await open(t);
      const a = await store.createAccount({ name: 'A', clientId: 'ci_a', clientSecretHash: 'h', now: T0 });
      const b = await store.createAccount({ name: 'B', clientId: 'ci_b', clientSecretHash: 'h', now: T0 });
      const c = await store.createConnection({ accountId: a.id, connector: 'fhir', config: { baseUrl: 'https://ehr.example/fhir' }, accessTokenHash: 'tok-hash', now: T0 });
      await store.createConnection({ accountId: b.id, connector: 'demo', now: T0 });
      assert.equal(c.referenceId, null);
      assert.equal(c.windowPastDays, 7);
      assert.equal(c.windowFutureDays, 60);
      assert.equal(c.baselineAt, null);
      assert.equal(c.enabled, true);
      assert.deepEqual(c.config, { baseUrl: 'https://ehr.example/fhir' });
      assert.equal((await store.findConnectionByTokenHash('tok-hash'))?.id, c.id);
      assert.equal(await store.findConnectionByTokenHash('nope'), null);
      const updated = await store.updateConnection(c.id, { referenceId: 'clinic_9', statusMap: { BK: 'scheduled' }, enabled: false });
      assert.equal(updated?.referenceId, 'clinic_9');
      assert.deepEqual(updated?.statusMap, { BK: 'scheduled' });
      assert.equal(updated?.enabled, false);
      assert.deepEqual((await store.listConnections(a.id)).map((x) => x.id), [c.id]);
      assert.equal((await store.listConnections()).length, 2);
    });

    it('sync leases: a due connection is leased once until released or expired', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      const first = await store.claimDueConnections(T0, 10, T0 + 60_000, 'w1');
      assert.deepEqual(first.map((c) => c.id), [connection.id]);
      assert.deepEqual(await store.claimDueConnections(T0 + 1, 10, T0 + 60_000, 'w2'), [], 'held by w1');
      assert.equal(await store.claimConnection(connection.id, T0 + 1, T0 + 60_000, 'w2'), null, 'manual claim also respects the lease');
      assert.deepEqual((await store.claimDueConnections(T0 + 60_001, 10, T0 + 120_000, 'w2')).map((c) => c.id), [connection.id], 'an expired lease is reclaimed');
      await store.releaseConnection(connection.id, 'w1');
      assert.deepEqual(await store.claimDueConnections(T0 + 60_002, 10, T0 + 120_000, 'w3'), [], 'only the holder releases');
      await store.releaseConnection(connection.id, 'w2');
      assert.notEqual(await store.claimConnection(connection.id, T0 + 60_003, T0 + 120_000, 'w3'), null);
    });

    it('sync leases: not-yet-due and disabled connections are not leased', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      await store.updateConnection(connection.id, { nextSyncAt: T0 + 5_000 });
      assert.deepEqual(await store.claimDueConnections(T0, 10, T0 + 1000, 'w'), []);
      await store.updateConnection(connection.id, { nextSyncAt: T0, enabled: false });
      assert.deepEqual(await store.claimDueConnections(T0, 10, T0 + 1000, 'w'), []);
    });

    it('commitSync: projection, events with their exact bytes, deliveries and run outcome land together', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const seedOnly = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's1', now: T0 });
      const everything = await store.createEndpoint({
        accountId: account.id,
        url: 'https://b.example/hook',
        secret: 's2',
        eventTypes: ['appointment.created', 'patient.created'],
        now: T0,
      });
      const disabled = await store.createEndpoint({ accountId: account.id, url: 'https://c.example/hook', secret: 's3', now: T0 });
      await store.updateEndpoint(disabled.id, { enabled: false, disabledReason: 'test' });
      const p = plan(connection.id, { patientReads: [[patient()]], appointmentReads: [[appointment({ patient_ehr_id: 'p-123456' })]] });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: p, finishedAt: T0 + 5, baselineDone: true, patientCursor: '2026-11-02T15:00:00.000Z', nextSyncAt: T0 + 60_000 });

      const projection = await store.loadProjection(connection.id);
      assert.deepEqual([...projection.appointments.values()].map((x) => x.record), [appointment({ patient_ehr_id: 'p-123456' })]);
      assert.deepEqual([...projection.patients.values()].map((x) => x.record), [patient()]);
      const events = await store.listEvents({ accountId: account.id, limit: 10 });
      assert.deepEqual(events.map((e) => e.type), ['patient.created', 'appointment.created']);
      assert.deepEqual(events.map((e) => e.body), p.events.map((e) => e.body), 'stored bytes are the serialized bytes, unchanged');
      assert.ok(events[0] && events[1] && events[0].seq < events[1].seq, 'sequence follows detection order');
      const created = JSON.parse(events[1]?.body ?? '{}') as EventEnvelope;
      assert.equal(created.access_token_reference_id, 'clinic_1');

      const deliveries = await deliveryRows(store, account.id);
      assert.deepEqual(deliveries, [
        { type: 'patient.created', endpoint: everything.id, status: 'pending' },
        { type: 'appointment.created', endpoint: seedOnly.id, status: 'pending' },
        { type: 'appointment.created', endpoint: everything.id, status: 'pending' },
        { type: 'appointment.created', endpoint: disabled.id, status: 'skipped' },
      ].sort(byKey));

      const [savedRun] = await store.listSyncRuns(connection.id, 5);
      assert.equal(savedRun?.status, 'succeeded');
      assert.deepEqual(savedRun?.counts, { 'patient.created': 1, 'appointment.created': 1 });
      const after = await store.getConnection(connection.id);
      assert.equal(after?.baselineAt, T0 + 5);
      assert.equal(after?.patientCursor, '2026-11-02T15:00:00.000Z');
      assert.equal(after?.nextSyncAt, T0 + 60_000);
      assert.equal(after?.lastSyncAt, T0 + 5);
    });

    it('commitSync is all or nothing: a failing write leaves no projection, no events, no deliveries', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const p = plan(connection.id, { appointmentReads: [[appointment(), appointment({ ehr_appointment_id: 'B' })]] });
      // Two events with one id violate the events' unique key on the second insert row.
      const broken: SyncPlan = { ...p, events: [p.events[0]!, { ...p.events[1]!, id: p.events[0]!.id }] };
      const run = await store.startSyncRun(connection.id, T0);
      await assert.rejects(store.commitSync({ runId: run.id, connectionId: connection.id, plan: broken, finishedAt: T0, baselineDone: true, nextSyncAt: T0 }));
      const projection = await store.loadProjection(connection.id);
      assert.equal(projection.appointments.size, 0);
      assert.deepEqual(await store.listEvents({ accountId: account.id, limit: 10 }), []);
      assert.equal((await store.getConnection(connection.id))?.baselineAt, null);
      assert.equal((await store.listSyncRuns(connection.id, 1))[0]?.status, 'running');
    });

    it('commitSync refuses a plan made from a projection that changed meanwhile, writing nothing', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const seen = await store.loadProjection(connection.id);
      const r1 = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: r1.id, connectionId: connection.id, plan: plan(connection.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'W' })]] }), finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const r2 = await store.startSyncRun(connection.id, T0 + 1);
      const stale = plan(connection.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'S' })]] });
      await assert.rejects(
        store.commitSync({ runId: r2.id, connectionId: connection.id, plan: stale, finishedAt: T0 + 1, baselineDone: true, nextSyncAt: T0, projectionVersion: seen.version }),
        (e: Error & { code?: string }) => e.code === 'conflict',
      );
      assert.deepEqual([...(await store.loadProjection(connection.id)).appointments.keys()], ['W']);
      assert.equal((await store.listEvents({ accountId: account.id, limit: 10 })).length, 1);
      const fresh = await store.loadProjection(connection.id);
      assert.equal(fresh.version, (seen.version ?? 0) + 1);
    });

    it('commitSync: upserts keep ids, deletes remove rows, providers keep their status', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      const first = plan(connection.id, { baseline: 'silent', appointmentReads: [[appointment(), appointment({ ehr_appointment_id: 'GONE' })]] });
      const r1 = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: r1.id, connectionId: connection.id, plan: first, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const [provider] = await store.listProviders(connection.id);
      assert.equal(provider?.status, 'active');
      await store.setProviderStatus(connection.id, provider!.id, 'inactive');

      const projection = await store.loadProjection(connection.id);
      const providers = new Map((await store.listProviders(connection.id)).map((x) => [x.ehr_id, x]));
      const second = plan(connection.id, {
        projection,
        providers,
        seenProviders: [{ ehr_id: 'dr-denenberg', name: 'Michael Denenberg, MD', npi: '1234567890' }],
        goneAppointmentIds: ['GONE'],
      });
      const r2 = await store.startSyncRun(connection.id, T0 + 1);
      await store.commitSync({ runId: r2.id, connectionId: connection.id, plan: second, finishedAt: T0 + 1, baselineDone: false, nextSyncAt: T0 });
      const after = await store.loadProjection(connection.id);
      assert.deepEqual([...after.appointments.keys()], ['482129']);
      assert.equal(after.appointments.get('482129')?.id, projection.appointments.get('482129')?.id);
      const [renamed] = await store.listProviders(connection.id);
      assert.deepEqual(renamed, { ...provider, name: 'Michael Denenberg, MD', npi: '1234567890', status: 'inactive' });
    });

    it('failSyncRun: records the error, counts consecutive failures, reschedules; success resets the count', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      for (let i = 1; i <= 2; i++) {
        const run = await store.startSyncRun(connection.id, T0 + i);
        await store.failSyncRun({ runId: run.id, connectionId: connection.id, finishedAt: T0 + i, errorCode: 'ehr_unavailable', errorMessage: 'EHR answered 503', nextSyncAt: T0 + i * 1000 });
      }
      const c = await store.getConnection(connection.id);
      assert.equal(c?.consecutiveFailures, 2);
      assert.equal(c?.nextSyncAt, T0 + 2000);
      const [last] = await store.listSyncRuns(connection.id, 1);
      assert.deepEqual([last?.status, last?.errorCode, last?.errorMessage], ['failed', 'ehr_unavailable', 'EHR answered 503']);
      const run = await store.startSyncRun(connection.id, T0 + 10);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: plan(connection.id), finishedAt: T0 + 10, baselineDone: true, nextSyncAt: T0 + 20 });
      assert.equal((await store.getConnection(connection.id))?.consecutiveFailures, 0);
    });

    it('quarantine: items are listed with their reason and run', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      const p = plan(connection.id, { appointmentReads: [[{ ...appointment(), datetime: 'soon' }]] });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: p, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const [q] = await store.listQuarantine(connection.id, 10);
      assert.equal(q?.ehr_id, '482129');
      assert.equal(q?.syncRunId, run.id);
      assert.match(q?.reason ?? '', /datetime/);
      assert.equal((await store.listSyncRuns(connection.id, 1))[0]?.quarantined, 1);

      // The same record still malformed at the next sync: one row, the latest, not one per sync.
      const again = await store.startSyncRun(connection.id, T0 + 60_000);
      await store.commitSync({ runId: again.id, connectionId: connection.id, plan: p, finishedAt: T0 + 60_000, baselineDone: true, nextSyncAt: T0 });
      const rows = await store.listQuarantine(connection.id, 10);
      assert.deepEqual(rows.map((r) => [r.ehr_id, r.syncRunId]), [['482129', again.id]]);
      assert.equal((await store.listSyncRuns(connection.id, 1))[0]?.quarantined, 1, 'each run still counts what it set aside');
    });

    it('events: filters by type, job, time; pagination and order', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const p = plan(connection.id, { appointmentReads: [['A', 'B', 'C'].map((id) => appointment({ ehr_appointment_id: id }))] });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: p, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const all = await store.listEvents({ accountId: account.id, limit: 10 });
      assert.equal(all.length, 3);
      assert.deepEqual((await store.listEvents({ accountId: account.id, limit: 2, offset: 1 })).map((e) => e.id), all.slice(1).map((e) => e.id));
      assert.deepEqual((await store.listEvents({ accountId: account.id, limit: 10, order: 'desc' })).map((e) => e.id), all.map((e) => e.id).reverse());
      assert.equal((await store.listEvents({ accountId: account.id, limit: 10, type: 'patient.updated' })).length, 0);
      assert.equal((await store.listEvents({ accountId: account.id, limit: 10, createdFrom: T0 + 1 })).length, 0);
      assert.equal((await store.listEvents({ accountId: account.id, limit: 10, afterSeq: all[1]!.seq })).length, 1);
      assert.equal((await store.listEvents({ accountId: 'someone-else', limit: 10 })).length, 0, 'tenants see only their own events');
      assert.equal((await store.getEvent(all[0]!.id))?.body, all[0]!.body);
    });

    it('projection reads: appointments by start range and filters, by either id; patients with filters and totals', async (t) => {
      const store = await open(t);
      const { connection } = await setup(store);
      const appts = [
        appointment({ ehr_appointment_id: 'A', datetime: '2026-11-02T15:00:00.000Z', patient_name: 'John Doe', patient_mrn: '804' }),
        appointment({ ehr_appointment_id: 'B', datetime: '2026-11-03T15:00:00.000Z', patient_name: 'Jane Roe', patient_mrn: '805', appointment_mode: 'telehealth' }),
        appointment({ ehr_appointment_id: 'C', datetime: '2026-11-05T15:00:00.000Z', patient_name: 'Johnny Doe', patient_mrn: '806' }),
      ];
      const p = plan(connection.id, {
        baseline: 'silent',
        appointmentReads: [appts],
        patientReads: [[patient({ ehr_patient_id: 'p1', mrn: '804', first_name: 'John', last_name: 'Doe', phone: '555-0101' }), patient({ ehr_patient_id: 'p2', mrn: '805', first_name: 'Jane', last_name: 'Roe', dob: '1980-01-02' })]],
      });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: p, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const range = { connectionId: connection.id, fromMs: Date.parse('2026-11-02T00:00:00Z'), toMs: Date.parse('2026-11-04T00:00:00Z'), limit: 100 };
      assert.deepEqual((await store.listAppointments(range)).map((a) => a.record.ehr_appointment_id), ['A', 'B']);
      assert.deepEqual((await store.listAppointments({ ...range, toMs: Date.parse('2026-12-01T00:00:00Z'), patientName: 'JOHN' })).map((a) => a.record.ehr_appointment_id), ['A', 'C']);
      assert.deepEqual((await store.listAppointments({ ...range, appointmentMode: 'telehealth' })).map((a) => a.record.ehr_appointment_id), ['B']);
      assert.deepEqual((await store.listAppointments({ ...range, patientMrn: '804' })).map((a) => a.record.ehr_appointment_id), ['A']);
      const a = (await store.listAppointments(range))[0]!;
      assert.equal(a.source, 'ehr_sync');
      assert.equal((await store.getAppointment(connection.id, a.id))?.record.ehr_appointment_id, 'A');
      assert.equal((await store.getAppointment(connection.id, 'A'))?.id, a.id, 'the EHR id finds it too');
      assert.equal(await store.getAppointment('other-connection', a.id), null);
      const all = await store.listPatients({ connectionId: connection.id, limit: 10, offset: 0 });
      assert.equal(all.total, 2);
      assert.deepEqual((await store.listPatients({ connectionId: connection.id, lastName: 'ro', limit: 10, offset: 0 })).rows.map((r) => r.record.mrn), ['805']);
      assert.deepEqual((await store.listPatients({ connectionId: connection.id, dob: '1980-01-02', limit: 10, offset: 0 })).rows.map((r) => r.record.mrn), ['805']);
      assert.deepEqual((await store.listPatients({ connectionId: connection.id, phone: '0101', limit: 10, offset: 0 })).rows.map((r) => r.record.mrn), ['804']);
      const page2 = await store.listPatients({ connectionId: connection.id, limit: 1, offset: 1 });
      assert.deepEqual([page2.total, page2.rows.map((r) => r.record.mrn)], [2, ['805']]);
    });

    it('event log: one row per (event, endpoint), events without endpoints once, filters and totals', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const p1 = plan(connection.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'A' })]] });
      const r1 = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: r1.id, connectionId: connection.id, plan: p1, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const e1 = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const e2 = await store.createEndpoint({ accountId: account.id, url: 'https://b.example/hook', secret: 's', now: T0 });
      const p2 = plan(connection.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'B' })]] });
      const r2 = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: r2.id, connectionId: connection.id, plan: p2, finishedAt: T0, baselineDone: false, nextSyncAt: T0 });
      const all = await store.listEventDeliveries({ accountId: account.id, order: 'asc', limit: 100, offset: 0 });
      assert.equal(all.total, 3);
      assert.deepEqual(all.rows.map((r) => [r.endpointUrl, r.deliveryStatus]), [
        [null, null],
        [e1.url, 'pending'],
        [e2.url, 'pending'],
      ]);
      const pending = await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'pending', order: 'desc', limit: 1, offset: 0 });
      assert.equal(pending.total, 2);
      assert.equal(pending.rows[0]?.endpointId, e1.id, 'newest event first, its deliveries in endpoint order');
      assert.equal((await store.listEventDeliveries({ accountId: 'other', order: 'asc', limit: 100, offset: 0 })).total, 0);
    });

    it('retention purges old events whose deliveries are final, never pending ones; erasure removes one patient everywhere', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const p = plan(connection.id, {
        appointmentReads: [[appointment({ ehr_appointment_id: 'A', patient_ehr_id: 'p-1' }), appointment({ ehr_appointment_id: 'B', patient_ehr_id: 'p-2' })]],
        patientReads: [[patient({ ehr_patient_id: 'p-1', mrn: '1' }), patient({ ehr_patient_id: 'p-2', mrn: '2' })]],
      });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: p, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      assert.equal((await store.listEvents({ accountId: account.id, limit: 100 })).length, 4);
      assert.equal(await store.purgeEvents(T0 + 1, 1000), 2, 'the patient.created events had no delivery (not subscribed); the pending ones stay');
      await store.updateEndpoint(ep.id, { enabled: false });
      await store.deleteEndpoint(ep.id);
      assert.equal(await store.purgeEvents(T0 + 1, 1000), 2, 'once final (skipped), they go too');

      const p2 = plan(connection.id, {
        projection: await store.loadProjection(connection.id),
        appointmentReads: [[appointment({ ehr_appointment_id: 'A', patient_ehr_id: 'p-1', location: '9' }), appointment({ ehr_appointment_id: 'B', patient_ehr_id: 'p-2', location: '9' })]],
      });
      const run2 = await store.startSyncRun(connection.id, T0 + 5);
      await store.commitSync({ runId: run2.id, connectionId: connection.id, plan: p2, finishedAt: T0 + 5, baselineDone: false, nextSyncAt: T0 });
      const erased = await store.erasePatient(connection.id, 'p-1');
      assert.deepEqual(erased, { events: 1, appointments: 1, patients: 1, quarantined: 0, operations: 0 });
      const left = await store.listEvents({ accountId: account.id, limit: 100 });
      assert.equal(left.length, 1);
      assert.ok(!left[0]!.body.includes('"A"') && !left[0]!.body.includes('p-1'));
      const projection = await store.loadProjection(connection.id);
      assert.deepEqual([[...projection.appointments.keys()], [...projection.patients.keys()]], [['B'], ['p-2']]);
    });

    it('endpoints: create with defaults, patch, delete keeps undelivered deliveries visible as skipped', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 'enc', now: T0 });
      assert.deepEqual([ep.signatureScheme, ep.retryPolicy, ep.enabled], ['cobalt', 'durable', true]);
      assert.deepEqual(ep.eventTypes, ['appointment.created', 'appointment.updated', 'appointment.status_updated', 'patient.updated']);
      const patched = await store.updateEndpoint(ep.id, { signatureScheme: 'standard', previousSecret: 'old', previousSecretExpiresAt: T0 + 1 });
      assert.deepEqual([patched?.signatureScheme, patched?.previousSecret, patched?.previousSecretExpiresAt], ['standard', 'old', T0 + 1]);
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: plan(connection.id, { appointmentReads: [[appointment()]] }), finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      assert.equal(await store.deleteEndpoint(ep.id), true);
      assert.equal(await store.getEndpoint(ep.id), null);
      assert.deepEqual(await deliveryRows(store, account.id), [{ type: 'appointment.created', endpoint: ep.id, status: 'skipped' }]);
      assert.equal(await store.deleteEndpoint(ep.id), false);
    });

    it('delivery lease: due heads of each ordering key only, per-endpoint cap, no double lease, attempts counted, release uncounts', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1', 'k1', 'k2', 'k3', 'k4']);
      const first = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w1', maxPerEndpoint: 2 });
      assert.equal(first.length, 2, 'capped at 2 in flight for the endpoint');
      assert.deepEqual(first.map((l) => l.delivery.attempts), [1, 1]);
      assert.ok(first.every((l) => l.endpoint.id === ep.id && l.body.startsWith('{')));
      assert.deepEqual(await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 2 }), [], 'no room, nothing leased twice');
      const more = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 10 });
      const keys = [...first, ...more].map((l) => l.delivery.orderingKey).sort();
      assert.deepEqual(keys, ['k1', 'k2', 'k3', 'k4'], 'the second k1 waits for the first');
      await store.releaseDeliveryLeases('w2');
      const again = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w3', maxPerEndpoint: 10 });
      assert.equal(again.length, 2);
      assert.ok(again.every((l) => l.delivery.attempts === 1), 'a released lease does not count as an attempt');
      const expired = await store.leaseDeliveries({ now: T0 + 60_001, limit: 10, leaseUntil: T0 + 120_000, owner: 'w4', maxPerEndpoint: 10 });
      assert.equal(expired.length, 4, 'expired leases (a dead worker) are leased again');
      assert.ok(expired.every((l) => l.delivery.attempts === 2));
    });

    it('delivery lease with ownInFlight: finished-but-unrecorded leases free their slots for their owner only; other owners\' leases still count', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
      const lease = (owner: string, inFlight?: number) =>
        store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner, maxPerEndpoint: 2, ownInFlight: inFlight === undefined ? undefined : new Map([[ep.id, inFlight]]) });
      const first = await lease('w1', 0);
      assert.deepEqual(first.map((l) => l.delivery.orderingKey), ['k1', 'k2']);
      assert.deepEqual(await lease('w1', 2), [], 'both still in flight: no room');
      // Both attempts finished; their outcomes are not recorded yet (rows still leased by w1).
      const next = await lease('w1', 0);
      assert.deepEqual(next.map((l) => l.delivery.orderingKey), ['k3', 'k4'], 'the owner leases again before recording, never the rows it holds');
      assert.deepEqual(await lease('w2', 0), [], "another owner counts w1's four leased rows: over the cap");
      assert.deepEqual(await lease('w2'), [], 'and so does the row count without ownInFlight');
    });

    it('delivery lease with oneAtATime: a listed endpoint gets one delivery at a time whatever its cap; the others keep their cap', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const hanging = await store.createEndpoint({ accountId: account.id, url: 'https://hang.example/hook', secret: 's', now: T0 });
      const answering = await store.createEndpoint({ accountId: account.id, url: 'https://ok.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']);
      const lease = (inFlight: number) =>
        store.leaseDeliveries({ now: T0, limit: 20, leaseUntil: T0 + 60_000, owner: 'w1', maxPerEndpoint: 3, ownInFlight: new Map([[hanging.id, inFlight]]), oneAtATime: new Set([hanging.id]) });
      const first = await lease(0);
      const to = (ls: typeof first, id: string) => ls.filter((l) => l.endpoint.id === id).map((l) => l.delivery.orderingKey);
      assert.deepEqual(to(first, hanging.id), ['k1'], 'one delivery to the endpoint whose last attempt timed out');
      assert.deepEqual(to(first, answering.id), ['k1', 'k2', 'k3'], 'the other endpoint gets its cap of three');
      assert.deepEqual(to(await lease(1), hanging.id), [], 'none while that one is in flight');
      assert.deepEqual(to(await lease(0), hanging.id), ['k2'], 'the next once it finished');
    });

    it('delivery lease: per-key order holds through retries; disabled endpoints and future retries are not leased; round robin across accounts', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1', 'k1']);
      const [head] = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.ok(head);
      await store.recordDeliveryOutcomes([outcome(head, 'retry', { nextAttemptAt: T0 + 5000, statusCode: 500 })]);
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 1000, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 }), [], 'the head waits for its retry; the next one waits for the head');
      const [retried] = await store.leaseDeliveries({ now: T0 + 5000, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(retried?.delivery.id, head.delivery.id);
      assert.equal(retried?.delivery.attempts, 2);
      await store.recordDeliveryOutcomes([outcome(retried!, 'failed', { statusCode: 500 })]);
      const [second] = await store.leaseDeliveries({ now: T0 + 5000, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.ok(second && second.delivery.eventSeq > head.delivery.eventSeq, 'a final failure unblocks the next of the key');
      await store.releaseDeliveryLeases('w');
      await store.updateEndpoint(ep.id, { enabled: false });
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 9000, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 }), []);
      assert.deepEqual((await store.listDeliveries(second.delivery.eventId)).map((d) => d.status), ['skipped'], 'disabling skips pending deliveries');

      // Fairness: a big backlog of one account does not crowd out another's single delivery.
      const other = await setup(store);
      await store.createEndpoint({ accountId: other.account.id, url: 'https://b.example/hook', secret: 's', now: T0 });
      const big = await store.createEndpoint({ accountId: account.id, url: 'https://c.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, Array.from({ length: 30 }, (_, i) => `bulk${i}`));
      await emit(store, other.connection.id, ['solo']);
      const picks = await store.leaseDeliveries({ now: T0 + 9000, limit: 2, leaseUntil: T0 + 60_000, owner: 'f', maxPerEndpoint: 50 });
      assert.deepEqual(picks.map((l) => l.delivery.accountId).sort(), [account.id, other.account.id].sort());
      assert.ok(picks.some((l) => l.endpoint.id === big.id));
    });

    it('a queue of deliveries that cannot go yet: a retry is leased when it falls due, a final outcome frees the next event of its key at once, new and redelivered events are not held back', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const lease = (now: number) => store.leaseDeliveries({ now, limit: 10, leaseUntil: now + 60_000, owner: 'w', maxPerEndpoint: 10 });
      await emit(store, connection.id, ['a', 'a', 'b']);
      const heads = await lease(T0);
      assert.deepEqual(heads.map((l) => l.delivery.orderingKey), ['a', 'b']);
      const [a1, b1] = heads as [LeasedDelivery, LeasedDelivery];
      await store.recordDeliveryOutcomes([outcome(a1, 'retry', { statusCode: 500, nextAttemptAt: T0 + 5000 }), outcome(b1, 'retry', { statusCode: 500, nextAttemptAt: T0 + 3000 })]);
      // Everything waits: a retry, or (the second a) an earlier event of its key.
      assert.deepEqual(await lease(T0 + 1000), []);
      assert.deepEqual(await lease(T0 + 2999), [], 'a second lease in the same state finds nothing either');
      await emit(store, connection.id, ['c']);
      assert.deepEqual((await lease(T0 + 2999)).map((l) => l.delivery.orderingKey), ['c'], 'a new event goes at once');
      const [b2] = await lease(T0 + 3000);
      assert.equal(b2?.delivery.id, b1.delivery.id, 'the retry of b, leased the moment it falls due');
      assert.deepEqual(await lease(T0 + 4999), []);
      const [a1again] = await lease(T0 + 5000);
      assert.equal(a1again?.delivery.id, a1.delivery.id, 'the retry of a, when it falls due');
      await store.recordDeliveryOutcomes([outcome(a1again as LeasedDelivery, 'succeeded', { statusCode: 200 }), outcome(b2 as LeasedDelivery, 'succeeded', { statusCode: 200 })]);
      const [a2] = await lease(T0 + 5000);
      assert.ok(a2 && a2.delivery.orderingKey === 'a' && a2.delivery.id !== a1.delivery.id, 'the second a, freed by the first one’s success');
      await store.recordDeliveryOutcomes([outcome(a2, 'succeeded', { statusCode: 200 })]);
      assert.deepEqual(await lease(T0 + 5000), []);
      assert.equal(await store.redeliverEvent(b1.delivery.eventId, T0 + 5000), 1);
      assert.deepEqual((await lease(T0 + 5000)).map((l) => l.delivery.id), [b1.delivery.id], 'a redelivery goes at once');
    });

    it('a final outcome frees the next event of its key at once, even after a later lease passed over it', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const lease = () => store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      await emit(store, connection.id, ['a', 'a']);
      const [a1] = await lease();
      assert.ok(a1);
      // While a1 is in flight, a lease finds only a newer event: it passed a1 (leased) and a2 (behind a1).
      await emit(store, connection.id, ['d']);
      assert.deepEqual((await lease()).map((l) => l.delivery.orderingKey), ['d']);
      await store.recordDeliveryOutcomes([outcome(a1, 'succeeded', { statusCode: 200 })]);
      const [a2] = await lease();
      assert.ok(a2 && a2.delivery.orderingKey === 'a' && a2.delivery.id !== a1.delivery.id, 'the second a, at the same moment');
    });

    it('a lease that expires is leased again the moment it does, even after a later lease passed over it', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['a', 'b']);
      // Its outcome never recorded (given up after a database outage, say): the lease runs out at T0 + 100.
      const [a] = await store.leaseDeliveries({ now: T0, limit: 1, leaseUntil: T0 + 100, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(a?.delivery.orderingKey, 'a');
      assert.deepEqual((await store.leaseDeliveries({ now: T0 + 50, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 })).map((l) => l.delivery.orderingKey), ['b']);
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 100, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 }), [], 'still held at its last moment');
      const [again] = await store.leaseDeliveries({ now: T0 + 101, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(again?.delivery.id, a.delivery.id);
      assert.equal(again?.delivery.attempts, 2);
    });

    it('erasing a patient frees the next event of a key their pending delivery held back, at once', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      // Two events of one key, the first about patient p-1 (say, a patient.updated and an appointment).
      const events: StoredEventInput[] = ['p-1', 'p-2'].map((patientEhrId, i) => {
        const id = `ev${String(++emitted).padStart(30, '0')}`;
        return { id, type: 'appointment.updated', orderingKey: 'k', jobId: null, patientEhrId, createdAt: T0, body: JSON.stringify({ id, object: 'event', type: 'appointment.updated', data: { n: i } }) };
      });
      const run = await store.startSyncRun(connection.id, T0);
      await store.commitSync({ runId: run.id, connectionId: connection.id, plan: { ...plan(connection.id), events }, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
      const lease = (now: number) => store.leaseDeliveries({ now, limit: 10, leaseUntil: now + 60_000, owner: 'w', maxPerEndpoint: 10 });
      const [first] = await lease(T0);
      assert.equal(first?.delivery.eventId, events[0]!.id);
      assert.deepEqual(await lease(T0 + 10), [], 'the second waits behind the first (in flight)');
      await store.erasePatient(connection.id, 'p-1');
      assert.deepEqual((await lease(T0 + 20)).map((l) => l.delivery.eventId), [events[1]!.id]);
    });

    it('a late outcome does not clear a newer lease of the same delivery, even by the same owner', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1']);
      const [first] = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      // The first lease expires unrecorded (say, a database outage); the same worker leases again.
      const [second] = await store.leaseDeliveries({ now: T0 + 60_001, limit: 10, leaseUntil: T0 + 120_000, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(second?.delivery.attempts, 2);
      await store.recordDeliveryOutcomes([outcome(first as LeasedDelivery, 'retry', { statusCode: 500, nextAttemptAt: T0 + 60_002 })]);
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 60_002, limit: 10, leaseUntil: T0 + 120_000, owner: 'x', maxPerEndpoint: 10 }), [], 'the second lease still holds');
      assert.equal((await store.listAttempts((first as LeasedDelivery).delivery.eventId)).length, 1, 'the late attempt is still in the log');
      await store.recordDeliveryOutcomes([outcome(second as LeasedDelivery, 'succeeded', { statusCode: 200 })]);
      assert.equal((await store.listDeliveries((second as LeasedDelivery).delivery.eventId))[0]?.status, 'succeeded');
    });

    it('outcomes whose delivery was deleted meanwhile (purged, erased) are dropped; the rest of the batch is recorded', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['old']);
      const [old] = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      // Disabled while that attempt is in flight: its delivery is skipped, so purge may delete it.
      await store.disableEndpoint(ep.id, 'test', T0 + 1);
      assert.equal(await store.purgeEvents(T0 + 10, 100), 1);
      const kept = await store.createEndpoint({ accountId: account.id, url: 'https://b.example/hook', secret: 's', now: T0 + 20 });
      await emit(store, connection.id, ['new']);
      const [fresh] = await store.leaseDeliveries({ now: T0 + 30, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(fresh?.endpoint.id, kept.id);
      await store.recordDeliveryOutcomes([outcome(old as LeasedDelivery, 'succeeded', { statusCode: 200 }), outcome(fresh as LeasedDelivery, 'succeeded', { statusCode: 200 })]);
      assert.equal((await store.listDeliveries((fresh as LeasedDelivery).delivery.eventId)).find((x) => x.endpointId === kept.id)?.status, 'succeeded');
    });

    it('delivery outcomes for several endpoints in one batch: failures add up where nothing succeeded, a success restarts the count', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const a = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const b = await store.createEndpoint({ accountId: account.id, url: 'https://b.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['k1', 'k2', 'k3']);
      const leased = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      const of = (ep: string, key: string) => leased.find((l) => l.endpoint.id === ep && l.delivery.orderingKey === key) as LeasedDelivery;
      await store.recordDeliveryOutcomes([outcome(of(a.id, 'k1'), 'retry', { statusCode: 500, nextAttemptAt: T0 + 5000 })]);
      await store.recordDeliveryOutcomes([
        { ...outcome(of(a.id, 'k2'), 'retry', { statusCode: 503, nextAttemptAt: T0 + 5000 }), startedAt: T0 + 100 },
        { ...outcome(of(b.id, 'k1'), 'retry', { statusCode: 500, nextAttemptAt: T0 + 5000 }), startedAt: T0 + 100 },
        { ...outcome(of(b.id, 'k2'), 'succeeded', { statusCode: 200 }), startedAt: T0 + 200 },
        { ...outcome(of(b.id, 'k3'), 'retry', { statusCode: 500, nextAttemptAt: T0 + 5000 }), startedAt: T0 + 300 },
      ]);
      const [ha, hb] = [await store.getEndpoint(a.id), await store.getEndpoint(b.id)];
      assert.deepEqual([ha?.consecutiveFailures, ha?.failingSince, ha?.lastSuccessAt], [2, T0, null], 'a: 1 + 1 failures, failing since the first');
      assert.deepEqual([hb?.consecutiveFailures, hb?.failingSince, hb?.lastSuccessAt, hb?.lastFailureAt], [1, T0 + 300, T0 + 212, T0 + 312], 'b: one failure after its success');
    });

    it('delivery outcomes: attempts recorded, statuses, endpoint health; 410-style disable skips the rest; redeliver and recover keep the event id', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['a', 'b', 'c']);
      const leased = await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      const [a, b, c] = leased as [LeasedDelivery, LeasedDelivery, LeasedDelivery];
      await store.recordDeliveryOutcomes([outcome(a, 'succeeded', { statusCode: 200, responseExcerpt: 'ok' }), outcome(b, 'failed', { statusCode: 400 })]);
      assert.deepEqual(await store.listAttempts(a.delivery.eventId), [
        { id: (await store.listAttempts(a.delivery.eventId))[0]!.id, deliveryId: a.delivery.id, endpointId: ep.id, attempt: 1, startedAt: T0, durationMs: 12, statusCode: 200, errorClass: null, responseExcerpt: 'ok', outcome: 'succeeded' },
      ]);
      let health = await store.getEndpointHealth(ep.id, 0);
      assert.deepEqual(
        [health?.attempts, health?.succeeded, health?.successRate, health?.consecutiveFailures, health?.lastSuccessAt, health?.failingSince, health?.pending, health?.failed],
        [2, 1, 0.5, 1, T0 + 12, T0, 1, 1],
      );
      await store.recordDeliveryOutcomes([outcome(c, 'failed', { statusCode: 410, disableEndpoint: 'The endpoint answered 410 Gone.' })]);
      const disabled = await store.getEndpoint(ep.id);
      assert.deepEqual([disabled?.enabled, disabled?.disabledReason, disabled?.consecutiveFailures], [false, 'The endpoint answered 410 Gone.', 2]);
      await emit(store, connection.id, ['d']);
      health = await store.getEndpointHealth(ep.id, 0);
      assert.deepEqual([health?.failed, health?.skipped, health?.pending], [2, 1, 0], 'events while disabled are kept as skipped');

      assert.equal(await store.recoverEndpointDeliveries(ep.id, T0, T0 + 100), 3, 'failed and skipped since T0');
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 100, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 }), [], 'still disabled');
      const enabled = await store.enableEndpoint(ep.id);
      assert.deepEqual([enabled?.enabled, enabled?.disabledReason, enabled?.consecutiveFailures, enabled?.failingSince], [true, null, 0, null]);
      const recovered = await store.leaseDeliveries({ now: T0 + 100, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.equal(recovered.length, 3);
      const rb = recovered.find((l) => l.delivery.id === b.delivery.id);
      assert.deepEqual([rb?.delivery.attempts, rb?.delivery.retryFrom], [2, 1], 'a recovery starts a new retry cycle; attempt numbers keep counting');
      await store.recordDeliveryOutcomes(recovered.map((l) => outcome(l, 'succeeded', { statusCode: 204 })));

      let woke = 0;
      const off = store.onDeliveriesDue(() => woke++);
      assert.equal(await store.redeliverEvent(a.delivery.eventId, T0 + 200), 1);
      assert.equal(await store.redeliverEvent('nope', T0 + 200), null);
      const second = await store.createEndpoint({ accountId: account.id, url: 'https://b.example/hook', secret: 's', eventTypes: ['patient.created'], now: T0 });
      assert.equal(await store.redeliverEvent(a.delivery.eventId, T0 + 200, second.id), 1, 'an explicitly named endpoint receives it even without the type');
      assert.equal(woke, 2);
      off();
      const redelivered = await store.leaseDeliveries({ now: T0 + 200, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 });
      assert.deepEqual(redelivered.map((l) => l.delivery.eventId), [a.delivery.eventId, a.delivery.eventId]);
      assert.equal(redelivered.find((l) => l.endpoint.id === ep.id)?.delivery.attempts, 2);
    });

    it('redelivery and recovery make deliveries waiting for a retry due now, in a new cycle; one in flight is left to its attempt', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['a', 'b', 'c']);
      const [a, b, c] = (await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 })) as [LeasedDelivery, LeasedDelivery, LeasedDelivery];
      // a and b failed once and wait an hour for their retry; c is still in flight.
      await store.recordDeliveryOutcomes([outcome(a, 'retry', { statusCode: 500, nextAttemptAt: T0 + 3_600_000 }), outcome(b, 'retry', { statusCode: 500, nextAttemptAt: T0 + 3_600_000 })]);
      const now = T0 + 1000;
      const leaseNow = () => store.leaseDeliveries({ now, limit: 10, leaseUntil: now + 60_000, owner: 'w2', maxPerEndpoint: 10 });
      assert.deepEqual(await leaseNow(), [], 'nothing due before');
      assert.equal(await store.redeliverEvent(a.delivery.eventId, now), 1, 'the waiting delivery of a counts as queued');
      assert.equal(await store.redeliverEvent(c.delivery.eventId, now), 0, 'c is in flight: left to its attempt');
      const first = await leaseNow();
      assert.deepEqual(first.map((l) => l.delivery.orderingKey), ['a'], 'a is due now, not in an hour');
      assert.deepEqual([first[0]?.delivery.attempts, first[0]?.delivery.retryFrom], [2, 1], 'a new retry cycle; attempt numbers keep counting');
      assert.equal(await store.recoverEndpointDeliveries(ep.id, T0, now), 1, 'recovery brings b forward too (a and c are leased)');
      assert.deepEqual((await leaseNow()).map((l) => l.delivery.orderingKey), ['b']);
    });

    it('a delivery skipped while its attempt was in flight and then recovered stays that attempt\'s: its outcome is recorded, it is not sent again', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['a']);
      const [a] = (await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 })) as [LeasedDelivery];
      // While the attempt is in flight, the endpoint is disabled (its pending deliveries skipped),
      // enabled again and recovered.
      await store.disableEndpoint(ep.id, 'paused by the account', T0 + 100);
      await store.enableEndpoint(ep.id);
      assert.equal(await store.recoverEndpointDeliveries(ep.id, T0, T0 + 200), 1);
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 300, limit: 10, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 10 }), [], 'still held by the attempt in flight');
      await store.recordDeliveryOutcomes([outcome(a, 'succeeded', { statusCode: 200, startedAt: T0 })]);
      const [row] = await store.listDeliveries(a.delivery.eventId);
      assert.equal(row?.status, 'succeeded', 'the attempt\'s outcome counts');
      assert.deepEqual(await store.leaseDeliveries({ now: T0 + 400, limit: 10, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 10 }), [], 'and it is not sent again');
    });

    it('countEndpointDeliveries: pending ones created in the range, and finished ones only when they changed since the recovery', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      await emit(store, connection.id, ['a', 'b', 'c']);
      const [a, b, c] = (await store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 10 })) as [LeasedDelivery, LeasedDelivery, LeasedDelivery];
      await store.recordDeliveryOutcomes([outcome(a, 'succeeded', { statusCode: 200 }), outcome(b, 'failed', { statusCode: 400 }), outcome(c, 'failed', { statusCode: 400 })]);
      const at = T0 + 100;
      assert.equal(await store.recoverEndpointDeliveries(ep.id, T0, at), 2);
      const range = { createdFrom: T0, createdTo: at, finishedFrom: at };
      assert.deepEqual(await store.countEndpointDeliveries(ep.id, range), { pending: 2, succeeded: 0, failed: 0, skipped: 0 }, 'the success before the recovery is not counted');
      const again = await store.leaseDeliveries({ now: at, limit: 10, leaseUntil: at + 60_000, owner: 'w', maxPerEndpoint: 10 });
      await store.recordDeliveryOutcomes(again.map((l) => outcome(l, l.delivery.id === b.delivery.id ? 'succeeded' : 'failed', { startedAt: at + 50 })));
      assert.deepEqual(await store.countEndpointDeliveries(ep.id, range), { pending: 0, succeeded: 1, failed: 1, skipped: 0 });
      assert.deepEqual(await store.countEndpointDeliveries(ep.id, { ...range, createdFrom: T0 + 1 }), { pending: 0, succeeded: 0, failed: 0, skipped: 0 }, 'created before the range');
    });

    it('onDeliveriesDue fires after a sync commits deliveries', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      let woke = 0;
      store.onDeliveriesDue(() => woke++);
      await emit(store, connection.id, ['x']);
      assert.equal(woke, 1);
    });

    it('pushed feeds: one commit per batch, a re-sent message is a duplicate, message times never go back, merges retire', async (t) => {
      const store = await open(t);
      const { account, connection } = await setup(store);
      const ep = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
      const feed = await store.createConnection({ accountId: account.id, connector: 'hl7v2', config: { sendingApplication: 'EPIC' }, now: T0 });
      assert.deepEqual((await store.claimDueConnections(T0 + 86_400_000, 10, T0 + 86_460_000, 'w1')).map((c) => c.id), [connection.id], 'a pushed feed is never leased for polling');
      const message = (controlId: string) => ({ connectionId: feed.id, sender: 'EPIC|NORTH', controlId, messageType: 'SIU^S12', messageTimeMs: T0, outcome: 'applied' as const, ackCode: 'AA' as const, errorText: null, receivedAt: T0 });
      const slice0 = await store.loadPushSlice(feed.id, { appointmentEhrIds: ['A1'], patientEhrIds: ['P1'] });
      const first = plan(feed.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'A1', patient_ehr_id: 'P1' })]], patientReads: [[patient({ ehr_patient_id: 'P1', mrn: '100' })]] });
      const second = plan(feed.id, { appointmentReads: [[appointment({ ehr_appointment_id: 'A2', patient_ehr_id: 'P1' })]] });
      const results = await store.commitPushes([
        { message: message('M1'), plan: first, retirePatientEhrIds: [], recordTimes: [{ kind: 'appointment', ehrId: 'A1', ms: T0 + 10 }], projectionVersion: slice0.projection.version },
        { message: message('M2'), plan: second, retirePatientEhrIds: [], recordTimes: [{ kind: 'appointment', ehrId: 'A1', ms: T0 + 5 }] },
      ]);
      assert.deepEqual(results, ['committed', 'committed']);
      assert.equal((await store.listEvents({ accountId: account.id, limit: 100 })).length, first.events.length + second.events.length);
      const created = (await store.listEvents({ accountId: account.id, limit: 100, type: 'appointment.created' }))[0]!;
      assert.equal((await store.listDeliveries(created.id))[0]?.endpointId, ep.id, 'deliveries are fanned out in the same commit');
      assert.deepEqual(await store.findFeedMessage(feed.id, 'EPIC|NORTH', 'M1'), message('M1'));
      assert.equal(await store.findFeedMessage(feed.id, 'EPIC|NORTH', 'M3'), null);

      const slice = await store.loadPushSlice(feed.id, { appointmentEhrIds: ['A1', 'A2', 'A9'], patientEhrIds: [], patientMrns: ['100'] });
      assert.deepEqual([...slice.projection.appointments.keys()].sort(), ['A1', 'A2']);
      assert.deepEqual([...slice.projection.patients.keys()], ['P1'], 'patients are found by MRN too (merges)');
      assert.equal(slice.recordTimes.get('appointment:A1'), T0 + 10, 'an older time never replaces a newer one');
      assert.equal(slice.projection.version, slice0.projection.version! + 1);

      assert.deepEqual(await store.commitPushes([{ message: message('M2b'), plan: plan(feed.id), retirePatientEhrIds: [], recordTimes: [{ kind: 'patient', ehrId: 'P1', ms: T0 + 7 }] }]), ['committed']);
      const byMrn = await store.loadPushSlice(feed.id, { appointmentEhrIds: [], patientEhrIds: [], patientMrns: ['100'] });
      assert.equal(byMrn.recordTimes.get('patient:P1'), T0 + 7, 'a patient found by MRN comes with its message time (a late merge must see it)');
      const again = await store.commitPushes([{ message: message('M2'), plan: second, retirePatientEhrIds: ['P1'], recordTimes: [] }]);
      assert.deepEqual(again, ['duplicate'], 'a message already logged is skipped whole');
      assert.equal((await store.loadPushSlice(feed.id, { appointmentEhrIds: [], patientEhrIds: ['P1'] })).projection.patients.size, 1);

      await assert.rejects(
        store.commitPushes([{ message: message('M4'), plan: plan(feed.id), retirePatientEhrIds: [], recordTimes: [], projectionVersion: slice0.projection.version }]),
        (e: Error) => e.name === 'ConflictError',
        'a batch planned on an old version is refused whole',
      );
      assert.equal(await store.findFeedMessage(feed.id, 'EPIC|NORTH', 'M4'), null);
      assert.deepEqual(await store.commitPushes([{ message: message('M5'), plan: plan(feed.id), retirePatientEhrIds: ['P1'], recordTimes: [] }]), ['committed']);
      assert.equal((await store.loadPushSlice(feed.id, { appointmentEhrIds: [], patientEhrIds: ['P1'] })).projection.patients.size, 0, 'a merged patient leaves the projection');
    });

  });
}

let emitted = 0;

/** Commits one sync whose plan carries hand-made `appointment.updated` events with the given ordering keys, in order. */
async function emit(store: Store, connectionId: string, keys: string[]): Promise<void> {
  const p = plan(connectionId);
  const events: StoredEventInput[] = keys.map((key) => {
    const id = `ev${String(++emitted).padStart(30, '0')}`;
    return { id, type: 'appointment.updated', orderingKey: key, jobId: null, patientEhrId: null, createdAt: T0, body: JSON.stringify({ id, object: 'event', type: 'appointment.updated', data: { key } }) };
  });
  const run = await store.startSyncRun(connectionId, T0);
  await store.commitSync({ runId: run.id, connectionId, plan: { ...p, events }, finishedAt: T0, baselineDone: true, nextSyncAt: T0 });
}

/** An outcome for a leased delivery (12 ms after T0-ish start). */
function outcome(l: LeasedDelivery, result: DeliveryOutcome['result'], over: Partial<DeliveryOutcome> = {}): DeliveryOutcome {
  return {
    deliveryId: l.delivery.id,
    endpointId: l.endpoint.id,
    owner: 'w',
    attempt: l.delivery.attempts,
    startedAt: T0,
    durationMs: 12,
    statusCode: null,
    errorClass: null,
    responseExcerpt: null,
    result,
    error: result === 'succeeded' ? null : 'test',
    ...over,
  };
}

function byKey(a: { type: string; endpoint: string }, b: { type: string; endpoint: string }): number {
  return `${a.type}${a.endpoint}`.localeCompare(`${b.type}${b.endpoint}`);
}

/** Delivery rows of an account as {type, endpoint, status}, sorted; reads through the store's own listing. */
async function deliveryRows(store: Store, accountId: string): Promise<{ type: string; endpoint: string; status: string }[]> {
  const events = await store.listEvents({ accountId, limit: 1000 });
  const rows: { type: string; endpoint: string; status: string }[] = [];
  for (const e of events) {
    for (const d of await store.listDeliveries(e.id)) rows.push({ type: e.type, endpoint: d.endpointId, status: d.status });
  }
  return rows.sort(byKey);
}
