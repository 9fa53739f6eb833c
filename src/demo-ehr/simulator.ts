/**
 * @module demo-ehr/simulator — front-desk staff at random: books, moves, checks in, cancels,
 * marks no-shows, edits patients' phone numbers, at a given rate. Randomness and time are injected.
 */
import type { DemoClinic } from './clinic.js';
import { APPOINTMENT_TYPES } from './clinic.js';
import type { FhirResource } from './store.js';
import { zonedStartOfDay } from '../domain/clock.js';

/** What the simulator did in one step (ids only: no patient data). */
export interface SimulatedChange {
  action: 'book' | 'move' | 'check-in' | 'cancel' | 'no-show' | 'edit-patient';
  id: string;
}

/** The staff simulator's handle. */
export interface StaffSimulator {
  /** Changes per minute (0 = off). */
  readonly rate: number;
  /** Makes one random change now (tests call it directly); null when there was nothing to change. */
  step(): SimulatedChange | null;
  /** Stops the timer. */
  stop(): void;
}

const pick = <T>(rng: () => number, xs: readonly T[]): T | undefined => xs[Math.floor(rng() * xs.length)];

/**
 * A half-hour slot in office hours (8:00–16:30 starts) in the clinic's zone on one of the next five
 * days, at least an hour after `now`: front desks book the clinic's day, not 4 a.m.
 */
export function officeHoursSlot(now: number, zone: string, rng: () => number): number {
  const minutes = 8 * 60 + Math.floor(rng() * 18) * 30;
  // From the day drawn, the first day on which that slot is still ahead (later days always are).
  for (let d = Math.floor(rng() * 5); ; d++) {
    const start = zonedStartOfDay(new Date(now + d * 86_400_000).toISOString().slice(0, 10), zone) + minutes * 60_000;
    if (start >= now + 3_600_000) return start;
  }
}

/** Starts a simulator making `rate` changes a minute (timer unref'd); `rate` 0 makes none until `step()`. */
export function startSimulator(clinic: DemoClinic, opts: { rate: number; random?: () => number; onChange?: (c: SimulatedChange) => void }): StaffSimulator {
  const rng = opts.random ?? Math.random;
  const step = (): SimulatedChange | null => {
    const now = clinic.options.now();
    const upcoming = clinic.appointmentsBetween(now - 4 * 3_600_000, now + 7 * 86_400_000).filter((a) => a.status === 'booked');
    const roll = rng();
    const a: FhirResource | undefined = pick(rng, upcoming);
    if (roll < 0.3 || !a) {
      const patient = pick(rng, clinic.all('Patient'));
      const dr = pick(rng, clinic.all('Practitioner'));
      if (!patient || !dr) return null;
      const t = pick(rng, APPOINTMENT_TYPES) ?? APPOINTMENT_TYPES[0]!;
      const start = officeHoursSlot(now, clinic.options.timezone, rng);
      const booked = clinic.book({ patientId: patient.id, practitionerId: dr.id, start: new Date(start).toISOString(), minutes: t.minutes, type: t.code, location: t.mode === 'office' ? 'Room 1' : null, mode: t.mode });
      return { action: 'book', id: booked.id };
    }
    if (roll < 0.45) {
      const shift = (rng() < 0.5 ? -1 : 1) * (30 + Math.floor(rng() * 4) * 30) * 60_000;
      clinic.move(a.id, new Date(Date.parse(String(a.start)) + shift).toISOString());
      return { action: 'move', id: a.id };
    }
    if (roll < 0.65) {
      clinic.setStatus(a.id, 'checked-in');
      return { action: 'check-in', id: a.id };
    }
    if (roll < 0.8) {
      clinic.setStatus(a.id, 'cancelled');
      return { action: 'cancel', id: a.id };
    }
    if (roll < 0.85) {
      clinic.setStatus(a.id, 'noshow');
      return { action: 'no-show', id: a.id };
    }
    const p = pick(rng, clinic.all('Patient'));
    if (!p) return null;
    const d = () => Math.floor(rng() * 10);
    clinic.editPatient(p.id, { phone: `555-${d()}${d()}${d()}-${d()}${d()}${d()}${d()}` });
    return { action: 'edit-patient', id: p.id };
  };
  let timer: ReturnType<typeof setInterval> | null = null;
  if (opts.rate > 0) {
    timer = setInterval(() => {
      const c = step();
      if (c) opts.onChange?.(c);
    }, Math.max(50, 60_000 / opts.rate));
    timer.unref();
  }
  return {
    rate: opts.rate,
    step,
    stop() {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}
