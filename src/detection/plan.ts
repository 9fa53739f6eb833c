/**
 * @module detection/plan — the whole decision of one sync, as a pure function: given what the EHR
 * holds now and what the projection held, which events to emit and how the projection changes.
 * The sync engine does the reads before and commits the plan after, in one transaction.
 *
 * Rules (docs/design.md §4), each with a named test in test/unit/plan.test.ts:
 * - the first sync of a connection is a baseline: it fills the projection and emits nothing
 *   (or, when asked, replays every appointment as `appointment.created`);
 * - several edits between two syncs are one net change, because only the two states are compared;
 * - a created appointment is only `created`, never also `updated`, in the same sync;
 * - a status change emits `appointment.updated` (raw code in `updated_fields`) and, when the
 *   NORMALIZED status changed, `appointment.status_updated`;
 * - an appointment missing from the window is not deleted; only a direct read saying it is gone is;
 * - only payload fields count; other differences refresh the projection silently;
 * - appointments of inactive providers are ignored entirely;
 * - malformed records are quarantined with a reason and never block the others.
 */
import type { EpochMs, TimeWindow } from '../domain/clock.js';
import { inWindow } from '../domain/clock.js';
import type { EventDataByType, EventType, StoredEventInput } from '../domain/events.js';
import type { AppointmentRecord, Candidate, PatientRecord, ProviderRecord, QuarantineItem } from '../domain/records.js';
import { APPOINTMENT_TRACKED_FIELDS, PATIENT_TRACKED_FIELDS } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import { normalizeStatus } from '../domain/status.js';
import type { Projected, ProjectionSnapshot, SyncPlan } from '../domain/projection.js';
import { appointmentKey, buildStoredEvent, patientKey } from './event-builder.js';
import { diffRecords } from './diff.js';
import {
  appointmentCreatedData,
  appointmentDeletedData,
  appointmentStatusUpdatedData,
  appointmentUpdatedData,
  patientCreatedData,
  patientUpdatedData,
  providerId,
} from './payloads.js';
import type { Validated } from './validate.js';
import { validateAppointment, validateBatch, validatePatient } from './validate.js';

/** Appointment fields kept in the projection whose change alone is not an event. */
const APPOINTMENT_UNTRACKED_FIELDS = ['patient_ehr_id', 'timezone', 'provider_ehr_id', 'secondary_provider_ehr_id'] as const;

/** The connection facts a plan needs. */
export interface PlanConnection {
  id: string;
  referenceId: string | null;
  /** IANA zone for records without one. */
  timezone: string;
  statusMap: StatusMap;
}

/** A provider as reported by the EHR (name, NPI). */
export interface SeenProvider {
  ehr_id: string;
  name: string | null;
  npi: string | null;
}

/** Everything one sync decision depends on. */
export interface SyncInput {
  connection: PlanConnection;
  now: EpochMs;
  /** `null` when the connection already has a baseline. */
  baseline: null | 'silent' | 'replay';
  projection: ProjectionSnapshot;
  /** Known providers by EHR id; appointments of inactive ones are ignored. */
  providers: ReadonlyMap<string, ProviderRecord>;
  /** Appointment reads in order (window read, then direct reads); a later read's copy of an id wins. */
  appointmentReads: readonly (readonly Candidate<AppointmentRecord>[])[];
  /** Patient reads in order; a later read's copy of an id wins. */
  patientReads: readonly (readonly Candidate<PatientRecord>[])[];
  /** Providers reported by the connector. */
  seenProviders: readonly SeenProvider[];
  /** EHR ids a direct read confirmed gone. */
  goneAppointmentIds: readonly string[];
  /** What the connector itself could not map. */
  connectorQuarantine: readonly QuarantineItem[];
  /** Source of ids for new appointments, patients and events. */
  newId: () => string;
}


/**
 * The projection rows that should have been in the window read but were not: candidates for a
 * direct read (docs/design.md §4: a missing appointment may have moved, not been deleted).
 */
export function findMissingAppointments(
  projection: ProjectionSnapshot,
  readIds: ReadonlySet<string>,
  window: TimeWindow,
  providers: ReadonlyMap<string, ProviderRecord>,
): string[] {
  const missing: string[] = [];
  for (const [ehrId, p] of projection.appointments) {
    if (readIds.has(ehrId)) continue;
    if (!inWindow(Date.parse(p.record.datetime), window)) continue;
    const provider = p.record.provider_ehr_id === null ? undefined : providers.get(p.record.provider_ehr_id);
    if (provider?.status === 'inactive') continue;
    missing.push(ehrId);
  }
  return missing;
}

/** The EHR ids present in a read, valid or not. */
export function candidateIds(candidates: readonly Candidate<AppointmentRecord>[]): Set<string> {
  const ids = new Set<string>();
  for (const c of candidates) {
    const id = c !== null && typeof c === 'object' ? c.ehr_appointment_id : undefined;
    if (typeof id === 'string') ids.add(id.trim());
  }
  return ids;
}

function sameRecord<T extends object>(a: T, b: T): boolean {
  for (const k of Object.keys(a) as (keyof T)[]) if (a[k] !== b[k]) return false;
  return true;
}

function validateReads<T>(
  kind: 'appointment' | 'patient',
  reads: readonly (readonly unknown[])[],
  validate: (c: never) => Validated<T>,
  idOf: (r: T) => string,
): { records: Map<string, T>; quarantined: QuarantineItem[] } {
  const records = new Map<string, T>();
  const quarantined: QuarantineItem[] = [];
  for (const read of reads) {
    const batch = validateBatch(kind, read, validate, idOf, sameRecord as (a: T, b: T) => boolean);
    quarantined.push(...batch.quarantined);
    for (const id of batch.unusableIds) records.delete(id);
    for (const [id, r] of batch.records) records.set(id, r);
  }
  return { records, quarantined };
}

/** Plans one sync. Pure: same input, same plan (ids come from `input.newId`). */
export function planSync(input: SyncInput): SyncPlan {
  const { connection, projection, providers } = input;
  const ctx = { connectionId: connection.id, defaultTimezone: connection.timezone };
  const events: StoredEventInput[] = [];
  const counts: Partial<Record<EventType, number>> = {};
  const emitting = input.baseline !== 'silent';

  function emit<T extends EventType>(type: T, data: EventDataByType[T], orderingKey: string, patientEhrId: string | null): void {
    events.push(buildStoredEvent({ type, data, orderingKey, patientEhrId, referenceId: connection.referenceId, now: input.now, id: input.newId() }));
    counts[type] = (counts[type] ?? 0) + 1;
  }

  // 1. Validate every read; quarantine what does not fit.
  const appts = validateReads('appointment', input.appointmentReads, validateAppointment, (a) => a.ehr_appointment_id);
  const pats = validateReads('patient', input.patientReads, validatePatient, (p) => p.ehr_patient_id);
  const quarantined = [...input.connectorQuarantine, ...appts.quarantined, ...pats.quarantined];

  // 2. Providers: learn new ones (active by default), then drop appointments of inactive ones.
  const upsertProviders = new Map<string, ProviderRecord>();
  // The connector's provider list is authoritative for names; an appointment only introduces a
  // provider not seen before (its display name may be formatted differently, e.g. "Dr. X").
  const learnProvider = (ehrId: string | null, name: string | null, npi: string | null, authoritative: boolean): void => {
    if (ehrId === null) return;
    const known = upsertProviders.get(ehrId) ?? providers.get(ehrId);
    if (!known) {
      upsertProviders.set(ehrId, { id: providerId(connection.id, ehrId), ehr_id: ehrId, name, npi, status: 'active' });
    } else if (authoritative && ((name !== null && name !== known.name) || (npi !== null && npi !== known.npi))) {
      upsertProviders.set(ehrId, { ...known, name: name ?? known.name, npi: npi ?? known.npi });
    }
  };
  for (const p of input.seenProviders) learnProvider(p.ehr_id, p.name, p.npi, true);
  for (const a of appts.records.values()) {
    learnProvider(a.provider_ehr_id, a.provider_name, null, false);
    learnProvider(a.secondary_provider_ehr_id, null, null, false);
  }
  for (const [ehrId, a] of appts.records) {
    if (a.provider_ehr_id !== null && providers.get(a.provider_ehr_id)?.status === 'inactive') appts.records.delete(ehrId);
  }

  // 3. Patients first, so a new patient's `patient.created` precedes events about their appointments.
  const patientDiff = diffRecords(projection.patients, pats.records, PATIENT_TRACKED_FIELDS, []);
  const upsertPatients: Projected<PatientRecord>[] = [];
  for (const p of patientDiff.created) {
    const id = input.newId();
    upsertPatients.push({ id, record: p });
    if (emitting) emit('patient.created', patientCreatedData(id, p), patientKey(id), p.ehr_patient_id);
  }
  for (const c of patientDiff.changed) {
    upsertPatients.push({ id: c.before.id, record: c.after });
    if (input.baseline === null) emit('patient.updated', patientUpdatedData(c.after, c.fields), patientKey(c.before.id), c.after.ehr_patient_id);
  }

  // 4. Appointments.
  const apptDiff = diffRecords(projection.appointments, appts.records, APPOINTMENT_TRACKED_FIELDS, APPOINTMENT_UNTRACKED_FIELDS);
  const upsertAppointments: Projected<AppointmentRecord>[] = [...apptDiff.refreshed];
  for (const a of apptDiff.created) {
    const id = input.newId();
    upsertAppointments.push({ id, record: a });
    if (emitting) emit('appointment.created', appointmentCreatedData(ctx, id, a), appointmentKey(id), a.patient_ehr_id);
  }
  for (const c of apptDiff.changed) {
    const id = c.before.id;
    upsertAppointments.push({ id, record: c.after });
    if (input.baseline !== null) continue;
    const key = appointmentKey(id);
    emit('appointment.updated', appointmentUpdatedData(id, c.after, c.fields), key, c.after.patient_ehr_id);
    if (c.fields.includes('status')) {
      const previous = normalizeStatus(c.before.record.status, connection.statusMap);
      const current = normalizeStatus(c.after.status, connection.statusMap);
      if (previous !== current) emit('appointment.status_updated', appointmentStatusUpdatedData(id, c.after, current, previous), key, c.after.patient_ehr_id);
    }
  }

  // 5. Confirmed deletions.
  const deleteAppointmentIds: string[] = [];
  for (const ehrId of input.goneAppointmentIds) {
    const p = projection.appointments.get(ehrId);
    if (!p) continue;
    deleteAppointmentIds.push(ehrId);
    if (input.baseline === null) emit('appointment.deleted', appointmentDeletedData(p.id, p.record), appointmentKey(p.id), p.record.patient_ehr_id);
  }

  return {
    events,
    upsertAppointments,
    deleteAppointmentIds,
    upsertPatients,
    upsertProviders: [...upsertProviders.values()],
    quarantined,
    counts,
  };
}
