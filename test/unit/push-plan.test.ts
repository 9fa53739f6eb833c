/** planPush's feed rules (detection/push-plan.ts), one named test each, on the pure planner. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Announcement, PushedChange, PushInput, PushPlan } from '../../src/detection/push-plan.js';
import { planPush, recordTimeKey } from '../../src/detection/push-plan.js';
import type { Projected } from '../../src/domain/projection.js';
import type { AppointmentRecord, Candidate, PatientRecord } from '../../src/domain/records.js';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';
import { appointment, patient, sequentialIds } from '../helpers/fixtures.js';

const NOW = Date.parse('2026-01-10T14:00:00.000Z');
const T1 = Date.parse('2026-01-10T08:00:00.000Z');
const T2 = Date.parse('2026-01-10T09:00:00.000Z');

/** The patient of `appointment()` (p-804, MRN 804, John Doe). */
const john = (over: Partial<PatientRecord> = {}): PatientRecord =>
  patient({ ehr_patient_id: 'p-804', mrn: '804', first_name: 'John', last_name: 'Doe', ...over });

interface Known {
  appointments?: AppointmentRecord[];
  patients?: PatientRecord[];
  times?: [kind: 'appointment' | 'patient', ehrId: string, ms: number][];
}

function input(change: PushedChange, known: Known = {}, messageTimeMs: number | null = T2): PushInput {
  const appointments = new Map<string, Projected<AppointmentRecord>>((known.appointments ?? []).map((a, i) => [a.ehr_appointment_id, { id: `appt-${i}`, record: a }]));
  const patients = new Map<string, Projected<PatientRecord>>((known.patients ?? []).map((p, i) => [p.ehr_patient_id, { id: `pat-${i}`, record: p }]));
  return {
    connection: { id: 'conn-1', referenceId: 'clinic_1', timezone: 'America/New_York', statusMap: DEFAULT_STATUS_MAP },
    now: NOW,
    projection: { appointments, patients, version: 3 },
    providers: new Map(),
    change,
    messageTimeMs,
    recordTimes: new Map((known.times ?? []).map(([kind, id, ms]) => [recordTimeKey(kind, id), ms])),
    newId: sequentialIds(),
  };
}

const siu = (announces: Announcement, a: Candidate<AppointmentRecord>, p: Candidate<PatientRecord> | null = john()): PushedChange => ({
  kind: 'appointment',
  announces,
  appointment: a,
  patient: p,
});
const adt = (announces: Announcement, p: Candidate<PatientRecord>): PushedChange => ({ kind: 'patient', announces, patient: p });

interface Ev {
  type: string;
  data: Record<string, unknown>;
}
const events = (p: PushPlan): Ev[] => p.plan.events.map((e) => JSON.parse(e.body) as Ev);
const types = (p: PushPlan): string[] => p.plan.events.map((e) => e.type);
const updatedFields = (e: Ev | undefined): string[] => Object.keys((e?.data.updated_fields as object | undefined) ?? {});

describe('planPush: feed rules', () => {
  it('stale: a message older than the record\'s last applied MSH-7 changes nothing', () => {
    const known: Known = { appointments: [appointment()], patients: [john()], times: [['appointment', '482129', T2], ['patient', 'p-804', T2]] };
    const plan = planPush(input(siu(['status'], appointment({ status: 'cancelled' }), john({ phone: '555-0000' })), known, T1));
    assert.equal(plan.stale, true);
    assert.deepEqual(plan.plan.events, []);
    assert.deepEqual(plan.plan.upsertAppointments, []);
    assert.deepEqual(plan.plan.upsertPatients, []);
    assert.deepEqual(plan.recordTimes, [], 'the newer time stays');
    // A message as old as the last applied one is not older: it applies.
    const same = planPush(input(siu(['status'], appointment({ status: 'cancelled' })), known, T2));
    assert.equal(same.stale, false);
    assert.deepEqual(types(same), ['appointment.updated', 'appointment.status_updated']);
  });

  it('S12 creates: a new booking emits appointment.created; its patient is learned silently', () => {
    const plan = planPush(input(siu('created', appointment())));
    assert.deepEqual(types(plan), ['appointment.created']);
    assert.equal(plan.plan.upsertAppointments.length, 1);
    assert.deepEqual(plan.plan.upsertPatients.map((p) => p.record.ehr_patient_id), ['p-804']);
    assert.deepEqual(plan.recordTimes, [
      { kind: 'appointment', ehrId: '482129', ms: T2 },
      { kind: 'patient', ehrId: 'p-804', ms: T2 },
    ]);
    assert.equal(plan.stale, false);
  });

  it('S15 of an appointment never seen: appointment.updated with status only, never a made-up created', () => {
    const plan = planPush(input(siu(['status'], appointment({ status: 'cancelled' }))));
    const [e, ...rest] = events(plan);
    assert.deepEqual(types(plan), ['appointment.updated']);
    assert.deepEqual(rest, []);
    assert.deepEqual(e?.data.updated_fields, { status: 'cancelled' });
    assert.equal(plan.plan.upsertAppointments[0]?.record.status, 'cancelled', 'learned as the message has it');
  });

  it('S14 of an appointment never seen: appointment.updated listing every tracked field with a value', () => {
    const plan = planPush(input(siu('any', appointment({ location: null, appointment_mode: null }))));
    assert.deepEqual(types(plan), ['appointment.updated']);
    assert.deepEqual(updatedFields(events(plan)[0]), ['patient_mrn', 'patient_name', 'datetime', 'duration', 'status', 'provider_name', 'appointment_type']);
  });

  it('SIU with a patient never seen: the patient is learned silently, no patient event', () => {
    const plan = planPush(input(siu('any', appointment()), { appointments: [appointment()] }));
    assert.deepEqual(types(plan), [], 'nothing about the appointment changed, and the patient is new to ehrsync only');
    assert.deepEqual(plan.plan.upsertPatients.map((p) => p.record.mrn), ['804']);
  });

  it('SIU with a known patient whose data changed: patient.updated with the changed fields', () => {
    const plan = planPush(input(siu('any', appointment(), john({ phone: '555-0000' })), { appointments: [appointment()], patients: [john()] }));
    assert.deepEqual(types(plan), ['patient.updated']);
    assert.deepEqual(events(plan)[0]?.data.updated_fields, { phone: '555-0000' });
  });

  it('A04 of a patient never seen: patient.created', () => {
    const plan = planPush(input(adt('created', patient())));
    assert.deepEqual(types(plan), ['patient.created']);
    assert.equal(events(plan)[0]?.data.mrn, 'MRN123456');
    assert.deepEqual(plan.recordTimes, [{ kind: 'patient', ehrId: 'p-123456', ms: T2 }]);
  });

  it('A08 of a patient never seen: patient.updated with every tracked field with a value, never created', () => {
    const plan = planPush(input(adt('any', patient())));
    assert.deepEqual(types(plan), ['patient.updated']);
    // patient(): cell_phone and address_line2 are null.
    assert.deepEqual(updatedFields(events(plan)[0]), ['mrn', 'first_name', 'last_name', 'dob', 'sex', 'phone', 'email', 'address_street', 'address_city', 'address_state', 'address_zip']);
  });

  it('S17 of a known appointment: appointment.deleted and the row removed', () => {
    const plan = planPush(input(siu('deleted', appointment()), { appointments: [appointment()], patients: [john()] }));
    assert.deepEqual(types(plan), ['appointment.deleted']);
    assert.deepEqual(plan.plan.deleteAppointmentIds, ['482129']);
  });

  it('S17 of an appointment never seen: nothing, not even a silent row', () => {
    const plan = planPush(input(siu('deleted', appointment()), { patients: [john()] }));
    assert.deepEqual(plan.plan.events, []);
    assert.deepEqual(plan.plan.upsertAppointments, []);
    assert.deepEqual(plan.plan.deleteAppointmentIds, []);
  });

  it('a message older than an applied S17 does not bring the deleted appointment back', () => {
    // S12 at T1, S17 at T3, then a late S14 stamped T2 (an interface engine replaying its queue).
    const T3 = T2 + 3_600_000;
    const deleted = planPush(input(siu('deleted', appointment()), { appointments: [appointment()], patients: [john()], times: [['appointment', '482129', T1]] }, T3));
    assert.deepEqual(types(deleted), ['appointment.deleted']);
    // What the store then holds: the newest time per record.
    const times = new Map<string, ['appointment' | 'patient', string, number]>([['appointment:482129', ['appointment', '482129', T1]]]);
    for (const t of deleted.recordTimes) times.set(`${t.kind}:${t.ehrId}`, [t.kind, t.ehrId, Math.max(t.ms, times.get(`${t.kind}:${t.ehrId}`)?.[2] ?? t.ms)]);
    const late = planPush(input(siu('any', appointment({ location: '9' })), { patients: [john()], times: [...times.values()] }, T2));
    assert.deepEqual(late.plan.events, [], 'no appointment.updated for an appointment the customer was told is deleted');
    assert.deepEqual(late.plan.upsertAppointments, []);
  });

  it('S14 without a status (field not carried) keeps the known status', () => {
    const { status: _status, ...withoutStatus } = appointment({ location: '9' });
    const plan = planPush(input(siu('any', withoutStatus), { appointments: [appointment({ status: 'arrived' })], patients: [john()] }));
    assert.deepEqual(types(plan), ['appointment.updated']);
    assert.deepEqual(events(plan)[0]?.data.updated_fields, { location: '9' });
    assert.equal(plan.plan.upsertAppointments[0]?.record.status, 'arrived');
  });

  it('merge retires the stored patients it names (by EHR id or MRN), never the survivor', () => {
    const survivor = patient({ ehr_patient_id: 'E9988', mrn: '4455667' });
    const known: Known = {
      patients: [survivor, patient({ ehr_patient_id: 'E7777', mrn: '111' }), patient({ ehr_patient_id: 'p-mrn-keyed', mrn: '4400001' }), patient({ ehr_patient_id: 'other', mrn: '222' })],
    };
    // The survivor's own id in the merged list (a sender listing every identifier) must not retire it.
    const plan = planPush(input({ kind: 'merge', survivor, merged: { ehrIds: ['E7777', 'E9988'], mrns: ['4400001'] } }, known));
    assert.deepEqual([...plan.retirePatientEhrIds].sort(), ['E7777', 'p-mrn-keyed']);
    assert.deepEqual(plan.plan.quarantined, []);
  });

  it('merge with an invalid survivor retires nothing and quarantines the survivor', () => {
    const known: Known = { patients: [patient({ ehr_patient_id: 'E7777', mrn: '111' })] };
    const survivor = { ehr_patient_id: 'E9988', mrn: '4455667', first_name: null, last_name: null };
    const plan = planPush(input({ kind: 'merge', survivor, merged: { ehrIds: ['E7777'], mrns: [] } }, known));
    assert.deepEqual(plan.retirePatientEhrIds, []);
    assert.equal(plan.plan.quarantined.length, 1);
    assert.equal(plan.plan.quarantined[0]?.kind, 'patient');
  });

  it('a merge remembers its time for the merged records: a late message about one does not bring it back', () => {
    const survivor = patient({ ehr_patient_id: 'E9988', mrn: '4455667' });
    const merge = planPush(input({ kind: 'merge', survivor, merged: { ehrIds: ['E7777'], mrns: [] } }, { patients: [survivor, patient({ ehr_patient_id: 'E7777', mrn: '111' })] }, T2));
    assert.deepEqual(merge.retirePatientEhrIds, ['E7777']);
    const remembered = merge.recordTimes.find((t) => t.ehrId === 'E7777');
    assert.deepEqual(remembered, { kind: 'patient', ehrId: 'E7777', ms: T2 });
    // A08 about E7777 stamped before the merge, arriving after it.
    const late = planPush(input(adt('any', patient({ ehr_patient_id: 'E7777', mrn: '111', phone: '555-0199' })), { patients: [survivor], times: [['patient', 'E7777', T2]] }, T1));
    assert.equal(late.stale, true);
    assert.deepEqual(late.plan.upsertPatients, []);
  });

  it('a late merge (its survivor already newer) still retires the records it names, without rolling the survivor back', () => {
    const survivor = patient({ ehr_patient_id: 'E9988', mrn: '4455667', phone: '555-0100' });
    const known: Known = { patients: [survivor, patient({ ehr_patient_id: 'E7777', mrn: '111' })], times: [['patient', 'E9988', T2], ['patient', 'E7777', T1]] };
    const plan = planPush(input({ kind: 'merge', survivor: { ...survivor, phone: '555-0000' }, merged: { ehrIds: ['E7777'], mrns: [] } }, known, T1 + 60_000));
    assert.deepEqual(plan.retirePatientEhrIds, ['E7777']);
    assert.deepEqual(plan.plan.upsertPatients, [], 'the survivor keeps its newer state');
    assert.deepEqual(plan.plan.events, []);
    assert.equal(plan.stale, false);
  });

  it('a late merge whose survivor is newer still stamps the merged ids it names, known or not', () => {
    const survivor = patient({ ehr_patient_id: 'E9988', mrn: '4455667' });
    const plan = planPush(input({ kind: 'merge', survivor, merged: { ehrIds: ['P2'], mrns: [] } }, { patients: [survivor], times: [['patient', 'E9988', T2]] }, T1));
    assert.equal(plan.stale, true);
    assert.deepEqual(plan.recordTimes, [{ kind: 'patient', ehrId: 'P2', ms: T1 }], 'an A04 for P2 older than the merge will be stale');
  });

  it('an SIU without a PID keeps the known patient of the appointment (not carried, not cleared)', () => {
    const known: Known = { appointments: [appointment()], patients: [john()] };
    // What mapping.ts gives for an SIU without PID: the patient fields undefined.
    const withoutPid = { ...appointment({ status: 'cancelled' }), patient_ehr_id: undefined, patient_mrn: undefined, patient_name: undefined };
    const plan = planPush(input(siu(['status'], withoutPid, null), known));
    const updated = events(plan).find((e) => e.type === 'appointment.updated');
    assert.deepEqual(updatedFields(updated), ['status']);
    assert.equal(plan.plan.upsertAppointments[0]?.record.patient_ehr_id, 'p-804');
  });

  it('same input, same plan', () => {
    const change = siu(['status'], appointment({ status: 'cancelled' }), john({ email: 'new@example.com' }));
    const known: Known = { patients: [john()], times: [['patient', 'p-804', T1]] };
    assert.deepEqual(planPush(input(change, known)), planPush(input(change, known)));
  });
});
