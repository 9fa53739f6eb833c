/**
 * A deterministic EHR history for crash tests: version 0 is a clinic's schedule, and each later
 * version applies the same seeded edits (status changes, moves, new and deleted appointments,
 * patient phone changes). Any process computes the same state for the same version.
 */
import type { AppointmentRecord, PatientRecord } from '../../src/domain/records.js';
import { appointment, patient } from './fixtures.js';

/** The instant every crash-test sync runs at (a fixed clock keeps the window fixed). */
export const SCRIPT_NOW = Date.parse('2026-11-02T15:00:00.000Z');

/** mulberry32: a tiny seeded PRNG. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUSES = ['booked', 'arrived', 'checked-in', 'fulfilled', 'cancelled', 'noshow', '2', '3'];

/** The EHR's state at a version. */
export interface EhrState {
  appointments: Map<string, AppointmentRecord>;
  patients: Map<string, PatientRecord>;
}

function newAppointment(id: string, n: number, r: () => number): { a: AppointmentRecord; p: PatientRecord } {
  const pid = `p-${id}`;
  const start = SCRIPT_NOW + Math.floor(r() * 20 * 24) * 3_600_000 - 3 * 86_400_000;
  return {
    a: appointment({
      ehr_appointment_id: id,
      patient_ehr_id: pid,
      patient_mrn: `MRN-${id}`,
      patient_name: `Patient ${n}`,
      datetime: new Date(start).toISOString(),
      status: 'booked',
      location: `room-${n % 9}`,
      provider_ehr_id: `dr-${n % 7}`,
      provider_name: `Dr. ${n % 7}`,
    }),
    p: patient({ ehr_patient_id: pid, mrn: `MRN-${id}`, first_name: 'Patient', last_name: String(n), phone: `555-${String(n).padStart(4, '0')}` }),
  };
}

/** The state at `version` for a clinic of `size` appointments. */
export function ehrState(version: number, size: number): EhrState {
  const appointments = new Map<string, AppointmentRecord>();
  const patients = new Map<string, PatientRecord>();
  const r0 = rng(1);
  for (let i = 0; i < size; i++) {
    const { a, p } = newAppointment(`A${i}`, i, r0);
    appointments.set(a.ehr_appointment_id, a);
    patients.set(p.ehr_patient_id, p);
  }
  for (let v = 1; v <= version; v++) {
    const r = rng(1000 + v);
    const ids = [...appointments.keys()];
    for (const id of ids) {
      const x = r();
      const a = appointments.get(id) as AppointmentRecord;
      if (x < 0.02) appointments.set(id, { ...a, status: STATUSES[Math.floor(r() * STATUSES.length)] as string });
      else if (x < 0.035) appointments.set(id, { ...a, datetime: new Date(Date.parse(a.datetime) + 1_800_000).toISOString() });
      else if (x < 0.045) appointments.set(id, { ...a, location: `room-${Math.floor(r() * 20)}` });
      else if (x < 0.05) appointments.delete(id);
    }
    for (let j = 0; j < Math.ceil(size / 100); j++) {
      const { a, p } = newAppointment(`N${v}-${j}`, size + v * 1000 + j, r);
      appointments.set(a.ehr_appointment_id, a);
      patients.set(p.ehr_patient_id, p);
    }
    for (const [pid, p] of patients) if (r() < 0.02) patients.set(pid, { ...p, phone: `555-${Math.floor(r() * 10_000)}` });
  }
  return { appointments, patients };
}
