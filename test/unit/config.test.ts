/** Configuration: precedence of sources, validation messages that name the setting and the fix. */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { fromEnv, loadConfig, resolveConfig } from '../../src/cli/config.js';
import { ConfigError } from '../../src/domain/errors.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { tempDir } from '../helpers/temp.js';

const KEY = SecretBox.generateKey();

it('later sources win: defaults < file < env < flags', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'ehrsync.json');
  writeFileSync(file, JSON.stringify({ port: 7000, syncConcurrency: 2, database: join(dir, 'a.db') }));
  const c = loadConfig({ port: 9000 }, { EHRSYNC_CONFIG: file, EHRSYNC_PORT: '8000', EHRSYNC_SYNC_CONCURRENCY: '3', EHRSYNC_ENCRYPTION_KEY: KEY });
  assert.deepEqual([c.port, c.syncConcurrency, c.database, c.host, c.roles], [9000, 3, join(dir, 'a.db'), '127.0.0.1', ['api', 'sync', 'delivery']]);
  assert.equal(c.encryptionKeySource, 'EHRSYNC_ENCRYPTION_KEY');
});

it('reads lists and booleans from the environment', () => {
  const c = resolveConfig(fromEnv({ EHRSYNC_ROLES: 'api, delivery', EHRSYNC_ALLOW_INSECURE_ENDPOINTS: '1', EHRSYNC_ENDPOINT_ALLOW_HOSTS: 'Hooks.Internal,b.local', EHRSYNC_ENCRYPTION_KEY: KEY }));
  assert.deepEqual(c.roles, ['api', 'delivery']);
  assert.equal(c.allowInsecureEndpoints, true);
  assert.deepEqual(c.endpointAllowHosts, ['hooks.internal', 'b.local']);
});

it('invalid values fail with the setting\'s name and the fix', () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ port: 'eighty' }, /port must be a whole number from 0 to 65535/],
    [{ roles: 'api,cron' }, /roles \(--roles, EHRSYNC_ROLES\): unknown role "cron"/],
    [{ allowInsecureEndpoints: 'maybe' }, /allowInsecureEndpoints must be true or false/],
    [{ encryptionKey: 'short' }, /encryption key must be 32 bytes.*openssl rand -hex 32/],
    [{ database: ' ' }, /database is empty/],
    [{ logLevel: 'loud' }, /logLevel must be one of/],
    [{ adminToken: 'abc' }, /adminToken must be at least 16 characters/],
    [{ database: 'postgres://localhost/x' }, /encryptionKey is required with PostgreSQL/],
  ];
  for (const [raw, message] of cases) {
    assert.throws(() => resolveConfig({ encryptionKey: KEY, ...raw, ...(raw.database?.toString().startsWith('postgres') ? { encryptionKey: undefined } : {}) }), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(raw));
  }
});

it('with SQLite and no key configured, a key file is created next to the database, private, and reused', (t) => {
  const dir = tempDir(t);
  const first = resolveConfig({ database: join(dir, 'data', 'ehrsync.db') });
  const keyFile = join(dir, 'data', 'encryption.key');
  assert.ok(existsSync(keyFile));
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  assert.equal(first.encryptionKey, readFileSync(keyFile, 'utf8').trim());
  assert.equal(resolveConfig({ database: join(dir, 'data', 'ehrsync.db') }).encryptionKey, first.encryptionKey);
});

it('the HL7 listener is off unless a port is set, binds 127.0.0.1, and its settings are checked by name', () => {
  const off = resolveConfig({ encryptionKey: KEY });
  assert.equal(off.hl7Port, null, 'no network port opens that was not asked for');
  const on = resolveConfig(fromEnv({ EHRSYNC_HL7_PORT: '2575', EHRSYNC_HL7_ALLOW_FROM: '10.1.0.0/16, 192.168.1.7', EHRSYNC_ENCRYPTION_KEY: KEY }));
  assert.deepEqual([on.hl7Port, on.hl7Host, on.hl7AllowFrom], [2575, '127.0.0.1', ['10.1.0.0/16', '192.168.1.7']]);
  assert.throws(() => resolveConfig({ encryptionKey: KEY, hl7Port: 70000 }), /hl7Port must be a whole number from 0 to 65535/);
  assert.throws(() => resolveConfig({ encryptionKey: KEY, hl7TlsCertFile: 'cert.pem' }), /hl7TlsCertFile and hl7TlsKeyFile go together/);
  assert.throws(() => resolveConfig({ encryptionKey: KEY, hl7AllowFrom: 'clinic-router' }), /hl7AllowFrom .*is not an IP address or CIDR range/);
});
