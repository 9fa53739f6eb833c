/**
 * The migration runner (store/sql/migrations.ts) on both dialects: a new database, the migrations
 * squashed into 001_schema.sql (a database that applied all six old ones is current, one that
 * applied some is refused with the fix), and processes migrating at once. The old-style
 * schema_migrations rows are written by hand, over the squashed schema, which is exactly the one the
 * six old files ended with (migration-squash.test.ts applies the old files, kept under
 * test/fixtures/migrations-0.1/, and compares; schema-parity.test.ts compares the dialects).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import pg from 'pg';
import { EhrsyncError } from '../../src/domain/errors.js';
import { openStore } from '../../src/store/open.js';
import { PgClient } from '../../src/store/postgres/pg-client.js';
import { SqliteClient } from '../../src/store/sqlite/sqlite-client.js';
import { readMigrations } from '../../src/store/sql/migrations.js';
import { freshSchemaUrl, postgresUnavailable } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const STORE = join(ROOT, 'src/store');
const execFileAsync = promisify(execFile);
/** The migrations after the squashed file (the same names in both dialects): applied on top of it everywhere. */
const LATER = readMigrations(join(STORE, 'sqlite/migrations'))
  .filter((m) => m.version > 1)
  .map((m) => ({ version: m.version, name: m.name }));
/** What schema_migrations records on a current database, without dates. */
const CURRENT = [{ version: 1, name: '001_schema.sql' }, ...LATER];

const SCHEMA_SQL = { sqlite: readFileSync(join(STORE, 'sqlite/migrations/001_schema.sql'), 'utf8'), postgres: readFileSync(join(STORE, 'postgres/migrations/001_schema.sql'), 'utf8') };

/** The six migrations of ehrsync 0.1 as it recorded them, with when. */
const OLD = ['001_init.sql', '002_delivery.sql', '003_lease_index.sql', '004_fewer_delivery_indexes.sql', '005_due_heads_covering_index.sql', '006_key_check_index.sql'].map((name, i) => ({
  version: i + 1,
  name,
  applied_at: 1_700_000_000_000 + i * 1000,
}));
const LAST_OLD_APPLIED_AT = OLD[OLD.length - 1]!.applied_at;

interface Row {
  version: number;
  name: string;
  applied_at: number;
}

/** Asserts a ConfigError whose message names the squash's fix. */
function refusedPartly(upTo: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof EhrsyncError, `an EhrsyncError, got ${String(err)}`);
    assert.equal(err.code, 'config_invalid');
    assert.match(err.message, new RegExp(`up to ${upTo.replace(/\./g, '\\.')}`));
    assert.match(err.message, /001_schema\.sql/);
    assert.match(err.message, /Upgrade with the previous release first/);
    assert.match(err.message, /start from an empty database/);
    return true;
  };
}

// ---- SQLite ----

/** A SQLite file as ehrsync 0.1 left it after applying `applied` of its six migrations, holding one account. */
function oldSqlite(t: TestContext, applied: number): string {
  const path = join(tempDir(t), 'old.db');
  const db = new Database(path);
  try {
    if (applied === OLD.length) {
      db.exec(SCHEMA_SQL.sqlite);
      db.prepare("INSERT INTO accounts (id, name, client_id, client_secret_hash, created_at) VALUES ('acc_old', 'Old clinic', 'client-old', 'hash', 1)").run();
    }
    // Only the records matter to the runner when they are partial: it refuses before reading anything else.
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)');
    for (const m of OLD.slice(0, applied)) insert.run(m.version, m.name, m.applied_at);
  } finally {
    db.close();
  }
  return path;
}

async function sqliteRows(path: string): Promise<Row[]> {
  const db = new SqliteClient(path);
  try {
    return await db.all<Row>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
  } finally {
    await db.close();
  }
}

it('SQLite: a new database gets 001_schema.sql, recorded once; migrating again changes nothing', async (t) => {
  const path = join(tempDir(t), 'new.db');
  const db = new SqliteClient(path);
  t.after(() => db.close());
  await db.migrate();
  await db.migrate();
  const rows = await db.all<Row>('SELECT version, name FROM schema_migrations ORDER BY version');
  assert.deepEqual(rows, CURRENT);
});

it('SQLite: a database that applied all six old migrations is current: recorded as 001_schema.sql and keeps working', async (t) => {
  const path = oldSqlite(t, OLD.length);
  const store = await openStore(path);
  t.after(() => store.close());
  const rows = await sqliteRows(path);
  assert.deepEqual(rows[0], { version: 1, name: '001_schema.sql', applied_at: LAST_OLD_APPLIED_AT }, 'the six records become the squashed file’s, dated when the schema reached it');
  assert.deepEqual(rows.slice(1).map((r) => r.name), LATER.map((m) => m.name), 'and the later migrations are applied on top');
  assert.deepEqual(
    (await store.listAccounts()).map((a) => a.id),
    ['acc_old'],
    'its data is untouched',
  );
  const account = await store.createAccount({ name: 'New clinic', clientId: 'client-new', clientSecretHash: 'h', now: 2 });
  const endpoint = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', maxConcurrency: 3, now: 2 });
  assert.equal((await store.getEndpoint(endpoint.id))?.maxConcurrency, 3, 'columns the old 002 added are there');
  await store.migrate();
  assert.equal((await sqliteRows(path)).length, CURRENT.length, 'a later start finds it current');
});

it('SQLite: a database that applied only some of the old migrations is refused with the fix, unchanged', async (t) => {
  for (const applied of [1, 3, 5]) {
    const path = oldSqlite(t, applied);
    const upTo = OLD[applied - 1]!.name;
    const db = new SqliteClient(path);
    await assert.rejects(db.migrate(), refusedPartly(upTo), `after ${upTo}`);
    await db.close();
    assert.deepEqual(await sqliteRows(path), OLD.slice(0, applied), `its records are kept (after ${upTo})`);
    const raw = new Database(path);
    const tables = raw.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    raw.close();
    assert.deepEqual(tables.map((r) => r.name), ['schema_migrations'], `nothing of 001_schema.sql was applied (after ${upTo})`);
    // Through the store's opening too: the error reaches the operator as it is (exit code 2 in the CLI).
    await assert.rejects(openStore(path), refusedPartly(upTo));
  }
});

it('SQLite: a migration number recorded under another name is refused', async (t) => {
  const path = join(tempDir(t), 'other.db');
  const raw = new Database(path);
  raw.exec("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL); INSERT INTO schema_migrations VALUES (1, '001_something_else.sql', 1)");
  raw.close();
  const db = new SqliteClient(path);
  t.after(() => db.close());
  await assert.rejects(db.migrate(), (err: unknown) => err instanceof EhrsyncError && err.code === 'config_invalid' && /records migration 1 as 001_something_else\.sql/.test(err.message));
});

it('SQLite: processes migrating one new file at once wait for each other; it is applied once', async (t) => {
  // Processes, not clients in this one: better-sqlite3 waits for a lock synchronously, so a second
  // connection of this thread would wait (busy_timeout) for a transaction this thread cannot finish.
  const path = join(tempDir(t), 'race.db');
  const script = `import { SqliteClient } from ${JSON.stringify(pathToFileURL(join(STORE, 'sqlite/sqlite-client.ts')).href)};
    const db = new SqliteClient(${JSON.stringify(path)}); await db.migrate(); await db.close();`;
  await Promise.all(Array.from({ length: 3 }, () => execFileAsync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT })));
  assert.deepEqual(
    (await sqliteRows(path)).map((r) => r.name),
    CURRENT.map((m) => m.name),
  );
});

// ---- PostgreSQL ----

const unavailable = await postgresUnavailable();

/** A fresh schema as ehrsync 0.1 left it after applying `applied` of its six migrations; its URL. */
async function oldPostgres(t: TestContext, applied: number): Promise<{ url: string; schema: string }> {
  const url = new URL(await freshSchemaUrl(t));
  const schema = url.searchParams.get('schema')!;
  url.searchParams.delete('schema');
  const c = new pg.Client({ connectionString: url.toString() });
  await c.connect();
  try {
    await c.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
    if (applied === OLD.length) {
      await c.query(SCHEMA_SQL.postgres);
      await c.query("INSERT INTO accounts (id, name, client_id, client_secret_hash, created_at) VALUES ('acc_old', 'Old clinic', 'client-old', 'hash', 1)");
    }
    await c.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    for (const m of OLD.slice(0, applied)) await c.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, m.applied_at]);
  } finally {
    await c.end();
  }
  return { url: url.toString(), schema };
}

it('PostgreSQL: all six old migrations → current and working; some → refused with the fix, unchanged', { skip: unavailable ?? false }, async (t) => {

  const full = await oldPostgres(t, OLD.length);
  const client = new PgClient(full.url, { schema: full.schema });
  t.after(() => client.close());
  await client.migrate();
  const rows = await client.all<{ version: number; name: string; applied_at: number }>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
  assert.deepEqual(rows[0], { version: 1, name: '001_schema.sql', applied_at: LAST_OLD_APPLIED_AT });
  assert.deepEqual(rows.slice(1).map((r) => r.name), LATER.map((m) => m.name));
  assert.deepEqual(await client.all('SELECT id FROM accounts'), [{ id: 'acc_old' }]);
  await client.migrate();
  assert.equal((await client.all('SELECT 1 FROM schema_migrations')).length, CURRENT.length);

  const partial = await oldPostgres(t, 4);
  const refused = new PgClient(partial.url, { schema: partial.schema });
  t.after(() => refused.close());
  await assert.rejects(refused.migrate(), refusedPartly('004_fewer_delivery_indexes.sql'));
  assert.deepEqual(await refused.all('SELECT version, name, applied_at FROM schema_migrations ORDER BY version'), OLD.slice(0, 4));
  assert.deepEqual(await refused.all("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"), [{ tablename: 'schema_migrations' }]);
  // The advisory lock was released on the way out: another migration of the server goes ahead.
  const other = new URL(await freshSchemaUrl(t));
  const otherSchema = other.searchParams.get('schema')!;
  other.searchParams.delete('schema');
  const next = new PgClient(other.toString(), { schema: otherSchema });
  t.after(() => next.close());
  await next.migrate();
});

it('PostgreSQL: processes migrating one new schema at once wait for each other at the lock; it is applied once', { skip: unavailable ?? false }, async (t) => {
  const url = new URL(await freshSchemaUrl(t));
  const schema = url.searchParams.get('schema')!;
  url.searchParams.delete('schema');
  const clients = Array.from({ length: 4 }, () => new PgClient(url.toString(), { schema }));
  t.after(() => Promise.all(clients.map((c) => c.close())));
  await Promise.all(clients.map((c) => c.migrate()));
  assert.deepEqual(await clients[0]!.all('SELECT version, name FROM schema_migrations ORDER BY version'), CURRENT);
});
