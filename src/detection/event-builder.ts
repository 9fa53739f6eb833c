/**
 * @module detection/event-builder — turns an event's type and data into the stored event: the
 * envelope, serialized once, plus the outbox columns. Shared by sync plans and operations.
 */
import type { EpochMs } from '../domain/clock.js';
import { isoUtc } from '../domain/clock.js';
import type { EventDataByType, EventType, StoredEventInput } from '../domain/events.js';
import { buildEnvelope, serializeEvent } from '../domain/events.js';

/** Everything one event needs. */
export interface EventSpec<T extends EventType> {
  type: T;
  data: EventDataByType[T];
  /** Events with one key reach an endpoint in order, e.g. `appointment:<id>`. */
  orderingKey: string;
  patientEhrId: string | null;
  referenceId: string | null;
  now: EpochMs;
  id: string;
  /** Operation events only. */
  jobId?: string;
}

/** Builds a stored event; its `body` is the one serialization that is signed and sent. */
export function buildStoredEvent<T extends EventType>(spec: EventSpec<T>): StoredEventInput {
  const body = serializeEvent(buildEnvelope({ id: spec.id, referenceId: spec.referenceId, created: isoUtc(spec.now), type: spec.type, jobId: spec.jobId, data: spec.data }));
  return { id: spec.id, type: spec.type, orderingKey: spec.orderingKey, jobId: spec.jobId ?? null, patientEhrId: spec.patientEhrId, createdAt: spec.now, body };
}

/** The ordering key of events about an appointment. */
export const appointmentKey = (id: string): string => `appointment:${id}`;
/** The ordering key of events about a patient. */
export const patientKey = (id: string): string => `patient:${id}`;
