/** @module delivery/sign — webhook headers and signatures for both schemes (pure: time and secrets passed in). */
import { createHmac } from 'node:crypto';
import type { EpochMs } from '../domain/clock.js';
import { isoUtc } from '../domain/clock.js';

/** How webhooks to an endpoint are signed (mirrors the store's `SignatureScheme`). */
export type Scheme = 'cobalt' | 'standard';

/**
 * Cobalt's `cobalt-verification`: lowercase hex HMAC-SHA256 of the exact body bytes, keyed with the
 * secret string as UTF-8 — what Cobalt's documented receiver computes (`createHmac('sha256', secretKey)`).
 */
export function cobaltSignature(body: string, secret: string): string {
  return createHmac('sha256', secret).update(body, 'utf8').digest('hex');
}

/** The HMAC key of a Standard Webhooks secret: the base64 after `whsec_` (a bare secret is taken as base64 too). */
export function standardKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
}

/**
 * Standard Webhooks v1 `webhook-signature`: `v1,<base64 HMAC-SHA256 over "id.timestamp.body">`, one
 * space-separated entry per live secret, so receivers holding either side of a rotation verify.
 */
export function standardSignature(id: string, timestampS: number, body: string, secrets: readonly string[]): string {
  return secrets.map((s) => `v1,${createHmac('sha256', standardKey(s)).update(`${id}.${timestampS}.${body}`, 'utf8').digest('base64')}`).join(' ');
}

/** The secrets that sign at `now`: the current one, plus the previous one while it is still valid (24 h after a rotation). */
export function liveSecrets(current: string, previous: string | null, previousExpiresAt: EpochMs | null, now: EpochMs): string[] {
  return previous !== null && previousExpiresAt !== null && previousExpiresAt > now ? [current, previous] : [current];
}

/** What one attempt's headers are made from. */
export interface SignInput {
  scheme: Scheme;
  /** The event id: `webhook-id`, the same on every attempt and redelivery. */
  eventId: string;
  /** When the event was created (Cobalt's `webhook-timestamp` is this, ISO 8601). */
  eventCreatedAt: EpochMs;
  /** 1, 2, ... across every attempt ever made for this delivery. */
  attempt: number;
  /** The attempt's time (Standard Webhooks' `webhook-timestamp` is this, unix seconds). */
  now: EpochMs;
  /** The exact bytes that are sent. */
  body: string;
  /** Live secrets, current first (plaintext). Cobalt signs with the first only: its header holds one value. */
  secrets: readonly string[];
}

/** The request headers of one attempt. */
export function webhookHeaders(i: SignInput): Record<string, string> {
  const base = { 'content-type': 'application/json', 'webhook-id': i.eventId, 'webhook-attempt': String(i.attempt) };
  if (i.scheme === 'standard') {
    const ts = Math.floor(i.now / 1000);
    return { ...base, 'webhook-timestamp': String(ts), 'webhook-signature': standardSignature(i.eventId, ts, i.body, i.secrets) };
  }
  return { ...base, 'webhook-timestamp': isoUtc(i.eventCreatedAt), 'cobalt-verification': cobaltSignature(i.body, i.secrets[0] ?? '') };
}
