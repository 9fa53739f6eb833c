/**
 * @module demo-ehr/seed — a realistic, entirely fake clinic for the demo EHR, deterministic for a
 * given seed: providers, patients, and appointments on the weekdays around today.
 */
import { zonedStartOfDay } from '../domain/clock.js';
import { DEMO_MRN_SYSTEM } from '../domain/demo-ehr-profile.js';
import type { DemoClinic } from './clinic.js';
import { APPOINTMENT_TYPES } from './clinic.js';
import type { FhirResource } from './store.js';

/** How big the seeded clinic is. */
export interface ClinicSize {
  providers: number;
  patients: number;
  /** Days before and after today that get appointments (weekdays only). */
  daysBack: number;
  daysAhead: number;
  /** Appointments per provider per weekday (at most what fits 8:00–18:00). */
  perProviderDay: number;
}

/** The default clinic: 8 providers, 300 patients, two weeks of appointments around today. */
export const DEFAULT_CLINIC_SIZE: ClinicSize = { providers: 8, patients: 300, daysBack: 7, daysAhead: 7, perProviderDay: 10 };

/** A small deterministic PRNG (mulberry32): same seed, same clinic. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FIRST = ['Olivia', 'Liam', 'Emma', 'Noah', 'Ava', 'Elijah', 'Sophia', 'James', 'Isabella', 'Lucas', 'Mia', 'Mateo', 'Amelia', 'Ethan', 'Harper', 'Aiden', 'Evelyn', 'Henry', 'Abigail', 'Jackson', 'Ella', 'Samuel', 'Grace', 'Daniel', 'Chloe', 'Priya', 'Wei', 'Fatima', 'Diego', 'Yuki', 'Kwame', 'Ingrid', 'Omar', 'Lucia', 'Tomas', 'Nadia'];
const LAST = ['Smith', 'Johnson', 'Williams', 'Brown', 'Jones', 'Garcia', 'Miller', 'Davis', 'Rodriguez', 'Martinez', 'Hernandez', 'Lopez', 'Gonzalez', 'Wilson', 'Anderson', 'Thomas', 'Taylor', 'Moore', 'Jackson', 'Martin', 'Lee', 'Perez', 'Thompson', 'White', 'Harris', 'Sanchez', 'Clark', 'Nguyen', 'Patel', 'Okafor', 'Kowalski', 'Haddad', 'Lindqvist', 'Tanaka'];
const STREETS = ['Maple Ave', 'Oak St', 'Pine Rd', 'Cedar Ln', 'Elm St', 'Birch Way', 'Lakeview Dr', 'Hillcrest Rd', 'Sunset Blvd', 'River Rd'];
const CITIES: [string, string, string][] = [['Springfield', 'IL', '627'], ['Riverton', 'NJ', '080'], ['Fairview', 'OR', '970'], ['Greenville', 'SC', '296'], ['Madison', 'WI', '537']];
const ROOMS = ['Room 1', 'Room 2', 'Room 3', 'Room 4', 'Room 5'];

const pick = <T>(rng: () => number, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
const digits = (rng: () => number, n: number) => Array.from({ length: n }, () => Math.floor(rng() * 10)).join('');

/** A fake patient resource (555 phone numbers, example.com emails). */
export function fakePatient(rng: () => number, id: string, mrn: string): FhirResource {
  const first = pick(rng, FIRST);
  const last = pick(rng, LAST);
  const [city, state, zip] = pick(rng, CITIES);
  const born = new Date(Date.UTC(1940 + Math.floor(rng() * 80), Math.floor(rng() * 12), 1 + Math.floor(rng() * 28)));
  return {
    resourceType: 'Patient',
    id,
    identifier: [{ system: DEMO_MRN_SYSTEM, type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: mrn }],
    name: [{ use: 'official', given: [first], family: last }],
    gender: rng() < 0.5 ? 'female' : 'male',
    birthDate: born.toISOString().slice(0, 10),
    telecom: [
      { system: 'phone', use: 'home', value: `555-${digits(rng, 3)}-${digits(rng, 4)}` },
      ...(rng() < 0.6 ? [{ system: 'phone', use: 'mobile', value: `555-${digits(rng, 3)}-${digits(rng, 4)}` }] : []),
      { system: 'email', value: `${first}.${last}${digits(rng, 2)}@example.com`.toLowerCase() },
    ],
    address: [{ use: 'home', line: [`${1 + Math.floor(rng() * 9000)} ${pick(rng, STREETS)}`], city, state, postalCode: `${zip}${digits(rng, 2)}` }],
  };
}

/** Seeds the clinic once (a no-op when the store already holds one). Returns whether it seeded. */
export function seedClinic(clinic: DemoClinic, seed: number, size: ClinicSize = DEFAULT_CLINIC_SIZE): boolean {
  const store = clinic.store;
  if (store.getMeta('seeded') !== null) return false;
  const rng = seededRandom(seed);
  store.transaction(() => {
    const drs: string[] = [];
    for (let i = 0; i < size.providers; i++) {
      const id = store.nextId('Practitioner');
      drs.push(id);
      clinic.save({
        resourceType: 'Practitioner',
        id,
        identifier: [{ system: 'http://hl7.org/fhir/sid/us-npi', value: `19${digits(rng, 8)}` }],
        name: [{ prefix: ['Dr.'], given: [pick(rng, FIRST)], family: pick(rng, LAST) }],
        active: true,
      });
    }
    const patients: string[] = [];
    for (let i = 0; i < size.patients; i++) {
      const id = store.nextId('Patient');
      patients.push(id);
      clinic.save(fakePatient(rng, id, `MRN${String(100_000 + i)}`));
    }
    const now = clinic.options.now();
    const today = new Date(now).toISOString().slice(0, 10);
    for (let d = -size.daysBack; d <= size.daysAhead; d++) {
      const date = new Date(Date.parse(`${today}T12:00:00Z`) + d * 86_400_000);
      if (size.daysBack + size.daysAhead > 6 && (date.getUTCDay() === 0 || date.getUTCDay() === 6)) continue;
      const dayStart = zonedStartOfDay(date.toISOString().slice(0, 10), clinic.options.timezone);
      drs.forEach((dr, di) => {
        const room = ROOMS[di % ROOMS.length] as string;
        // Slots of 10 minutes from 8:00 to 18:00, spread so they never overlap.
        const slots = 60;
        const step = Math.max(1, Math.floor(slots / Math.max(1, size.perProviderDay)));
        for (let k = 0; k < size.perProviderDay; k++) {
          const t = pick(rng, APPOINTMENT_TYPES);
          const start = dayStart + 8 * 3_600_000 + ((k * step) % slots) * 600_000 + Math.floor(k / slots) * 60_000;
          const a = clinic.book({ patientId: pick(rng, patients), practitionerId: dr, start: new Date(start).toISOString(), minutes: Math.min(t.minutes, step * 10), type: t.code, location: t.mode === 'office' ? room : null, mode: t.mode });
          const past = start < now;
          const roll = rng();
          const status = past ? (roll < 0.8 ? 'fulfilled' : roll < 0.9 ? 'noshow' : 'cancelled') : roll < 0.08 ? 'cancelled' : null;
          if (status) clinic.setStatus(a.id, status);
        }
      });
    }
    store.setMeta('seeded', new Date(now).toISOString());
  });
  return true;
}
