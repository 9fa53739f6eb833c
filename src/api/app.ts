/**
 * @module api/app — builds the HTTP API: Cobalt-compatible routes, ehrsync's own, the OpenAPI
 * document (`/openapi.json`) and docs page (`/docs`), health, readiness and Prometheus metrics.
 * Requests are logged by route pattern, status and duration only — never URLs with query values
 * (they can hold patient names) nor bodies.
 */
import swagger from '@fastify/swagger';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import swaggerUi from '@fastify/swagger-ui';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BadRequestError, EhrsyncError } from '../domain/errors.js';
import type { ApiDeps } from './context.js';
import { frameworkErrorReply, installErrorHandling } from './http-errors.js';
import { RateLimiter } from './rate-limit.js';
import { clinicRoutes } from './routes/clinic.js';
import { connectionRoutes } from './routes/connections.js';
import { eventRoutes } from './routes/events.js';
import { operationRoutes } from './routes/operations.js';
import { webhookRoutes } from './routes/webhooks.js';

const API_DESCRIPTION = `ehrsync's API. Cobalt-compatible routes use Cobalt's headers: \`client_id\` and
\`client_secret\` for the account, plus \`access_token\` for one clinic connection. Bodies are JSON;
success is \`{"success": true, ...}\`, errors \`{"success": false, "message", "code"}\` with a 4xx status.`;

/** Builds the API (not listening yet: call `listen` or use `inject` in tests). */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    // Ids stored are at most 255 characters (detection/validate.ts): every one can be addressed.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 256 },
    // Router errors (a bad percent-encoding, an over-long path parameter) in the API's own shape.
    frameworkErrors: (err, _request, reply) => {
      const { status, body } = frameworkErrorReply(err);
      void (reply as FastifyReply).status(status).send(body);
    },
  });
  // Bodies are JSON: a text/plain body is refused as such (415), not parsed as a string and then
  // reported as a field of the wrong type.
  app.removeContentTypeParser('text/plain');
  // Fastify's JSON parser (prototype poisoning refused), with an error that says where the JSON
  // breaks — once, and without quoting the body (it may hold patient data).
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    parseJson(req, body as string, (err: Error | null, value?: unknown) => {
      if (err && (err as { code?: string }).code === 'FST_ERR_CTP_INVALID_JSON_BODY') {
        const place = jsonErrorPlace(body as string);
        // Valid JSON refused all the same: it sets __proto__ or constructor.prototype.
        done(new BadRequestError(place === null ? 'Request body is refused: it sets __proto__ or constructor.prototype.' : `Request body is not valid JSON ${place}.`), undefined);
      } else done(err, value);
    });
  });
  // Two validators: query strings and path parameters are text, so they are coerced ("2" → 2);
  // JSON bodies are typed, so they are not (42 is not a URL string, "true" is not a boolean).
  // Neither removes unknown fields: `additionalProperties: false` rejects them with a message.
  const coercing = addFormats.default(new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  const exact = addFormats.default(new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: false, strict: false }));
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? exact : coercing).compile(schema));
  installErrorHandling(app, deps.logger);

  const limiter = new RateLimiter(deps.rateLimitPerSecond ?? 50);
  app.addHook('onRequest', async (req) => {
    if (!req.url.startsWith('/v1/')) return;
    // Per client_id and source address: the limit runs before authentication, so a bucket keyed on
    // the client_id alone would let anyone who knows a tenant's (not secret) client_id throttle it.
    const key = typeof req.headers.client_id === 'string' && req.headers.client_id ? `${req.headers.client_id}\n${req.ip}` : req.ip;
    if (!limiter.take(key, deps.clock.now())) throw new EhrsyncError('rate_limited', 'Too many requests for this client; slow down and retry after a second.');
  });
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    deps.metrics.httpRequests.inc({ route, method: req.method, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe(reply.elapsedTime / 1000, { route });
    if (reply.statusCode >= 500) deps.logger.error({ route, method: req.method, status: reply.statusCode }, 'request failed');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'ehrsync API', version: '1', description: API_DESCRIPTION },
      components: {
        securitySchemes: {
          client_id: { type: 'apiKey', in: 'header', name: 'client_id' },
          client_secret: { type: 'apiKey', in: 'header', name: 'client_secret' },
          access_token: { type: 'apiKey', in: 'header', name: 'access_token' },
        },
      },
      security: [{ client_id: [], client_secret: [], access_token: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  webhookRoutes(app, deps);
  eventRoutes(app, deps);
  clinicRoutes(app, deps);
  connectionRoutes(app, deps);
  operationRoutes(app, deps);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/healthz', { schema: { tags: ['operations'], summary: 'Liveness: the process is up' } }, async () => ({ success: true, status: 'ok' }));
  app.get('/readyz', { schema: { tags: ['operations'], summary: 'Readiness: the database answers and the roles are running' } }, async (_req, reply) => {
    let ready = false;
    try {
      await deps.store.listAccounts();
      ready = deps.ready ? await deps.ready() : true;
    } catch {
      ready = false;
    }
    void reply.status(ready ? 200 : 503);
    return ready ? { success: true, status: 'ready' } : { success: false, status: 'not ready', message: 'The database or a role is not ready yet.', code: 'store_unavailable' };
  });
  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics' } }, async (_req, reply) => {
    void reply.type('text/plain; version=0.0.4');
    return deps.metrics.render();
  });
  return app;
}

/** Where a body stops being JSON, without quoting it: "at character 12", or "(it ends too early)"; null when it is JSON. */
function jsonErrorPlace(body: string): string | null {
  try {
    JSON.parse(body);
    return null;
  } catch (e) {
    const message = (e as Error).message;
    const at = /position (\d+)/.exec(message);
    if (at) return `at character ${Number(at[1]) + 1}`;
    if (/end of JSON input/.test(message)) return '(it ends too early)';
    return '(a value or punctuation is out of place)';
  }
}
