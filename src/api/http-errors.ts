/**
 * @module api/http-errors — every error leaves the API as `{success: false, message, code}` with a
 * 4xx status when the caller can fix it. Only a bug is a 500, and its message says nothing about
 * internals or data.
 */
import type { FastifyError, FastifyInstance } from 'fastify';
import { EhrsyncError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';

/** The error body. */
export interface ErrorBody {
  success: false;
  message: string;
  code: string;
}

interface AjvError {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** Turns Ajv validation errors into one sentence naming the fields, in Cobalt's wording where it has one. */
export function validationMessage(context: string | undefined, errors: readonly AjvError[]): string {
  const where = context === 'querystring' ? 'query parameter' : context === 'params' ? 'path parameter' : context === 'headers' ? 'header' : 'field';
  const unexpected = errors.filter((e) => e.keyword === 'additionalProperties').map((e) => String(e.params?.additionalProperty));
  if (unexpected.length > 0) return `Unexpected ${context === 'body' ? 'fields in request body' : `${where}s`}: ${unexpected.join(', ')}`;
  const missing = errors.filter((e) => e.keyword === 'required').map((e) => String(e.params?.missingProperty));
  if (missing.length > 0) return `Missing required ${where}${missing.length > 1 ? 's' : ''}: ${missing.join(', ')}`;
  const e = errors[0];
  if (!e) return 'Invalid request.';
  // No body, or a body that is not an object: say what is expected instead of "field must be object".
  if (context === 'body' && (e.instancePath ?? '') === '' && e.keyword === 'type') return 'Request body must be a JSON object (content-type: application/json); see the route in /docs for its fields.';
  const name = (e.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || where;
  if (e.keyword === 'enum') return `${name} must be one of: ${(e.params?.allowedValues as unknown[] | undefined)?.join(', ')}`;
  return `${name} ${e.message ?? 'is invalid'}`;
}

/** Longest message an error body carries: inputs are never echoed at length. */
const MAX_MESSAGE = 300;

/** A message bounded in length (the caller's input may be in it). */
function bounded(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
}

/**
 * Fastify's router errors, raised before any route or hook runs (`frameworkErrors`): a URL that is
 * not valid percent-encoding, a path parameter over `maxParamLength`. Answered in the API's shape,
 * without echoing the URL.
 */
export function frameworkErrorReply(err: FastifyError): { status: number; body: ErrorBody } {
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') {
    return { status: 414, body: { success: false, message: 'A path parameter is too long (at most 256 characters).', code: 'bad_request' } };
  }
  if (err.code === 'FST_ERR_BAD_URL') {
    return { status: 400, body: { success: false, message: 'The URL is not valid: its path has a bad percent-encoding (e.g. %zz or an encoded byte that is not UTF-8).', code: 'bad_request' } };
  }
  return { status: typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 400, body: { success: false, message: 'The request cannot be routed.', code: 'bad_request' } };
}

/** Installs the error and not-found handlers. */
export function installErrorHandling(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: FastifyError & { validationContext?: string }, request, reply) => {
    let status: number;
    let body: ErrorBody;
    if (err instanceof EhrsyncError) {
      status = err.status;
      body = { success: false, message: err.message, code: err.code };
      if (err.code === 'rate_limited') reply.header('retry-after', '1');
    } else if (err.validation) {
      status = 400;
      body = { success: false, message: validationMessage(err.validationContext, err.validation as AjvError[]), code: 'bad_request' };
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      body = { success: false, message: 'Request body is too large.', code: 'payload_too_large' };
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      body = { success: false, message: 'Send the request body as application/json.', code: 'bad_request' };
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      // Fastify's own client errors: bad JSON, empty body with a JSON content type, bad headers.
      status = err.statusCode;
      const message = err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err instanceof SyntaxError ? `Request body is not valid JSON: ${err.message}` : err.message;
      body = { success: false, message, code: 'bad_request' };
    } else {
      status = 500;
      body = { success: false, message: 'Internal error. It has been logged; please report it.', code: 'internal' };
      log.error({ route: request.routeOptions.url, error: err.message, stack: err.stack }, 'unhandled API error');
    }
    void reply.status(status).send({ ...body, message: bounded(body.message) });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ success: false, message: bounded(`No route ${request.method} ${request.url.split('?')[0]}.`), code: 'not_found' } satisfies ErrorBody);
  });
}
