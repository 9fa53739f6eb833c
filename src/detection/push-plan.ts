/**
 * @module detection/push-plan — the decision for one pushed change (an HL7 v2 message): the same
 * planner a poll runs (plan.ts), given the one record (or two) the message is a full snapshot of,
 * plus the rules a feed needs that a poll does not (docs/connectors.md, "HL7 v2 feeds"):
 *
 * - **Late messages do not roll back.** Each record remembers the message time (MSH-7) of the
 *   newest message applied to it; a record in an older message is left as it is.
 * - **Only a message that announces a record as new creates it.** A feed starts in the middle of a
 *   clinic's life: the first message about an appointment booked before it may be a reschedule or a
 *   cancellation. Such a record is learned silently and what the message announces is emitted as
 *   `appointment.updated` / `patient.updated` with the announced fields — never a made-up
 *   `appointment.created`, never a lost change. A patient first seen in a scheduling message is
 *   learned silently: a scheduling message announces no change to the patient.
 * - **A deletion of a record never seen emits nothing**: there is nothing the customer was told.
 *
 * Pure: same input, same plan (ids come from `input.newId`).
 */
import type { EpochMs } from '../domain/clock.js';
import type { EventDataByType, EventType, StoredEventInput } from '../domain/events.js';
import type { Projected, ProjectionSnapshot, SyncPlan } from '../domain/projection.js';
import type { AppointmentRecord, AppointmentTrackedField, Candidate, PatientRecord, PatientTrackedField, ProviderRecord } from '../domain/records.js';
import { APPOINTMENT_TRACKED_FIELDS, PATIENT_TRACKED_FIELDS } from '../domain/records.js';
import { appointmentKey, buildStoredEvent, patientKey } from './event-builder.js';
import { appointmentUpdatedData, patientUpdatedData } from './payloads.js';
import type { PlanConnection } from './plan.js';
import { planSync } from './plan.js';
import { storableId } from './validate.js';

/**
 * What a message says happened to its record: `created` (a new booking, a registration), `deleted`
 * (an appointment deleted in the EHR), the tracked fields it changes (a reschedule changes the
 * time, a cancellation the status), or `any` (a modification that does not say which fields).
 */
export type Announcement = 'created' | 'deleted' | 'any' | readonly string[];

/** One pushed change, connector-neutral: the records a message is a full snapshot of. */
export type PushedChange =
  | { kind: 'appointment'; announces: Announcement; appointment: Candidate<AppointmentRecord>; patient: Candidate<PatientRecord> | null }
  | { kind: 'patient'; announces: Announcement; patient: Candidate<PatientRecord> }
  /**
   * A merge: the surviving patient, and the identifiers of the records merged into it. A stored
   * patient whose EHR id is among `ehrIds`, or whose MRN is among `mrns`, is retired from the
   * projection (the survivor itself excepted).
   */
  | { kind: 'merge'; survivor: Candidate<PatientRecord>; merged: { ehrIds: readonly string[]; mrns: readonly string[] } };

/** Which record a message time belongs to. */
export type RecordKind = 'appointment' | 'patient';

/** The key of a record's message time in `PushInput.recordTimes`. */
export const recordTimeKey = (kind: RecordKind, ehrId: string): string => `${kind}:${ehrId}`;

/** Everything one pushed change's decision depends on. */
export interface PushInput {
  connection: PlanConnection;
  now: EpochMs;
  /** The projection's rows for this change's records (a slice is enough: nothing else is read). */
  projection: ProjectionSnapshot;
  providers: ReadonlyMap<string, ProviderRecord>;
  change: PushedChange;
  /** The message's own time (MSH-7), or null when it has none (then it is applied as the newest). */
  messageTimeMs: EpochMs | null;
  /** The message time last applied per record, by `recordTimeKey`. */
  recordTimes: ReadonlyMap<string, EpochMs>;
  newId: () => string;
}

/** The plan of one pushed change. */
export interface PushPlan {
  plan: SyncPlan;
  /** Stored patients merged into another, to be removed from the projection. */
  retirePatientEhrIds: string[];
  /** Message times to remember, per record applied. */
  recordTimes: { kind: RecordKind; ehrId: string; ms: EpochMs }[];
  /** True when every record of the message was older than what is applied: nothing changes. */
  stale: boolean;
}

/** A candidate's EHR id, when it has one the stores can key by (else the record fails validation). */
function idOf(c: Candidate<AppointmentRecord> | Candidate<PatientRecord> | null, field: 'ehr_appointment_id' | 'ehr_patient_id'): string | null {
  return storableId(c === null ? undefined : (c as Record<string, unknown>)[field]);
}

/** Tracked fields holding a value: what an `any` announcement about a record never seen reports. */
function fieldsWithValues<T extends object, F extends keyof T & string>(record: T, tracked: readonly F[]): F[] {
  return tracked.filter((f) => record[f] !== null && record[f] !== undefined && record[f] !== '');
}

function announcedFields<F extends string>(announces: Announcement, tracked: readonly F[]): F[] | null {
  if (typeof announces === 'string') return null;
  return tracked.filter((f) => announces.includes(f));
}

/** Plans one pushed change. */
export function planPush(input: PushInput): PushPlan {
  const { change, projection } = input;
  const fresh = (kind: RecordKind, id: string | null): boolean => {
    if (id === null || input.messageTimeMs === null) return true;
    const last = input.recordTimes.get(recordTimeKey(kind, id));
    return last === undefined || last <= input.messageTimeMs;
  };

  // 1. The records this message may change: those it is not older than.
  let appointment: Candidate<AppointmentRecord> | null = null;
  let patient: Candidate<PatientRecord> | null = null;
  let announces: Announcement = 'any';
  let retire: string[] = [];
  if (change.kind === 'appointment') {
    announces = change.announces;
    if (fresh('appointment', idOf(change.appointment, 'ehr_appointment_id'))) appointment = change.appointment;
    if (change.patient !== null && fresh('patient', idOf(change.patient, 'ehr_patient_id'))) patient = change.patient;
  } else if (change.kind === 'patient') {
    announces = change.announces;
    if (fresh('patient', idOf(change.patient, 'ehr_patient_id'))) patient = change.patient;
  } else {
    // A merge: the survivor's snapshot counts if it is not older than the survivor's last message;
    // the merged records are retired if this message is not older than theirs (a late A40 still
    // merges what it names, without rolling the survivor back).
    const survivorId = idOf(change.survivor, 'ehr_patient_id');
    if (fresh('patient', survivorId)) patient = change.survivor;
    const ehrIds = change.merged.ehrIds.filter((id) => storableId(id) === id);
    const mrns = change.merged.mrns;
    retire = [...projection.patients.values()]
      .filter((p) => p.record.ehr_patient_id !== survivorId && (ehrIds.includes(p.record.ehr_patient_id) || mrns.includes(p.record.mrn)))
      .map((p) => p.record.ehr_patient_id)
      .filter((id) => fresh('patient', id));
  }
  const appointmentId = idOf(appointment, 'ehr_appointment_id');
  const patientId = idOf(patient, 'ehr_patient_id');
  // A field the message does not carry at all (undefined, unlike null: "sent empty") keeps its
  // known value — e.g. the status of an SIU S14 modification without SCH-25.
  if (appointment !== null && appointmentId !== null) appointment = withKnown(appointment, projection.appointments.get(appointmentId)?.record);
  if (patient !== null && patientId !== null) patient = withKnown(patient, projection.patients.get(patientId)?.record);
  if (appointment === null && patient === null && retire.length === 0) {
    // Nothing to change; a merge still stamps the records it names, so a message about one of them
    // older than the merge, arriving later, does not bring it back.
    const stamped = change.kind === 'merge' && input.messageTimeMs !== null ? mergedTimes(change.merged.ehrIds, null, fresh, input.messageTimeMs) : [];
    return { plan: emptyPlan(), retirePatientEhrIds: [], recordTimes: stamped, stale: true };
  }

  // 2. Records first seen that the message does not announce as new: learned silently first.
  const deleting = change.kind === 'appointment' && announces === 'deleted';
  const learnAppointment = appointment !== null && !deleting && announces !== 'created' && appointmentId !== null && !projection.appointments.has(appointmentId);
  const patientAnnouncedNew = change.kind === 'patient' && announces === 'created';
  const learnPatient = patient !== null && !patientAnnouncedNew && patientId !== null && !projection.patients.has(patientId);
  const base = { connection: input.connection, now: input.now, providers: input.providers, seenProviders: [], connectorQuarantine: [], newId: input.newId };
  const learned =
    learnAppointment || learnPatient
      ? planSync({
          ...base,
          baseline: 'silent',
          projection,
          appointmentReads: learnAppointment ? [[appointment!]] : [],
          patientReads: learnPatient ? [[patient!]] : [],
          goneAppointmentIds: [],
        })
      : null;
  const known: ProjectionSnapshot = learned ? overlay(projection, learned) : projection;

  // 3. The change itself, against what is now known; a deleted appointment is read as gone.
  const planned = planSync({
    ...base,
    baseline: null,
    projection: known,
    appointmentReads: appointment !== null && !deleting ? [[appointment]] : [],
    patientReads: patient !== null ? [[patient]] : [],
    goneAppointmentIds: deleting && appointmentId !== null ? [appointmentId] : [],
  });

  // 4. What a message announced about a record learned in step 2, as the update it reports.
  const before: StoredEventInput[] = [];
  const after: StoredEventInput[] = [];
  const event = <T extends 'appointment.updated' | 'patient.updated'>(type: T, data: EventDataByType[T], key: string, patientEhrId: string | null): StoredEventInput =>
    buildStoredEvent({ type, data, orderingKey: key, patientEhrId, referenceId: input.connection.referenceId, now: input.now, id: input.newId() });
  for (const p of learned?.upsertPatients ?? []) {
    if (change.kind === 'appointment') continue; // scheduling messages announce nothing about the patient
    const fields = announcedFields<PatientTrackedField>(announces, PATIENT_TRACKED_FIELDS) ?? fieldsWithValues(p.record, PATIENT_TRACKED_FIELDS);
    if (fields.length > 0) before.push(event('patient.updated', patientUpdatedData(p.record, fields), patientKey(p.id), p.record.ehr_patient_id));
  }
  for (const a of learned?.upsertAppointments ?? []) {
    const fields = announcedFields<AppointmentTrackedField>(announces, APPOINTMENT_TRACKED_FIELDS) ?? fieldsWithValues(a.record, APPOINTMENT_TRACKED_FIELDS);
    if (fields.length > 0) after.push(event('appointment.updated', appointmentUpdatedData(a.id, a.record, fields), appointmentKey(a.id), a.record.patient_ehr_id));
  }

  const events = [...before, ...planned.events, ...after];
  const counts: Partial<Record<EventType, number>> = {};
  for (const e of events) counts[e.type] = (counts[e.type] ?? 0) + 1;
  const times: PushPlan['recordTimes'] = [];
  if (input.messageTimeMs !== null) {
    // A deletion's time is kept too: a late message about the deleted appointment must not bring it back.
    if (appointmentId !== null) times.push({ kind: 'appointment', ehrId: appointmentId, ms: input.messageTimeMs });
    if (patientId !== null) times.push({ kind: 'patient', ehrId: patientId, ms: input.messageTimeMs });
    // The merged records keep this time: a late message about one of them is then recognised as
    // older than the merge, and does not bring it back.
    if (change.kind === 'merge' && planned.quarantined.length === 0) {
      times.push(...mergedTimes([...retire, ...change.merged.ehrIds], patientId, fresh, input.messageTimeMs));
    }
  }
  return {
    plan: {
      events,
      upsertAppointments: mergeById(learned?.upsertAppointments ?? [], planned.upsertAppointments),
      deleteAppointmentIds: planned.deleteAppointmentIds,
      upsertPatients: mergeById(learned?.upsertPatients ?? [], planned.upsertPatients),
      upsertProviders: mergeProviders(learned?.upsertProviders ?? [], planned.upsertProviders),
      // Step 3 validates the same candidates step 2 did: its list is the whole of it.
      quarantined: planned.quarantined,
      counts,
    },
    // A survivor that failed validation merges nothing: the records stay until the EHR resends it.
    retirePatientEhrIds: planned.quarantined.length > 0 ? [] : retire,
    recordTimes: times,
    stale: false,
  };
}

function withKnown<T extends object>(candidate: Candidate<T>, known: T | undefined): Candidate<T> {
  if (known === undefined) return candidate;
  const out: Record<string, unknown> = { ...candidate };
  for (const [k, v] of Object.entries(known)) if (out[k] === undefined) out[k] = v;
  return out as Candidate<T>;
}

/** The message time for each record a merge names (the survivor and unstorable ids excepted, and those with a newer time). */
function mergedTimes(ids: readonly string[], survivorId: string | null, fresh: (kind: RecordKind, id: string | null) => boolean, ms: EpochMs): PushPlan['recordTimes'] {
  return [...new Set(ids)].filter((id) => id !== survivorId && storableId(id) === id && fresh('patient', id)).map((id) => ({ kind: 'patient' as const, ehrId: id, ms }));
}

/** A plan that changes nothing (a stale message, one ehrsync does not use). */
export function emptyPlan(): SyncPlan {
  return { events: [], upsertAppointments: [], deleteAppointmentIds: [], upsertPatients: [], upsertProviders: [], quarantined: [], counts: {} };
}

/** The projection with a plan's upserts and deletions applied, and merged patients retired (what the next step plans against). */
export function overlay(projection: ProjectionSnapshot, plan: Pick<SyncPlan, 'upsertAppointments' | 'upsertPatients' | 'deleteAppointmentIds'>, retiredPatientEhrIds: readonly string[] = []): ProjectionSnapshot {
  const appointments = new Map(projection.appointments);
  const patients = new Map(projection.patients);
  for (const a of plan.upsertAppointments) appointments.set(a.record.ehr_appointment_id, a);
  for (const id of plan.deleteAppointmentIds) appointments.delete(id);
  for (const p of plan.upsertPatients) patients.set(p.record.ehr_patient_id, p);
  for (const id of retiredPatientEhrIds) patients.delete(id);
  return { appointments, patients, version: projection.version };
}

function mergeById<T>(first: readonly Projected<T>[], second: readonly Projected<T>[]): Projected<T>[] {
  const byId = new Map<string, Projected<T>>();
  for (const r of [...first, ...second]) byId.set(r.id, r);
  return [...byId.values()];
}

function mergeProviders(first: readonly ProviderRecord[], second: readonly ProviderRecord[]): ProviderRecord[] {
  const byId = new Map<string, ProviderRecord>();
  for (const p of [...first, ...second]) byId.set(p.ehr_id, p);
  return [...byId.values()];
}
