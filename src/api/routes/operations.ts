/**
 * @module api/routes/operations — writes into the EHR (Cobalt's shapes): each request is
 * validated, recorded as a durable job and answered at once with its `job_id`; the outcome arrives
 * as an operation event (`appointment.created`, `appointment.updated`, `patient.created`,
 * `patient.updated`, or `*.failed`) carrying that `job_id`. An `Idempotency-Key` header makes a
 * retried request return the first one's answer instead of writing twice.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { isoUtc } from '../../domain/clock.js';
import { BadRequestError, ConflictError, NotFoundError } from '../../domain/errors.js';
import { newId } from '../../domain/ids.js';
import { connectionStatusMap } from '../../connectors/registry.js';
import {
  appointmentCreateInput,
  appointmentUpdateInput,
  PATIENT_CREATE_FIELDS,
  PATIENT_UPDATABLE_FIELDS,
  patientCreateInput,
  patientUpdateInput,
  requestHash,
} from '../../operations/requests.js';
import type { Connection, Operation, OperationKind } from '../../domain/entities.js';
import { isPushConnector } from '../../domain/entities.js';
import type { ApiDeps } from '../context.js';
import { authenticateAccount, authenticateConnection } from '../context.js';
import { Strict } from '../schemas.js';

const field = (description: string) => Type.Optional(Type.Unknown({ description }));

const AppointmentCreateBody = Strict({
  mrn: field('Patient MRN (required).'),
  provider: field('The provider\'s EHR id, from GET /v1/providers `ehr_id` (required).'),
  secondary_provider: field('A secondary provider\'s EHR id.'),
  location: field('Location / room.'),
  type: field('Visit type code.'),
  note: field('Admin note.'),
  datetime: field('ISO 8601 with offset, e.g. 2026-12-01T10:00:00-05:00; or give date and time.'),
  date: field('YYYY-MM-DD, the clinic\'s day.'),
  time: field('12-hour time with am/pm, e.g. "10:00 am".'),
  prevent_double_booking: field('"true" refuses a time that overlaps another appointment of the provider.'),
  duration: field('Minutes (default 30).'),
  appointment_mode: field('office or telehealth.'),
});

const AppointmentUpdateBody = Strict({ status: field('A status code of the connection (GET /v1/settings visit_statuses).'), note: field('Admin note.'), datetime: field('New start (reschedule), ISO 8601 with offset.') });
const PatientCreateBody = Strict(Object.fromEntries(PATIENT_CREATE_FIELDS.map((f) => [f, field(f)])));
const PatientUpdateBody = Strict(Object.fromEntries(PATIENT_UPDATABLE_FIELDS.map((f) => [f, field(f)])));
const IdParams = Strict({ id: Type.String({ minLength: 1, maxLength: 128 }) });

/** Registers the write routes. `wake` tells the operation runner there is work. */
export function operationRoutes(app: FastifyInstance, deps: ApiDeps & { wakeOperations?: () => void }): void {
  /** Records the job, or returns the earlier one for a repeated Idempotency-Key (409 when the body differs). */
  async function enqueue(req: FastifyRequest, connection: Connection, kind: OperationKind, targetId: string, targetEhrId: string | null, input: object, body: unknown): Promise<Operation> {
    // A pushed feed only carries the EHR's changes to us: there is nothing to write through.
    if (isPushConnector(connection.connector)) throw new BadRequestError(`An ${connection.connector} connection cannot write to the EHR: its feed only carries the EHR's changes to ehrsync. Make writes through a fhir connection to the same EHR.`);
    const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'].slice(0, 255) : null;
    const hash = requestHash(kind, targetEhrId ?? connection.id, body);
    const { operation, existing } = await deps.store.createOperation({
      id: newId(),
      accountId: connection.accountId,
      connectionId: connection.id,
      kind,
      targetId,
      targetEhrId,
      input: input as Record<string, unknown>,
      idempotencyKey: key,
      requestHash: hash,
      now: deps.clock.now(),
    });
    if (existing && (operation.requestHash !== hash || operation.connectionId !== connection.id)) {
      throw new ConflictError('This Idempotency-Key was already used with a different request; use a new key for a new request.');
    }
    if (!existing) deps.wakeOperations?.();
    return operation;
  }

  app.post('/v1/appointments', { schema: { tags: ['writes'], summary: 'Book an appointment in the EHR (async; outcome as appointment.created or appointment.failed)', body: AppointmentCreateBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const input = appointmentCreateInput(req.body as Record<string, unknown>, connection.timezone);
    const op = await enqueue(req, connection, 'appointment.create', newId(), null, input, req.body);
    return { success: true, data: { appointment_id: op.targetId, message: 'Appointment processing. A webhook event will be sent upon completion.' }, job_id: op.id };
  });

  app.patch('/v1/appointments/:id', { schema: { tags: ['writes'], summary: 'Change an appointment\'s status, note or time in the EHR (async; outcome as appointment.updated)', params: IdParams, body: AppointmentUpdateBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { id } = req.params as { id: string };
    const appt = await deps.store.getAppointment(connection.id, id);
    if (!appt) throw new NotFoundError(`No appointment ${JSON.stringify(id)}.`);
    const input = appointmentUpdateInput(req.body as Record<string, unknown>, connectionStatusMap(connection));
    const op = await enqueue(req, connection, 'appointment.update', appt.id, appt.record.ehr_appointment_id, input, req.body);
    return { success: true, message: 'Appointment update processing. A webhook event will be sent upon completion.', appointment_id: appt.id, job_id: op.id };
  });

  app.post('/v1/patients', { schema: { tags: ['writes'], summary: 'Create a patient in the EHR (async; outcome as patient.created or patient.failed)', body: PatientCreateBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const input = patientCreateInput(req.body as Record<string, unknown>);
    const op = await enqueue(req, connection, 'patient.create', newId(), null, input, req.body);
    return { success: true, message: 'Patient processing. A webhook event will be sent upon completion.', patient_id: op.targetId, job_id: op.id };
  });

  app.patch('/v1/patients/:id', { schema: { tags: ['writes'], summary: 'Change a patient\'s contact or address fields in the EHR (async; outcome as patient.updated)', params: IdParams, body: PatientUpdateBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { id } = req.params as { id: string };
    const patient = await deps.store.getPatient(connection.id, id);
    if (!patient) throw new NotFoundError(`No patient ${JSON.stringify(id)}.`);
    const input = patientUpdateInput(req.body as Record<string, unknown>);
    const op = await enqueue(req, connection, 'patient.update', patient.id, patient.record.ehr_patient_id, input, req.body);
    return { success: true, message: 'Patient update processing. A webhook event will be sent upon completion.', patient_id: patient.id, job_id: op.id };
  });

  app.get('/v1/jobs/:id', { schema: { tags: ['writes'], summary: 'Where a write stands (its events: GET /v1/webhook-events?job_id=)', params: IdParams } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const op = await deps.store.getOperation((req.params as { id: string }).id);
    if (!op || op.accountId !== account.id) throw new NotFoundError('No such job.');
    return {
      success: true,
      job: {
        job_id: op.id,
        kind: op.kind,
        status: op.status,
        target_id: op.targetId,
        ehr_id: op.targetEhrId,
        attempts: op.attempts,
        error: op.errorCode === null ? null : { code: op.errorCode, message: op.errorMessage },
        created_at: isoUtc(op.createdAt),
        updated_at: isoUtc(op.updatedAt),
      },
    };
  });
}
