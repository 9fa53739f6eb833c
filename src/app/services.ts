/**
 * @module app/services — account and connection creation, the application layer shared by the HTTP
 * API and the CLI, so both make credentials the same way: random tokens shown once, stored hashed;
 * connector secrets stored encrypted.
 */
import { BadRequestError } from '../domain/errors.js';
import { newToken } from '../domain/ids.js';
import type { SecretBox } from '../domain/secrets.js';
import { hashSecret } from '../domain/secrets.js';
import type { StatusMap } from '../domain/status.js';
import { isTimeZone } from '../domain/clock.js';
import { checkConnectorConfig } from '../connectors/registry.js';
import { parseHl7v2Config, senderConflict } from '../connectors/hl7v2/config.js';
import type { Account, Connection } from '../domain/entities.js';
import { isPushConnector } from '../domain/entities.js';
import type { Accounts, Connections } from '../store/ports.js';

/** Connector kinds that can be created through the API and CLI. */
export const CONNECTOR_KINDS = ['demo', 'fhir', 'hl7v2'] as const;

/** Connector config keys whose values are secrets: stored encrypted, shown as `***`. */
export const SECRET_CONFIG_KEYS = ['token', 'bearer_token', 'client_secret', 'private_key', 'privateKey', 'clientSecret'] as const;

/** Creates an account; the client secret is returned once and stored only as a hash. */
export async function createAccount(store: Accounts, name: string, now: number): Promise<{ account: Account; clientSecret: string }> {
  if (name.trim() === '') throw new BadRequestError('name is empty: give the account a name, e.g. --name "Acme Health".');
  const clientId = newToken('ci_', 12);
  const clientSecret = newToken('cs_', 24);
  const account = await store.createAccount({ name: name.trim(), clientId, clientSecretHash: hashSecret(clientSecret), now });
  return { account, clientSecret };
}

/** What a new connection is made of. */
export interface ConnectionInput {
  accountId: string;
  connector: string;
  baseUrl?: string;
  config?: Record<string, unknown>;
  referenceId?: string | null;
  timezone?: string;
  windowPastDays?: number;
  windowFutureDays?: number;
  syncIntervalSeconds?: number;
  statusMap?: StatusMap | null;
  replayBaseline?: boolean;
}

/** Validates connection settings; throws naming the field and the fix. */
export function checkConnectionInput(input: Omit<ConnectionInput, 'accountId'>): void {
  if (!(CONNECTOR_KINDS as readonly string[]).includes(input.connector)) {
    throw new BadRequestError(`connector must be one of: ${CONNECTOR_KINDS.join(', ')} (got ${JSON.stringify(input.connector)}).`);
  }
  const base = input.baseUrl ?? input.config?.baseUrl;
  if (isPushConnector(input.connector)) {
    if (base !== undefined) throw new BadRequestError(`base_url does not apply to an ${input.connector} connection: its EHR sends messages to ehrsync's listener. Drop it.`);
    checkConnectorConfig(input.connector, { ...input.config });
    checkSettings(input);
    return;
  }
  if (typeof base !== 'string' || base === '') throw new BadRequestError('base_url is required: the EHR\'s FHIR base URL, e.g. https://ehr.example.com/fhir/R4.');
  try {
    const u = new URL(base);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error();
  } catch {
    throw new BadRequestError(`base_url is not an http(s) URL: ${JSON.stringify(String(base).slice(0, 200))}`);
  }
  // The connector's own settings: unknown fields and bad values are refused by name (config.<field>).
  checkConnectorConfig(input.connector, { ...input.config, baseUrl: base });
  checkSettings(input);
}

/** The settings every kind shares: time zone, window, interval. */
function checkSettings(input: Omit<ConnectionInput, 'accountId'>): void {
  if (input.timezone !== undefined && !isTimeZone(input.timezone)) throw new BadRequestError(`timezone is not an IANA time zone: ${JSON.stringify(input.timezone)} (e.g. America/New_York).`);
  for (const [k, v] of [
    ['window_past_days', input.windowPastDays],
    ['window_future_days', input.windowFutureDays],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 730)) throw new BadRequestError(`${k} must be a whole number of days between 0 and 730.`);
  }
  if (input.syncIntervalSeconds !== undefined && !(input.syncIntervalSeconds >= 1 && input.syncIntervalSeconds <= 86_400)) {
    throw new BadRequestError('sync_interval_seconds must be between 1 and 86400.');
  }
}

/** Encrypts the secret values of a connector config, at any depth (e.g. `auth.token`, `auth.privateKey`). */
export function sealConfig(config: Record<string, unknown>, box: SecretBox): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(config).map(([k, v]) => [
      k,
      (SECRET_CONFIG_KEYS as readonly string[]).includes(k) && typeof v === 'string' && !v.startsWith('enc:v1:')
        ? box.encrypt(v)
        : typeof v === 'object' && v !== null && !Array.isArray(v)
          ? sealConfig(v as Record<string, unknown>, box)
          : v,
    ]),
  );
}

/** Creates a connection; the access token is returned once and stored only as a hash. */
export async function createConnection(store: Connections, box: SecretBox, input: ConnectionInput, now: number): Promise<{ connection: Connection; accessToken: string }> {
  checkConnectionInput(input);
  if (input.connector === 'hl7v2') {
    // Epic and most feeds send times without an offset: read in a defaulted UTC, every time would
    // be off by the clinic's offset, silently.
    if (input.timezone === undefined) throw new BadRequestError('timezone is required for an hl7v2 connection: times its messages send without an offset are the clinic\'s wall-clock time, e.g. America/Chicago.');
    await checkSenderFree(store, input.accountId, input.config ?? {});
  }
  const accessToken = newToken('at_', 24);
  const base = input.baseUrl ?? input.config?.baseUrl;
  const config = sealConfig(base === undefined ? { ...input.config } : { ...input.config, baseUrl: base }, box);
  const connection = await store.createConnection({
    accountId: input.accountId,
    connector: input.connector,
    config,
    accessTokenHash: hashSecret(accessToken),
    referenceId: input.referenceId ?? null,
    timezone: input.timezone,
    windowPastDays: input.windowPastDays,
    windowFutureDays: input.windowFutureDays,
    syncIntervalMs: input.syncIntervalSeconds === undefined ? undefined : Math.round(input.syncIntervalSeconds * 1000),
    statusMap: input.statusMap ?? null,
    replayBaseline: input.replayBaseline,
    now,
  });
  return { connection, accessToken };
}

/**
 * Refuses an hl7v2 connection whose sender (MSH-3/MSH-4) another hl7v2 connection already takes:
 * each message must route to exactly one connection, and never into another account. Within one
 * account a connection for any facility of an application and one for a single facility of it may
 * coexist (the specific one wins); across accounts any overlap is refused — otherwise an account
 * naming a facility would take that facility's messages (PHI) from the account taking all of them.
 * The other account's connection is not named.
 */
export async function checkSenderFree(store: Connections, accountId: string, config: Record<string, unknown>, exceptId?: string): Promise<void> {
  const wanted = parseHl7v2Config(config);
  for (const c of await store.listConnections()) {
    if (c.connector !== 'hl7v2' || c.id === exceptId) continue;
    let other: ReturnType<typeof parseHl7v2Config>;
    try {
      other = parseHl7v2Config(c.config);
    } catch {
      continue; // an unusable stored config routes nothing (the listener logs it)
    }
    const conflict = senderConflict({ accountId, config: wanted }, { accountId: c.accountId, config: other });
    if (conflict === 'other_account') {
      throw new BadRequestError('config.sendingApplication/sendingFacility: another account already receives messages from this sender (MSH-3/MSH-4); a feed can belong to one account only. Give this feed its own sending application or facility.');
    }
    if (conflict === 'same_sender') {
      throw new BadRequestError(`config.sendingApplication/sendingFacility: connection ${c.id} already receives this sender's messages; give this feed its own MSH-3/MSH-4 (or change that connection).`);
    }
  }
}
