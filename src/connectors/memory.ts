/**
 * @module connectors/memory — an EHR that lives in memory: tests and benchmarks change it directly
 * and sync against it. It can be told to fail, hang, or serve malformed records.
 */
import type { TimeWindow } from '../domain/clock.js';
import { inWindow } from '../domain/clock.js';
import { EhrError } from '../domain/errors.js';
import type { AppointmentRecord, Candidate, PatientRecord } from '../domain/records.js';
import type { StatusMap } from '../domain/status.js';
import type {
  AppointmentChanges,
  AppointmentDraft,
  AppointmentLookup,
  ConnectorCapabilities,
  ConnectorWrites,
  EhrConnector,
  PatientQuery,
  PatientsRead,
  ProviderInfo,
  PatientDraft,
  ReadOptions,
  ScheduleRead,
  WriteOptions,
} from './connector.js';

/** A patient held by the memory EHR, with the time it last changed (for `changedSince`). */
interface StoredPatient {
  record: Candidate<PatientRecord>;
  updatedAt: number;
}

/** Options of the memory connector. */
export interface MemoryConnectorOptions {
  statusMap?: StatusMap;
  /** Supports `readPatients({changedSince})`. Default true. */
  patientsChangedSince?: boolean;
  /** Clock for `updatedAt` stamps. Default Date.now. */
  now?: () => number;
}

/** An in-memory EHR connector whose contents tests set directly. */
export class MemoryConnector implements EhrConnector {
  readonly kind = 'memory';
  readonly capabilities: ConnectorCapabilities;
  readonly statusMap: StatusMap | undefined;

  /** Appointments by EHR id, as candidates (tests may store malformed values on purpose). */
  readonly appointments = new Map<string, Candidate<AppointmentRecord>>();
  /** Extra appointment candidates returned as-is by every read (e.g. duplicates, records without id). */
  readonly extraAppointments: Candidate<AppointmentRecord>[] = [];
  readonly providers = new Map<string, ProviderInfo>();
  private readonly patients = new Map<string, StoredPatient>();
  private readonly now: () => number;
  /** When set, the next reads throw it (until cleared). */
  failWith: Error | null = null;
  /** When true, reads never resolve until aborted. */
  hang = false;
  /** Number of reads served, by method (for assertions on what the engine asked). */
  readonly calls = { readSchedule: 0, readPatients: 0, readAppointment: 0, writes: 0 };
  /** The next this-many writes fail as if the EHR were down (retryable). */
  failNextWrites = 0;
  /** When set, writes are refused with this reason (not retryable). */
  rejectWritesWith: string | null = null;
  /** Records created per idempotency key: a retried write returns the first one. */
  private readonly writtenByKey = new Map<string, string>();
  private nextId = 1;
  readonly writes: ConnectorWrites;

  constructor(options: MemoryConnectorOptions = {}) {
    this.statusMap = options.statusMap;
    this.now = options.now ?? Date.now;
    this.capabilities = { patientsChangedSince: options.patientsChangedSince ?? true, writes: true, push: false };
    this.writes = {
      createAppointment: (draft, opts) => this.createAppointment(draft, opts),
      updateAppointment: (ehrId, changes, opts) => this.changeAppointment(ehrId, changes, opts),
      createPatient: (draft, opts) => this.createPatient(draft, opts),
      updatePatient: (ehrId, changes, opts) => this.changePatient(ehrId, changes, opts),
    };
  }

  private async writeGate(opts: WriteOptions): Promise<void> {
    this.calls.writes++;
    await this.gate(opts.signal);
    if (this.failNextWrites > 0) {
      this.failNextWrites--;
      throw new EhrError('ehr_unavailable', 'The EHR answered 503.');
    }
    if (this.rejectWritesWith) throw new EhrError('ehr_rejected', this.rejectWritesWith);
  }

  private async createAppointment(draft: AppointmentDraft, opts: WriteOptions) {
    await this.writeGate(opts);
    const existing = this.writtenByKey.get(opts.idempotencyKey);
    if (existing !== undefined) return this.lookup(existing);
    const patient = this.patients.get(draft.patient_ehr_id)?.record;
    if (!patient) throw new EhrError('ehr_rejected', `The EHR has no patient ${draft.patient_ehr_id}.`);
    const ehrId = `W${this.nextId++}`;
    this.appointments.set(ehrId, {
      ehr_appointment_id: ehrId,
      patient_ehr_id: draft.patient_ehr_id,
      patient_mrn: patient.mrn,
      patient_name: `${String(patient.first_name ?? '')} ${String(patient.last_name ?? '')}`.trim(),
      datetime: new Date(Date.parse(draft.datetime)).toISOString(),
      duration: draft.duration,
      location: draft.location,
      status: 'booked',
      provider_ehr_id: draft.provider_ehr_id,
      provider_name: this.providers.get(draft.provider_ehr_id)?.name ?? null,
      secondary_provider_ehr_id: draft.secondary_provider_ehr_id,
      appointment_type: draft.appointment_type,
      appointment_mode: draft.appointment_mode,
    });
    this.writtenByKey.set(opts.idempotencyKey, ehrId);
    return this.lookup(ehrId);
  }

  private async changeAppointment(ehrId: string, changes: AppointmentChanges, opts: WriteOptions) {
    await this.writeGate(opts);
    const current = this.appointments.get(ehrId);
    if (!current) throw new EhrError('ehr_rejected', `The EHR has no appointment ${ehrId}.`);
    const next = { ...current };
    if (changes.status !== undefined) next.status = changes.status;
    if (changes.datetime !== undefined) next.datetime = new Date(Date.parse(changes.datetime)).toISOString();
    this.appointments.set(ehrId, next);
    return this.lookup(ehrId);
  }

  private async createPatient(draft: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>> {
    await this.writeGate(opts);
    const existing = this.writtenByKey.get(opts.idempotencyKey);
    if (existing !== undefined) return (this.patients.get(existing) as StoredPatient).record;
    const ehrId = `WP${this.nextId++}`;
    this.putPatient({ ...draft, ehr_patient_id: ehrId, mrn: draft.mrn ?? `M${90_000 + this.nextId}` });
    this.writtenByKey.set(opts.idempotencyKey, ehrId);
    return (this.patients.get(ehrId) as StoredPatient).record;
  }

  private async changePatient(ehrId: string, changes: PatientDraft, opts: WriteOptions): Promise<Candidate<PatientRecord>> {
    await this.writeGate(opts);
    if (!this.patients.has(ehrId)) throw new EhrError('ehr_rejected', `The EHR has no patient ${ehrId}.`);
    this.updatePatient(ehrId, changes);
    return (this.patients.get(ehrId) as StoredPatient).record;
  }

  private lookup(ehrId: string): { appointment: Candidate<AppointmentRecord>; patient?: Candidate<PatientRecord> } {
    const appointment = this.appointments.get(ehrId) as Candidate<AppointmentRecord>;
    const pid = appointment.patient_ehr_id;
    const patient = typeof pid === 'string' ? this.patients.get(pid)?.record : undefined;
    return patient ? { appointment, patient } : { appointment };
  }

  /** Adds or replaces an appointment. */
  putAppointment(a: Candidate<AppointmentRecord> & { ehr_appointment_id: string }): void {
    this.appointments.set(a.ehr_appointment_id, a);
  }

  /** Changes fields of an existing appointment. */
  updateAppointment(ehrId: string, changes: Candidate<AppointmentRecord>): void {
    const current = this.appointments.get(ehrId);
    if (!current) throw new Error(`no appointment ${ehrId}`);
    this.appointments.set(ehrId, { ...current, ...changes });
  }

  /** Removes an appointment, as a hard delete in the EHR would. */
  deleteAppointment(ehrId: string): void {
    this.appointments.delete(ehrId);
  }

  /** Adds or replaces a patient. */
  putPatient(p: Candidate<PatientRecord> & { ehr_patient_id: string }): void {
    this.patients.set(p.ehr_patient_id, { record: p, updatedAt: this.now() });
  }

  /** Changes fields of an existing patient. */
  updatePatient(ehrId: string, changes: Candidate<PatientRecord>): void {
    const current = this.patients.get(ehrId);
    if (!current) throw new Error(`no patient ${ehrId}`);
    this.patients.set(ehrId, { record: { ...current.record, ...changes }, updatedAt: this.now() });
  }

  async readSchedule(window: TimeWindow, opts: ReadOptions & { providerEhrIds?: string[] }): Promise<ScheduleRead> {
    this.calls.readSchedule++;
    await this.gate(opts.signal);
    const wanted = opts.providerEhrIds ? new Set(opts.providerEhrIds) : null;
    const appointments: Candidate<AppointmentRecord>[] = [];
    const patientIds = new Set<string>();
    for (const a of this.appointments.values()) {
      const start = typeof a.datetime === 'string' ? Date.parse(a.datetime) : NaN;
      // Records with an unparsable start are returned anyway: detection must quarantine them.
      if (!Number.isNaN(start) && !inWindow(start, window)) continue;
      if (wanted && typeof a.provider_ehr_id === 'string' && !wanted.has(a.provider_ehr_id)) continue;
      appointments.push(a);
      if (typeof a.patient_ehr_id === 'string') patientIds.add(a.patient_ehr_id);
    }
    appointments.push(...this.extraAppointments);
    const patients = [...patientIds].flatMap((id) => {
      const p = this.patients.get(id);
      return p ? [p.record] : [];
    });
    return { appointments, patients, providers: [...this.providers.values()], quarantined: [] };
  }

  async readPatients(query: PatientQuery, opts: ReadOptions): Promise<PatientsRead> {
    this.calls.readPatients++;
    await this.gate(opts.signal);
    if ('ids' in query) {
      const patients = query.ids.flatMap((id) => {
        const p = this.patients.get(id);
        return p ? [p.record] : [];
      });
      return { patients, quarantined: [] };
    }
    if (!this.capabilities.patientsChangedSince) throw new Error('memory connector: changedSince is disabled');
    const since = Date.parse(query.changedSince);
    const patients = [...this.patients.values()].filter((p) => p.updatedAt >= since).map((p) => p.record);
    return { patients, quarantined: [] };
  }

  async readAppointment(ehrId: string, opts: ReadOptions): Promise<AppointmentLookup> {
    this.calls.readAppointment++;
    await this.gate(opts.signal);
    const appointment = this.appointments.get(ehrId);
    if (!appointment) return { found: false };
    const pid = appointment.patient_ehr_id;
    const patient = typeof pid === 'string' ? this.patients.get(pid)?.record : undefined;
    return patient ? { found: true, appointment, patient } : { found: true, appointment };
  }

  /** Applies the configured fault, if any, before a read. */
  private async gate(signal: AbortSignal): Promise<void> {
    if (this.failWith) throw this.failWith;
    if (this.hang) {
      await new Promise<never>((_, reject) => {
        const abort = () => reject(new EhrError('ehr_timeout', 'The EHR did not answer in time.'));
        if (signal.aborted) abort();
        else signal.addEventListener('abort', abort, { once: true });
      });
    }
    signal.throwIfAborted();
  }
}
