/** @module connectors/fhir/auth — Authorization headers: none, static bearer, SMART Backend Services (signed JWT assertion, token cached until expiry). */
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { EhrError } from '../../domain/errors.js';
import type { FhirAuth } from './config.js';

/** What the token endpoint call needs. */
export interface AuthDeps {
  fetch: typeof fetch;
  now: () => number;
  timeoutMs: number;
}

/** Gives the Authorization header value for a request (null: none). */
export interface AuthProvider {
  header(signal: AbortSignal): Promise<string | null>;
  /** Forgets a cached token (after the server answered 401 to it). Returns true when a retry can help. */
  invalidate(): boolean;
}

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Builds the client assertion JWT of SMART Backend Services (RFC 7523), signed RS384 or ES384. */
export function clientAssertion(a: Extract<FhirAuth, { type: 'smart-backend' }>, nowMs: number): string {
  const header = { alg: a.alg, typ: 'JWT', ...(a.keyId ? { kid: a.keyId } : {}) };
  const now = Math.floor(nowMs / 1000);
  const claims = { iss: a.clientId, sub: a.clientId, aud: a.tokenUrl, jti: randomUUID(), iat: now, exp: now + 300 };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  let key;
  try {
    key = createPrivateKey(a.privateKey);
  } catch {
    throw new EhrError('ehr_auth_failed', 'The SMART backend private key of this connection cannot be read (expected a PEM private key).');
  }
  const sig = sign('sha384', Buffer.from(input), a.alg === 'ES384' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${b64url(sig)}`;
}

/** Creates the auth provider of a connection. */
export function createAuth(auth: FhirAuth, deps: AuthDeps): AuthProvider {
  if (auth.type === 'none') return { header: async () => null, invalidate: () => false };
  if (auth.type === 'bearer') return { header: async () => `Bearer ${auth.token}`, invalidate: () => false };
  let cached: { token: string; expiresAt: number } | null = null;
  let pending: Promise<string> | null = null;
  const fetchToken = async (signal: AbortSignal): Promise<string> => {
    const body = new URLSearchParams({
      grant_type: 'client_credentials',
      scope: auth.scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: clientAssertion(auth, deps.now()),
    });
    let res: Response;
    try {
      // Not followed, like the FHIR requests (see fhir/http.ts): the signed assertion goes only where configured.
      res = await deps.fetch(auth.tokenUrl, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, redirect: 'manual', signal: AbortSignal.any([signal, AbortSignal.timeout(deps.timeoutMs)]) });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new EhrError('ehr_unavailable', 'The SMART token endpoint could not be reached.');
    }
    const text = await res.text().catch(() => '');
    if (res.status === 400 || res.status === 401 || res.status === 403) throw new EhrError('ehr_auth_failed', `The SMART token endpoint refused the client credentials (${res.status}).`);
    if (!res.ok) throw new EhrError('ehr_unavailable', `The SMART token endpoint answered ${res.status}.`);
    let json: { access_token?: unknown; expires_in?: unknown };
    try {
      json = JSON.parse(text) as typeof json;
    } catch {
      throw new EhrError('ehr_bad_response', 'The SMART token endpoint answered with something that is not JSON.');
    }
    if (typeof json.access_token !== 'string') throw new EhrError('ehr_bad_response', 'The SMART token endpoint answered without an access_token.');
    const ttl = typeof json.expires_in === 'number' ? json.expires_in : 300;
    // Renew a minute early (or halfway for short-lived tokens) so a token never expires mid-read.
    cached = { token: json.access_token, expiresAt: deps.now() + Math.max(ttl * 500, (ttl - 60) * 1000) };
    return json.access_token;
  };
  return {
    async header(signal) {
      if (cached && deps.now() < cached.expiresAt) return `Bearer ${cached.token}`;
      pending ??= fetchToken(signal).finally(() => (pending = null));
      return `Bearer ${await pending}`;
    },
    invalidate() {
      const had = cached !== null;
      cached = null;
      return had;
    },
  };
}
