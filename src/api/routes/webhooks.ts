/**
 * @module api/routes/webhooks — webhook endpoints, with Cobalt's routes and response shapes (a
 * superset of the variants Cobalt's docs show) plus ehrsync's options: signature scheme, retry
 * policy, event-type filter, concurrency cap, enable/disable, health, and recovery of failed or
 * skipped deliveries since a time.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { BadRequestError, EndpointDisabledError, NotFoundError } from '../../domain/errors.js';
import { isoUtc } from '../../domain/clock.js';
import { summarizeHealth } from '../../delivery/endpoint-health.js';
import { SEED_EVENT_TYPES } from '../../domain/events.js';
import { newSigningSecret } from '../../domain/secrets.js';
import type { EventType } from '../../domain/events.js';
import type { Account, Endpoint } from '../../domain/entities.js';
import type { ApiDeps } from '../context.js';
import { authenticateAccount } from '../context.js';
import { endpointUrlProblem } from '../../domain/network-policy.js';
import { endpointView, EventTypeSchema, StringEnum, Strict } from '../schemas.js';

/** How long a rotated-out secret keeps verifying (Cobalt: 24 h). */
export const PREVIOUS_SECRET_TTL_MS = 24 * 3_600_000;


const EndpointOptions = {
  signature_scheme: Type.Optional(StringEnum(['cobalt', 'standard'] as const, { description: '`cobalt` (default): cobalt-verification hex HMAC of the body. `standard`: Standard Webhooks v1.' })),
  retry_policy: Type.Optional(StringEnum(['cobalt', 'durable'] as const, { description: '`durable` (default): multi-day retries. `cobalt`: one retry after 1 s, as Cobalt does.' })),
  event_types: Type.Optional(Type.Array(EventTypeSchema, { minItems: 1, uniqueItems: true, description: 'Event types to deliver; default the four seed types.' })),
  max_concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 64, description: 'Most deliveries in flight to this endpoint at once (default: the dispatcher\'s, 8).' })),
};

type EndpointOptionsBody = { signature_scheme?: 'cobalt' | 'standard'; retry_policy?: 'cobalt' | 'durable'; event_types?: EventType[]; max_concurrency?: number };

const RecoverBody = Strict({
  since: Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601 time: every failed or skipped delivery created since then is queued again, and those waiting for a retry are sent now.' }),
});

const HealthQuery = Strict({
  since: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'ISO 8601 time the success rate counts from; default 24 hours ago.' })),
});

/** Parses an ISO 8601 time field or throws a 400 naming it. */
function isoTime(name: string, value: string): number {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw new BadRequestError(`${name} must be an ISO 8601 time, e.g. 2026-11-02T15:00:00Z.`);
  return ms;
}

/** The API view of health figures. */
function healthView(e: Endpoint, h: NonNullable<Awaited<ReturnType<ApiDeps['store']['getEndpointHealth']>>>) {
  const s = summarizeHealth(h, e.retryPolicy);
  const t = (ms: number | null) => (ms === null ? null : isoUtc(ms));
  return {
    webhook_id: e.id,
    state: s.state,
    enabled: s.enabled,
    disabled_reason: s.disabledReason,
    disabled_at: t(s.disabledAt),
    attempts: s.attempts,
    succeeded: s.succeeded,
    success_rate: s.successRate,
    last_success_at: t(s.lastSuccessAt),
    last_failure_at: t(s.lastFailureAt),
    consecutive_failures: s.consecutiveFailures,
    failing_since: t(s.failingSince),
    disables_at: t(s.disablesAt),
    deliveries: { pending: s.pending, failed: s.failed, skipped: s.skipped },
  };
}

const CreateBody = Strict({
  webhook_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'Alias of webhook_url (Cobalt\'s OpenAPI spelling).' })),
  webhook_secret: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'Your own signing secret, `whsec_` + base64 of 24 to 64 random bytes (e.g. `whsec_$(openssl rand -base64 32)`): a receiver can then run before the endpoint exists. Default: a new random one.' }),
  ),
  ...EndpointOptions,
});

/** A signing secret the caller supplies: `whsec_` + base64 of 24–64 bytes (as Standard Webhooks keys are). */
function suppliedSecret(value: string): string {
  const b64 = value.startsWith('whsec_') ? value.slice(6) : '';
  const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(b64) ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
  if (bytes.length < 24 || bytes.length > 64 || bytes.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
    throw new BadRequestError('webhook_secret must be whsec_ followed by the base64 of 24 to 64 random bytes, e.g. whsec_$(openssl rand -base64 32).');
  }
  return value;
}

const PatchBody = Strict({
  webhook_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  enabled: Type.Optional(Type.Boolean()),
  ...EndpointOptions,
});

const IdParams = Strict({ id: Type.String({ minLength: 1, maxLength: 64 }) });

async function checkUrl(deps: ApiDeps, url: string): Promise<void> {
  const problem = await endpointUrlProblem(url, deps.endpointUrlPolicy, deps.resolve);
  if (problem) throw new BadRequestError(problem);
}

/** An endpoint of the account, or 404. */
export async function ownEndpoint(deps: ApiDeps, account: Account, id: string): Promise<Endpoint> {
  const e = await deps.store.getEndpoint(id);
  if (!e || e.accountId !== account.id) throw new NotFoundError(`No webhook ${JSON.stringify(id)}.`);
  return e;
}

/** Registers the webhook routes. */
export function webhookRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post(
    '/v1/webhook',
    { schema: { tags: ['webhooks'], summary: 'Register a webhook endpoint', body: CreateBody } },
    async (req) => {
      const account = await authenticateAccount(deps, req);
      const body = req.body as { webhook_url?: string; url?: string; webhook_secret?: string } & EndpointOptionsBody;
      const url = body.webhook_url ?? body.url;
      if (!url) throw new BadRequestError('Missing required field: webhook_url');
      await checkUrl(deps, url);
      // A caller's own secret lets its receiver verify the very first delivery: no race between
      // registering and starting the receiver with the answered secret.
      const secret = body.webhook_secret === undefined ? newSigningSecret() : suppliedSecret(body.webhook_secret);
      const e = await deps.store.createEndpoint({
        accountId: account.id,
        url,
        secret: deps.secretBox.encrypt(secret),
        signatureScheme: body.signature_scheme,
        retryPolicy: body.retry_policy,
        eventTypes: body.event_types ?? [...SEED_EVENT_TYPES],
        maxConcurrency: body.max_concurrency,
        now: deps.clock.now(),
      });
      return {
        success: true,
        message: 'Webhook registered successfully',
        webhook_id: e.id,
        webhook_url: e.url,
        webhook_secret: secret,
        webhook_secret_key: secret,
        webhook: { ...endpointView(e), secret },
      };
    },
  );

  app.get('/v1/webhook', { schema: { tags: ['webhooks'], summary: 'List webhook endpoints (with their signing secrets)' } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const endpoints = await deps.store.listEndpoints(account.id);
    const views = endpoints.map((e) => ({ ...endpointView(e), secret: deps.secretBox.decrypt(e.secret) }));
    return { success: true, webhook_url: views[0]?.url ?? null, webhook_urls: views, webhook_secret_key: views[0]?.secret ?? null };
  });

  app.patch('/v1/webhook/:id', { schema: { tags: ['webhooks'], summary: 'Change an endpoint\'s URL or options, enable or disable it', params: IdParams, body: PatchBody } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const body = req.body as { webhook_url?: string; url?: string; enabled?: boolean } & EndpointOptionsBody;
    await ownEndpoint(deps, account, id);
    const url = body.webhook_url ?? body.url;
    if (url !== undefined) await checkUrl(deps, url);
    const updated = await deps.store.updateEndpoint(id, {
      url,
      signatureScheme: body.signature_scheme,
      retryPolicy: body.retry_policy,
      eventTypes: body.event_types,
      maxConcurrency: body.max_concurrency,
      ...(body.enabled === false ? { enabled: false, disabledReason: 'disabled by the account', disabledAt: deps.clock.now() } : {}),
    });
    // Re-enabling clears the reason and the failure streak it came from.
    if (body.enabled === true) await deps.store.enableEndpoint(id);
    return { success: true, message: 'Webhook updated successfully', webhook: endpointView(body.enabled === true ? ((await deps.store.getEndpoint(id)) as Endpoint) : (updated as Endpoint)) };
  });

  app.post('/v1/webhook/:id/enable', { schema: { tags: ['webhooks'], summary: 'Enable a disabled endpoint (deliveries skipped meanwhile stay skipped until recovered)', params: IdParams } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    await ownEndpoint(deps, account, id);
    const e = (await deps.store.enableEndpoint(id)) as Endpoint;
    return { success: true, message: 'Webhook enabled; recover deliveries skipped while it was disabled with POST /v1/webhook/:id/recover.', webhook: endpointView(e) };
  });

  app.get('/v1/webhook/:id/health', { schema: { tags: ['webhooks'], summary: 'Endpoint health: success rate, last success and failure, consecutive failures, delivery counts', params: IdParams, querystring: HealthQuery } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const { since } = req.query as { since?: string };
    const e = await ownEndpoint(deps, account, id);
    const from = since === undefined ? deps.clock.now() - 86_400_000 : isoTime('since', since);
    const h = await deps.store.getEndpointHealth(id, from);
    if (!h) throw new NotFoundError(`No webhook ${JSON.stringify(id)}.`);
    return { success: true, since: isoUtc(from), health: healthView(e, h) };
  });

  app.post('/v1/webhook/:id/recover', { schema: { tags: ['webhooks'], summary: 'Queue again every failed or skipped delivery to this endpoint since a time, and send those waiting for a retry now (same webhook-id)', params: IdParams, body: RecoverBody } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const { since } = req.body as { since: string };
    const from = isoTime('since', since);
    const e = await ownEndpoint(deps, account, id);
    if (!e.enabled) throw new EndpointDisabledError(`Webhook ${id} is disabled (${e.disabledReason ?? 'no reason recorded'}); enable it first with POST /v1/webhook/${id}/enable.`);
    const queued = await deps.store.recoverEndpointDeliveries(id, from, deps.clock.now());
    return { success: true, message: `${queued} ${queued === 1 ? 'delivery' : 'deliveries'} queued again.`, queued };
  });

  app.delete('/v1/webhook/:id', { schema: { tags: ['webhooks'], summary: 'Remove a webhook endpoint', params: IdParams } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    await ownEndpoint(deps, account, id);
    await deps.store.deleteEndpoint(id);
    return { success: true, message: 'Webhook URL removed successfully' };
  });

  app.post('/v1/webhook/:id/rotate-secret', { schema: { tags: ['webhooks'], summary: 'Rotate one endpoint\'s signing secret (the previous one keeps working for 24 h)', params: IdParams } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const { id } = req.params as { id: string };
    const e = await ownEndpoint(deps, account, id);
    const secret = newSigningSecret();
    await rotate(deps, e, secret);
    return { success: true, webhook: { id: e.id, secret }, previous_secret_expires_at: new Date(deps.clock.now() + PREVIOUS_SECRET_TTL_MS).toISOString() };
  });

  app.post('/v1/webhook/rotate-secret', { schema: { tags: ['webhooks'], summary: 'Rotate the signing secret of every endpoint of the account to one new secret' } }, async (req) => {
    const account = await authenticateAccount(deps, req);
    const endpoints = await deps.store.listEndpoints(account.id);
    if (endpoints.length === 0) throw new NotFoundError('No webhook is registered for this account.');
    const secret = newSigningSecret();
    for (const e of endpoints) await rotate(deps, e, secret);
    return {
      success: true,
      message: 'Webhook secret rotated successfully; the previous secret keeps working for 24 hours.',
      webhook_secret_key: secret,
      webhooks: endpoints.map((e) => ({ id: e.id, secret })),
    };
  });
}

async function rotate(deps: ApiDeps, e: Endpoint, secret: string): Promise<void> {
  await deps.store.updateEndpoint(e.id, {
    secret: deps.secretBox.encrypt(secret),
    previousSecret: e.secret,
    previousSecretExpiresAt: deps.clock.now() + PREVIOUS_SECRET_TTL_MS,
  });
}
