/**
 * HL7 v2 mapping (src/connectors/hl7v2/mapping.ts, status-map.ts, hl7-time.ts): SIU and ADT fixtures
 * (test/fixtures/hl7/map-*) parsed by the real parser, mapped, then run through detection's own
 * validation, and compared field for field with the records ehrsync should keep.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { hl7DateTimeToIso, hl7DateToIso, parseHl7DateTime } from '../../src/connectors/hl7v2/hl7-time.js';
import { mapMessage, MappingError, type Hl7MappingOptions, type MappedMessage } from '../../src/connectors/hl7v2/mapping.js';
import { Hl7Message } from '../../src/connectors/hl7v2/message.js';
import { HL7_FILLER_STATUS_MAP } from '../../src/connectors/hl7v2/status-map.js';
import { connectionStatusMap } from '../../src/connectors/registry.js';
import { validateAppointment, validatePatient } from '../../src/detection/validate.js';
import { isTimeZone, zonedStartOfDay, zonedWallTimeToEpoch, zoneOffsetMs } from '../../src/domain/clock.js';
import type { AppointmentRecord, PatientRecord } from '../../src/domain/records.js';
import { DEFAULT_STATUS_MAP, NORMALIZED_STATUSES, effectiveStatusMap, normalizeStatus } from '../../src/domain/status.js';

const NY = 'America/New_York';
/** An hl7v2 connection's effective status map, built as the sync builds it (no config map unless given). */
const statusMapOf = (statusMap: Record<string, string> | null, config: Record<string, unknown> = {}) => connectionStatusMap({ connector: 'hl7v2', config, statusMap });
const opts: Hl7MappingOptions = { timezone: NY, statusMap: statusMapOf(null) };

const fixture = (name: string): Buffer => readFileSync(new URL(`../fixtures/hl7/${name}`, import.meta.url));
const parse = (name: string): Hl7Message => Hl7Message.parse(fixture(name));
const map = (name: string, o: Hl7MappingOptions = opts): MappedMessage => mapMessage(parse(name), o);
/** A message from lines, CR-separated as on the wire. */
const msgOf = (...lines: string[]): Hl7Message => Hl7Message.parse(lines.join('\r'));

function appointmentOf(m: MappedMessage): Extract<MappedMessage, { kind: 'appointment' }> {
  assert.equal(m.kind, 'appointment');
  return m as Extract<MappedMessage, { kind: 'appointment' }>;
}
function validAppointment(m: MappedMessage): AppointmentRecord {
  const v = validateAppointment(appointmentOf(m).appointment);
  assert.ok(v.ok, v.ok ? '' : v.reason);
  return v.record;
}
function validPatient(c: unknown): PatientRecord {
  const v = validatePatient(c as never);
  assert.ok(v.ok, v.ok ? '' : v.reason);
  return v.record;
}

/** Jane Doe as every Epic-style fixture's PID describes her. */
const JANE: PatientRecord = {
  ehr_patient_id: 'E9988', // the PI identifier, not the MRN
  mrn: '4455667',
  first_name: 'Jane',
  last_name: 'Doe',
  dob: '1980-02-03',
  sex: 'female',
  phone: '(217)555-0101',
  cell_phone: '+1 (217)555-0102',
  email: 'jane.doe@example.com',
  address_street: '12 Main St', // the home address (XAD-7 H), not the first (mailing) one
  address_line2: 'Apt 4',
  address_city: 'Springfield',
  address_state: 'IL',
  address_zip: '62701',
};

/** The appointment of the Epic-style S12, as ehrsync keeps it. */
const BOOKED: AppointmentRecord = {
  ehr_appointment_id: '58001',
  patient_ehr_id: 'E9988',
  patient_mrn: '4455667',
  patient_name: 'Jane Doe',
  datetime: '2026-01-15T14:30:00.000Z', // 09:30 EST
  timezone: NY,
  duration: 30,
  location: 'FAMMED',
  status: 'Booked',
  provider_ehr_id: 'E200',
  provider_name: 'Dr. Tina Best',
  secondary_provider_ehr_id: 'E300',
  appointment_type: 'FOLLOW UP & LABS',
  appointment_mode: null,
};

describe('hl7 mapping: SIU', () => {
  it('maps an Epic-style S12 (v2.3 SCH-11 timing, zone-local time, Z-segment, \\T\\, AIL/AIP, repeated PID-3 and PID-13)', () => {
    const m = appointmentOf(map('map-siu-s12-epic.hl7'));
    assert.equal(m.trigger, 'S12');
    assert.equal(m.deleted, false);
    assert.deepEqual(m.provider, { ehr_id: 'E200', name: 'Dr. Tina Best', npi: '1234567890' });
    assert.deepEqual(validAppointment(m), BOOKED);
    assert.deepEqual(validPatient(m.patient), JANE);
  });

  it('S13 reschedule: a start with its own offset, the TQ duration component (M45)', () => {
    assert.deepEqual(validAppointment(map('map-siu-s13-reschedule.hl7')), {
      ...BOOKED,
      datetime: '2026-01-22T19:30:00.000Z',
      duration: 45,
      secondary_provider_ehr_id: null,
    });
  });

  it('S14 change of provider: a resource with action code D is no longer the provider', () => {
    const m = appointmentOf(map('map-siu-s14-provider.hl7'));
    assert.deepEqual(m.provider, { ehr_id: 'E400', name: 'Dr. Meredith Grey', npi: null });
    assert.deepEqual(validAppointment(m), { ...BOOKED, provider_ehr_id: 'E400', provider_name: 'Dr. Meredith Grey', secondary_provider_ehr_id: null });
  });

  it('S14 without SCH-25 asserts no status (a modification must not undo a check-in)', () => {
    const m = appointmentOf(mapMessage(msgOf('MSH|^~\\&|A|B|C|D|20260112100000||SIU^S14|1|P|2.3', 'SCH||58001|||||||30|MIN|^^^20260115093000', 'PID|1||4455667^^^X^MR||Doe^Jane'), opts));
    assert.equal(m.appointment.status, undefined);
    assert.deepEqual(validateAppointment(m.appointment), { ok: false, reason: 'status is missing' });
  });

  it('S15 without SCH-25 is Cancelled; S16 is Dc; S12 without SCH-25 is Booked', () => {
    assert.deepEqual(validAppointment(map('map-siu-s15-cancel.hl7')), { ...BOOKED, status: 'Cancelled', secondary_provider_ehr_id: null });
    const bare = (trigger: string, sch25 = '') => appointmentOf(mapMessage(msgOf(`MSH|^~\\&|A|B|C|D|20260112100000||SIU^${trigger}|1|P|2.3`, `SCH||58001|||||||30|MIN|^^^20260115093000||||||||||||||${sch25}`, 'PID|1||4455667^^^X^MR||Doe^Jane'), opts)).appointment.status;
    assert.deepEqual([bare('S16'), bare('S12'), bare('S13'), bare('S15', 'Dc'), bare('S15', 'CX')], ['Dc', 'Booked', 'Booked', 'Dc', 'CX'], 'an agreeing or unmapped SCH-25 is kept as sent');
  });

  it('S17 delete: deleted, status Deleted', () => {
    const m = appointmentOf(map('map-siu-s17-delete.hl7'));
    assert.equal(m.deleted, true);
    assert.deepEqual(validAppointment(m), {
      ...BOOKED, ehr_appointment_id: '58002', datetime: '2026-01-16T13:00:00.000Z', duration: 15, status: 'Deleted', location: null,
      secondary_provider_ehr_id: null, appointment_type: null,
    });
  });

  it('S26 no-show wins over a stale SCH-25 (Booked), judged through the connection map', () => {
    assert.deepEqual(validAppointment(map('map-siu-s26-noshow.hl7')), { ...BOOKED, status: 'Noshow', secondary_provider_ehr_id: null });
    // A site that maps its own code to no-show keeps that code as sent.
    const local = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S26|1|P|2.3', 'SCH||58001|||||||30|MIN|^^^20260115093000||||||||||||||4', 'PID|1||1^^^X^MR||Doe^Jane'), { ...opts, statusMap: statusMapOf({ '4': 'no-show' }) });
    assert.equal(appointmentOf(local).appointment.status, '4');
  });

  it('v2.5.1 S12 with TQ1 timing (zone-local in July: EDT), no AIL, MRN by assigning authority', () => {
    const m = appointmentOf(map('map-siu-s12-v25-tq1.hl7', { ...opts, mrnSystem: '2.16.840.1.113883.19.5' }));
    assert.deepEqual(validAppointment(m), {
      ehr_appointment_id: 'F9001', patient_ehr_id: '700100', patient_mrn: '700100', patient_name: 'John Smith',
      datetime: '2026-07-16T18:00:00.000Z', timezone: NY, duration: 45, location: null, status: 'Booked',
      provider_ehr_id: 'E500', provider_name: 'Dr. Gregory House', secondary_provider_ehr_id: null, appointment_type: 'Office visit est', appointment_mode: null,
    });
    assert.deepEqual(validPatient(m.patient), {
      ehr_patient_id: '700100', mrn: '700100', first_name: 'John', last_name: 'Smith', dob: '1975-12-31', sex: 'male', phone: '(608)555-1234 X12',
      cell_phone: null, email: null, address_street: null, address_line2: null, address_city: null, address_state: null, address_zip: null,
    });
  });

  it('TQ1 wins over SCH-11 when both are sent; resources give the start when neither is', () => {
    const both = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.5.1', 'SCH||9|||||||||^^^20260301080000', 'TQ1|1|||||20^min|20260301090000', 'PID|1||1^^^X^MR||Doe^Jane'), opts);
    assert.deepEqual([appointmentOf(both).appointment.datetime, appointmentOf(both).appointment.duration], ['2026-03-01T14:00:00.000Z', 20]);
    const resources = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.5.1', 'SCH||9|||||||||', 'PID|1||1^^^X^MR||Doe^Jane', 'AIP|1||D1^Who^Doctor|||20260301100000|||2|H'), opts);
    assert.deepEqual([appointmentOf(resources).appointment.datetime, appointmentOf(resources).appointment.duration], ['2026-03-01T15:00:00.000Z', 120]);
    // SCH-9/SCH-10 with the units only as text, and in seconds.
    const units = (q: string, u: string) => appointmentOf(mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.3', `SCH||9|||||||${q}|${u}|^^^20260301080000`, 'PID|1||1^^^X^MR||Doe^Jane'), opts)).appointment.duration;
    assert.deepEqual([units('1', '^hours'), units('900', 's'), units('30', ''), units('', 'MIN')], [60, 15, 30, null]);
  });

  it('an ISO-8859-1 name (MSH-18 8859/1) and a start with offset', () => {
    const m = appointmentOf(map('map-siu-s12-latin1.hl7'));
    const a = validAppointment(m);
    assert.deepEqual([a.patient_name, a.datetime, a.duration, a.location, a.appointment_type], ['Zoë Müller', '2026-03-02T09:15:00.000Z', 20, 'Praxis Süd', 'Consultation']);
    assert.deepEqual([validPatient(m.patient).first_name, validPatient(m.patient).last_name], ['Zoë', 'Müller']);
  });

  it('values that are present but unreadable go on as sent, so validation quarantines and names them', () => {
    const m = appointmentOf(mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.3', 'SCH||9|||||||90|FORTNIGHT|^^^20260230093000', 'PID|1||1^^^X^MR||Doe^Jane||19801340'), opts));
    const v = validateAppointment(m.appointment);
    assert.ok(!v.ok && /datetime is not an ISO 8601 date-time with offset: "20260230093000"/.test(v.reason) && /duration must be a non-negative number/.test(v.reason), JSON.stringify(v));
    const p = validatePatient(m.patient as never);
    assert.ok(!p.ok && /dob must be a date/.test(p.reason));
  });

  it('an SIU without PID maps with patient null; the appointment then lacks its MRN', () => {
    const m = appointmentOf(mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.3', 'SCH||9|||||||30|MIN|^^^20260301080000||||||||||||||Blocked'), opts));
    assert.equal(m.patient, null);
    assert.deepEqual(validateAppointment(m.appointment), { ok: false, reason: 'patient_mrn is missing' });
  });
});

describe('hl7 mapping: ADT', () => {
  it('A08 update: one MR identifier is both MRN and EHR id; PRN phone and CP cell', () => {
    const m = map('map-adt-a08.hl7');
    assert.equal(m.kind, 'patient');
    assert.deepEqual(m.kind === 'patient' && [m.trigger, m.arrival], ['A08', undefined]);
    assert.deepEqual(validPatient(m.kind === 'patient' && m.patient), {
      ehr_patient_id: '4455667', mrn: '4455667', first_name: 'Jane', last_name: 'Doe', dob: '1980-02-03', sex: 'female',
      phone: '(217)555-0111', cell_phone: '(217)555-0112', email: null,
      address_street: '14 Elm St', address_line2: null, address_city: 'Springfield', address_state: 'IL', address_zip: '62704',
    });
  });

  it('A31 update person: email from XTN-4, an explicit null ("") as empty, PID-14 as the phone when PID-13 has none', () => {
    const m = map('map-adt-a31.hl7');
    assert.deepEqual(validPatient(m.kind === 'patient' && m.patient), {
      ehr_patient_id: 'E9988', mrn: '4455667', first_name: 'Jane', last_name: 'Doe', dob: '1980-02-03', sex: 'female',
      phone: '(217)555-0199', cell_phone: null, email: 'jane.new@example.com',
      address_street: null, address_line2: null, address_city: null, address_state: null, address_zip: null,
    });
  });

  it('A28 add person: a partial birth date is unknown, sex U is unknown', () => {
    const m = map('map-adt-a28.hl7');
    assert.deepEqual(validPatient(m.kind === 'patient' && m.patient), {
      ehr_patient_id: '900300', mrn: '900300', first_name: 'Richard', last_name: 'Roe', dob: null, sex: 'unknown',
      phone: null, cell_phone: null, email: null,
      address_street: '1 Oak Ave', address_line2: null, address_city: 'Shelbyville', address_state: 'IL', address_zip: '62565',
    });
  });

  it('A04 register: the patient and the arrival hint (PV1-19; SCH when present)', () => {
    const m = map('map-adt-a04.hl7');
    assert.ok(m.kind === 'patient');
    assert.deepEqual(validPatient(m.patient), JANE);
    assert.deepEqual(m.arrival, { visitNumber: '58001' });
    const withSch = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A04|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane', 'SCH||58001'), opts);
    assert.deepEqual(withSch.kind === 'patient' && withSch.arrival, { appointmentEhrId: '58001' });
    const none = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A04|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane', 'PV1|1|O'), opts);
    assert.ok(none.kind === 'patient' && !('arrival' in none));
  });

  it('A40 merge: the survivor, its key, and every prior identifier typed (the key\'s type first)', () => {
    const m = map('map-adt-a40.hl7');
    assert.ok(m.kind === 'merge');
    assert.deepEqual(m.survivorKey, { value: 'E9988', type: 'PI', authority: 'EPI' });
    assert.deepEqual(m.merged, [
      { value: 'E7777', type: 'PI', authority: 'EPI' },
      { value: '4400001', type: 'MR', authority: 'NORTHCLINIC' },
    ]);
    assert.deepEqual(validPatient(m.survivor), { ...JANE, phone: null, cell_phone: null, email: null, address_street: null, address_line2: null, address_city: null, address_state: null, address_zip: null });
    const noMrg1 = () => mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane', 'MRG|'), opts);
    assert.throws(noMrg1, (e: unknown) => e instanceof MappingError && e.code === 'missing_prior_patient_id');
    const twoSurvivors = () => mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane', 'MRG|2^^^X^MR', 'PID|2||3^^^X^MR||Roe^Rick', 'MRG|4^^^X^MR'), opts);
    assert.throws(twoSurvivors, (e: unknown) => e instanceof MappingError && e.code === 'ambiguous_merge');
  });

  it('A40 whose MRG-1 carries only the MR of a record keyed by its PI: the MR is still reported, typed', () => {
    const m = map('map-adt-a40-mr-only.hl7');
    assert.ok(m.kind === 'merge');
    assert.deepEqual(m.survivorKey, { value: 'E9988', type: 'PI', authority: 'EPI' });
    assert.deepEqual(m.merged, [{ value: '4400001', type: 'MR', authority: 'NORTHCLINIC' }]);
    // The survivor's own identifiers are never reported as merged; MRG order is kept within a type;
    // duplicates across MRG segments collapse.
    const own = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5', 'PID|1||P1^^^E^PI~M1^^^N^MR||Doe^Jane', 'MRG|M1^^^N^MR~M0^^^N^MR~P0^^^E^PI', 'PID|1||P1^^^E^PI~M1^^^N^MR||Doe^Jane', 'MRG|P0^^^E^PI~X9'), opts);
    assert.ok(own.kind === 'merge');
    assert.deepEqual(own.merged, [
      { value: 'P0', type: 'PI', authority: 'E' },
      { value: 'M0', type: 'MR', authority: 'N' },
      { value: 'X9', type: null, authority: null },
    ]);
    // A survivor keyed by its MRN (no PI): MR identifiers first.
    const byMrn = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.5', 'PID|1||M1^^^N^MR||Doe^Jane', 'MRG|P0^^^E^PI~M0^^^N^MR'), opts);
    assert.ok(byMrn.kind === 'merge');
    assert.deepEqual([byMrn.survivorKey?.value, byMrn.merged.map((i) => i.value)], ['M1', ['M0', 'P0']]);
  });

  it('the MRN per mrnSystem: assigning authority or type code; none matching leaves it absent (quarantined)', () => {
    const pid = (o: Partial<Hl7MappingOptions>) => {
      const m = map('map-adt-a31.hl7', { ...opts, ...o });
      return m.kind === 'patient' ? [m.patient.mrn, m.patient.ehr_patient_id] : null;
    };
    assert.deepEqual([pid({ mrnSystem: 'NORTHCLINIC' }), pid({ mrnSystem: 'pi' }), pid({ mrnSystem: 'urn:nothing' })], [['4455667', 'E9988'], ['E9988', 'E9988'], [undefined, 'E9988']]);
    const m = map('map-adt-a31.hl7', { ...opts, mrnSystem: 'urn:nothing' });
    assert.deepEqual(validatePatient((m.kind === 'patient' && m.patient) as never), { ok: false, reason: 'mrn is missing' });
    // Without MR and without a system: the first repetition.
    const first = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5', 'PID|1||X1^^^A^SS~X2^^^A^AN||Doe^Jane'), opts);
    assert.deepEqual(first.kind === 'patient' && [first.patient.mrn, first.patient.ehr_patient_id], ['X1', 'X1']);
  });
});

describe('hl7 mapping: failures', () => {
  const fails = (name: string, code: string, reason: RegExp) =>
    assert.throws(() => map(name), (e: unknown) => e instanceof MappingError && e.code === code && reason.test(e.reason) && !/Jane|Doe|4455667/.test(e.reason));

  it('an SIU without SCH-1 and SCH-2', () => fails('map-siu-no-id.hl7', 'missing_appointment_id', /SCH-1 and SCH-2/));
  it('a PID without PID-3 (PID-2 is not read)', () => fails('map-siu-no-pid3.hl7', 'missing_patient_id', /PID-3/));

  it('missing segments and a bad zone', () => {
    const t = (lines: string[], o: Hl7MappingOptions, code: string) => assert.throws(() => mapMessage(msgOf(...lines), o), (e: unknown) => e instanceof MappingError && e.code === code);
    t(['MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.3', 'PID|1||1^^^X^MR'], opts, 'missing_segment');
    t(['MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.3', 'EVN|A08'], opts, 'missing_segment');
    t(['MSH|^~\\&|A|B|C|D|1||ADT^A40|1|P|2.3', 'PID|1||1^^^X^MR'], opts, 'missing_segment');
    t(['MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.3', 'SCH||1'], { ...opts, timezone: 'Mars/Olympus' }, 'invalid_timezone');
  });

  it('unsupported messages are not errors', () => {
    assert.deepEqual(map('map-siu-s99.hl7'), { kind: 'unsupported', reason: 'SIU^S99 is not a supported message (SIU S12–S17, S26; ADT A04, A08, A28, A31, A40)' });
    assert.deepEqual(map('map-oru-r01.hl7'), { kind: 'unsupported', reason: 'ORU^R01 is not a supported message (SIU S12–S17, S26; ADT A04, A08, A28, A31, A40)' });
    assert.equal(mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5', 'PID|1||1'), opts).kind, 'unsupported');
  });
});

describe('hl7 time', () => {
  it('parses DTM precisions, fractions and offsets; rejects impossible values', () => {
    assert.deepEqual(parseHl7DateTime('20260115093012.1234-0500'), { year: 2026, month: 1, day: 15, hour: 9, minute: 30, second: 12, millisecond: 123, precision: 'second', offsetMinutes: -300 });
    assert.equal(parseHl7DateTime('2026')?.precision, 'year');
    assert.equal(parseHl7DateTime('2026011509+0530')?.offsetMinutes, 330);
    for (const bad of ['', '2026-01-15', '20260230', '20261301', '202601152400', '20260115093060', '20260115+2500', '202601151', 'abc']) assert.equal(parseHl7DateTime(bad), null, bad);
  });

  it('converts to UTC: the offset wins, else the zone (DST included), and needs an hour', () => {
    assert.equal(hl7DateTimeToIso('20260115093000', NY), '2026-01-15T14:30:00.000Z');
    assert.equal(hl7DateTimeToIso('20260716093000', NY), '2026-07-16T13:30:00.000Z');
    assert.equal(hl7DateTimeToIso('20260716093000+0000', NY), '2026-07-16T09:30:00.000Z');
    assert.equal(hl7DateTimeToIso('2026071609', 'Asia/Kolkata'), '2026-07-16T03:30:00.000Z');
    assert.equal(hl7DateTimeToIso('20260716', NY), null);
    // The night clocks spring forward (2026-03-08, 02:00 EST → 03:00 EDT): just before, the
    // skipped hour (moved forward), and just after.
    assert.equal(hl7DateTimeToIso('202603080159', NY), '2026-03-08T06:59:00.000Z');
    assert.equal(hl7DateTimeToIso('202603080230', NY), '2026-03-08T07:30:00.000Z');
    assert.equal(hl7DateTimeToIso('202603080300', NY), '2026-03-08T07:00:00.000Z');
    // The night they fall back (2026-11-01, 02:00 EDT → 01:00 EST): 01:30 happens twice, the first is taken.
    assert.equal(hl7DateTimeToIso('202611010130', NY), '2026-11-01T05:30:00.000Z');
    assert.equal(hl7DateTimeToIso('202611010230', NY), '2026-11-01T07:30:00.000Z');
    // A zone with a half-hour DST change and one south of the equator.
    assert.equal(zonedWallTimeToEpoch(Date.UTC(2026, 0, 15, 12), 'Australia/Lord_Howe'), Date.UTC(2026, 0, 15, 1));
    assert.equal(hl7DateTimeToIso('20260115120000', 'Australia/Sydney'), '2026-01-15T01:00:00.000Z');
  });

  it('dates of birth keep the calendar date; partial ones are told apart from garbage', () => {
    assert.deepEqual([hl7DateToIso('19800203'), hl7DateToIso('198002030000-0500'), hl7DateToIso('198002'), hl7DateToIso('1980-02-03')], ['1980-02-03', '1980-02-03', 'partial', null]);
  });
});

describe('hl7 status map', () => {
  it('maps table 0278 in HL7\'s spelling and in any case into the normalized set; Waitlist and Blocked pass through', () => {
    const m = statusMapOf(null);
    const codes = ['Pending', 'Waitlist', 'Booked', 'Started', 'Complete', 'Cancelled', 'Dc', 'Deleted', 'Blocked', 'Overbook', 'Noshow'];
    assert.deepEqual(codes.map((c) => normalizeStatus(c, m)), ['scheduled', 'Waitlist', 'scheduled', 'in-room', 'completed', 'cancelled', 'cancelled', 'cancelled', 'Blocked', 'scheduled', 'no-show']);
    assert.deepEqual(['BOOKED', 'noshow', 'DC', 'COMPLETE'].map((c) => normalizeStatus(c, m)), ['scheduled', 'no-show', 'cancelled', 'completed']);
    assert.ok(Object.hasOwn(HL7_FILLER_STATUS_MAP, 'Booked'), 'keys as HL7 spells them');
    for (const v of Object.values(HL7_FILLER_STATUS_MAP)) assert.ok((NORMALIZED_STATUSES as readonly string[]).includes(v), v);
    for (const [k, v] of Object.entries(HL7_FILLER_STATUS_MAP)) if (Object.hasOwn(DEFAULT_STATUS_MAP, k)) assert.equal(DEFAULT_STATUS_MAP[k], v, `${k} agrees with the default map`);
  });

  it('the effective map is layered as the sync layers it: default, 0278, config statusMap, connection map; keys as typed', () => {
    const config = { statusMap: { CX: 'cancelled', Booked: 'confirmed' } };
    const connection: Record<string, string> = Object.fromEntries([['CX', 'no-show'], ['__proto__', 'x']]);
    const m = connectionStatusMap({ connector: 'hl7v2', config, statusMap: connection });
    // What src/sync/sync-engine.ts reads: effectiveStatusMap({ ...connector.statusMap, ...connection.statusMap }),
    // the hl7v2 connector's statusMap being table 0278 with the config's map on top.
    const sync = effectiveStatusMap({ ...{ ...HL7_FILLER_STATUS_MAP, ...config.statusMap }, ...connection });
    assert.deepEqual(m, sync);
    // Keys as typed: `CX` matches CX exactly and nothing lowercase (normalizeStatus lowercases only the raw code).
    assert.deepEqual(['CX', 'cx', 'Booked', 'BOOKED', '__proto__', 'f'].map((c) => normalizeStatus(c, m)), ['no-show', 'cx', 'confirmed', 'scheduled', 'x', 'scheduled']);
    assert.equal(Object.getPrototypeOf(m), Object.prototype, 'a code named __proto__ is a key, not a prototype');
    assert.deepEqual(statusMapOf(null, { statusMap: ['not', 'a', 'map'] }), statusMapOf(null));
  });
});

describe('hl7 mapping: status judged with the effective map (as the sync reads it)', () => {
  const siu = (trigger: string, sch25: string, statusMap = statusMapOf(null)) =>
    appointmentOf(mapMessage(msgOf(`MSH|^~\\&|A|B|C|D|1||SIU^${trigger}|1|P|2.3`, `SCH||58001|||||||30|MIN|^^^20260115093000||||||||||||||${sch25}`, 'PID|1||1^^^X^MR||Doe^Jane'), { ...opts, statusMap })).appointment.status;

  it('override {Booked: confirmed}: BOOKED is scheduled in the mapping as in the sync, Booked confirmed', () => {
    const m = statusMapOf({ Booked: 'confirmed' });
    assert.deepEqual([normalizeStatus('BOOKED', m), normalizeStatus('Booked', m)], ['scheduled', 'confirmed']);
    // An override that reads BOOKED as a no-show does not make a stale `Booked` one: the sync reads
    // `Booked` exactly, through table 0278, as scheduled — so the S26 takes its own code.
    const noShow = statusMapOf({ BOOKED: 'no-show' });
    assert.deepEqual([siu('S26', 'Booked', noShow), siu('S26', 'BOOKED', noShow)], ['Noshow', 'BOOKED']);
    for (const [raw, got] of [['Booked', siu('S26', 'Booked', noShow)], ['BOOKED', siu('S26', 'BOOKED', noShow)]] as const) {
      assert.equal(normalizeStatus(got as string, noShow), 'no-show', `${raw} ends as no-show in the sync`);
    }
  });

  it('the default map\'s athena codes (2, 3, x) are known statuses for hl7v2 too (known issue), so S15/S16/S26 correct them', () => {
    assert.deepEqual(['2', '3', 'x', 'X'].map((c) => normalizeStatus(c, opts.statusMap)), ['checked-in', 'completed', 'cancelled', 'cancelled']);
    assert.deepEqual([siu('S15', '3'), siu('S16', '2'), siu('S26', 'x'), siu('S15', 'x'), siu('S16', 'X')], ['Cancelled', 'Dc', 'Noshow', 'x', 'X']);
    // A site that overrides the code wins: 3 as its own cancellation code is kept in an S15.
    assert.equal(siu('S15', '3', statusMapOf({ '3': 'cancelled' })), '3');
  });

  it('S15, S16, S26 with the Epic-style fixtures and a stale SCH-25 in HL7\'s or another case', () => {
    assert.equal(appointmentOf(map('map-siu-s26-noshow.hl7')).appointment.status, 'Noshow');
    assert.deepEqual([siu('S15', 'BOOKED'), siu('S16', 'started'), siu('S26', 'COMPLETE'), siu('S26', 'NOSHOW'), siu('S16', 'DC'), siu('S15', 'Waitlist')], ['Cancelled', 'Dc', 'Noshow', 'NOSHOW', 'DC', 'Waitlist']);
    // Whatever the mapping keeps, the sync normalizes to the trigger's outcome or leaves unmapped.
    const m = opts.statusMap;
    assert.deepEqual(['S15', 'S16', 'S26'].map((t) => normalizeStatus(siu(t, 'Booked') as string, m)), ['cancelled', 'cancelled', 'no-show']);
  });
});

describe('hl7 mapping: type, AIG providers, emergency numbers', () => {
  const head = 'MSH|^~\\&|A|B|C|D|1||SIU^S12|1|P|2.5';
  const pid = 'PID|1||1^^^X^MR||Doe^Jane';

  it('SCH-8 (table 0277: Normal, Tentative) is not the appointment type; SCH-7 still is', () => {
    const t = (sch7: string) => appointmentOf(mapMessage(msgOf(head, `SCH||9|||||${sch7}|Normal^Normal^HL70277|30|MIN|^^^20260301080000||||||||||||||Booked`, pid), opts)).appointment.appointment_type;
    assert.deepEqual([t(''), t('^FOLLOW UP')], [null, 'FOLLOW UP']);
  });

  it('an AIG resource is the provider only when AIG-4 names a person', () => {
    const p = (aig4: string) => appointmentOf(mapMessage(msgOf(head, 'SCH||9|||||||30|MIN|^^^20260301080000||||||||||||||Booked', pid, `AIG|1|A|R1^Dr. Who|${aig4}`), opts));
    assert.deepEqual(p('PROV^Provider').provider, { ehr_id: 'R1', name: 'Dr. Who', npi: null });
    assert.deepEqual(p('^Physician').provider?.ehr_id, 'R1');
    for (const notPerson of ['EQUIP^Equipment', 'ROOM', '']) {
      const m = p(notPerson);
      assert.deepEqual([m.provider, m.appointment.provider_ehr_id], [null, null], notPerson);
    }
  });

  it('XTN use EMR (an emergency contact\'s number) is not the patient\'s phone or cell', () => {
    const m = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane||||||||(217)555-0999^EMR^PH~(217)555-0998^EMR^CP~(217)555-0101^ORN^PH|(217)555-0199^WPN^PH'), opts);
    assert.ok(m.kind === 'patient');
    assert.deepEqual([m.patient.phone, m.patient.cell_phone], ['(217)555-0101', null]);
    const onlyEmr = mapMessage(msgOf('MSH|^~\\&|A|B|C|D|1||ADT^A08|1|P|2.5', 'PID|1||1^^^X^MR||Doe^Jane||||||||(217)555-0999^EMR^PH|(217)555-0199^WPN^PH'), opts);
    assert.ok(onlyEmr.kind === 'patient');
    assert.equal(onlyEmr.patient.phone, '(217)555-0199');
  });
});

describe('domain clock: time zones (shared by hl7-time and validation)', () => {
  it('isTimeZone: IANA zones yes; unknown, empty and non-strings no (and asking twice gives the same answer)', () => {
    assert.deepEqual([isTimeZone(NY), isTimeZone('UTC'), isTimeZone('Mars/Olympus'), isTimeZone('Mars/Olympus'), isTimeZone(''), isTimeZone(undefined as unknown as string)], [true, true, false, false, false, false]);
  });

  it('zoneOffsetMs(ms, zone): EST, EDT, Kolkata; throws for an unknown zone; zonedStartOfDay unchanged', () => {
    assert.deepEqual([zoneOffsetMs(Date.UTC(2026, 0, 15), NY), zoneOffsetMs(Date.UTC(2026, 6, 15), NY), zoneOffsetMs(Date.UTC(2026, 6, 15), 'Asia/Kolkata')], [-5 * 3_600_000, -4 * 3_600_000, 5.5 * 3_600_000]);
    assert.throws(() => zoneOffsetMs(0, 'Mars/Olympus'), RangeError);
    assert.equal(zonedStartOfDay('2026-03-08', NY), Date.UTC(2026, 2, 8, 5));
    assert.equal(zonedStartOfDay('2026-07-16', NY), Date.UTC(2026, 6, 16, 4));
  });
});
