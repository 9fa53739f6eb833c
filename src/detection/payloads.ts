/**
 * @module detection/payloads — builds each event's `data` from records, with keys in the seed's
 * order (docs/design.md §3). Pure. test/unit/plan.test.ts compares what it builds with the seed's
 * examples (test/fixtures/seed-examples.json), field for field.
 */
import type {
  AppointmentCreatedData,
  AppointmentDeletedData,
  AppointmentStatusUpdatedData,
  AppointmentUpdatedData,
  PatientCreatedData,
  PatientUpdatedData,
} from '../domain/events.js';
import { stableId } from '../domain/ids.js';
import type { AppointmentRecord, AppointmentTrackedField, PatientRecord, PatientTrackedField } from '../domain/records.js';
import { patientFullName } from '../domain/records.js';

/** The connection facts payloads need. */
export interface PayloadContext {
  connectionId: string;
  /** IANA zone used when a record has none. */
  defaultTimezone: string;
}

/** ehrsync's stable id of a provider of a connection (the `provider_id` of `appointment.created`). */
export function providerId(connectionId: string, providerEhrId: string): string {
  return stableId(connectionId, 'provider', providerEhrId);
}

/** `appointment.created` data. */
export function appointmentCreatedData(ctx: PayloadContext, id: string, a: AppointmentRecord): AppointmentCreatedData {
  return {
    appointment_id: id,
    mrn: a.patient_mrn,
    date_time: a.datetime,
    timezone: a.timezone ?? ctx.defaultTimezone,
    provider_id: a.provider_ehr_id === null ? null : providerId(ctx.connectionId, a.provider_ehr_id),
    provider_name: a.provider_name,
    secondary_provider_id: a.secondary_provider_ehr_id === null ? null : providerId(ctx.connectionId, a.secondary_provider_ehr_id),
  };
}

/** `appointment.updated` data; `updated_fields` maps each changed field to its new value. */
export function appointmentUpdatedData(id: string, a: AppointmentRecord, changed: readonly AppointmentTrackedField[]): AppointmentUpdatedData {
  const updated: Record<string, unknown> = {};
  for (const f of changed) updated[f] = a[f];
  return {
    id,
    ehr_appointment_id: a.ehr_appointment_id,
    patient_mrn: a.patient_mrn,
    patient_name: a.patient_name,
    datetime: a.datetime,
    duration: a.duration,
    location: a.location,
    status: a.status,
    provider_name: a.provider_name,
    appointment_type: a.appointment_type,
    appointment_mode: a.appointment_mode,
    updated_fields: updated,
  };
}

/** `appointment.status_updated` data; both statuses already normalized. */
export function appointmentStatusUpdatedData(id: string, a: AppointmentRecord, status: string, previousStatus: string): AppointmentStatusUpdatedData {
  return {
    id,
    ehr_appointment_id: a.ehr_appointment_id,
    patient_mrn: a.patient_mrn,
    patient_name: a.patient_name,
    datetime: a.datetime,
    status,
    previous_status: previousStatus,
    provider_name: a.provider_name,
  };
}

/** `appointment.deleted` data: the last known state (status raw, as in `appointment.updated`). */
export function appointmentDeletedData(id: string, a: AppointmentRecord): AppointmentDeletedData {
  return {
    id,
    ehr_appointment_id: a.ehr_appointment_id,
    patient_mrn: a.patient_mrn,
    patient_name: a.patient_name,
    datetime: a.datetime,
    status: a.status,
    provider_name: a.provider_name,
  };
}

/** `patient.updated` data. */
export function patientUpdatedData(p: PatientRecord, changed: readonly PatientTrackedField[]): PatientUpdatedData {
  const updated: Record<string, unknown> = {};
  for (const f of changed) updated[f] = p[f];
  return { mrn: p.mrn, patient_name: patientFullName(p), updated_fields: updated };
}

/** `patient.created` data. */
export function patientCreatedData(id: string, p: PatientRecord): PatientCreatedData {
  return { patient_id: id, mrn: p.mrn };
}
