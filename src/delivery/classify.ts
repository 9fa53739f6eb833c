/** @module delivery/classify — what a receiver's answer (or the lack of one) means, before any policy applies (pure). */
import type { EpochMs } from '../domain/clock.js';

/** What happened to one HTTP attempt, as the sender reports it. */
export interface SendResult {
  /** HTTP status when the receiver answered. */
  statusCode: number | null;
  /** The `Retry-After` header value, raw. */
  retryAfter: string | null;
  /** Why no answer came, when none did. */
  errorClass: NetworkErrorClass | null;
  /** Wall time of the attempt. */
  durationMs: number;
  /** At most the first bytes of the response body (never logged: it may echo PHI). */
  bodyExcerpt: string | null;
}

/** Why an attempt got no HTTP answer. */
export type NetworkErrorClass =
  | 'timeout'
  | 'connection_refused'
  | 'connection_reset'
  | 'dns'
  | 'tls'
  | 'invalid_response'
  | 'blocked_address'
  | 'network';

/** The kinds of outcome retry policies decide on. */
export type OutcomeKind = 'success' | 'gone' | 'throttled' | 'server_error' | 'client_error' | 'redirect' | 'timeout' | 'network';

/** A classified attempt. `errorClass` is what the attempt record stores (null on success). */
export interface Classification {
  kind: OutcomeKind;
  errorClass: string | null;
  /** The receiver's `Retry-After`, in ms from now, when it sent a valid one. */
  retryAfterMs: number | null;
}

/** Parses `Retry-After` (delta seconds or an HTTP date) into ms from `now`; null when absent or invalid. */
export function parseRetryAfter(value: string | null, now: EpochMs): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  if (!/[a-z]/i.test(v)) return null;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/**
 * Classifies an attempt: 2xx success; 3xx failure (redirects are never followed: the URL was
 * checked, its redirect target was not); 410 gone; 429 throttled; 5xx server error; other 4xx
 * client error (1xx too: a final answer must not be informational); no answer by network class.
 */
export function classify(r: Pick<SendResult, 'statusCode' | 'retryAfter' | 'errorClass'>, now: EpochMs): Classification {
  const s = r.statusCode;
  if (s === null) {
    const cls = r.errorClass ?? 'network';
    return { kind: cls === 'timeout' ? 'timeout' : 'network', errorClass: cls, retryAfterMs: null };
  }
  if (s >= 200 && s < 300) return { kind: 'success', errorClass: null, retryAfterMs: null };
  if (s >= 300 && s < 400) return { kind: 'redirect', errorClass: 'http_3xx', retryAfterMs: null };
  if (s === 410) return { kind: 'gone', errorClass: 'http_410', retryAfterMs: null };
  if (s === 429) return { kind: 'throttled', errorClass: 'http_429', retryAfterMs: parseRetryAfter(r.retryAfter, now) };
  if (s >= 500 && s < 600) return { kind: 'server_error', errorClass: 'http_5xx', retryAfterMs: parseRetryAfter(r.retryAfter, now) };
  return { kind: 'client_error', errorClass: s >= 400 && s < 500 ? 'http_4xx' : 'http_other', retryAfterMs: null };
}
