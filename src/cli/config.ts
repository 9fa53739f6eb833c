/**
 * @module cli/config — ehrsync's configuration: typed defaults, then an optional JSON file, then
 * `EHRSYNC_*` environment variables, then command-line flags; validated once at start, with errors
 * that name the setting and the fix. Documented in docs/configuration.md.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError } from '../domain/errors.js';
import { SecretBox } from '../domain/secrets.js';
import { isPostgresUrl } from '../store/open.js';
import { parseAllowList } from '../connectors/hl7v2/allow-list.js';

/** Process roles: any combination runs in one process. */
export const ROLES = ['api', 'sync', 'delivery'] as const;
export type Role = (typeof ROLES)[number];

/** The whole configuration. */
export interface Config {
  /** SQLite file path or `postgres://` URL. */
  database: string;
  host: string;
  port: number;
  roles: Role[];
  /** 32-byte key for secrets at rest. */
  encryptionKey: string;
  /** Where the key came from, for the start-up message (never the key itself). */
  encryptionKeySource: string;
  adminToken: string | undefined;
  allowInsecureEndpoints: boolean;
  endpointAllowHosts: string[];
  syncConcurrency: number;
  syncTimeoutSeconds: number;
  deliveryConcurrency: number;
  /** Days of failures only after which a durable endpoint is disabled. */
  endpointDisableAfterDays: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error' | 'silent';
  rateLimitPerSecond: number;
  /** Days events are kept once every delivery is final; 0 keeps them forever. */
  retentionDays: number;
  /** Port of the HL7 v2 (MLLP) listener for hl7v2 connections; null: no listener (0: any free port). */
  hl7Port: number | null;
  /** Address the HL7 listener binds; all interfaces only when set so (`0.0.0.0`, `::`). */
  hl7Host: string;
  /** TLS for the HL7 listener: PEM certificate chain and private key files (both or neither). */
  hl7TlsCertFile: string | null;
  hl7TlsKeyFile: string | null;
  /** Largest HL7 message accepted, bytes. */
  hl7MaxMessageBytes: number;
  /** Source addresses (IPs, CIDR ranges) the HL7 listener accepts connections from; empty: any. */
  hl7AllowFrom: string[];
}

/** Settings as they arrive from a source, before validation. */
export type RawConfig = Partial<Record<keyof Config | 'encryptionKeyFile' | 'config', unknown>>;

/** The defaults (docs/configuration.md lists them). */
export const DEFAULTS = {
  database: './data/ehrsync.db',
  host: '127.0.0.1',
  port: 8080,
  roles: [...ROLES] as Role[],
  allowInsecureEndpoints: false,
  endpointAllowHosts: [] as string[],
  syncConcurrency: 4,
  syncTimeoutSeconds: 120,
  deliveryConcurrency: 64,
  endpointDisableAfterDays: 5,
  logLevel: 'info' as const,
  rateLimitPerSecond: 50,
  retentionDays: 30,
  hl7Host: '127.0.0.1',
  hl7MaxMessageBytes: 1024 * 1024,
};

/** Environment variable of each setting. */
export const ENV: Record<string, keyof RawConfig> = {
  EHRSYNC_DATABASE_URL: 'database',
  EHRSYNC_HOST: 'host',
  EHRSYNC_PORT: 'port',
  EHRSYNC_ROLES: 'roles',
  EHRSYNC_ENCRYPTION_KEY: 'encryptionKey',
  EHRSYNC_ENCRYPTION_KEY_FILE: 'encryptionKeyFile',
  EHRSYNC_ADMIN_TOKEN: 'adminToken',
  EHRSYNC_ALLOW_INSECURE_ENDPOINTS: 'allowInsecureEndpoints',
  EHRSYNC_ENDPOINT_ALLOW_HOSTS: 'endpointAllowHosts',
  EHRSYNC_SYNC_CONCURRENCY: 'syncConcurrency',
  EHRSYNC_SYNC_TIMEOUT_SECONDS: 'syncTimeoutSeconds',
  EHRSYNC_DELIVERY_CONCURRENCY: 'deliveryConcurrency',
  EHRSYNC_ENDPOINT_DISABLE_AFTER_DAYS: 'endpointDisableAfterDays',
  EHRSYNC_LOG_LEVEL: 'logLevel',
  EHRSYNC_RATE_LIMIT_PER_SECOND: 'rateLimitPerSecond',
  EHRSYNC_RETENTION_DAYS: 'retentionDays',
  EHRSYNC_HL7_PORT: 'hl7Port',
  EHRSYNC_HL7_HOST: 'hl7Host',
  EHRSYNC_HL7_TLS_CERT_FILE: 'hl7TlsCertFile',
  EHRSYNC_HL7_TLS_KEY_FILE: 'hl7TlsKeyFile',
  EHRSYNC_HL7_MAX_MESSAGE_BYTES: 'hl7MaxMessageBytes',
  EHRSYNC_HL7_ALLOW_FROM: 'hl7AllowFrom',
  EHRSYNC_CONFIG: 'config',
};

/** Reads the `EHRSYNC_*` variables that are set. */
export function fromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const raw: RawConfig = {};
  for (const [name, key] of Object.entries(ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  return raw;
}

/** Reads a JSON config file (keys as in Config). */
export function fromFile(path: string): RawConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new ConfigError(`config file ${path} cannot be read: check the path given to --config or EHRSYNC_CONFIG.`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as RawConfig;
  } catch (e) {
    throw new ConfigError(`config file ${path} is not a JSON object (${(e as Error).message}).`);
  }
}

function int(name: string, v: unknown, min: number, max: number, fallback: number): number {
  if (v === undefined) return fallback;
  const n = typeof v === 'number' ? v : Number(String(v).trim());
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got ${JSON.stringify(v)}).`);
  return n;
}

function bool(name: string, v: unknown, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v === 'boolean') return v;
  const s = String(v).trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(s)) return true;
  if (['0', 'false', 'no', 'off'].includes(s)) return false;
  throw new ConfigError(`${name} must be true or false (1/0) (got ${JSON.stringify(v)}).`);
}

function list(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (Array.isArray(v)) return v.map(String);
  return String(v)
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/**
 * Resolves the encryption key: given directly, from a file, or — for a SQLite database only — from
 * a key file next to the database, created on first start (PostgreSQL deployments run several
 * processes that must share one key, so there it must be configured).
 */
function encryptionKey(raw: RawConfig, database: string): { key: string; source: string } {
  if (raw.encryptionKey !== undefined) return { key: String(raw.encryptionKey), source: 'EHRSYNC_ENCRYPTION_KEY' };
  if (raw.encryptionKeyFile !== undefined) {
    const file = String(raw.encryptionKeyFile);
    try {
      return { key: readFileSync(file, 'utf8').trim(), source: file };
    } catch {
      throw new ConfigError(`encryptionKeyFile ${file} cannot be read: create it with \`openssl rand -hex 32 > ${file}\`.`);
    }
  }
  if (isPostgresUrl(database)) {
    throw new ConfigError('encryptionKey is required with PostgreSQL (every process must share it): set EHRSYNC_ENCRYPTION_KEY to the output of `openssl rand -hex 32`.');
  }
  const file = join(dirname(resolve(database)), 'encryption.key');
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${SecretBox.generateKey()}\n`, { mode: 0o600 });
    chmodSync(file, 0o600);
  }
  return { key: readFileSync(file, 'utf8').trim(), source: file };
}

/** The HL7 listener's allow-list, checked now so a bad entry stops the start naming the setting. */
function hl7AllowFrom(v: unknown): string[] {
  const entries = list(v) ?? [];
  if (entries.length > 0) parseAllowList(entries, 'hl7AllowFrom (EHRSYNC_HL7_ALLOW_FROM)');
  return entries;
}

/** Merges sources (later wins) and validates. */
export function resolveConfig(...sources: RawConfig[]): Config {
  return resolveMerged(sources, {});
}

/** resolveConfig's work; with `existingDatabase`, a SQLite file that does not exist is refused. */
function resolveMerged(sources: RawConfig[], options: { existingDatabase?: boolean }): Config {
  const raw: RawConfig = Object.assign({}, ...sources.map((s) => Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined))));
  const database = raw.database === undefined ? DEFAULTS.database : String(raw.database).trim();
  if (database === '') throw new ConfigError('database is empty: pass a SQLite file path (e.g. ./data/ehrsync.db) or a postgres:// URL with --database or EHRSYNC_DATABASE_URL.');
  // Before anything is created next to it (its encryption key, below): a mistyped path must not
  // silently become a new, empty database that answers "no such connection".
  if (options.existingDatabase && !isPostgresUrl(database) && !existsSync(database)) {
    throw new ConfigError(
      `database ${database} does not exist. Pass the one you use with --database (the demo's is .ehrsync/demo/ehrsync.db; serve's default is ./data/ehrsync.db) or EHRSYNC_DATABASE_URL; a new one is created by \`npx ehrsync migrate --database PATH\` or \`npx ehrsync serve\`.`,
    );
  }
  const roles = list(raw.roles) ?? DEFAULTS.roles;
  for (const r of roles) if (!(ROLES as readonly string[]).includes(r)) throw new ConfigError(`roles (--roles, EHRSYNC_ROLES): unknown role ${JSON.stringify(r)}; use a comma-separated subset of ${ROLES.join(',')}.`);
  if (roles.length === 0) throw new ConfigError(`roles is empty: use a comma-separated subset of ${ROLES.join(',')}.`);
  const logLevel = raw.logLevel === undefined ? DEFAULTS.logLevel : String(raw.logLevel);
  if (!['debug', 'info', 'warn', 'error', 'silent'].includes(logLevel)) throw new ConfigError(`logLevel must be one of debug, info, warn, error, silent (got ${JSON.stringify(logLevel)}).`);
  const key = encryptionKey(raw, database);
  SecretBox.parseKey(key.key);
  const hl7TlsCertFile = raw.hl7TlsCertFile === undefined ? null : String(raw.hl7TlsCertFile);
  const hl7TlsKeyFile = raw.hl7TlsKeyFile === undefined ? null : String(raw.hl7TlsKeyFile);
  if ((hl7TlsCertFile === null) !== (hl7TlsKeyFile === null)) throw new ConfigError('hl7TlsCertFile and hl7TlsKeyFile go together: set both (PEM certificate chain and private key) for TLS on the HL7 listener, or neither.');
  const adminToken = raw.adminToken === undefined ? undefined : String(raw.adminToken);
  if (adminToken !== undefined && adminToken.length < 16) throw new ConfigError('adminToken must be at least 16 characters: generate one with `openssl rand -hex 24`.');
  return {
    database,
    host: raw.host === undefined ? DEFAULTS.host : String(raw.host),
    port: int('port', raw.port, 0, 65_535, DEFAULTS.port),
    roles: [...new Set(roles)] as Role[],
    encryptionKey: key.key,
    encryptionKeySource: key.source,
    adminToken,
    allowInsecureEndpoints: bool('allowInsecureEndpoints', raw.allowInsecureEndpoints, DEFAULTS.allowInsecureEndpoints),
    endpointAllowHosts: (list(raw.endpointAllowHosts) ?? DEFAULTS.endpointAllowHosts).map((h) => h.toLowerCase()),
    syncConcurrency: int('syncConcurrency', raw.syncConcurrency, 1, 256, DEFAULTS.syncConcurrency),
    syncTimeoutSeconds: int('syncTimeoutSeconds', raw.syncTimeoutSeconds, 1, 3600, DEFAULTS.syncTimeoutSeconds),
    deliveryConcurrency: int('deliveryConcurrency', raw.deliveryConcurrency, 1, 4096, DEFAULTS.deliveryConcurrency),
    endpointDisableAfterDays: int('endpointDisableAfterDays', raw.endpointDisableAfterDays, 1, 365, DEFAULTS.endpointDisableAfterDays),
    logLevel: logLevel as Config['logLevel'],
    rateLimitPerSecond: int('rateLimitPerSecond', raw.rateLimitPerSecond, 1, 100_000, DEFAULTS.rateLimitPerSecond),
    retentionDays: int('retentionDays', raw.retentionDays, 0, 3650, DEFAULTS.retentionDays),
    hl7Port: raw.hl7Port === undefined ? null : int('hl7Port', raw.hl7Port, 0, 65_535, 0),
    hl7Host: raw.hl7Host === undefined ? DEFAULTS.hl7Host : String(raw.hl7Host),
    hl7TlsCertFile,
    hl7TlsKeyFile,
    hl7MaxMessageBytes: int('hl7MaxMessageBytes', raw.hl7MaxMessageBytes, 1024, 16 * 1024 * 1024, DEFAULTS.hl7MaxMessageBytes),
    hl7AllowFrom: hl7AllowFrom(raw.hl7AllowFrom),
  };
}

/** Loads the configuration of a command: file (from --config or EHRSYNC_CONFIG), env, then flags. */
export function loadConfig(flags: RawConfig, env: NodeJS.ProcessEnv = process.env, options: { existingDatabase?: boolean } = {}): Config {
  const envRaw = fromEnv(env);
  const file = flags.config ?? envRaw.config;
  return resolveMerged([file === undefined ? {} : fromFile(String(file)), envRaw, flags], options);
}
