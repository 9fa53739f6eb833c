/**
 * @module demo-ehr/clinic — what the front desk of the demo EHR can do (book, move, check in,
 * cancel, edit a patient), shared by its web page, its staff simulator and its FHIR API, plus the
 * native-status rule: with native statuses on, every Appointment carries an athena-style code in
 * an extension, kept in step with `status`.
 */
import { DEMO_FHIR_TO_NATIVE, DEMO_MRN_SYSTEM, DEMO_NATIVE_STATUS_EXTENSION, DEMO_NATIVE_STATUS_MAP, MODE_EXTENSION } from '../domain/demo-ehr-profile.js';
import type { DemoStore, FhirResource } from './store.js';

/** Native code → the FHIR status the demo stores beside it. */
const NATIVE_TO_FHIR: Record<string, string> = { f: 'booked', '2': 'checked-in', '3': 'fulfilled', '4': 'fulfilled', x: 'cancelled', n: 'noshow' };

/** Settings of the clinic. */
export interface ClinicOptions {
  now: () => number;
  nativeStatuses: boolean;
  timezone: string;
}

/** A booking made at the front desk. */
export interface Booking {
  patientId: string;
  practitionerId: string;
  /** ISO 8601 instant. */
  start: string;
  minutes: number;
  type: string;
  location: string | null;
  mode: 'office' | 'telehealth';
  note?: string;
}

/** Patient fields the front desk edits. */
export interface PatientEdit {
  phone?: string;
  email?: string;
  street?: string;
  city?: string;
  state?: string;
  zip?: string;
}

/** Appointment types the demo clinic books, with their usual length. */
export const APPOINTMENT_TYPES: readonly { code: string; minutes: number; mode: 'office' | 'telehealth' }[] = [
  { code: 'NEW-PATIENT', minutes: 40, mode: 'office' },
  { code: 'FOLLOW-UP', minutes: 20, mode: 'office' },
  { code: 'ANNUAL-PHYSICAL', minutes: 40, mode: 'office' },
  { code: 'SICK-VISIT', minutes: 20, mode: 'office' },
  { code: 'TELEHEALTH', minutes: 20, mode: 'telehealth' },
];

/** Front-desk actions on the demo EHR's store. */
export class DemoClinic {
  constructor(
    readonly store: DemoStore,
    readonly options: ClinicOptions,
  ) {}

  private stamp(): string {
    return new Date(this.options.now()).toISOString();
  }

  /**
   * Keeps `status` and the native-status extension in step. With native statuses on, a native code
   * sent by a client wins (its FHIR status is derived); otherwise the code is derived from `status`.
   * With them off, the extension is removed: the EHR speaks plain FHIR.
   */
  applyStatusRule(r: FhirResource): FhirResource {
    if (r.resourceType !== 'Appointment') return r;
    const ext = Array.isArray(r.extension) ? (r.extension as { url?: unknown; valueCode?: unknown }[]) : [];
    const others = ext.filter((e) => e.url !== DEMO_NATIVE_STATUS_EXTENSION);
    const sent = ext.find((e) => e.url === DEMO_NATIVE_STATUS_EXTENSION)?.valueCode;
    if (!this.options.nativeStatuses) {
      return { ...r, extension: others.length ? others : undefined };
    }
    let native = typeof sent === 'string' && Object.hasOwn(DEMO_NATIVE_STATUS_MAP, sent) ? sent : null;
    let status = r.status;
    if (native !== null) status = NATIVE_TO_FHIR[native] ?? status;
    else native = DEMO_FHIR_TO_NATIVE[String(r.status)] ?? 'f';
    return { ...r, status, extension: [...others, { url: DEMO_NATIVE_STATUS_EXTENSION, valueCode: native }] };
  }

  /** Stores a resource through the status rule, stamping it now. */
  save(r: FhirResource): FhirResource {
    return this.store.put(JSON.parse(JSON.stringify(this.applyStatusRule(r))) as FhirResource, this.stamp());
  }

  /** Books an appointment; returns it as stored. */
  book(b: Booking): FhirResource {
    return this.store.transaction(() => {
      const patient = this.store.get('Patient', b.patientId);
      const dr = this.store.get('Practitioner', b.practitionerId);
      const start = Date.parse(b.start);
      const r: FhirResource = {
        resourceType: 'Appointment',
        id: this.store.nextId('Appointment'),
        status: 'booked',
        appointmentType: { coding: [{ system: 'urn:demo-ehr:appointment-type', code: b.type }], text: b.type },
        start: new Date(start).toISOString(),
        end: new Date(start + b.minutes * 60_000).toISOString(),
        minutesDuration: b.minutes,
        participant: [
          { actor: { reference: `Patient/${b.patientId}`, display: patient && patient !== 'gone' ? displayName(patient.resource) : undefined }, status: 'accepted' },
          { actor: { reference: `Practitioner/${b.practitionerId}`, display: dr && dr !== 'gone' ? practitionerDisplay(dr.resource) : undefined }, status: 'accepted' },
          ...(b.location ? [{ actor: { reference: `Location/${slug(b.location)}`, display: b.location }, status: 'accepted' }] : []),
        ],
        extension: [{ url: MODE_EXTENSION, valueCode: b.mode }],
        ...(b.note ? { comment: b.note } : {}),
      };
      return this.save(r);
    });
  }

  private change(id: string, fn: (r: FhirResource) => FhirResource): FhirResource | null {
    return this.store.transaction(() => {
      const cur = this.store.get('Appointment', id);
      if (!cur || cur === 'gone') return null;
      const next = fn(structuredClone(cur.resource));
      // The front desk changes the FHIR status; the native code follows it.
      return this.save({ ...next, extension: ((next.extension as { url?: string }[] | undefined) ?? []).filter((e) => e.url !== DEMO_NATIVE_STATUS_EXTENSION) });
    });
  }

  /** Sets an appointment's FHIR status (`booked`, `checked-in`, `fulfilled`, `cancelled`, `noshow`). */
  setStatus(id: string, status: string): FhirResource | null {
    return this.change(id, (r) => ({ ...r, status }));
  }

  /** Moves an appointment to a new start, keeping its length. */
  move(id: string, startIso: string): FhirResource | null {
    return this.change(id, (r) => {
      const minutes = typeof r.minutesDuration === 'number' ? r.minutesDuration : 20;
      const start = Date.parse(startIso);
      return { ...r, start: new Date(start).toISOString(), end: new Date(start + minutes * 60_000).toISOString() };
    });
  }

  /** Edits a patient's phone, email or address. */
  editPatient(id: string, e: PatientEdit): FhirResource | null {
    return this.store.transaction(() => {
      const cur = this.store.get('Patient', id);
      if (!cur || cur === 'gone') return null;
      const r = structuredClone(cur.resource);
      const telecom = ((r.telecom as { system: string; use?: string; value: string }[] | undefined) ?? []).slice();
      const set = (system: string, use: string | undefined, value: string | undefined) => {
        if (value === undefined) return;
        const i = telecom.findIndex((t) => t.system === system && (system !== 'phone' || t.use !== 'mobile'));
        if (i >= 0) telecom.splice(i, 1);
        if (value.trim() !== '') telecom.push({ system, ...(use ? { use } : {}), value: value.trim() });
      };
      set('phone', 'home', e.phone);
      set('email', undefined, e.email);
      r.telecom = telecom;
      if ([e.street, e.city, e.state, e.zip].some((x) => x !== undefined)) {
        const a = { ...((r.address as Record<string, unknown>[] | undefined)?.[0] ?? { use: 'home' }) };
        if (e.street !== undefined) a.line = e.street.trim() ? [e.street.trim()] : [];
        if (e.city !== undefined) a.city = e.city.trim() || undefined;
        if (e.state !== undefined) a.state = e.state.trim() || undefined;
        if (e.zip !== undefined) a.postalCode = e.zip.trim() || undefined;
        r.address = [a, ...((r.address as unknown[] | undefined) ?? []).slice(1)];
      }
      return this.save(r);
    });
  }

  /** The appointments starting in `[startMs, endMs)`, in start order. */
  appointmentsBetween(startMs: number, endMs: number): FhirResource[] {
    return this.store.search({ type: 'Appointment', start: [['ge', new Date(startMs).toISOString()], ['lt', new Date(endMs).toISOString()]], count: 100_000, offset: 0 }).resources;
  }

  /** Every resource of a type (patients, practitioners), in id order. */
  all(type: 'Patient' | 'Practitioner'): FhirResource[] {
    return this.store.search({ type, count: 100_000, offset: 0 }).resources;
  }
}

/** `First Last` of a Patient. */
export function displayName(p: FhirResource): string {
  const n = (p.name as { given?: string[]; family?: string }[] | undefined)?.[0];
  return `${(n?.given ?? []).join(' ')} ${n?.family ?? ''}`.trim();
}

/** `Dr. First Last` of a Practitioner. */
export function practitionerDisplay(p: FhirResource): string {
  const n = (p.name as { prefix?: string[]; given?: string[]; family?: string }[] | undefined)?.[0];
  return [...(n?.prefix ?? []), ...(n?.given ?? []), n?.family ?? ''].join(' ').trim();
}

/** The MRN of a demo patient. */
export function mrnOf(p: FhirResource): string {
  return (p.identifier as { system?: string; value?: string }[] | undefined)?.find((i) => i.system === DEMO_MRN_SYSTEM)?.value ?? '';
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'room';
}
