/**
 * @module api/routes/events — the event log, `GET /v1/webhook-events` in Cobalt's shape: one row per
 * (event, webhook URL) with its delivery status, filterable and paginated. It is the documented
 * way to recover events missed during downtime.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { BadRequestError, EndpointDisabledError, NotFoundError } from '../../domain/errors.js';
import { isoUtc } from '../../domain/clock.js';
import type { Account, EventRow } from '../../domain/entities.js';
import { ownEndpoint } from './webhooks.js';
import type { EventType } from '../../domain/events.js';
import type { DeliveryStatus } from '../../domain/delivery.js';
import { isIsoDate } from '../../detection/validate.js';
import type { ApiDeps } from '../context.js';
import { authenticateAccount } from '../context.js';
import { EventTypeSchema, PageQuery, pagination, StringEnum, Strict } from '../schemas.js';

/** Cobalt's delivery status words ↔ ours. */
const TO_COBALT: Record<DeliveryStatus, string> = { succeeded: 'success', failed: 'failed', pending: 'pending', skipped: 'skipped' };
const FROM_COBALT: Record<string, DeliveryStatus> = { success: 'succeeded', failed: 'failed', pending: 'pending', skipped: 'skipped' };
const DELIVERY_WORDS = ['success', 'failed', 'pending', 'skipped'] as const;

const Query = Strict({
  job_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'Only the events of one API call (operation events).' })),
  event_type: Type.Optional(EventTypeSchema),
  delivery_status: Type.Optional(StringEnum(DELIVERY_WORDS, { description: 'Delivery status to that webhook URL.' })),
  status: Type.Optional(StringEnum(DELIVERY_WORDS, { description: 'Alias of delivery_status (Cobalt\'s older name).' })),
  start_date: Type.Optional(Type.String({ description: 'YYYY-MM-DD (UTC), inclusive.' })),
  end_date: Type.Optional(Type.String({ description: 'YYYY-MM-DD (UTC), inclusive.' })),
  sort: Type.Optional(StringEnum(['created_at', '-created_at', 'created', '-created'] as const, { description: 'Default -created_at (newest first).' })),
  ...PageQuery,
});

function day(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!isIsoDate(value)) throw new BadRequestError(`Invalid date format for ${name}. Use ISO format (YYYY-MM-DD).`);
  return Date.parse(`${value}T00:00:00.000Z`);
}

const EventParams = Strict({ id: Type.String({ minLength: 1, maxLength: 64 }) });
const AttemptsQuery = Strict({ webhook_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Only the attempts to this endpoint.' })) });
const RedeliverBody = Type.Union([Strict({ webhook_id: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'Redeliver to this endpoint only (even one not subscribed to the type); default every enabled endpoint subscribed to it.' })) }), Type.Null()]);

async function ownEvent(deps: ApiDeps, account: Account, id: string): Promise<EventRow> {
  const e = await deps.store.getEvent(id);
  if (!e || e.accountId !== account.id) throw new NotFoundError(`No event ${JSON.stringify(id)}.`);
  return e;
}

/** Registers the event log route. */
export function eventRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/v1/webhook-events', { schema: { tags: ['events'], summary: 'List events with their delivery status per webhook URL', querystring: Query } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const q = req.query as {
      job_id?: string;
      event_type?: EventType;
      delivery_status?: string;
      status?: string;
      start_date?: string;
      end_date?: string;
      sort?: string;
      page?: number;
      page_size?: number;
    };
    const from = day('start_date', q.start_date);
    const toDay = day('end_date', q.end_date);
    if (from !== undefined && toDay !== undefined && toDay < from) throw new BadRequestError('end_date must be after start_date.');
    const page = q.page ?? 1;
    const pageSize = q.page_size ?? 50;
    const statusWord = q.delivery_status ?? q.status;
    const { rows, total } = await deps.store.listEventDeliveries({
      accountId: account.id,
      jobId: q.job_id,
      type: q.event_type,
      deliveryStatus: statusWord === undefined ? undefined : FROM_COBALT[statusWord],
      createdFrom: from,
      createdTo: toDay === undefined ? undefined : toDay + 86_400_000 - 1,
      order: q.sort === 'created_at' || q.sort === 'created' ? 'asc' : 'desc',
      limit: pageSize,
      offset: (page - 1) * pageSize,
    });
    return {
      success: true,
      webhook_events: rows.map((r) => {
        const envelope = JSON.parse(r.event.body) as { access_token_reference_id: string | null; created: string; data: unknown };
        return {
          event_id: r.event.id,
          event_type: r.event.type,
          webhook_id: r.endpointId,
          webhook_url: r.endpointUrl,
          delivery_status: r.deliveryStatus === null ? 'no_endpoint' : TO_COBALT[r.deliveryStatus],
          delivery_attempts: r.attempts,
          response_status_code: r.lastStatusCode,
          data: envelope.data,
          created_at: envelope.created,
          job_id: r.event.jobId,
          access_token_reference_id: envelope.access_token_reference_id,
        };
      }),
      pagination: pagination(page, pageSize, total),
    };
  });

  app.get('/v1/webhook-events/:id/attempts', { schema: { tags: ['events'], summary: 'Every delivery attempt of an event: status code, latency, error class, truncated response', params: EventParams, querystring: AttemptsQuery } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const { webhook_id } = req.query as { webhook_id?: string };
    const event = await ownEvent(deps, account, id);
    if (webhook_id !== undefined) await ownEndpoint(deps, account, webhook_id);
    const attempts = await deps.store.listAttempts(event.id, webhook_id);
    return {
      success: true,
      event_id: event.id,
      attempts: attempts.map((a) => ({
        webhook_id: a.endpointId,
        attempt: a.attempt,
        started_at: isoUtc(a.startedAt),
        duration_ms: a.durationMs,
        response_status_code: a.statusCode,
        error_class: a.errorClass,
        outcome: a.outcome,
        response_body: a.responseExcerpt,
      })),
    };
  });

  app.post('/v1/webhook-events/:id/redeliver', { schema: { tags: ['events'], summary: 'Deliver an event again (same webhook-id) to one endpoint or to every subscribed one', params: EventParams, body: RedeliverBody } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const webhookId = (req.body as { webhook_id?: string } | null | undefined)?.webhook_id;
    const event = await ownEvent(deps, account, id);
    if (webhookId !== undefined) {
      const e = await ownEndpoint(deps, account, webhookId);
      if (!e.enabled) throw new EndpointDisabledError(`Webhook ${webhookId} is disabled (${e.disabledReason ?? 'no reason recorded'}); enable it first with POST /v1/webhook/${webhookId}/enable.`);
    }
    const queued = (await deps.store.redeliverEvent(event.id, deps.clock.now(), webhookId)) ?? 0;
    // Nothing to queue is not an error: its deliveries are pending and go on their own (due, in
    // flight, or held behind an earlier event of the same appointment or patient).
    const message = queued > 0 ? `${queued} ${queued === 1 ? 'delivery' : 'deliveries'} queued.` : '0 deliveries queued: its deliveries are already pending (due, in flight, or waiting for an earlier event of the same record) and go on their own.';
    return { success: true, message, queued };
  });
}
