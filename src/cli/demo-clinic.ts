/**
 * @module cli/demo-clinic — a small made-up clinic for the demo: fake names only, and a front desk
 * that books, moves, checks in and cancels at random.
 */
import type { MemoryConnector } from '../connectors/memory.js';

const FIRST = ['Ana', 'Ben', 'Chloe', 'Dev', 'Ema', 'Femi', 'Gus', 'Hana', 'Ivo', 'Jun'];
const LAST = ['Alvarez', 'Brooks', 'Chen', 'Dubois', 'Eze', 'Fischer', 'Gupta', 'Haddad'];
const PROVIDERS = [
  { ehr_id: 'pr-1', name: 'Dr. Jose Gonzalez' },
  { ehr_id: 'pr-2', name: 'Dr. Michael Denenberg' },
];

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

/** Fills the EHR with 40 appointments over the coming days. */
export function seedClinic(ehr: MemoryConnector, now: number): void {
  for (let i = 0; i < 40; i++) book(ehr, now, i);
}

function book(ehr: MemoryConnector, now: number, i: number): void {
  const pid = `pt-${i}`;
  const first = pick(FIRST);
  const last = pick(LAST);
  ehr.putPatient({ ehr_patient_id: pid, mrn: String(10_000 + i), first_name: first, last_name: last, phone: `555-01${String(i).padStart(2, '0')}` });
  const provider = pick(PROVIDERS);
  const start = Math.floor(now / 3_600_000 + 1 + Math.floor(Math.random() * 72)) * 3_600_000;
  ehr.putAppointment({
    ehr_appointment_id: String(480_000 + i),
    patient_ehr_id: pid,
    patient_mrn: String(10_000 + i),
    patient_name: `${first} ${last}`,
    datetime: new Date(start).toISOString(),
    timezone: 'America/New_York',
    duration: pick([15, 20, 30]),
    location: pick(['1', '2', '3']),
    status: 'booked',
    provider_ehr_id: provider.ehr_id,
    provider_name: provider.name,
    appointment_type: pick(['FOLLOW-UP', 'NEW PATIENT', 'ANNUAL']),
    appointment_mode: pick(['office', 'office', 'telehealth']),
  });
}

let next = 1000;

/** One random front-desk action. */
export function frontDeskChange(ehr: MemoryConnector, now: number): void {
  const ids = [...ehr.appointments.keys()];
  const id = pick(ids);
  const roll = Math.random();
  if (roll < 0.2) book(ehr, now, next++);
  else if (roll < 0.45) ehr.updateAppointment(id, { status: pick(['arrived', 'checked-in', 'fulfilled', 'noshow']) });
  else if (roll < 0.65) ehr.updateAppointment(id, { datetime: new Date(now + Math.floor(Math.random() * 96 + 2) * 3_600_000).toISOString().replace(/:\d\d:\d\d\.\d+Z$/, ':00:00.000Z') });
  else if (roll < 0.8) ehr.updateAppointment(id, { status: 'cancelled' });
  else {
    const appt = ehr.appointments.get(id);
    if (typeof appt?.patient_ehr_id === 'string') ehr.updatePatient(appt.patient_ehr_id, { phone: `555-${String(Math.floor(Math.random() * 10_000)).padStart(4, '0')}` });
  }
}
