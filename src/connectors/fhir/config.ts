/** @module connectors/fhir/config — the `fhir` connector's settings: shape, defaults, and validation that names the bad field. */
import { BadRequestError } from '../../domain/errors.js';
import type { StatusMap } from '../../domain/status.js';

/** How the connector authenticates to the FHIR server. */
export type FhirAuth =
  | { type: 'none' }
  /** A static bearer token (stored encrypted). */
  | { type: 'bearer'; token: string }
  /** SMART Backend Services: client-credentials grant with a signed JWT assertion. */
  | { type: 'smart-backend'; tokenUrl: string; clientId: string; privateKey: string; keyId?: string; alg: 'RS384' | 'ES384'; scope: string };

/** Validated settings of one FHIR connection. */
export interface FhirConfig {
  /** FHIR base URL, e.g. `https://ehr.example.com/fhir/R4` (no trailing slash). */
  baseUrl: string;
  auth: FhirAuth;
  /** Identifier system of the MRN on Patient; absent: the identifier typed `MR`, else the first. */
  mrnSystem: string | null;
  /** Extension URL carrying a native status code (on Appointment or on `_status`); absent: `Appointment.status`. */
  statusExtension: string | null;
  /** Extension URL carrying the appointment mode (`office`, `telehealth`). */
  modeExtension: string | null;
  /** Raw code → normalized status, laid over the defaults (the connection's own map goes on top). */
  statusMap: StatusMap | null;
  /** Per-request timeout, ms. */
  timeoutMs: number;
  /** Requests per second to this server (token bucket, burst of the same size). */
  rateLimitPerSec: number;
  /** Retries of a request answered 429/5xx or not answered, before the read fails. */
  maxRetries: number;
  /** `_count` of searches. */
  pageSize: number;
  /** Search parameter of the appointment date window (Cerner/Epic: `date`). */
  windowParam: string;
  /** `_lastUpdated` on Patient: `auto` asks `metadata`; false for servers without it. */
  lastUpdated: 'auto' | boolean;
  /** Writes (operation events) enabled. Opt-in for a real EHR; the demo turns it on. */
  writes: boolean;
}

/** Defaults of the optional settings. */
export const FHIR_DEFAULTS = {
  timeoutMs: 30_000,
  rateLimitPerSec: 10,
  maxRetries: 3,
  pageSize: 100,
  windowParam: 'date',
  lastUpdated: 'auto',
  writes: false,
} as const;

const TOP_KEYS = ['baseUrl', 'auth', 'mrnSystem', 'statusExtension', 'modeExtension', 'statusMap', 'timeoutMs', 'rateLimitPerSec', 'maxRetries', 'pageSize', 'windowParam', 'lastUpdated', 'writes'];
const AUTH_KEYS: Record<string, string[]> = {
  none: ['type'],
  bearer: ['type', 'token'],
  'smart-backend': ['type', 'tokenUrl', 'clientId', 'privateKey', 'keyId', 'alg', 'scope'],
};

function fail(field: string, fix: string): never {
  throw new BadRequestError(`config.${field} ${fix}`);
}

function optString(o: Record<string, unknown>, key: string, prefix = ''): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim() === '') fail(`${prefix}${key}`, 'must be a non-empty string.');
  return v.trim();
}

function reqString(o: Record<string, unknown>, key: string, prefix: string, example: string): string {
  return optString(o, key, prefix) ?? fail(`${prefix}${key}`, `is required, e.g. ${example}.`);
}

function num(o: Record<string, unknown>, key: string, min: number, max: number, dflt: number): number {
  const v = o[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) fail(key, `must be a number between ${min} and ${max}.`);
  return v;
}

function httpUrl(value: string, field: string): string {
  try {
    const u = new URL(value);
    if (u.protocol === 'https:' || u.protocol === 'http:') return value.replace(/\/+$/, '');
  } catch {
    // fall through
  }
  return fail(field, 'must be an http(s) URL.');
}

/**
 * Validates a connection's connector config (secrets already decrypted or still sealed: only their
 * presence is checked). Unknown fields are refused by name, so a typo does not silently do nothing.
 * @param extraKeys keys another connector kind layers on top (e.g. the demo's `nativeStatuses`).
 */
export function parseFhirConfig(raw: Record<string, unknown>, extraKeys: readonly string[] = []): FhirConfig {
  for (const k of Object.keys(raw)) if (!TOP_KEYS.includes(k) && !extraKeys.includes(k)) fail(k, `is not a setting of this connector (known: ${[...TOP_KEYS, ...extraKeys].join(', ')}).`);
  const baseUrl = httpUrl(reqString(raw, 'baseUrl', '', 'https://ehr.example.com/fhir/R4'), 'baseUrl');
  const a = raw.auth ?? { type: 'none' };
  if (typeof a !== 'object' || a === null || Array.isArray(a)) fail('auth', 'must be an object such as {"type":"bearer","token":"..."}.');
  const ao = a as Record<string, unknown>;
  const type = ao.type;
  if (typeof type !== 'string' || !Object.hasOwn(AUTH_KEYS, type)) fail('auth.type', `must be one of: ${Object.keys(AUTH_KEYS).join(', ')}.`);
  for (const k of Object.keys(ao)) if (!(AUTH_KEYS[type] as string[]).includes(k)) fail(`auth.${k}`, `is not a setting of auth type ${type}.`);
  let auth: FhirAuth;
  if (type === 'bearer') auth = { type, token: reqString(ao, 'token', 'auth.', '"eyJ..."') };
  else if (type === 'smart-backend') {
    const alg = optString(ao, 'alg', 'auth.') ?? 'RS384';
    if (alg !== 'RS384' && alg !== 'ES384') fail('auth.alg', 'must be RS384 or ES384.');
    auth = {
      type,
      tokenUrl: httpUrl(reqString(ao, 'tokenUrl', 'auth.', 'https://ehr.example.com/oauth2/token'), 'auth.tokenUrl'),
      clientId: reqString(ao, 'clientId', 'auth.', '"my-backend-app"'),
      privateKey: reqString(ao, 'privateKey', 'auth.', 'a PEM private key'),
      alg,
      scope: optString(ao, 'scope', 'auth.') ?? 'system/Appointment.rs system/Patient.rs system/Practitioner.rs',
      ...(optString(ao, 'keyId', 'auth.') !== null ? { keyId: optString(ao, 'keyId', 'auth.') as string } : {}),
    };
  } else auth = { type: 'none' };

  let statusMap: StatusMap | null = null;
  if (raw.statusMap !== undefined && raw.statusMap !== null) {
    const m = raw.statusMap;
    if (typeof m !== 'object' || Array.isArray(m)) fail('statusMap', 'must be an object of raw code → normalized status.');
    for (const [k, v] of Object.entries(m as object)) if (typeof v !== 'string') fail(`statusMap.${k}`, 'must be a string (a normalized status such as "cancelled").');
    statusMap = m as StatusMap;
  }
  const lu = raw.lastUpdated ?? FHIR_DEFAULTS.lastUpdated;
  if (lu !== 'auto' && typeof lu !== 'boolean') fail('lastUpdated', 'must be "auto", true or false.');
  const writes = raw.writes ?? FHIR_DEFAULTS.writes;
  if (typeof writes !== 'boolean') fail('writes', 'must be true or false.');
  const windowParam = optString(raw, 'windowParam') ?? FHIR_DEFAULTS.windowParam;
  if (!/^[A-Za-z_][\w.:-]*$/.test(windowParam)) fail('windowParam', 'must be a search parameter name such as "date".');
  return {
    baseUrl,
    auth,
    mrnSystem: optString(raw, 'mrnSystem'),
    statusExtension: optString(raw, 'statusExtension'),
    modeExtension: optString(raw, 'modeExtension'),
    statusMap,
    timeoutMs: num(raw, 'timeoutMs', 100, 600_000, FHIR_DEFAULTS.timeoutMs),
    rateLimitPerSec: num(raw, 'rateLimitPerSec', 0.1, 10_000, FHIR_DEFAULTS.rateLimitPerSec),
    maxRetries: Math.round(num(raw, 'maxRetries', 0, 10, FHIR_DEFAULTS.maxRetries)),
    pageSize: Math.round(num(raw, 'pageSize', 1, 1000, FHIR_DEFAULTS.pageSize)),
    windowParam,
    lastUpdated: lu as FhirConfig['lastUpdated'],
    writes,
  };
}
