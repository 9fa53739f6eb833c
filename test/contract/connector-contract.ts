/**
 * The connector contract: what every EhrConnector must do, run against each implementation (memory,
 * demo over HTTP with FHIR and native statuses, fhir against Medplum's router). A harness sets the
 * EHR up in its own way; the assertions are the same for all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EhrConnector } from '../../src/connectors/connector.js';
import { validateAppointment, validatePatient } from '../../src/detection/validate.js';
import type { TimeWindow } from '../../src/domain/clock.js';
import type { AppointmentRecord } from '../../src/domain/records.js';
import { effectiveStatusMap, normalizeStatus } from '../../src/domain/status.js';

/** A new patient of a harness. */
export interface ContractPatient {
  mrn: string;
  first: string;
  last: string;
  phone: string;
}

/** How the contract drives one EHR. */
export interface ContractHarness {
  connector: EhrConnector;
  /** An existing provider's EHR id and the name the connector should report. */
  provider: { id: string; name: string };
  addPatient(p: ContractPatient): Promise<string>;
  /** Books a `booked` appointment; returns its EHR id. */
  addAppointment(a: { patientId: string; start: string; minutes: number; type: string }): Promise<string>;
  /** Sets a FHIR-style status (`checked-in`, `cancelled`) the way the EHR's staff would. */
  setStatus(id: string, status: 'checked-in' | 'cancelled'): Promise<void>;
  move(id: string, start: string): Promise<void>;
  /** Hard-deletes (or tombstones) an appointment. */
  deleteAppointment(id: string): Promise<void>;
  editPhone(patientId: string, phone: string): Promise<void>;
  /** Paging is exercised when the window holds more than this many appointments. */
  pageSize: number;
  close(): Promise<void>;
}

const signal = () => new AbortController().signal;
const HOUR = 3_600_000;

/** Registers the contract suite for one connector. `skip` states why it cannot run here. */
export function connectorContract(name: string, make: () => Promise<ContractHarness>, skip?: string): void {
  describe(`connector contract: ${name}`, { skip }, () => {
    // Far from today, so a seeded demo schedule around today stays out of the way.
    const base = Date.UTC(2031, 2, 3, 14, 0, 0);
    const window: TimeWindow = { startMs: base - 24 * HOUR, endMs: base + 48 * HOUR };
    let n = 0;
    const uniq = () => `${Date.now().toString(36)}${++n}`;

    async function scheduled(h: ContractHarness): Promise<Map<string, AppointmentRecord>> {
      const read = await h.connector.readSchedule(window, { signal: signal() });
      const out = new Map<string, AppointmentRecord>();
      for (const c of read.appointments) {
        const v = validateAppointment(c);
        assert.ok(v.ok, `every appointment the contract booked validates: ${v.ok ? '' : v.reason}`);
        assert.ok(!out.has(v.record.ehr_appointment_id), 'no appointment twice in one read (paging)');
        out.set(v.record.ehr_appointment_id, v.record);
      }
      return out;
    }

    it('reads the window (every page), maps records fully, and leaves out what lies outside', async (t) => {
      const h = await make();
      t.after(() => h.close());
      const mrn = `C${uniq()}`;
      const pid = await h.addPatient({ mrn, first: 'Ada', last: 'Contract', phone: '555-0100' });
      const inside: string[] = [];
      for (let i = 0; i < h.pageSize * 2 + 1; i++) inside.push(await h.addAppointment({ patientId: pid, start: new Date(base + i * 30 * 60_000).toISOString(), minutes: 20, type: 'FOLLOW-UP' }));
      const outside = await h.addAppointment({ patientId: pid, start: new Date(base + 5 * 24 * HOUR).toISOString(), minutes: 20, type: 'FOLLOW-UP' });
      const read = await scheduled(h);
      for (const id of inside) assert.ok(read.has(id), `appointment ${id} in the window is read`);
      assert.ok(!read.has(outside), 'an appointment outside the window is not read');
      const a = read.get(inside[0] as string) as AppointmentRecord;
      assert.deepEqual(
        { mrn: a.patient_mrn, name: a.patient_name, at: a.datetime, duration: a.duration, provider: a.provider_ehr_id, providerName: a.provider_name, type: a.appointment_type, status: normalizeStatus(a.status, effectiveStatusMap(h.connector.statusMap)) },
        { mrn, name: 'Ada Contract', at: new Date(base).toISOString(), duration: 20, provider: h.provider.id, providerName: h.provider.name, type: 'FOLLOW-UP', status: 'scheduled' },
      );
      const sched = await h.connector.readSchedule(window, { signal: signal() });
      const p = sched.patients.map((c) => validatePatient(c)).find((v) => v.ok && v.record.ehr_patient_id === pid);
      assert.ok(p?.ok, 'the referenced patient is read along');
      assert.deepEqual([p.record.mrn, p.record.first_name, p.record.last_name, p.record.phone], [mrn, 'Ada', 'Contract', '555-0100']);
    });

    it('sees status changes and moves, and tells a deletion (gone) from a move out of the window', async (t) => {
      const h = await make();
      t.after(() => h.close());
      const pid = await h.addPatient({ mrn: `C${uniq()}`, first: 'Bo', last: 'Contract', phone: '555-0101' });
      const a = await h.addAppointment({ patientId: pid, start: new Date(base + HOUR).toISOString(), minutes: 20, type: 'SICK-VISIT' });
      const b = await h.addAppointment({ patientId: pid, start: new Date(base + 2 * HOUR).toISOString(), minutes: 20, type: 'SICK-VISIT' });
      const c = await h.addAppointment({ patientId: pid, start: new Date(base + 3 * HOUR).toISOString(), minutes: 20, type: 'SICK-VISIT' });
      await h.setStatus(a, 'checked-in');
      await h.setStatus(b, 'cancelled');
      const later = new Date(base + 10 * 24 * HOUR).toISOString();
      await h.move(c, later);
      const read = await scheduled(h);
      const map = effectiveStatusMap(h.connector.statusMap);
      assert.equal(normalizeStatus(read.get(a)!.status, map), 'checked-in');
      assert.equal(normalizeStatus(read.get(b)!.status, map), 'cancelled', 'a cancelled appointment is still read (a status, not a deletion)');
      assert.ok(!read.has(c), 'moved out of the window');
      const moved = await h.connector.readAppointment(c, { signal: signal() });
      assert.ok(moved.found, 'a moved appointment is found by id');
      assert.equal(validateAppointment(moved.appointment).ok && (validateAppointment(moved.appointment) as { record: AppointmentRecord }).record.datetime, later);
      await h.deleteAppointment(c);
      assert.deepEqual(await h.connector.readAppointment(c, { signal: signal() }), { found: false });
      assert.deepEqual(await h.connector.readAppointment(`never-${uniq()}`, { signal: signal() }), { found: false });
    });

    it('reads patients by id and, where supported, changed since an instant', async (t) => {
      const h = await make();
      t.after(() => h.close());
      const before = new Date(Date.now() - 60_000).toISOString();
      const pid = await h.addPatient({ mrn: `C${uniq()}`, first: 'Cy', last: 'Contract', phone: '555-0102' });
      await h.editPhone(pid, '555-0199');
      const byId = await h.connector.readPatients({ ids: [pid] }, { signal: signal() });
      const v = validatePatient(byId.patients[0] as never);
      assert.ok(v.ok);
      assert.equal(v.record.phone, '555-0199');
      // As the sync engine does: capabilities are settled by the first schedule read (fhir asks metadata).
      await h.connector.readSchedule(window, { signal: signal() });
      if (h.connector.capabilities.patientsChangedSince) {
        const changed = await h.connector.readPatients({ changedSince: before }, { signal: signal() });
        assert.ok(changed.patients.some((p) => p.ehr_patient_id === pid), 'a patient edited after the instant is read');
        const none = await h.connector.readPatients({ changedSince: new Date(Date.now() + 3_600_000).toISOString() }, { signal: signal() });
        assert.ok(!none.patients.some((p) => p.ehr_patient_id === pid));
      }
    });

    it('writes, when it has them: the same idempotency key twice creates one record; updates read back', async (t) => {
      const h = await make();
      t.after(() => h.close());
      if (!h.connector.capabilities.writes || !h.connector.writes) return t.skip('this connector has no writes');
      const w = h.connector.writes;
      const pid = await h.addPatient({ mrn: `C${uniq()}`, first: 'Di', last: 'Contract', phone: '555-0103' });
      const key = `job_${uniq()}`;
      const draft = { patient_ehr_id: pid, provider_ehr_id: h.provider.id, secondary_provider_ehr_id: null, datetime: new Date(base + 20 * HOUR).toISOString(), duration: 30, location: null, appointment_type: 'FOLLOW-UP', appointment_mode: 'office', note: 'first visit' };
      const first = await w.createAppointment(draft, { signal: signal(), idempotencyKey: key });
      const again = await w.createAppointment(draft, { signal: signal(), idempotencyKey: key });
      const v = validateAppointment(first.appointment);
      assert.ok(v.ok, v.ok ? '' : v.reason);
      assert.equal(again.appointment.ehr_appointment_id, v.record.ehr_appointment_id, 'a retried create finds the first one');
      assert.deepEqual([v.record.datetime, v.record.duration, v.record.provider_ehr_id, normalizeStatus(v.record.status, effectiveStatusMap(h.connector.statusMap))], [draft.datetime, 30, h.provider.id, 'scheduled']);
      const read = await scheduled(h);
      assert.equal([...read.values()].filter((a) => a.datetime === draft.datetime && a.patient_ehr_id === pid).length, 1, 'exactly one appointment exists');
      assert.deepEqual(read.get(v.record.ehr_appointment_id), v.record, 'the read-back equals what the next sync reads');

      const cancelled = await w.updateAppointment(v.record.ehr_appointment_id, { status: 'cancelled' }, { signal: signal(), idempotencyKey: `job_${uniq()}` });
      const cv = validateAppointment(cancelled.appointment);
      assert.ok(cv.ok);
      assert.equal(normalizeStatus(cv.record.status, effectiveStatusMap(h.connector.statusMap)), 'cancelled');
      const moved = await w.updateAppointment(v.record.ehr_appointment_id, { datetime: new Date(base + 22 * HOUR).toISOString() }, { signal: signal(), idempotencyKey: `job_${uniq()}` });
      assert.equal((validateAppointment(moved.appointment) as { record: AppointmentRecord }).record.datetime, new Date(base + 22 * HOUR).toISOString());

      const pkey = `job_${uniq()}`;
      const pmrn = `W${uniq()}`;
      const p1 = await w.createPatient({ mrn: pmrn, first_name: 'Eve', last_name: 'Written', phone: '555-0200' }, { signal: signal(), idempotencyKey: pkey });
      const p2 = await w.createPatient({ mrn: pmrn, first_name: 'Eve', last_name: 'Written', phone: '555-0200' }, { signal: signal(), idempotencyKey: pkey });
      assert.equal(p2.ehr_patient_id, p1.ehr_patient_id, 'a retried patient create finds the first one');
      assert.deepEqual([p1.mrn, p1.first_name, p1.last_name, p1.phone], [pmrn, 'Eve', 'Written', '555-0200']);
      const p3 = await w.updatePatient(String(p1.ehr_patient_id), { email: 'eve@example.com' }, { signal: signal(), idempotencyKey: `job_${uniq()}` });
      assert.deepEqual([p3.email, p3.phone, p3.mrn], ['eve@example.com', '555-0200', pmrn]);
    });
  });
}
