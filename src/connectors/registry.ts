/**
 * @module connectors/registry — builds the connector of a stored connection: `fhir` (any FHIR R4
 * EHR) or `demo` (the fhir connector with the demo EHR's profile). An `hl7v2` connection has no
 * connector to call: its EHR pushes messages to the listener (sync/hl7-feed.ts). Secrets sealed in
 * the config (`enc:v1:`) are opened here, in memory only.
 */
import { ConfigError } from '../domain/errors.js';
import type { Logger } from '../domain/logger.js';
import type { SecretBox } from '../domain/secrets.js';
import type { StatusMap } from '../domain/status.js';
import { effectiveStatusMap } from '../domain/status.js';
import type { EhrConnector } from './connector.js';
import { DEMO_MRN_SYSTEM, DEMO_NATIVE_STATUS_EXTENSION, DEMO_NATIVE_STATUS_MAP } from '../domain/demo-ehr-profile.js';
import type { FhirConfig } from './fhir/config.js';
import { parseFhirConfig } from './fhir/config.js';
import { FhirConnector } from './fhir/fhir-connector.js';
import { parseHl7v2Config } from './hl7v2/config.js';
import { HL7_FILLER_STATUS_MAP } from './hl7v2/status-map.js';

/** The parts of a stored connection a connector is built from. */
export interface ConnectionLike {
  connector: string;
  config: Record<string, unknown>;
}

/** What `createConnector` takes besides the connection. */
export interface ConnectorFactoryDeps {
  /** Opens `enc:v1:` values of the config. */
  secretBox: SecretBox;
  /** HTTP client (tests inject one); default the global fetch. */
  fetch?: typeof fetch;
  logger?: Logger;
  /** Clock in epoch ms (token expiry, rate limit). */
  now?: () => number;
  /** Abortable sleep (backoff, rate limit). */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
}

/** Decrypts every sealed string in a config, at any depth. */
export function openSecrets(value: unknown, box: SecretBox): unknown {
  if (typeof value === 'string') return value.startsWith('enc:v1:') ? box.decrypt(value) : value;
  if (Array.isArray(value)) return value.map((v) => openSecrets(v, box));
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, openSecrets(v, box)]));
  return value;
}

/**
 * The config of a `demo` connection as a fhir config: `/fhir` appended to the demo's root URL when
 * missing, its MRN system, native status extension and codes, writes on.
 */
export function demoFhirConfig(raw: Record<string, unknown>): FhirConfig {
  const rest = raw;
  const base = typeof rest.baseUrl === 'string' ? rest.baseUrl.replace(/\/+$/, '') : rest.baseUrl;
  return parseFhirConfig({
    mrnSystem: DEMO_MRN_SYSTEM,
    statusExtension: DEMO_NATIVE_STATUS_EXTENSION,
    writes: true,
    lastUpdated: true,
    ...rest,
    baseUrl: typeof base === 'string' && !base.endsWith('/fhir') ? `${base}/fhir` : base,
  });
}

/** Validates a connection's connector config for its kind (throws BadRequestError naming the field). */
export function checkConnectorConfig(kind: string, config: Record<string, unknown>): void {
  if (kind === 'fhir') parseFhirConfig(config);
  else if (kind === 'demo') demoFhirConfig(config);
  else if (kind === 'hl7v2') parseHl7v2Config(config);
}

/**
 * Every status code a connection accepts, raw code → normalized status: the defaults, the
 * connector's own codes (a profile's native codes, HL7 table 0278 for a feed, the config's `statusMap`), then the
 * connection's `statusMap` — the same layers a sync reads through — without building the connector.
 */
export function connectionStatusMap(connection: ConnectionLike & { statusMap: StatusMap | null }): StatusMap {
  // The kind's own codes: the demo EHR's native ones; for an HL7 v2 feed, table 0278 (SCH-25).
  const own = connection.connector === 'demo' ? DEMO_NATIVE_STATUS_MAP : connection.connector === 'hl7v2' ? HL7_FILLER_STATUS_MAP : {};
  const configured = connection.config.statusMap;
  const fromConfig = typeof configured === 'object' && configured !== null && !Array.isArray(configured) ? (configured as StatusMap) : {};
  return effectiveStatusMap({ ...own, ...fromConfig, ...connection.statusMap });
}

/** Builds the connector of a connection. */
export function createConnector(connection: ConnectionLike, deps: ConnectorFactoryDeps): EhrConnector {
  const config = openSecrets(connection.config, deps.secretBox) as Record<string, unknown>;
  const common = { fetch: deps.fetch, logger: deps.logger, now: deps.now, sleep: deps.sleep };
  switch (connection.connector) {
    case 'fhir':
      return new FhirConnector(parseFhirConfig(config), common);
    case 'demo':
      return new FhirConnector(demoFhirConfig(config), { ...common, kind: 'demo', profileStatusMap: DEMO_NATIVE_STATUS_MAP });
    case 'hl7v2':
      throw new ConfigError('an hl7v2 connection has no connector to call: its EHR pushes messages to the HL7 listener (docs/connectors.md); it is neither polled nor written through.');
    default:
      throw new ConfigError(`connector ${JSON.stringify(connection.connector)} is not one this build can create (known: fhir, demo, hl7v2).`);
  }
}
