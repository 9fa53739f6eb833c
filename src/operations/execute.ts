/**
 * @module operations/execute — runs one operation: checks what only the EHR side can tell (the
 * patient, the provider, a double booking), writes through the connector with the job id as
 * idempotency key, reads the result back, and commits the projection with the operation event in
 * one transaction. Because the projection then holds exactly what the EHR holds, the next sync
 * finds no difference: no echo of our own write.
 */
import { describeError } from '../domain/errors.js';
import type { FailureReason, StoredEventInput } from '../domain/events.js';
import type { AppointmentRecord, PatientRecord } from '../domain/records.js';
import { APPOINTMENT_TRACKED_FIELDS, PATIENT_TRACKED_FIELDS } from '../domain/records.js';
import { effectiveStatusMap, normalizeStatus } from '../domain/status.js';
import type { EhrConnector } from '../connectors/connector.js';
import type { Projected } from '../domain/projection.js';
import { appointmentKey, buildStoredEvent, patientKey } from '../detection/event-builder.js';
import {
  appointmentCreatedData,
  appointmentStatusUpdatedData,
  appointmentUpdatedData,
  patientCreatedData,
  patientUpdatedData,
} from '../detection/payloads.js';
import { validateAppointment, validatePatient } from '../detection/validate.js';
import type { Connection, Operation } from '../domain/entities.js';
import type { OperationCommit, Projection, ProjectionReads } from '../store/ports.js';
import type { AppointmentCreateInput, AppointmentUpdateInput, PatientInput } from './requests.js';

/** A failure the requester must act on; it ends the operation with a `*.failed` event. */
export class OperationFailure extends Error {
  constructor(readonly reasons: FailureReason[]) {
    super(reasons.map((r) => r.description).join(' '));
  }
}

const fail = (code: string, description: string): OperationFailure => new OperationFailure([{ code, description }]);

/** The ports executing reads: projected patients and appointments, and the providers. */
export type ExecuteStore = ProjectionReads & Projection;

/** What executing needs. */
export interface ExecuteContext {
  store: ExecuteStore;
  connection: Connection;
  connector: EhrConnector;
  signal: AbortSignal;
  now: () => number;
  newId: () => string;
  /** Test hook: after the EHR write, before the commit (the crash test kills the process here). */
  afterWrite?: (op: Operation) => Promise<void> | void;
}

/** The commit of an operation that succeeded. Throws OperationFailure, or EhrError/others to be classified by the caller. */
export async function executeOperation(ctx: ExecuteContext, op: Operation): Promise<OperationCommit> {
  const writes = ctx.connector.writes;
  if (!writes) throw fail('writes_unsupported', `The ${ctx.connection.connector} connector cannot write to this EHR.`);
  switch (op.kind) {
    case 'appointment.create':
      return createAppointment(ctx, op, op.input as unknown as AppointmentCreateInput);
    case 'appointment.update':
      return updateAppointment(ctx, op, op.input as unknown as AppointmentUpdateInput);
    case 'patient.create':
      return createPatient(ctx, op, op.input as PatientInput);
    case 'patient.update':
      return updatePatient(ctx, op, op.input as PatientInput);
  }
}

function event(ctx: ExecuteContext, op: Operation, spec: Omit<Parameters<typeof buildStoredEvent>[0], 'referenceId' | 'now' | 'id' | 'jobId'>): StoredEventInput {
  return buildStoredEvent({ ...spec, referenceId: ctx.connection.referenceId, now: ctx.now(), id: ctx.newId(), jobId: op.id } as Parameters<typeof buildStoredEvent>[0]);
}

function readBack<T>(v: { ok: true; record: T } | { ok: false; reason: string }, what: string): T {
  if (!v.ok) throw fail('read_back_invalid', `The EHR accepted the ${what}, but its read-back is malformed (${v.reason}); it will appear once a sync can read it.`);
  return v.record;
}

async function patientProjection(ctx: ExecuteContext, candidate: unknown): Promise<Projected<PatientRecord>[]> {
  if (candidate === undefined) return [];
  const v = validatePatient(candidate as never);
  if (!v.ok) return [];
  const known = await ctx.store.getPatient(ctx.connection.id, v.record.ehr_patient_id);
  return [{ id: known?.id ?? ctx.newId(), record: v.record }];
}

async function createAppointment(ctx: ExecuteContext, op: Operation, input: AppointmentCreateInput): Promise<OperationCommit> {
  const { store, connection } = ctx;
  const patients = await store.listPatients({ connectionId: connection.id, mrn: input.mrn, limit: 2, offset: 0 });
  const patient = patients.rows[0];
  if (!patient) throw fail('unknown_patient', `No patient with MRN ${input.mrn} is known on this connection; create the patient first or wait for the next sync.`);
  const providers = await store.listProviders(connection.id);
  const provider = providers.find((p) => p.ehr_id === input.provider_ehr_id);
  if (!provider) throw fail('unknown_provider', `No provider with EHR id ${input.provider_ehr_id} on this connection; see GET /v1/providers (use ehr_id).`);
  if (input.secondary_provider_ehr_id !== null && !providers.some((p) => p.ehr_id === input.secondary_provider_ehr_id)) {
    throw fail('unknown_provider', `No provider with EHR id ${input.secondary_provider_ehr_id} (secondary_provider) on this connection.`);
  }
  if (input.prevent_double_booking) await checkDoubleBooking(ctx, input);

  const result = await (ctx.connector.writes as NonNullable<EhrConnector['writes']>).createAppointment(
    {
      patient_ehr_id: patient.record.ehr_patient_id,
      provider_ehr_id: input.provider_ehr_id,
      secondary_provider_ehr_id: input.secondary_provider_ehr_id,
      datetime: input.datetime,
      duration: input.duration,
      location: input.location,
      appointment_type: input.appointment_type,
      appointment_mode: input.appointment_mode,
      note: input.note,
    },
    { signal: ctx.signal, idempotencyKey: op.id },
  );
  await ctx.afterWrite?.(op);
  const record = readBack(validateAppointment(result.appointment), 'appointment');
  const data = appointmentCreatedData({ connectionId: connection.id, defaultTimezone: connection.timezone }, op.targetId, record);
  return {
    operationId: op.id,
    connectionId: connection.id,
    status: 'succeeded',
    targetEhrId: record.ehr_appointment_id,
    upsertAppointments: [{ id: op.targetId, record }],
    upsertPatients: await patientProjection(ctx, result.patient),
    events: [event(ctx, op, { type: 'appointment.created', data, orderingKey: appointmentKey(op.targetId), patientEhrId: record.patient_ehr_id })],
    finishedAt: ctx.now(),
  };
}

/** Refuses a booking that overlaps another live appointment of the same provider, read live from the EHR. */
async function checkDoubleBooking(ctx: ExecuteContext, input: AppointmentCreateInput): Promise<void> {
  const start = Date.parse(input.datetime);
  const end = start + input.duration * 60_000;
  const read = await ctx.connector.readSchedule({ startMs: start - 12 * 3_600_000, endMs: end + 12 * 3_600_000 }, { signal: ctx.signal });
  const map = effectiveStatusMap({ ...ctx.connector.statusMap, ...ctx.connection.statusMap });
  for (const c of read.appointments) {
    const v = validateAppointment(c);
    if (!v.ok || v.record.provider_ehr_id !== input.provider_ehr_id) continue;
    const status = normalizeStatus(v.record.status, map);
    if (status === 'cancelled' || status === 'no-show' || status === 'rescheduled') continue;
    const s = Date.parse(v.record.datetime);
    const e = s + (v.record.duration ?? 15) * 60_000;
    if (s < end && start < e) {
      throw fail('double_booking', `Provider ${input.provider_ehr_id} already has appointment ${v.record.ehr_appointment_id} at ${v.record.datetime}, overlapping the requested time.`);
    }
  }
}

async function updateAppointment(ctx: ExecuteContext, op: Operation, input: AppointmentUpdateInput): Promise<OperationCommit> {
  const { connection } = ctx;
  const before = await ctx.store.getAppointment(connection.id, op.targetId);
  if (!before) throw fail('unknown_appointment', `Appointment ${op.targetId} is not known on this connection.`);
  const result = await (ctx.connector.writes as NonNullable<EhrConnector['writes']>).updateAppointment(before.record.ehr_appointment_id, input, {
    signal: ctx.signal,
    idempotencyKey: op.id,
  });
  await ctx.afterWrite?.(op);
  const after = readBack(validateAppointment(result.appointment), 'change');
  // updated_fields: what differs from what ehrsync last knew (a note-only change confirms with none).
  const fields = APPOINTMENT_TRACKED_FIELDS.filter((f) => before.record[f] !== after[f]);
  const key = appointmentKey(op.targetId);
  const events = [event(ctx, op, { type: 'appointment.updated', data: appointmentUpdatedData(op.targetId, after, fields), orderingKey: key, patientEhrId: after.patient_ehr_id })];
  const map = effectiveStatusMap({ ...ctx.connector.statusMap, ...connection.statusMap });
  const previous = normalizeStatus(before.record.status, map);
  const current = normalizeStatus(after.status, map);
  if (previous !== current) {
    events.push(event(ctx, op, { type: 'appointment.status_updated', data: appointmentStatusUpdatedData(op.targetId, after, current, previous), orderingKey: key, patientEhrId: after.patient_ehr_id }));
  }
  return {
    operationId: op.id,
    connectionId: connection.id,
    status: 'succeeded',
    targetEhrId: after.ehr_appointment_id,
    upsertAppointments: [{ id: op.targetId, record: after as AppointmentRecord }],
    upsertPatients: await patientProjection(ctx, result.patient),
    events,
    finishedAt: ctx.now(),
  };
}

async function createPatient(ctx: ExecuteContext, op: Operation, input: PatientInput): Promise<OperationCommit> {
  const written = await (ctx.connector.writes as NonNullable<EhrConnector['writes']>).createPatient(input, { signal: ctx.signal, idempotencyKey: op.id });
  await ctx.afterWrite?.(op);
  const record = readBack(validatePatient(written), 'patient');
  return {
    operationId: op.id,
    connectionId: ctx.connection.id,
    status: 'succeeded',
    targetEhrId: record.ehr_patient_id,
    upsertAppointments: [],
    upsertPatients: [{ id: op.targetId, record }],
    events: [event(ctx, op, { type: 'patient.created', data: patientCreatedData(op.targetId, record), orderingKey: patientKey(op.targetId), patientEhrId: record.ehr_patient_id })],
    finishedAt: ctx.now(),
  };
}

async function updatePatient(ctx: ExecuteContext, op: Operation, input: PatientInput): Promise<OperationCommit> {
  const before = await ctx.store.getPatient(ctx.connection.id, op.targetId);
  if (!before) throw fail('unknown_patient', `Patient ${op.targetId} is not known on this connection.`);
  const written = await (ctx.connector.writes as NonNullable<EhrConnector['writes']>).updatePatient(before.record.ehr_patient_id, input, { signal: ctx.signal, idempotencyKey: op.id });
  await ctx.afterWrite?.(op);
  const after = readBack(validatePatient(written), 'change');
  const fields = PATIENT_TRACKED_FIELDS.filter((f) => before.record[f] !== after[f]);
  return {
    operationId: op.id,
    connectionId: ctx.connection.id,
    status: 'succeeded',
    targetEhrId: after.ehr_patient_id,
    upsertAppointments: [],
    upsertPatients: [{ id: op.targetId, record: after }],
    events: [event(ctx, op, { type: 'patient.updated', data: patientUpdatedData(after, fields), orderingKey: patientKey(op.targetId), patientEhrId: after.ehr_patient_id })],
    finishedAt: ctx.now(),
  };
}

/** The commit of an operation that failed: its `*.failed` event, nothing else. */
export function failureCommit(ctx: Pick<ExecuteContext, 'connection' | 'now' | 'newId'>, op: Operation, reasons: FailureReason[]): OperationCommit {
  const failure_reason = reasons.map((r) => r.description).join(' ');
  const isAppointment = op.kind.startsWith('appointment.');
  const ev = isAppointment
    ? buildStoredEvent({
        type: 'appointment.failed',
        data: { appointment_id: op.targetId, failure_reason, reasons },
        orderingKey: appointmentKey(op.targetId),
        patientEhrId: null,
        referenceId: ctx.connection.referenceId,
        now: ctx.now(),
        id: ctx.newId(),
        jobId: op.id,
      })
    : buildStoredEvent({
        type: 'patient.failed',
        data: { patient_id: op.targetId, failure_reason, reasons },
        orderingKey: patientKey(op.targetId),
        patientEhrId: null,
        referenceId: ctx.connection.referenceId,
        now: ctx.now(),
        id: ctx.newId(),
        jobId: op.id,
      });
  return {
    operationId: op.id,
    connectionId: ctx.connection.id,
    status: 'failed',
    upsertAppointments: [],
    upsertPatients: [],
    events: [ev],
    errorCode: reasons[0]?.code ?? 'failed',
    errorMessage: failure_reason,
    finishedAt: ctx.now(),
  };
}

/** Reasons for an error that is not an OperationFailure (an EHR refusal, or retries exhausted). */
export function reasonsOf(err: unknown): FailureReason[] {
  if (err instanceof OperationFailure) return err.reasons;
  const d = describeError(err);
  return [{ code: d.code, description: d.code === 'ehr_rejected' ? `The EHR rejected the write: ${d.message}` : `The EHR could not be written to: ${d.message}` }];
}
