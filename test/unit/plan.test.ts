/** The change-detection rules of docs/design.md §4, one named fixture each, on the pure planner. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { EventEnvelope } from '../../src/domain/events.js';
import type { AppointmentRecord, Candidate, PatientRecord, ProviderRecord } from '../../src/domain/records.js';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';
import type { Projected } from '../../src/domain/projection.js';
import type { SyncInput } from '../../src/detection/plan.js';
import type { SyncPlan } from '../../src/domain/projection.js';
import { findMissingAppointments, planSync } from '../../src/detection/plan.js';
import { appointment, patient, sequentialIds } from '../helpers/fixtures.js';

const seed = JSON.parse(readFileSync(new URL('../fixtures/seed-examples.json', import.meta.url), 'utf8')) as Record<string, EventEnvelope>;
const NOW = Date.parse('2025-07-28T16:05:48.929Z');

function projected<T>(entries: [string, string, T][]): Map<string, Projected<T>> {
  return new Map(entries.map(([ehrId, id, record]) => [ehrId, { id, record }]));
}

function input(over: Partial<SyncInput> = {}): SyncInput {
  return {
    connection: { id: 'conn-1', referenceId: 'clinic_1', timezone: 'America/New_York', statusMap: DEFAULT_STATUS_MAP },
    now: NOW,
    baseline: null,
    projection: { appointments: new Map(), patients: new Map() },
    providers: new Map(),
    appointmentReads: [],
    patientReads: [],
    seenProviders: [],
    goneAppointmentIds: [],
    connectorQuarantine: [],
    newId: sequentialIds(),
    ...over,
  };
}

function envelopes(plan: SyncPlan): EventEnvelope[] {
  return plan.events.map((e) => JSON.parse(e.body) as EventEnvelope);
}

const knownAppointment = (): Map<string, Projected<AppointmentRecord>> => projected([['482129', '0551c88b2249945151f967525ee3f7b4', appointment()]]);

describe('planSync: the seed examples, field for field', () => {
  it('a status change from booked to raw "2" gives the seed appointment.updated and appointment.status_updated', () => {
    const plan = planSync(input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment({ status: '2' })]] }));
    const [updated, statusUpdated] = envelopes(plan);
    assert.equal(plan.events.length, 2);
    assert.deepEqual(updated?.data, seed['appointment.updated']?.data);
    assert.deepEqual(statusUpdated?.data, seed['appointment.status_updated']?.data);
    // Key order is part of the contract, for the envelope and the data.
    assert.deepEqual(Object.keys(updated ?? {}), Object.keys(seed['appointment.updated'] ?? {}));
    assert.deepEqual(Object.keys(updated?.data ?? {}), Object.keys(seed['appointment.updated']?.data ?? {}));
    assert.deepEqual(Object.keys(statusUpdated?.data ?? {}), Object.keys(seed['appointment.status_updated']?.data ?? {}));
    assert.equal(updated?.access_token_reference_id, 'clinic_1');
    assert.equal(updated?.created, '2025-07-28T16:05:48.929Z');
    assert.equal('job_id' in (updated ?? {}), false, 'sync events never carry job_id');
  });

  it('a new appointment gives the seed appointment.created (provider_id is ehrsync\'s 32-hex provider id)', () => {
    const ids = ['759df7ac268844a9926c58d36376b412', 'c5c0e613fc7d68a1c01ef4160483a0b6'];
    const plan = planSync(
      input({
        appointmentReads: [[appointment({ ehr_appointment_id: 'A-1', patient_mrn: '44235', provider_ehr_id: 'gonzalez', provider_name: 'Dr. Jose Gonzalez' })]],
        // The appointment's id is drawn first, then the event's.
        newId: () => ids.pop() as string,
      }),
    );
    const [created] = envelopes(plan);
    const expected = seed['appointment.created'] as EventEnvelope<'appointment.created'>;
    assert.equal(created?.type, 'appointment.created');
    assert.deepEqual(Object.keys(created?.data ?? {}), Object.keys(expected.data));
    const { provider_id, ...rest } = created?.data as EventEnvelope<'appointment.created'>['data'];
    const { provider_id: _seedProvider, ...seedRest } = expected.data;
    assert.deepEqual(rest, seedRest);
    assert.match(String(provider_id), /^[0-9a-f]{32}$/);
  });

  it('a changed phone and email give the seed patient.updated', () => {
    const plan = planSync(
      input({
        projection: { appointments: new Map(), patients: projected([['p-123456', 'pat-1', patient()]]) },
        patientReads: [[patient({ phone: '555-9999', email: 'jane.newemail@example.com' })]],
      }),
    );
    const [e] = envelopes(plan);
    assert.equal(plan.events.length, 1);
    assert.deepEqual(e?.data, seed['patient.updated']?.data);
    assert.deepEqual(Object.keys(e?.data ?? {}), ['mrn', 'patient_name', 'updated_fields']);
  });
});

describe('planSync: detection rules', () => {
  it('baseline: the first sync fills the projection and emits nothing', () => {
    const plan = planSync(input({ baseline: 'silent', appointmentReads: [[appointment()]], patientReads: [[patient()]] }));
    assert.equal(plan.events.length, 0);
    assert.equal(plan.upsertAppointments.length, 1);
    assert.equal(plan.upsertPatients.length, 1);
  });

  it('baseline replay: the first sync emits appointment.created for every appointment when asked', () => {
    const plan = planSync(input({ baseline: 'replay', appointmentReads: [[appointment(), appointment({ ehr_appointment_id: 'B' })]] }));
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.created', 'appointment.created'],
    );
  });

  it('unchanged re-read: emits nothing and writes nothing', () => {
    const plan = planSync(input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment()]] }));
    assert.equal(plan.events.length, 0);
    assert.equal(plan.upsertAppointments.length, 0);
  });

  it('coalescing: several edits between syncs are one net appointment.updated listing every changed field', () => {
    // Between two syncs staff moved the visit, changed the room, then moved it again.
    const plan = planSync(
      input({
        projection: { appointments: knownAppointment(), patients: new Map() },
        appointmentReads: [[appointment({ datetime: '2025-07-29T15:00:00.000Z', location: '7' })]],
      }),
    );
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.updated'],
    );
    const [e] = envelopes(plan) as EventEnvelope<'appointment.updated'>[];
    assert.deepEqual(e?.data.updated_fields, { datetime: '2025-07-29T15:00:00.000Z', location: '7' });
  });

  it('created, not also updated: a new appointment in this sync is only appointment.created', () => {
    const plan = planSync(input({ appointmentReads: [[appointment({ ehr_appointment_id: 'NEW' })]] }));
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.created'],
    );
  });

  it('status change within one normalized status: appointment.updated only (raw 3 → 4 are both completed)', () => {
    const plan = planSync(
      input({ projection: { appointments: projected([['482129', 'a1', appointment({ status: '3' })]]), patients: new Map() }, appointmentReads: [[appointment({ status: '4' })]] }),
    );
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.updated'],
    );
  });

  it('unmapped raw status passes through unchanged in status_updated', () => {
    const plan = planSync(
      input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment({ status: 'PENDING-INSURANCE' })]] }),
    );
    const [, su] = envelopes(plan) as [unknown, EventEnvelope<'appointment.status_updated'>];
    assert.equal(su.data.status, 'PENDING-INSURANCE');
    assert.equal(su.data.previous_status, 'scheduled');
  });

  it('only payload fields count: a changed timezone or provider id alone emits nothing but refreshes the projection', () => {
    const plan = planSync(
      input({
        projection: { appointments: knownAppointment(), patients: new Map() },
        appointmentReads: [[appointment({ timezone: 'America/Chicago', provider_ehr_id: 'dr-denenberg-2' })]],
      }),
    );
    assert.equal(plan.events.length, 0);
    assert.equal(plan.upsertAppointments.length, 1);
    assert.equal(plan.upsertAppointments[0]?.id, '0551c88b2249945151f967525ee3f7b4', 'the appointment keeps its id');
  });

  it('leaving the window is not a delete: an appointment absent from the read emits nothing', () => {
    const plan = planSync(input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[]] }));
    assert.equal(plan.events.length, 0);
    assert.equal(plan.deleteAppointmentIds.length, 0);
  });

  it('a direct read that says gone is a delete: appointment.deleted with the last known state', () => {
    const plan = planSync(input({ projection: { appointments: knownAppointment(), patients: new Map() }, goneAppointmentIds: ['482129'] }));
    const [e] = envelopes(plan) as EventEnvelope<'appointment.deleted'>[];
    assert.equal(e?.type, 'appointment.deleted');
    assert.equal(e?.data.id, '0551c88b2249945151f967525ee3f7b4');
    assert.equal(e?.data.ehr_appointment_id, '482129');
    assert.deepEqual(plan.deleteAppointmentIds, ['482129']);
  });

  it('inactive providers are not synced: their appointments neither create events nor touch the projection', () => {
    const providers = new Map<string, ProviderRecord>([['dr-denenberg', { id: 'p1', ehr_id: 'dr-denenberg', name: 'Dr. Michael Denenberg', npi: null, status: 'inactive' }]]);
    const plan = planSync(
      input({ providers, projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment({ status: 'cancelled' }), appointment({ ehr_appointment_id: 'N2' })]] }),
    );
    assert.equal(plan.events.length, 0);
    assert.equal(plan.upsertAppointments.length, 0);
  });

  it('new providers are learned as active, with ehrsync ids stable per connection', () => {
    const plan = planSync(input({ appointmentReads: [[appointment({ provider_ehr_id: 'dr-x', provider_name: 'Dr. X', secondary_provider_ehr_id: 'nurse-y' })]] }));
    assert.deepEqual(
      plan.upsertProviders.map((p) => [p.ehr_id, p.status]),
      [
        ['dr-x', 'active'],
        ['nurse-y', 'active'],
      ],
    );
    const again = planSync(input({ appointmentReads: [[appointment({ provider_ehr_id: 'dr-x' })]] }));
    assert.equal(again.upsertProviders[0]?.id, plan.upsertProviders[0]?.id);
    const otherConnection = planSync(input({ connection: { ...input().connection, id: 'conn-2' }, appointmentReads: [[appointment({ provider_ehr_id: 'dr-x' })]] }));
    assert.notEqual(otherConnection.upsertProviders[0]?.id, plan.upsertProviders[0]?.id);
  });

  it('quarantine: malformed records are set aside with a reason and the good ones still sync', () => {
    const bad: Candidate<AppointmentRecord>[] = [
      { ...appointment({ ehr_appointment_id: 'BAD-DATE' }), datetime: 'next tuesday' },
      { ...appointment(), ehr_appointment_id: undefined },
      { ...appointment({ ehr_appointment_id: 'BAD-TYPE' }), duration: '20' as unknown as number },
    ];
    const plan = planSync(input({ appointmentReads: [[...bad, appointment({ ehr_appointment_id: 'GOOD' })]] }));
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.created'],
    );
    assert.equal(plan.quarantined.length, 3);
    assert.match(plan.quarantined[0]?.reason ?? '', /datetime is not an ISO 8601 date-time/);
    assert.match(plan.quarantined[1]?.reason ?? '', /ehr_appointment_id is missing/);
    assert.match(plan.quarantined[2]?.reason ?? '', /duration must be a non-negative number/);
  });

  it('duplicate ids in one read: identical copies collapse, conflicting copies are quarantined and the projection is kept', () => {
    const plan = planSync(
      input({
        projection: { appointments: knownAppointment(), patients: new Map() },
        appointmentReads: [[appointment({ status: 'x' }), appointment({ status: '2' }), appointment({ ehr_appointment_id: 'D' }), appointment({ ehr_appointment_id: 'D' })]],
      }),
    );
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['appointment.created'],
    );
    assert.equal(plan.quarantined.length, 1);
    assert.match(plan.quarantined[0]?.reason ?? '', /duplicate appointment id "482129"/);
    assert.equal(plan.upsertAppointments.some((p) => p.record.ehr_appointment_id === '482129'), false);
  });

  it('a later read wins: a direct read of an id overrides the window read without a conflict', () => {
    const plan = planSync(
      input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment({ location: '3' })], [appointment({ location: '4' })]] }),
    );
    assert.equal(plan.quarantined.length, 0);
    const [e] = envelopes(plan) as EventEnvelope<'appointment.updated'>[];
    assert.deepEqual(e?.data.updated_fields, { location: '4' });
  });

  it('a new patient after the baseline is patient.created (extension), before its appointment\'s events', () => {
    const plan = planSync(input({ patientReads: [[patient()]], appointmentReads: [[appointment({ patient_ehr_id: 'p-123456' })]] }));
    assert.deepEqual(
      plan.events.map((e) => e.type),
      ['patient.created', 'appointment.created'],
    );
  });

  it('ordering keys: all events about one appointment share a key; patients have their own', () => {
    const plan = planSync(input({ projection: { appointments: knownAppointment(), patients: new Map() }, appointmentReads: [[appointment({ status: 'cancelled' })]] }));
    assert.deepEqual(new Set(plan.events.map((e) => e.orderingKey)), new Set(['appointment:0551c88b2249945151f967525ee3f7b4']));
    assert.deepEqual(plan.counts, { 'appointment.updated': 1, 'appointment.status_updated': 1 });
  });

  it('patient name change: patient.updated lists first_name; the payload shows the new full name', () => {
    const plan = planSync(input({ projection: { appointments: new Map(), patients: projected([['p-123456', 'pat-1', patient()]]) }, patientReads: [[patient({ first_name: 'Janet' } as Partial<PatientRecord>)]] }));
    const [e] = envelopes(plan) as EventEnvelope<'patient.updated'>[];
    assert.deepEqual(e?.data, { mrn: 'MRN123456', patient_name: 'Janet Smith', updated_fields: { first_name: 'Janet' } });
  });
});

describe('findMissingAppointments', () => {
  const window = { startMs: Date.parse('2025-07-21T00:00:00Z'), endMs: Date.parse('2025-09-27T00:00:00Z') };
  it('asks about projected appointments inside the window that the read did not return', () => {
    const projection = {
      appointments: projected([
        ['in', 'a', appointment({ ehr_appointment_id: 'in' })],
        ['read', 'b', appointment({ ehr_appointment_id: 'read' })],
        ['past', 'c', appointment({ ehr_appointment_id: 'past', datetime: '2025-07-01T10:00:00.000Z' })],
        ['inactive', 'd', appointment({ ehr_appointment_id: 'inactive', provider_ehr_id: 'off' })],
      ]),
      patients: new Map(),
    };
    const providers = new Map<string, ProviderRecord>([['off', { id: 'x', ehr_id: 'off', name: null, npi: null, status: 'inactive' }]]);
    assert.deepEqual(findMissingAppointments(projection, new Set(['read']), window, providers), ['in']);
  });
});
