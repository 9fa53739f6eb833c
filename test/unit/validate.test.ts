/** Validation of connector candidates: what is accepted, normalized, or quarantined with which reason. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDateTime, validateAppointment, validatePatient } from '../../src/detection/validate.js';
import { appointment, patient } from '../helpers/fixtures.js';

describe('validateAppointment', () => {
  it('normalizes datetime with an offset to UTC with milliseconds', () => {
    const v = validateAppointment({ ...appointment(), datetime: '2025-07-28T12:00:00-04:00' });
    assert.equal(v.ok && v.record.datetime, '2025-07-28T16:00:00.000Z');
  });

  it('trims strings and turns empty optional strings into null', () => {
    const v = validateAppointment({ ...appointment(), ehr_appointment_id: ' 482129 ', location: '' });
    assert.ok(v.ok);
    assert.equal(v.record.ehr_appointment_id, '482129');
    assert.equal(v.record.location, null);
  });

  const rejects: [string, Record<string, unknown>, RegExp][] = [
    ['missing id', { ehr_appointment_id: undefined }, /ehr_appointment_id is missing/],
    ['numeric id', { ehr_appointment_id: 482129 }, /ehr_appointment_id must be a string, got number/],
    ['no offset', { datetime: '2025-07-28T16:00:00' }, /not an ISO 8601 date-time with offset/],
    ['February 30', { datetime: '2025-02-30T16:00:00Z' }, /not an ISO 8601/],
    ['hour 25', { datetime: '2025-07-28T25:00:00Z' }, /not an ISO 8601/],
    ['datetime as number', { datetime: 1753718400000 }, /datetime must be a string, got number/],
    ['negative duration', { duration: -5 }, /duration must be a non-negative number/],
    ['status object', { status: { code: '2' } }, /status must be a string, got object/],
    ['empty mrn', { patient_mrn: '  ' }, /patient_mrn is empty/],
    ['unknown zone', { timezone: 'Mars/Olympus' }, /timezone is not an IANA time zone/],
  ];
  for (const [name, change, reason] of rejects) {
    it(`quarantines: ${name}`, () => {
      const v = validateAppointment({ ...appointment(), ...change });
      assert.equal(v.ok, false);
      assert.match(v.ok ? '' : v.reason, reason);
    });
  }

  it('lists every problem of a record in one reason', () => {
    const v = validateAppointment({ status: 2, datetime: 'soon' });
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, /ehr_appointment_id is missing.*patient_mrn is missing.*status must be a string.*datetime is not/);
  });

  it('rejects non-objects', () => {
    assert.equal(validateAppointment(null as never).ok, false);
    assert.equal(validateAppointment([] as never).ok, false);
  });
});

describe('validatePatient', () => {
  it('accepts a full patient', () => {
    assert.ok(validatePatient(patient()).ok);
  });
  it('quarantines a bad dob and a patient without a name', () => {
    const v = validatePatient({ ...patient(), dob: '04/01/1990', first_name: null, last_name: null });
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, /dob must be a date YYYY-MM-DD.*neither first_name nor last_name/);
  });
});

describe('parseDateTime', () => {
  it('accepts Z, ±HH:MM and ±HHMM offsets and fractional seconds', () => {
    assert.equal(parseDateTime('2025-07-28T16:00Z'), Date.parse('2025-07-28T16:00:00Z'));
    assert.equal(parseDateTime('2025-07-28T09:00:00.5-07:00'), Date.parse('2025-07-28T16:00:00.500Z'));
    assert.equal(parseDateTime('2025-07-28T21:30:00+0530'), Date.parse('2025-07-28T16:00:00Z'));
  });
  it('rejects dates, garbage and impossible days', () => {
    for (const s of ['2025-07-28', 'tomorrow', '2025-04-31T10:00:00Z', '2024-02-30T00:00:00Z']) assert.ok(Number.isNaN(parseDateTime(s)), s);
    assert.ok(!Number.isNaN(parseDateTime('2024-02-29T00:00:00Z')), 'leap day');
  });
});
