/**
 * @module domain/errors — the error catalogue: a few classes, each with a stable `code`, an HTTP
 * status for the API and a `retryable` flag that tells loops whether trying again can help.
 * Every code is documented in docs/errors.md (a test keeps the two in step).
 */

/** Every error code ehrsync produces, with what it means and who must act. */
export const ERROR_CODES = {
  bad_request: { status: 400, retryable: false, summary: 'The request or input is malformed; the message names the field.' },
  unauthorized: { status: 401, retryable: false, summary: 'Credentials are missing or wrong.' },
  forbidden: { status: 403, retryable: false, summary: 'The credentials are valid but not for this resource or action.' },
  not_found: { status: 404, retryable: false, summary: 'No such resource for these credentials.' },
  conflict: { status: 409, retryable: false, summary: 'The request conflicts with the current state (e.g. an idempotency key reused with another body).' },
  endpoint_disabled: { status: 409, retryable: false, summary: 'The webhook endpoint is disabled; enable it before redelivering or recovering to it.' },
  payload_too_large: { status: 413, retryable: false, summary: 'The request body exceeds the size limit.' },
  rate_limited: { status: 429, retryable: true, summary: 'Too many requests; retry after the time in Retry-After.' },
  config_invalid: { status: 400, retryable: false, summary: 'A configuration value is invalid; the message names the field and the fix.' },
  ehr_unavailable: { status: 502, retryable: true, summary: 'The EHR could not be reached or answered 5xx/429.' },
  ehr_timeout: { status: 504, retryable: true, summary: 'The EHR did not answer within the timeout.' },
  ehr_auth_failed: { status: 502, retryable: false, summary: 'The EHR refused our credentials (401/403); fix the connection credentials.' },
  ehr_bad_response: { status: 502, retryable: true, summary: 'The EHR answered with something that is not the expected FHIR/JSON (HTML, truncated body).' },
  ehr_rejected: { status: 422, retryable: false, summary: 'The EHR rejected a write (validation, double booking, unknown reference).' },
  store_unavailable: { status: 503, retryable: true, summary: 'The database could not be reached or is busy.' },
  sync_interrupted: { status: 500, retryable: true, summary: 'The process stopped during a sync; nothing of that sync was committed and the next one redoes it.' },
  internal: { status: 500, retryable: true, summary: 'A bug in ehrsync; it is logged without payloads.' },
} as const;

/** A stable error code from the catalogue. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error ehrsync raises on purpose. */
export class EhrsyncError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.retryable = ERROR_CODES[code].retryable;
  }
}

/** Bad input from a caller (API body, CLI flag, config value). */
export class BadRequestError extends EhrsyncError {
  constructor(message: string) {
    super('bad_request', message);
  }
}

/** Missing or wrong credentials. */
export class UnauthorizedError extends EhrsyncError {
  constructor(message = 'Missing or invalid credentials.') {
    super('unauthorized', message);
  }
}

/** A resource that does not exist for the caller (never reveals whether it exists for another tenant). */
export class NotFoundError extends EhrsyncError {
  constructor(message: string) {
    super('not_found', message);
  }
}

/** A request that conflicts with current state. */
export class ConflictError extends EhrsyncError {
  constructor(message: string) {
    super('conflict', message);
  }
}

/** An action that needs an enabled webhook endpoint, on a disabled one. */
export class EndpointDisabledError extends EhrsyncError {
  constructor(message: string) {
    super('endpoint_disabled', message);
  }
}

/** An invalid configuration value; the message names the field and how to fix it. */
export class ConfigError extends EhrsyncError {
  constructor(message: string) {
    super('config_invalid', message);
  }
}

/** A failure talking to an EHR. Messages never contain credentials or patient data. */
export class EhrError extends EhrsyncError {
  constructor(
    code: 'ehr_unavailable' | 'ehr_timeout' | 'ehr_auth_failed' | 'ehr_bad_response' | 'ehr_rejected',
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number },
  ) {
    super(code, message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }

  /** When the EHR said when to come back (Retry-After), in milliseconds. */
  readonly retryAfterMs: number | undefined;
}

/** Normalizes anything thrown into an Error, once, at a boundary. */
export function toError(err: unknown): Error {
  if (err instanceof Error) return err;
  const message =
    typeof err === 'object' && err !== null && 'message' in err ? String((err as { message: unknown }).message) : String(err);
  return new Error(message, { cause: err });
}

/** A short, safe description of an error for records and logs: code and message, no stack, no cause. */
export function describeError(err: unknown): { code: ErrorCode; message: string; retryable: boolean } {
  if (err instanceof EhrsyncError) return { code: err.code, message: err.message, retryable: err.retryable };
  const e = toError(err);
  if (e.name === 'AbortError' || e.name === 'TimeoutError') return { code: 'ehr_timeout', message: 'The EHR did not answer in time.', retryable: true };
  return { code: 'internal', message: e.message.slice(0, 500), retryable: true };
}

/**
 * An error's code or name when it looks like an identifier (a driver's `SQLITE_BUSY`, `22P05`,
 * `ECONNRESET`; else its class), for a log line; never its message, which may quote content.
 */
export function safeErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  for (const key of ['code', 'name'] as const) {
    const v = (err as Record<string, unknown>)[key];
    if (typeof v === 'string' && /^[A-Za-z0-9_.:-]{1,64}$/.test(v)) return v;
  }
  return undefined;
}
