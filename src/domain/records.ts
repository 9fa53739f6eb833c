/**
 * @module domain/records — the normalized state of an appointment and a patient, as ehrsync keeps it
 * in its projection. Field names are the event payloads' own names, so a changed field maps to
 * `updated_fields` without a translation table.
 */

/** One appointment as ehrsync understands it, whatever EHR it came from. */
export interface AppointmentRecord {
  /** The EHR's native appointment id (`ehr_appointment_id`). */
  ehr_appointment_id: string;
  /** The EHR's native patient id, used to look the patient up; null when the EHR only gives an MRN. */
  patient_ehr_id: string | null;
  patient_mrn: string;
  patient_name: string;
  /** Start, ISO 8601 in UTC with milliseconds. */
  datetime: string;
  /** IANA time zone of the clinic or provider, e.g. `America/New_York`; null falls back to the connection's. */
  timezone: string | null;
  /** Minutes. */
  duration: number | null;
  location: string | null;
  /** The EHR's raw status code (e.g. `"2"`, `"booked"`, `"x"`). */
  status: string;
  /** The EHR's native id of the primary provider. */
  provider_ehr_id: string | null;
  provider_name: string | null;
  /** The EHR's native id of the secondary provider, if any. */
  secondary_provider_ehr_id: string | null;
  appointment_type: string | null;
  /** e.g. `office`, `telehealth`. */
  appointment_mode: string | null;
}

/**
 * Appointment fields whose change is a change customers hear about: exactly the data fields of
 * `appointment.updated` (docs/design.md §4: "only payload fields count").
 * Order is the payload's order, so `updated_fields` lists them in the same order.
 */
export const APPOINTMENT_TRACKED_FIELDS = [
  'patient_mrn',
  'patient_name',
  'datetime',
  'duration',
  'location',
  'status',
  'provider_name',
  'appointment_type',
  'appointment_mode',
] as const satisfies readonly (keyof AppointmentRecord)[];

/** A tracked appointment field name. */
export type AppointmentTrackedField = (typeof APPOINTMENT_TRACKED_FIELDS)[number];

/** One patient as ehrsync understands it. Field names follow Cobalt's Patients API. */
export interface PatientRecord {
  /** The EHR's native patient id. */
  ehr_patient_id: string;
  mrn: string;
  first_name: string;
  last_name: string;
  /** `YYYY-MM-DD`. */
  dob: string | null;
  sex: string | null;
  phone: string | null;
  cell_phone: string | null;
  email: string | null;
  address_street: string | null;
  address_line2: string | null;
  address_city: string | null;
  address_state: string | null;
  address_zip: string | null;
}

/** Patient fields whose change produces `patient.updated` (all of them but the EHR id), in payload order. */
export const PATIENT_TRACKED_FIELDS = [
  'mrn',
  'first_name',
  'last_name',
  'dob',
  'sex',
  'phone',
  'cell_phone',
  'email',
  'address_street',
  'address_line2',
  'address_city',
  'address_state',
  'address_zip',
] as const satisfies readonly (keyof PatientRecord)[];

/** A tracked patient field name. */
export type PatientTrackedField = (typeof PATIENT_TRACKED_FIELDS)[number];

/** The patient's full name as payloads show it: "First Last". */
export function patientFullName(p: Pick<PatientRecord, 'first_name' | 'last_name'>): string {
  return `${p.first_name} ${p.last_name}`.trim();
}

/** A provider (practitioner) of one connection; only active providers' schedules are synced. */
export interface ProviderRecord {
  /** ehrsync's stable id for the provider (32 hex). */
  id: string;
  ehr_id: string;
  name: string | null;
  npi: string | null;
  status: 'active' | 'inactive';
}

/**
 * What a connector hands over before validation: the intended shape with values not yet trusted.
 * Detection validates each candidate and quarantines the ones that do not fit.
 */
export type Candidate<T> = { [K in keyof T]?: unknown };

/** Why a record was set aside instead of synced. */
export interface QuarantineItem {
  /** `message`: a pushed message (HL7 v2) that could not be read or mapped to a record at all. */
  kind: 'appointment' | 'patient' | 'message';
  /** The record's EHR id when it had a usable one. */
  ehr_id: string | null;
  reason: string;
  /** A bounded excerpt of the raw record, for the clinic's engineers to see what was wrong. */
  raw: string;
}
