/**
 * @module connectors/fhir/http — the FHIR server's HTTP side: rate limit, auth header, per-request
 * timeout, bounded retries on 429 (honouring Retry-After) and 5xx, and typed errors for everything
 * else (401/403, HTML, truncated JSON). Messages name the status and the resource type, never a
 * credential, a query value or a payload.
 */
import { EhrError } from '../../domain/errors.js';
import type { Logger } from '../../domain/logger.js';
import type { AuthProvider } from './auth.js';
import type { Resource } from './mapping.js';
import { TokenBucket } from './token-bucket.js';

/** What the client is built from. */
export interface FhirHttpOptions {
  baseUrl: string;
  auth: AuthProvider;
  fetch: typeof fetch;
  logger: Logger;
  /** Wall clock (Retry-After dates). */
  now: () => number;
  /** Monotonic clock of the rate limit (never an injected wall clock that may stand still). Default performance.now. */
  monotonic?: () => number;
  sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  timeoutMs: number;
  rateLimitPerSec: number;
  maxRetries: number;
  /** Longest Retry-After honoured; a server asking for more fails the read now (default 60 s). */
  maxRetryAfterMs?: number;
}

/** One request. */
export interface FhirRequest {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** A path relative to the base (`Appointment?date=…`) or an absolute URL of the same server (paging links). */
  url: string;
  body?: Resource;
  headers?: Record<string, string>;
  signal: AbortSignal;
  /** Statuses handed back to the caller instead of thrown (e.g. 404/410 of a read by id). */
  allow?: number[];
  /** Error code of other 4xx answers: reads fail as a bad response, writes as rejected. */
  clientErrorCode?: 'ehr_bad_response' | 'ehr_rejected';
}

/** A response with a parsed JSON body (null when empty). */
export interface FhirResponse {
  status: number;
  body: Resource | null;
  headers: Headers;
}

/** Abortable sleep (the default of `sleep`). */
export function sleepMs(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason as Error);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Parses Retry-After (seconds or an HTTP date) into ms from now. */
export function retryAfterMs(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null;
  if (/^\d+(\.\d+)?$/.test(value.trim())) return Math.round(Number(value) * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** The resource type a URL is about, for error messages that carry no query values. */
function what(url: string): string {
  const path = url.split('?')[0] ?? '';
  const seg = path.split('/').filter(Boolean);
  const i = seg.findIndex((s) => /^[A-Z][A-Za-z]+$/.test(s));
  return i >= 0 ? seg.slice(i, i + 2).map((s, j) => (j === 1 ? '{id}' : s)).join('/') : 'metadata';
}

/** An HTTP client for one FHIR server. */
export class FhirHttp {
  private readonly bucket: TokenBucket;
  private readonly origin: string;

  constructor(private readonly o: FhirHttpOptions) {
    this.bucket = new TokenBucket(o.rateLimitPerSec, o.monotonic ?? (() => performance.now()), o.sleep);
    this.origin = new URL(o.baseUrl).origin;
  }

  /** The absolute URL of a relative path; refuses links to another server (credentials stay home). */
  resolve(url: string): string {
    const abs = /^https?:\/\//i.test(url) ? url : `${this.o.baseUrl}/${url.replace(/^\//, '')}`;
    if (new URL(abs).origin !== this.origin) throw new EhrError('ehr_bad_response', 'The EHR sent a paging link to another server; refusing to follow it.');
    return abs;
  }

  /** Sends a request with retries; resolves with the parsed answer or throws an EhrError. */
  async request(req: FhirRequest): Promise<FhirResponse> {
    const url = this.resolve(req.url);
    const label = `${req.method ?? 'GET'} ${what(url.slice(this.o.baseUrl.length))}`;
    let authRetried = false;
    for (let attempt = 0; ; attempt++) {
      await this.bucket.take(req.signal);
      const headers: Record<string, string> = { accept: 'application/fhir+json, application/json', ...req.headers };
      if (req.body) headers['content-type'] = 'application/fhir+json';
      const auth = await this.o.auth.header(req.signal);
      if (auth) headers.authorization = auth;
      const timeout = AbortSignal.timeout(this.o.timeoutMs);
      let res: Response;
      let text: string;
      try {
        // Redirects are not followed: the address was checked when it was set, and a redirect could
        // lead anywhere (an internal host, a metadata service) with our credentials on the way.
        res = await this.o.fetch(url, { method: req.method ?? 'GET', headers, body: req.body ? JSON.stringify(req.body) : undefined, redirect: 'manual', signal: AbortSignal.any([req.signal, timeout]) });
        text = await res.text();
      } catch (err) {
        if (req.signal.aborted) throw req.signal.reason instanceof Error ? req.signal.reason : new EhrError('ehr_timeout', 'The sync was cut short.');
        const timedOut = timeout.aborted;
        const e = timedOut
          ? new EhrError('ehr_timeout', `The EHR did not answer ${label} within ${this.o.timeoutMs} ms.`)
          : (err instanceof EhrError ? err : new EhrError('ehr_unavailable', `The EHR could not be reached for ${label} (${(err as { cause?: { code?: string } }).cause?.code ?? 'network error'}).`));
        if (e.code !== 'ehr_bad_response' && attempt < this.o.maxRetries) {
          await this.backoff(attempt, null, req.signal);
          continue;
        }
        throw e;
      }
      const status = res.status;
      if (req.allow?.includes(status)) return { status, body: this.parse(text, res, label, true), headers: res.headers };
      if (status === 401 || status === 403) {
        if (status === 401 && !authRetried && this.o.auth.invalidate()) {
          authRetried = true;
          attempt--;
          continue;
        }
        throw new EhrError('ehr_auth_failed', `The EHR refused our credentials for ${label} (${status}); check the connection's auth settings.`);
      }
      if (status === 429 || status >= 500) {
        const after = retryAfterMs(res.headers.get('retry-after'), this.o.now());
        const max = this.o.maxRetryAfterMs ?? 60_000;
        if (attempt < this.o.maxRetries && (after === null || after <= max)) {
          this.o.logger.debug({ status, attempt, retry_after_ms: after }, 'fhir request retried');
          await this.backoff(attempt, after, req.signal);
          continue;
        }
        throw new EhrError('ehr_unavailable', `The EHR answered ${status} to ${label}${attempt > 0 ? ` after ${attempt + 1} attempts` : ''}.`, { retryAfterMs: after ?? undefined });
      }
      if (status >= 400) {
        throw new EhrError(req.clientErrorCode ?? 'ehr_bad_response', `The EHR answered ${status} to ${label}${outcomeCode(text)}.`);
      }
      if (status >= 300) throw new EhrError('ehr_bad_response', `The EHR answered ${status} (a redirect) to ${label}; check the base URL.`);
      return { status, body: this.parse(text, res, label, false), headers: res.headers };
    }
  }

  private parse(text: string, res: Response, label: string, lenient: boolean): Resource | null {
    if (text.trim() === '') return null;
    const type = res.headers.get('content-type') ?? '';
    if (/html/i.test(type) || /^\s*</.test(text)) {
      if (lenient) return null;
      throw new EhrError('ehr_bad_response', `The EHR answered ${label} with HTML instead of FHIR JSON (${res.status}); is the base URL the FHIR endpoint?`);
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return v as Resource;
    } catch {
      if (lenient) return null;
      throw new EhrError('ehr_bad_response', `The EHR answered ${label} with a body that is not complete JSON (${text.length} characters; truncated?).`);
    }
  }

  private async backoff(attempt: number, retryAfter: number | null, signal: AbortSignal): Promise<void> {
    const ms = retryAfter ?? Math.min(10_000, 250 * 2 ** attempt);
    await this.o.sleep(ms, signal);
  }
}

/** ` (OperationOutcome code: …)` when the body is one: codes only, diagnostics may carry PHI. */
function outcomeCode(text: string): string {
  try {
    const o = JSON.parse(text) as { resourceType?: unknown; issue?: { code?: unknown }[] };
    if (o.resourceType !== 'OperationOutcome') return '';
    const codes = (o.issue ?? []).map((i) => i.code).filter((c): c is string => typeof c === 'string');
    return codes.length ? ` (OperationOutcome: ${[...new Set(codes)].join(', ')})` : '';
  } catch {
    return '';
  }
}
