/**
 * @module connectors/connector — the one interface every EHR connector implements (docs/design.md §7).
 *
 * What the contract covers: reading a connection's schedule in a time window (appointments plus the
 * patients they reference), reading patients by id or by "changed since", reading one appointment by
 * id to confirm a deletion, the connection's status map, and optional writes and push.
 *
 * What it deliberately does not cover: diffing, storage, events. A connector returns what the EHR
 * holds now, as candidates; detection validates them (quarantining what does not fit) and decides
 * what changed. Connectors never see the projection, so they cannot get change semantics wrong.
 *
 * Errors: throw `EhrError` (domain/errors) with `ehr_unavailable`, `ehr_timeout`, `ehr_auth_failed`
 * or `ehr_bad_response`; the sync run fails with that code and the projection stays untouched.
 * Messages must not contain credentials or patient data.
 */
import type { TimeWindow } from '../domain/clock.js';
import type { AppointmentRecord, Candidate, PatientRecord, QuarantineItem } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';

/** Options every read takes. */
export interface ReadOptions {
  /** Aborts the read (sync timeout, shutdown). Connectors pass it to every request they make. */
  signal: AbortSignal;
}

/** A provider as the EHR describes it. */
export interface ProviderInfo {
  ehr_id: string;
  name: string | null;
  npi: string | null;
}

/** The result of reading a window. */
export interface ScheduleRead {
  /** Every appointment whose start lies in the window (for the providers asked for, if any). */
  appointments: Candidate<AppointmentRecord>[];
  /** The patients those appointments reference, as far as the connector could read them. */
  patients: Candidate<PatientRecord>[];
  /** Providers the connector learned about while reading (names, NPIs). */
  providers: ProviderInfo[];
  /** Records the connector could not even map (e.g. a FHIR resource without an id). */
  quarantined: QuarantineItem[];
}

/** The result of reading patients. */
export interface PatientsRead {
  patients: Candidate<PatientRecord>[];
  quarantined: QuarantineItem[];
}

/** Which patients to read. */
export type PatientQuery = { ids: string[] } | { changedSince: string };

/** The result of reading one appointment by id. */
export type AppointmentLookup =
  | { found: true; appointment: Candidate<AppointmentRecord>; patient?: Candidate<PatientRecord> }
  /** `gone`: the EHR says it no longer exists (404, 410, or an explicit deletion). */
  | { found: false };

/** What a connector can do beyond the required reads. */
export interface ConnectorCapabilities {
  /** `readPatients({changedSince})` is supported (e.g. FHIR `_lastUpdated`). */
  patientsChangedSince: boolean;
  /** `writes` is implemented. */
  writes: boolean;
  /** `subscribe` is implemented (the EHR pushes changes, e.g. HL7v2). */
  push: boolean;
}

/** Options of a write. */
export interface WriteOptions extends ReadOptions {
  /**
   * Unique to one requested write (ehrsync passes the operation's job id). The connector makes
   * the write idempotent with it — FHIR: a conditional create on an identifier carrying the key —
   * so a write retried after a crash finds the first one instead of writing twice.
   */
  idempotencyKey: string;
}

/** What a new appointment is made of (the EHR assigns its id). */
export interface AppointmentDraft {
  patient_ehr_id: string;
  provider_ehr_id: string;
  secondary_provider_ehr_id: string | null;
  /** ISO 8601 with offset. */
  datetime: string;
  duration: number;
  location: string | null;
  appointment_type: string | null;
  appointment_mode: string | null;
  note: string | null;
}

/** Changes to an existing appointment; absent fields stay as they are. */
export interface AppointmentChanges {
  /** A raw status code of this EHR. */
  status?: string;
  datetime?: string;
  note?: string;
}

/** Patient fields a write may set (Cobalt's names). */
export type PatientDraft = Partial<Omit<PatientRecord, 'ehr_patient_id'>>;

/**
 * Optional writes (operation events). Each resolves with the record as the EHR holds it afterwards,
 * read back through the same mapping as a sync read — so the next sync sees exactly what ehrsync
 * recorded, and does not echo the write as a change. Throw `EhrError('ehr_rejected', …)` when the
 * EHR refuses the write (not retryable), other EhrError codes when it could not be reached.
 */
export interface ConnectorWrites {
  createAppointment(draft: AppointmentDraft, opts: WriteOptions): Promise<{ appointment: Candidate<AppointmentRecord>; patient?: Candidate<PatientRecord> }>;
  updateAppointment(ehrId: string, changes: AppointmentChanges, opts: WriteOptions): Promise<{ appointment: Candidate<AppointmentRecord>; patient?: Candidate<PatientRecord> }>;
  createPatient(draft: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>>;
  updatePatient(ehrId: string, changes: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>>;
}

/** The connector interface. */
export interface EhrConnector {
  /** e.g. `memory`, `fhir`, `demo`, `hl7v2`. */
  readonly kind: string;
  readonly capabilities: ConnectorCapabilities;
  /** The connector's own status codes → normalized statuses; the connection's map is laid over it. */
  readonly statusMap?: StatusMap;

  /** Reads the schedule in a window. `providerEhrIds`, when given, is a hint: connectors may filter server-side. */
  readSchedule(window: TimeWindow, opts: ReadOptions & { providerEhrIds?: string[] }): Promise<ScheduleRead>;
  /** Reads patients by EHR id or changed since an instant (ISO 8601). */
  readPatients(query: PatientQuery, opts: ReadOptions): Promise<PatientsRead>;
  /** Reads one appointment by EHR id; `{found:false}` only when the EHR says it is gone. */
  readAppointment(ehrId: string, opts: ReadOptions): Promise<AppointmentLookup>;

  /** Present when `capabilities.writes`. */
  readonly writes?: ConnectorWrites;
  /** Present when `capabilities.push`: calls `onChange` when the EHR reports a change; returns a stop function. */
  subscribe?(onChange: () => void): () => Promise<void>;
  /** Releases sockets, timers. */
  close?(): Promise<void>;
}
