/**
 * @module api/routes/clinic — the routes of one clinic connection (all three Cobalt headers):
 * settings, cached appointments and patients (served from the projection), providers and whether
 * their schedule is synced, and the sync itself (sync now, sync runs, quarantined records).
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { isoUtc, zonedStartOfDay } from '../../domain/clock.js';
import { BadRequestError, ConflictError, EhrsyncError, NotFoundError } from '../../domain/errors.js';
import { connectionStatusMap } from '../../connectors/registry.js';
import { isIsoDate } from '../../detection/validate.js';
import type { Connection } from '../../domain/entities.js';
import { isPushConnector } from '../../domain/entities.js';
import type { ApiDeps } from '../context.js';
import { authenticateConnection } from '../context.js';
import { appointmentView, connectionView, PageQuery, pagination, patientView, Strict } from '../schemas.js';

/** Longest date range `GET /v1/appointments` serves at once. */
const MAX_RANGE_DAYS = 93;
/** Most appointments one GET /v1/appointments answers (a busy clinic over 93 days stays well under it). */
const MAX_APPOINTMENTS = 10_000;

const SettingsBody = Strict({ access_token_reference_id: Type.String({ minLength: 1, maxLength: 256 }) }, { description: 'The access_token_reference_id is required in the request body. No other fields are accepted.' });

const AppointmentsQuery = Strict({
  start_date: Type.Optional(Type.String({ description: 'YYYY-MM-DD, the clinic\'s day (required).' })),
  end_date: Type.Optional(Type.String({ description: 'YYYY-MM-DD, inclusive (required).' })),
  patient_mrn: Type.Optional(Type.String({ maxLength: 255 })),
  patient_name: Type.Optional(Type.String({ maxLength: 256, description: 'Case-insensitive partial match.' })),
  appointment_mode: Type.Optional(Type.String({ maxLength: 64 })),
  include_note: Type.Optional(Type.String({ description: 'Accepted for compatibility; notes are not synced.' })),
});

const PatientsQuery = Strict({
  mrn: Type.Optional(Type.String({ maxLength: 255 })),
  ehr_id: Type.Optional(Type.String({ maxLength: 255 })),
  first_name: Type.Optional(Type.String({ maxLength: 128 })),
  last_name: Type.Optional(Type.String({ maxLength: 128 })),
  dob: Type.Optional(Type.String({ maxLength: 10 })),
  phone: Type.Optional(Type.String({ maxLength: 32 })),
  ...PageQuery,
});

const ProviderBody = Strict({
  status: Type.Optional(Type.String({ description: '`active` (schedule synced) or `inactive` (not synced); case-insensitive.' })),
  hide_in_availability: Type.Optional(Type.Union([Type.Boolean(), Type.String()])),
});

const LimitQuery = Strict({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 50 })) });

/** Registers the clinic routes. */
export function clinicRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/v1/settings', { schema: { tags: ['clinic'], summary: 'The connection\'s settings' } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    return { success: true, data: settingsView(connection) };
  });

  app.post('/v1/settings', { schema: { tags: ['clinic'], summary: 'Set access_token_reference_id, echoed in every event of this connection', body: SettingsBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { access_token_reference_id } = req.body as { access_token_reference_id: string };
    await deps.store.updateConnection(connection.id, { referenceId: access_token_reference_id });
    return { success: true, data: { access_token_reference_id } };
  });

  app.get('/v1/appointments', { schema: { tags: ['clinic'], summary: 'Appointments starting in a date range (cached, as of the last sync)', querystring: AppointmentsQuery } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const q = req.query as { start_date?: string; end_date?: string; patient_mrn?: string; patient_name?: string; appointment_mode?: string };
    const missing = ['start_date', 'end_date'].filter((k) => q[k as 'start_date'] === undefined);
    if (missing.length > 0) throw new BadRequestError(`Missing required parameters: ${missing.join(', ')}.`);
    if (!isIsoDate(q.start_date as string) || !isIsoDate(q.end_date as string)) throw new BadRequestError('Invalid date format. Use ISO format (YYYY-MM-DD).');
    // The range ends at the start of the day after end_date, which must still be a four-digit year.
    if ((q.start_date as string) < '1000-01-01' || (q.end_date as string) > '9998-12-31') throw new BadRequestError('dates must be from 1000-01-01 to 9998-12-31.');
    const fromMs = zonedStartOfDay(q.start_date as string, connection.timezone);
    const toMs = zonedStartOfDay(nextDay(q.end_date as string), connection.timezone);
    if (toMs <= fromMs) throw new BadRequestError('end_date must be after start_date.');
    if (toMs - fromMs > MAX_RANGE_DAYS * 86_400_000 + 3_600_000) throw new BadRequestError(`Date range cannot exceed ${MAX_RANGE_DAYS} days.`);
    const rows = await deps.store.listAppointments({
      connectionId: connection.id,
      fromMs,
      toMs,
      patientMrn: q.patient_mrn,
      patientName: q.patient_name,
      appointmentMode: q.appointment_mode,
      limit: MAX_APPOINTMENTS + 1,
    });
    // Cobalt's answer has no pages: a range holding more than fits is refused, never cut short.
    if (rows.length > MAX_APPOINTMENTS) throw new BadRequestError(`More than ${MAX_APPOINTMENTS.toLocaleString('en-US')} appointments in this range; ask for a shorter range or filter (patient_mrn, patient_name, appointment_mode).`);
    const providerIds = await providerIdMap(deps, connection.id);
    return { success: true, appointments: rows.map((r) => appointmentView(r, providerIds, connection.timezone)) };
  });

  app.get('/v1/appointment/:id', { schema: { tags: ['clinic'], summary: 'One appointment by ehrsync id or EHR id', params: Strict({ id: Type.String({ minLength: 1, maxLength: 255 }) }) } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { id } = req.params as { id: string };
    const row = await deps.store.getAppointment(connection.id, id);
    if (!row) throw new NotFoundError(`No appointment ${JSON.stringify(id)}.`);
    // Cobalt's response puts the single appointment under the plural key; kept for compatibility.
    return { success: true, appointments: appointmentView(row, await providerIdMap(deps, connection.id), connection.timezone) };
  });

  app.get('/v1/patients', { schema: { tags: ['clinic'], summary: 'Patients known from the EHR (cached)', querystring: PatientsQuery } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const q = req.query as { mrn?: string; ehr_id?: string; first_name?: string; last_name?: string; dob?: string; phone?: string; page?: number; page_size?: number };
    if (q.dob !== undefined && !isIsoDate(q.dob)) throw new BadRequestError('Invalid date format for dob. Use ISO format (YYYY-MM-DD).');
    const page = q.page ?? 1;
    const pageSize = q.page_size ?? 50;
    const { rows, total } = await deps.store.listPatients({
      connectionId: connection.id,
      mrn: q.mrn,
      ehrId: q.ehr_id,
      firstName: q.first_name,
      lastName: q.last_name,
      dob: q.dob,
      phone: q.phone,
      limit: pageSize,
      offset: (page - 1) * pageSize,
    });
    return { success: true, patients: rows.map(patientView), pagination: pagination(page, pageSize, total) };
  });

  app.get('/v1/providers', { schema: { tags: ['clinic'], summary: 'Providers of the connection; only active ones have their schedule synced' } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const providers = await deps.store.listProviders(connection.id);
    return {
      success: true,
      providers: providers.map((p) => ({ id: p.id, ehr_id: p.ehr_id, name: p.name, npi: p.npi, timezone: connection.timezone, status: p.status, hide_in_availability: false })),
    };
  });

  const patchProvider = async (connection: Connection, find: (p: { id: string; ehr_id: string }) => boolean, body: { status?: string }) => {
    const status = body.status?.toLowerCase();
    if (status === undefined) throw new BadRequestError('Missing required field: status');
    if (status !== 'active' && status !== 'inactive') throw new BadRequestError('status must be one of: active, inactive');
    const provider = (await deps.store.listProviders(connection.id)).find(find);
    if (!provider) throw new NotFoundError('Provider not found for this connection.');
    await deps.store.setProviderStatus(connection.id, provider.id, status);
    return { success: true, message: 'Provider status updated successfully.', provider_id: provider.id };
  };

  app.patch('/v1/providers/:id', { schema: { tags: ['clinic'], summary: 'Activate or deactivate syncing a provider\'s schedule', params: Strict({ id: Type.String({ minLength: 1, maxLength: 255 }) }), body: ProviderBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { id } = req.params as { id: string };
    return patchProvider(connection, (p) => p.id === id, req.body as { status?: string });
  });

  app.patch('/v1/providers/ehr/:ehr_id', { schema: { tags: ['clinic'], summary: 'Same, addressing the provider by its EHR id', params: Strict({ ehr_id: Type.String({ minLength: 1, maxLength: 255 }) }), body: ProviderBody } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { ehr_id } = req.params as { ehr_id: string };
    return patchProvider(connection, (p) => p.ehr_id === ehr_id, req.body as { status?: string });
  });

  app.post('/v1/sync', { schema: { tags: ['sync'], summary: 'Sync this connection now and return the run' } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    if (isPushConnector(connection.connector)) throw new BadRequestError(`An ${connection.connector} connection is not synced: its EHR pushes each change to the HL7 listener as it happens. See GET /v1/quarantine for messages that could not be applied.`);
    if (!deps.syncNow) throw new EhrsyncError('forbidden', 'This process does not run syncs (its roles exclude sync); call a process with the sync role.');
    const outcome = await deps.syncNow(connection.id);
    if (outcome === null) throw new ConflictError('A sync of this connection is already running; try again shortly.');
    const [run] = await deps.store.listSyncRuns(connection.id, 1);
    return { success: true, sync_run: run ? syncRunView(run) : null };
  });

  app.get('/v1/sync-runs', { schema: { tags: ['sync'], summary: 'Recent sync runs of this connection, newest first', querystring: LimitQuery } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { limit } = req.query as { limit?: number };
    const runs = await deps.store.listSyncRuns(connection.id, limit ?? 50);
    return { success: true, connection: connectionView(connection), sync_runs: runs.map(syncRunView) };
  });

  app.get('/v1/quarantine', { schema: { tags: ['sync'], summary: 'EHR records set aside as malformed, with the reason', querystring: LimitQuery } }, async (req) => {
    const { connection } = await authenticateConnection(deps, req);
    const { limit } = req.query as { limit?: number };
    const items = await deps.store.listQuarantine(connection.id, limit ?? 50);
    return {
      success: true,
      quarantined: items.map((q) => ({ id: q.id, kind: q.kind, ehr_id: q.ehr_id, reason: q.reason, raw: q.raw, sync_run_id: q.syncRunId, created_at: isoUtc(q.createdAt) })),
    };
  });
}

function nextDay(date: string): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
}

async function providerIdMap(deps: ApiDeps, connectionId: string): Promise<Map<string, string>> {
  return new Map((await deps.store.listProviders(connectionId)).map((p) => [p.ehr_id, p.id]));
}

function settingsView(c: Connection) {
  const map = connectionStatusMap(c);
  return {
    access_token_reference_id: c.referenceId,
    visit_types: [],
    visit_statuses: Object.entries(map).map(([code, normalized]) => ({ code, description: normalized })),
    required_patient_fields: ['first_name', 'last_name', 'dob', 'sex'],
    timezone: c.timezone,
  };
}

/** The public view of a sync run. */
export function syncRunView(r: { id: string; startedAt: number; finishedAt: number | null; status: string; counts: object; quarantined: number; errorCode: string | null; errorMessage: string | null }) {
  return {
    id: r.id,
    status: r.status,
    started_at: isoUtc(r.startedAt),
    finished_at: r.finishedAt === null ? null : isoUtc(r.finishedAt),
    events: r.counts,
    quarantined: r.quarantined,
    error: r.errorCode === null ? null : { code: r.errorCode, message: r.errorMessage },
  };
}

