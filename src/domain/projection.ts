/**
 * @module domain/projection — ehrsync's last known state of each clinic's EHR (the projection) and
 * the plan of one sync: what detection decides and the store commits.
 */
import type { EventType, StoredEventInput } from './events.js';
import type { AppointmentRecord, PatientRecord, ProviderRecord, QuarantineItem } from './records.js';

/** A record as the projection holds it: ehrsync's own id for it plus its last known state. */
export interface Projected<T> {
  /** ehrsync's stable id (32 hex). */
  id: string;
  record: T;
}

/** The projection of one connection, keyed by EHR id. */
export interface ProjectionSnapshot {
  appointments: ReadonlyMap<string, Projected<AppointmentRecord>>;
  patients: ReadonlyMap<string, Projected<PatientRecord>>;
  /** The connection's projection version when read (optimistic concurrency for the commit). */
  version?: number;
}

/** What one sync commits. */
export interface SyncPlan {
  events: StoredEventInput[];
  upsertAppointments: Projected<AppointmentRecord>[];
  deleteAppointmentIds: string[];
  upsertPatients: Projected<PatientRecord>[];
  /** Providers first seen, or whose name/NPI changed (status kept). */
  upsertProviders: ProviderRecord[];
  quarantined: QuarantineItem[];
  /** Events per type. */
  counts: Partial<Record<EventType, number>>;
}
