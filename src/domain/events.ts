/**
 * @module domain/events — the event contract, field for field as Cobalt's Sync Events page and
 * docs/design.md §3 define it (docs/events.md shows every payload): envelope, the four seed
 * payloads, the extension payloads, and the one function that turns an event into the bytes that
 * are stored, signed and sent.
 */

/** The four event types of the seed, delivered by default. */
export const SEED_EVENT_TYPES = [
  'appointment.created',
  'appointment.updated',
  'appointment.status_updated',
  'patient.updated',
] as const;

/** Extension types: delivered only to endpoints that subscribe to them by name. */
export const EXTENSION_EVENT_TYPES = [
  'patient.created',
  'appointment.deleted',
  'appointment.failed',
  'patient.failed',
] as const;

/** Every event type ehrsync emits. */
export const EVENT_TYPES = [...SEED_EVENT_TYPES, ...EXTENSION_EVENT_TYPES] as const;

/** An event type. */
export type EventType = (typeof EVENT_TYPES)[number];

/** True when `t` names an event type ehrsync emits. */
export function isEventType(t: string): t is EventType {
  return (EVENT_TYPES as readonly string[]).includes(t);
}

/** `appointment.created` data (note `date_time` and `appointment_id`: the seed's naming, kept). */
export interface AppointmentCreatedData {
  appointment_id: string;
  mrn: string;
  date_time: string;
  timezone: string;
  provider_id: string | null;
  provider_name: string | null;
  secondary_provider_id: string | null;
}

/** `appointment.updated` data; `status` is the EHR's raw code, `updated_fields` maps changed field → new value. */
export interface AppointmentUpdatedData {
  id: string;
  ehr_appointment_id: string;
  patient_mrn: string;
  patient_name: string;
  datetime: string;
  duration: number | null;
  location: string | null;
  status: string;
  provider_name: string | null;
  appointment_type: string | null;
  appointment_mode: string | null;
  updated_fields: Record<string, unknown>;
}

/** `appointment.status_updated` data; `status` and `previous_status` are normalized. */
export interface AppointmentStatusUpdatedData {
  id: string;
  ehr_appointment_id: string;
  patient_mrn: string;
  patient_name: string;
  datetime: string;
  status: string;
  previous_status: string;
  provider_name: string | null;
}

/** `patient.updated` data; `updated_fields` maps changed patient field → new value. */
export interface PatientUpdatedData {
  mrn: string;
  patient_name: string;
  updated_fields: Record<string, unknown>;
}

/** `patient.created` data (extension; Cobalt's operation-event shape). */
export interface PatientCreatedData {
  patient_id: string;
  mrn: string;
}

/** `appointment.deleted` data (extension): the last known state of an appointment the EHR confirmed gone. */
export interface AppointmentDeletedData {
  id: string;
  ehr_appointment_id: string;
  patient_mrn: string;
  patient_name: string;
  datetime: string;
  status: string;
  provider_name: string | null;
}

/** One machine-readable reason an operation failed. */
export interface FailureReason {
  code: string;
  description: string;
}

/** `appointment.failed` data (extension, operation events only). */
export interface AppointmentFailedData {
  appointment_id: string;
  failure_reason: string;
  reasons: FailureReason[];
}

/** `patient.failed` data (extension, operation events only). */
export interface PatientFailedData {
  patient_id: string;
  failure_reason: string;
  reasons: FailureReason[];
}

/** Maps each event type to its data shape. */
export interface EventDataByType {
  'appointment.created': AppointmentCreatedData;
  'appointment.updated': AppointmentUpdatedData;
  'appointment.status_updated': AppointmentStatusUpdatedData;
  'patient.updated': PatientUpdatedData;
  'patient.created': PatientCreatedData;
  'appointment.deleted': AppointmentDeletedData;
  'appointment.failed': AppointmentFailedData;
  'patient.failed': PatientFailedData;
}

/** The envelope. Key order is part of the contract: id, access_token_reference_id, object, created, type, [job_id], data. */
export interface EventEnvelope<T extends EventType = EventType> {
  id: string;
  access_token_reference_id: string | null;
  object: 'event';
  created: string;
  type: T;
  /** Present on operation events only. */
  job_id?: string;
  data: EventDataByType[T];
}

/** What the envelope needs besides the data. */
export interface EnvelopeInput<T extends EventType> {
  id: string;
  referenceId: string | null;
  /** ISO 8601 UTC with milliseconds. */
  created: string;
  type: T;
  /** Operation events only; sync events never carry it. */
  jobId?: string;
  data: EventDataByType[T];
}

/** Builds an envelope with its keys in contract order (JSON.stringify keeps insertion order). */
export function buildEnvelope<T extends EventType>(input: EnvelopeInput<T>): EventEnvelope<T> {
  const envelope: EventEnvelope<T> =
    input.jobId === undefined
      ? {
          id: input.id,
          access_token_reference_id: input.referenceId,
          object: 'event',
          created: input.created,
          type: input.type,
          data: input.data,
        }
      : {
          id: input.id,
          access_token_reference_id: input.referenceId,
          object: 'event',
          created: input.created,
          type: input.type,
          job_id: input.jobId,
          data: input.data,
        };
  return envelope;
}

/**
 * The one serialization of an event: compact `JSON.stringify`. It runs once, when the event is
 * created; the bytes are stored and every attempt signs and sends exactly them, so a receiver that
 * verifies `HMAC(JSON.stringify(JSON.parse(body)))` (Cobalt's documented receiver) always matches.
 */
export function serializeEvent(envelope: EventEnvelope): string {
  return JSON.stringify(envelope);
}

/** An event ready to store: its envelope's bytes plus the columns the outbox needs. */
export interface StoredEventInput {
  id: string;
  type: EventType;
  /** Events with the same key reach an endpoint in detection order (e.g. `appointment:<id>`). */
  orderingKey: string;
  jobId: string | null;
  /** EHR id of the patient the event is about, so everything about one patient can be erased. */
  patientEhrId: string | null;
  createdAt: number;
  body: string;
}
