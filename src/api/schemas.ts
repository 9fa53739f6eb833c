/**
 * @module api/schemas — request schemas shared by routes (JSON Schema through TypeBox: Fastify
 * validates with them and the OpenAPI document is generated from them), and the response shapes
 * of the Cobalt-compatible resources.
 */
import { Type } from 'typebox';
import type { TSchema, TUnsafe } from 'typebox';
import { EVENT_TYPES } from '../domain/events.js';
import type { Connection, Endpoint } from '../domain/entities.js';
import type { AppointmentRow, PatientRow } from '../domain/entities.js';
import { isoUtc } from '../domain/clock.js';

/** A string limited to `values` (a plain JSON Schema enum: clearer errors than a union of literals). */
export function StringEnum<T extends string>(values: readonly T[], options: Record<string, unknown> = {}): TUnsafe<T> {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

/** An object that rejects fields it does not declare ("Unexpected fields in request body: x"). */
export function Strict<P extends Record<string, TSchema>>(properties: P, options: Record<string, unknown> = {}) {
  return Type.Object(properties, { additionalProperties: false, ...options });
}

export const EventTypeSchema = StringEnum(EVENT_TYPES);
export const PageQuery = {
  // Bounded so that (page − 1) × page_size stays a valid SQL offset.
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1, description: 'Page number, from 1 to 1,000,000.' })),
  page_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 50, description: 'Items per page, at most 100.' })),
};

/** Cobalt's pagination object. */
export function pagination(page: number, pageSize: number, total: number) {
  return { current_page: page, total_pages: Math.max(1, Math.ceil(total / pageSize)), total_count: total, page_size: pageSize };
}

/** The public view of an endpoint (never the secret). */
export function endpointView(e: Endpoint) {
  return {
    id: e.id,
    url: e.url,
    webhook_url: e.url,
    signature_scheme: e.signatureScheme,
    retry_policy: e.retryPolicy,
    event_types: e.eventTypes,
    max_concurrency: e.maxConcurrency,
    enabled: e.enabled,
    disabled_reason: e.disabledReason,
    disabled_at: e.disabledAt === null ? null : isoUtc(e.disabledAt),
    created_at: isoUtc(e.createdAt),
  };
}

/** Replaces every sealed (`enc:v1:`) value, at any depth, with `***`. */
function maskSecrets(v: unknown): unknown {
  if (typeof v === 'string') return v.startsWith('enc:v1:') ? '***' : v;
  if (Array.isArray(v)) return v.map(maskSecrets);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, maskSecrets(x)]));
  return v;
}

/** The public view of a connection (never its token or credentials). */
export function connectionView(c: Connection) {
  const config = maskSecrets(c.config) as Record<string, unknown>;
  return {
    id: c.id,
    connector: c.connector,
    config,
    access_token_reference_id: c.referenceId,
    timezone: c.timezone,
    window_past_days: c.windowPastDays,
    window_future_days: c.windowFutureDays,
    status_map: c.statusMap,
    sync_interval_seconds: c.syncIntervalMs / 1000,
    replay_baseline: c.replayBaseline,
    enabled: c.enabled,
    baseline_at: c.baselineAt === null ? null : isoUtc(c.baselineAt),
    last_sync_at: c.lastSyncAt === null ? null : isoUtc(c.lastSyncAt),
    next_sync_at: isoUtc(c.nextSyncAt),
    consecutive_failures: c.consecutiveFailures,
    created_at: isoUtc(c.createdAt),
  };
}

/**
 * An appointment as `GET /v1/appointments` returns it (Cobalt's field names). Without a time zone
 * of its own it has the connection's (`defaultTimezone`), as in its webhooks.
 */
export function appointmentView(a: AppointmentRow, providerIds: ReadonlyMap<string, string>, defaultTimezone: string) {
  const r = a.record;
  return {
    id: a.id,
    ehr_appointment_id: r.ehr_appointment_id,
    datetime: r.datetime,
    timezone: r.timezone ?? defaultTimezone,
    duration: r.duration,
    status: r.status,
    appointment_type: r.appointment_type,
    appointment_mode: r.appointment_mode,
    location: r.location,
    patient_name: r.patient_name,
    patient_mrn: r.patient_mrn,
    patient_ehr_id: r.patient_ehr_id,
    provider_id: r.provider_ehr_id === null ? null : (providerIds.get(r.provider_ehr_id) ?? null),
    provider_ehr_id: r.provider_ehr_id,
    provider_name: r.provider_name,
    secondary_provider_ehr_id: r.secondary_provider_ehr_id,
    created_at: isoUtc(a.createdAt),
    updated_at: isoUtc(a.updatedAt),
    object_metadata: { source: a.source === 'operation' ? 'cobalt_operation' : 'ehr_sync', created_at: isoUtc(a.createdAt) },
  };
}

/** A patient as `GET /v1/patients` returns it. */
export function patientView(p: PatientRow) {
  const r = p.record;
  return {
    id: p.id,
    ehr_id: r.ehr_patient_id,
    mrn: r.mrn,
    first_name: r.first_name,
    last_name: r.last_name,
    dob: r.dob,
    sex: r.sex,
    phone: r.phone,
    cell_phone: r.cell_phone,
    email: r.email,
    address_street: r.address_street,
    address_line2: r.address_line2,
    address_city: r.address_city,
    address_state: r.address_state,
    address_zip: r.address_zip,
  };
}
