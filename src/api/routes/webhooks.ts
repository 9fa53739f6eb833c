/**
 * @module api/routes/webhooks — webhook endpoints, with Cobalt's routes and response shapes (a
 * superset of the variants Cobalt's docs show) plus ehrsync's options: signature scheme, retry
 * policy, event-type filter, enable/disable.
 */
import type { FastifyInstance } from 'fastify';
import { Type } from 'typebox';
import { BadRequestError, NotFoundError } from '../../domain/errors.js';
import { SEED_EVENT_TYPES } from '../../domain/events.js';
import { newSigningSecret } from '../../domain/secrets.js';
import type { EventType } from '../../domain/events.js';
import type { Account, Endpoint } from '../../store/store.js';
import type { ApiDeps } from '../context.js';
import { authenticateAccount } from '../context.js';
import { endpointUrlProblem } from '../../delivery/url-safety.js';
import { endpointView, EventTypeSchema, StringEnum, Strict } from '../schemas.js';

/** How long a rotated-out secret keeps verifying (Cobalt: 24 h). */
export const PREVIOUS_SECRET_TTL_MS = 24 * 3_600_000;


const EndpointOptions = {
  signature_scheme: Type.Optional(StringEnum(['cobalt', 'standard'] as const, { description: '`cobalt` (default): cobalt-verification hex HMAC of the body. `standard`: Standard Webhooks v1.' })),
  retry_policy: Type.Optional(StringEnum(['cobalt', 'durable'] as const, { description: '`durable` (default): multi-day retries. `cobalt`: one retry after 1 s, as Cobalt does.' })),
  event_types: Type.Optional(Type.Array(EventTypeSchema, { minItems: 1, uniqueItems: true, description: 'Event types to deliver; default the four seed types.' })),
};

const CreateBody = Strict({
  webhook_url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
  url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, description: 'Alias of webhook_url (Cobalt\'s OpenAPI spelling).' })),
  ...EndpointOptions,
});

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
      const body = req.body as { webhook_url?: string; url?: string; signature_scheme?: 'cobalt' | 'standard'; retry_policy?: 'cobalt' | 'durable'; event_types?: EventType[] };
      const url = body.webhook_url ?? body.url;
      if (!url) throw new BadRequestError('Missing required field: webhook_url');
      await checkUrl(deps, url);
      const secret = newSigningSecret();
      const e = await deps.store.createEndpoint({
        accountId: account.id,
        url,
        secret: deps.secretBox.encrypt(secret),
        signatureScheme: body.signature_scheme,
        retryPolicy: body.retry_policy,
        eventTypes: body.event_types ?? [...SEED_EVENT_TYPES],
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
    const body = req.body as { webhook_url?: string; url?: string; enabled?: boolean; signature_scheme?: 'cobalt' | 'standard'; retry_policy?: 'cobalt' | 'durable'; event_types?: EventType[] };
    await ownEndpoint(deps, account, id);
    const url = body.webhook_url ?? body.url;
    if (url !== undefined) await checkUrl(deps, url);
    const updated = await deps.store.updateEndpoint(id, {
      url,
      signatureScheme: body.signature_scheme,
      retryPolicy: body.retry_policy,
      eventTypes: body.event_types,
      enabled: body.enabled,
      // Re-enabling clears the reason and the failure streak it came from.
      ...(body.enabled === true ? { disabledReason: null, failingSince: null } : body.enabled === false ? { disabledReason: 'disabled by the account' } : {}),
    });
    return { success: true, message: 'Webhook updated successfully', webhook: endpointView(updated as Endpoint) };
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
