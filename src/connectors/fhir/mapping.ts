/**
 * @module connectors/fhir/mapping — pure FHIR R4 ↔ record mapping: Appointment, Patient and
 * Practitioner resources to candidates (values not yet trusted; detection validates them), and
 * drafts back to resources for writes. No I/O, no clock.
 */
import type { AppointmentRecord, Candidate, PatientRecord, QuarantineItem } from '../../domain/records.js';
import { MODE_EXTENSION } from '../../domain/demo-ehr-profile.js';
import type { StatusMap } from '../../domain/status.js';
import { normalizeStatus } from '../../domain/status.js';
import type { AppointmentDraft, PatientDraft, ProviderInfo } from '../connector.js';

/** A FHIR resource as parsed JSON: nothing about it is trusted. */
export type Resource = Record<string, unknown>;

/** Identifier system of the idempotency key ehrsync puts on resources it creates. */
export const JOB_IDENTIFIER_SYSTEM = 'urn:ehrsync:job';
/** Extension URL ehrsync uses for the appointment mode when the connection names none. */
export const DEFAULT_MODE_EXTENSION = MODE_EXTENSION;
/** The FHIR R4 AppointmentStatus codes. */
export const FHIR_APPOINTMENT_STATUSES = ['proposed', 'pending', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error', 'checked-in', 'waitlist'] as const;
/** A normalized status → the FHIR code a write puts in `Appointment.status`. */
export const NORMALIZED_TO_FHIR: Readonly<Record<string, string>> = {
  scheduled: 'booked',
  confirmed: 'booked',
  'checked-in': 'checked-in',
  'in-room': 'arrived',
  completed: 'fulfilled',
  cancelled: 'cancelled',
  'no-show': 'noshow',
  rescheduled: 'cancelled',
};

/** What the mapping needs to know about the connection. */
export interface MappingOptions {
  mrnSystem: string | null;
  statusExtension: string | null;
  modeExtension: string | null;
}

const isObj = (v: unknown): v is Resource => typeof v === 'object' && v !== null && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** `Patient/123` (or an absolute URL ending so) → `123` when of type `type`. */
export function referenceId(ref: unknown, type: string): string | null {
  const r = isObj(ref) ? str(ref.reference) : undefined;
  if (!r) return null;
  const m = new RegExp(`(?:^|/)${type}/([^/?#]+)(?:/_history/[^/]+)?$`).exec(r);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1] as string);
  } catch {
    // A `%` that starts no escape (`Patient/50%`): the id as written, not a failed sync.
    return m[1] as string;
  }
}

function extensionValue(holder: unknown, url: string): unknown {
  for (const e of arr(isObj(holder) ? holder.extension : undefined)) {
    if (isObj(e) && e.url === url) return e.valueCode ?? e.valueString ?? (isObj(e.valueCoding) ? e.valueCoding.code : undefined);
  }
  return undefined;
}

function codeableText(cc: unknown): string | null {
  if (!isObj(cc)) return null;
  for (const c of arr(cc.coding)) if (isObj(c) && typeof c.code === 'string') return c.code;
  return typeof cc.text === 'string' ? cc.text : null;
}

/** The raw status of an appointment: the native-status extension when configured and present, else `status`. */
export function rawStatus(a: Resource, opts: Pick<MappingOptions, 'statusExtension'>): unknown {
  if (opts.statusExtension) {
    const v = extensionValue(a, opts.statusExtension) ?? extensionValue(a._status, opts.statusExtension);
    if (v !== undefined) return v;
  }
  return a.status;
}

/** The participants of an appointment by kind. */
export function participants(a: Resource): { patientId: string | null; patientDisplay: string | null; practitionerIds: string[]; practitionerDisplays: (string | null)[]; location: string | null } {
  let patientId: string | null = null;
  let patientDisplay: string | null = null;
  const practitionerIds: string[] = [];
  const practitionerDisplays: (string | null)[] = [];
  let location: string | null = null;
  for (const p of arr(a.participant)) {
    if (!isObj(p)) continue;
    const actor = p.actor;
    const pid = referenceId(actor, 'Patient');
    if (pid !== null && patientId === null) {
      patientId = pid;
      patientDisplay = isObj(actor) ? (str(actor.display) ?? null) : null;
      continue;
    }
    const dr = referenceId(actor, 'Practitioner');
    if (dr !== null) {
      practitionerIds.push(dr);
      practitionerDisplays.push(isObj(actor) ? (str(actor.display) ?? null) : null);
      continue;
    }
    const loc = referenceId(actor, 'Location');
    if (loc !== null && location === null) location = (isObj(actor) ? str(actor.display) : undefined) ?? loc;
  }
  return { patientId, patientDisplay, practitionerIds, practitionerDisplays, location };
}

/** A patient's MRN: the identifier of the configured system, else the one typed `MR`, else the first. */
export function patientMrn(p: Resource, mrnSystem: string | null): unknown {
  const ids = arr(p.identifier).filter(isObj).filter((i) => i.system !== JOB_IDENTIFIER_SYSTEM);
  if (mrnSystem) return ids.find((i) => i.system === mrnSystem)?.value;
  const mr = ids.find((i) => arr(isObj(i.type) ? i.type.coding : undefined).some((c) => isObj(c) && c.code === 'MR'));
  return (mr ?? ids[0])?.value;
}

function humanName(p: Resource): { first: unknown; last: unknown } {
  const names = arr(p.name).filter(isObj);
  const n = names.find((x) => x.use === 'official') ?? names.find((x) => x.use === 'usual') ?? names[0];
  if (!n) return { first: undefined, last: undefined };
  const given = n.given;
  const first = Array.isArray(given) ? (given.every((g) => typeof g === 'string') ? given.join(' ') : given) : given;
  return { first, last: n.family };
}

/** A Practitioner's display name, e.g. `Dr. Michael Denenberg` (prefix kept when the EHR gives one). */
export function practitionerName(p: Resource): string | null {
  const n = arr(p.name).filter(isObj)[0];
  if (!n) return null;
  if (typeof n.text === 'string' && n.text.trim() !== '') return n.text.trim();
  const parts = [...arr(n.prefix), ...arr(n.given), n.family].filter((x): x is string => typeof x === 'string' && x !== '');
  return parts.length > 0 ? parts.join(' ') : null;
}

/** Maps a Practitioner to provider info (its NPI from the `http://hl7.org/fhir/sid/us-npi` identifier). */
export function mapPractitioner(p: Resource): ProviderInfo | null {
  if (typeof p.id !== 'string') return null;
  const npi = arr(p.identifier).filter(isObj).find((i) => i.system === 'http://hl7.org/fhir/sid/us-npi')?.value;
  return { ehr_id: p.id, name: practitionerName(p), npi: typeof npi === 'string' ? npi : null };
}

/** Maps a Patient to a candidate; fields of the wrong type are passed on for the validator to quarantine. */
export function mapPatient(p: Resource, opts: Pick<MappingOptions, 'mrnSystem'>): Candidate<PatientRecord> {
  const { first, last } = humanName(p);
  const telecom = arr(p.telecom).filter(isObj);
  const phone = telecom.find((t) => t.system === 'phone' && t.use !== 'mobile')?.value;
  const cell = telecom.find((t) => t.system === 'phone' && t.use === 'mobile')?.value;
  const email = telecom.find((t) => t.system === 'email')?.value;
  const addresses = arr(p.address).filter(isObj);
  const addr = addresses.find((x) => x.use === 'home') ?? addresses[0];
  const lines = addr ? arr(addr.line) : [];
  return {
    ehr_patient_id: p.id,
    mrn: patientMrn(p, opts.mrnSystem),
    first_name: first,
    last_name: last,
    dob: p.birthDate ?? null,
    sex: p.gender ?? null,
    phone: phone ?? null,
    cell_phone: cell ?? null,
    email: email ?? null,
    address_street: lines[0] ?? null,
    address_line2: lines[1] ?? null,
    address_city: addr?.city ?? null,
    address_state: addr?.state ?? null,
    address_zip: addr?.postalCode ?? null,
  };
}

/** Duration in minutes from `minutesDuration`, else from `end − start`. */
function durationOf(a: Resource): unknown {
  if (a.minutesDuration !== undefined) return a.minutesDuration;
  if (typeof a.start === 'string' && typeof a.end === 'string') {
    const ms = Date.parse(a.end) - Date.parse(a.start);
    if (Number.isFinite(ms) && ms >= 0) return Math.round(ms / 60_000);
  }
  return null;
}

/**
 * Maps an Appointment to a candidate, with the patient and practitioners it references (read
 * alongside). Missing references leave fields absent, so the validator quarantines the record.
 */
export function mapAppointment(
  a: Resource,
  related: { patients: ReadonlyMap<string, Resource>; practitioners: ReadonlyMap<string, ProviderInfo> },
  opts: MappingOptions,
): Candidate<AppointmentRecord> {
  const part = participants(a);
  const patient = part.patientId === null ? undefined : related.patients.get(part.patientId);
  const mapped = patient ? mapPatient(patient, opts) : undefined;
  const name = mapped && (typeof mapped.first_name === 'string' || typeof mapped.last_name === 'string')
    ? `${typeof mapped.first_name === 'string' ? mapped.first_name : ''} ${typeof mapped.last_name === 'string' ? mapped.last_name : ''}`.trim()
    : part.patientDisplay;
  const primary = part.practitionerIds[0] ?? null;
  const mode = extensionValue(a, opts.modeExtension ?? DEFAULT_MODE_EXTENSION);
  return {
    ehr_appointment_id: a.id,
    patient_ehr_id: part.patientId,
    patient_mrn: mapped?.mrn,
    patient_name: name,
    datetime: a.start,
    timezone: null,
    duration: durationOf(a),
    location: part.location,
    status: rawStatus(a, opts),
    provider_ehr_id: primary,
    provider_name: primary === null ? null : (related.practitioners.get(primary)?.name ?? part.practitionerDisplays[0] ?? null),
    secondary_provider_ehr_id: part.practitionerIds[1] ?? null,
    appointment_type: codeableText(a.appointmentType) ?? codeableText(arr(a.serviceType)[0]),
    appointment_mode: mode ?? null,
  };
}

/** A resource that cannot even be mapped (no id, not the right type): quarantined by the connector. */
export function unmappable(kind: 'appointment' | 'patient', r: unknown, expectedType: string): QuarantineItem | null {
  if (!isObj(r)) return { kind, ehr_id: null, reason: `${expectedType} entry is not an object`, raw: String(r).slice(0, 200) };
  if (r.resourceType !== expectedType) return null; // an included or unrelated resource: not ours to judge
  if (typeof r.id !== 'string' || r.id === '') return { kind, ehr_id: null, reason: `${expectedType} without an id`, raw: JSON.stringify(r).slice(0, 2000) };
  return null;
}

/**
 * Why an Appointment's status cannot be trusted, or null: `Appointment.status` (when it is the
 * source of the raw code) must be an R4 AppointmentStatus code. Native codes from a configured
 * extension are open-ended and pass through to the status map.
 */
export function statusProblem(a: Resource, opts: Pick<MappingOptions, 'statusExtension'>): string | null {
  const raw = rawStatus(a, opts);
  if (raw !== a.status) return null;
  if (typeof raw !== 'string') return null; // missing or mistyped: the validator names it
  return (FHIR_APPOINTMENT_STATUSES as readonly string[]).includes(raw) ? null : `status ${JSON.stringify(raw.slice(0, 40))} is not an R4 AppointmentStatus code`;
}

/**
 * The FHIR status and native code a write sets for a requested code (any key of the connection's
 * map: a FHIR code, a native code, or a normalized name).
 */
export function statusForWrite(code: string, map: StatusMap, nativeCodes: readonly string[]): { status: string; native: string | null } {
  const fhir = (FHIR_APPOINTMENT_STATUSES as readonly string[]).includes(code);
  const normalized = normalizeStatus(code, map);
  const status = fhir ? code : (NORMALIZED_TO_FHIR[normalized] ?? 'booked');
  let native: string | null = null;
  if (nativeCodes.length > 0) native = nativeCodes.includes(code) ? code : (nativeCodes.find((c) => normalizeStatus(c, map) === normalized) ?? null);
  return { status, native };
}

/** Sets (or replaces) an extension's `valueCode` on a resource. */
export function setExtension(r: Resource, url: string, code: string): void {
  const rest = arr(r.extension).filter((e) => !(isObj(e) && e.url === url));
  r.extension = [...rest, { url, valueCode: code }];
}

/** Builds the Appointment a create writes, carrying the job identifier. */
export function appointmentResource(draft: AppointmentDraft, jobKey: string, opts: MappingOptions & { status: { status: string; native: string | null } }): Resource {
  const start = new Date(Date.parse(draft.datetime));
  const participant: Resource[] = [
    { actor: { reference: `Patient/${draft.patient_ehr_id}` }, status: 'accepted' },
    { actor: { reference: `Practitioner/${draft.provider_ehr_id}` }, status: 'accepted' },
  ];
  if (draft.secondary_provider_ehr_id) participant.push({ actor: { reference: `Practitioner/${draft.secondary_provider_ehr_id}` }, status: 'accepted' });
  if (draft.location) participant.push({ actor: { reference: `Location/${draft.location}`, display: draft.location }, status: 'accepted' });
  const r: Resource = {
    resourceType: 'Appointment',
    identifier: [{ system: JOB_IDENTIFIER_SYSTEM, value: jobKey }],
    status: opts.status.status,
    start: start.toISOString(),
    end: new Date(start.getTime() + draft.duration * 60_000).toISOString(),
    minutesDuration: draft.duration,
    participant,
  };
  if (draft.appointment_type) r.appointmentType = { coding: [{ code: draft.appointment_type }], text: draft.appointment_type };
  if (draft.note) r.comment = draft.note;
  if (draft.appointment_mode) setExtension(r, opts.modeExtension ?? DEFAULT_MODE_EXTENSION, draft.appointment_mode);
  if (opts.status.native !== null && opts.statusExtension) setExtension(r, opts.statusExtension, opts.status.native);
  return r;
}

/** Lays patient draft fields over a Patient resource (a new one when `base` is absent). */
export function patientResource(draft: PatientDraft, base: Resource | null, opts: { mrnSystem: string | null; jobKey?: string }): Resource {
  const r: Resource = base ? structuredClone(base) : { resourceType: 'Patient' };
  if (opts.jobKey) r.identifier = [...arr(r.identifier), { system: JOB_IDENTIFIER_SYSTEM, value: opts.jobKey }];
  if (draft.mrn !== undefined) {
    const others = arr(r.identifier).filter((i) => !(isObj(i) && (opts.mrnSystem ? i.system === opts.mrnSystem : arr(isObj(i.type) ? i.type.coding : undefined).some((c) => isObj(c) && c.code === 'MR'))));
    const mr: Resource = { type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] }, value: draft.mrn };
    if (opts.mrnSystem) mr.system = opts.mrnSystem;
    r.identifier = [mr, ...others];
  }
  if (draft.first_name !== undefined || draft.last_name !== undefined) {
    const names = arr(r.name).filter(isObj);
    const n: Resource = { ...(names[0] ?? { use: 'official' }) };
    if (draft.first_name !== undefined) n.given = draft.first_name ? draft.first_name.split(' ') : [];
    if (draft.last_name !== undefined) n.family = draft.last_name ?? undefined;
    delete n.text;
    r.name = [n, ...names.slice(1)];
  }
  if (draft.dob !== undefined) r.birthDate = draft.dob ?? undefined;
  if (draft.sex !== undefined) r.gender = draft.sex ?? undefined;
  const telecom = arr(r.telecom).filter(isObj);
  const setTelecom = (system: string, mobile: boolean | null, value: string | null | undefined) => {
    if (value === undefined) return;
    const i = telecom.findIndex((t) => t.system === system && (mobile === null || (t.use === 'mobile') === mobile));
    if (i >= 0) telecom.splice(i, 1);
    if (value) telecom.push({ system, value, ...(mobile ? { use: 'mobile' } : system === 'phone' ? { use: 'home' } : {}) });
  };
  setTelecom('phone', false, draft.phone);
  setTelecom('phone', true, draft.cell_phone);
  setTelecom('email', null, draft.email);
  r.telecom = telecom;
  const addrKeys = ['address_street', 'address_line2', 'address_city', 'address_state', 'address_zip'] as const;
  if (addrKeys.some((k) => draft[k] !== undefined)) {
    const addresses = arr(r.address).filter(isObj);
    const a: Resource = { ...(addresses[0] ?? { use: 'home' }) };
    const lines = arr(a.line).map((x) => (typeof x === 'string' ? x : ''));
    if (draft.address_street !== undefined) lines[0] = draft.address_street ?? '';
    if (draft.address_line2 !== undefined) lines[1] = draft.address_line2 ?? '';
    a.line = lines.filter((l, i) => l !== '' || i === 0).filter((l) => l !== '');
    if (draft.address_city !== undefined) a.city = draft.address_city ?? undefined;
    if (draft.address_state !== undefined) a.state = draft.address_state ?? undefined;
    if (draft.address_zip !== undefined) a.postalCode = draft.address_zip ?? undefined;
    r.address = [JSON.parse(JSON.stringify(a)) as Resource, ...addresses.slice(1)];
  }
  return JSON.parse(JSON.stringify(r)) as Resource; // drops the undefined values
}
