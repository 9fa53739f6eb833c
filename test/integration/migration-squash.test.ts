/**
 * The squash: each dialect's 001_schema.sql gives exactly the schema that ehrsync 0.1's six
 * migrations ended with. The migration runner counts on it: a database that applied all six is
 * taken as current without a change (migrations.test.ts). The six old files are kept as fixtures
 * (test/fixtures/migrations-0.1/, copied from commit 84a4c8e); they are applied in order to one
 * fresh database, 001_schema.sql to another, and the two catalogues (test/helpers/schema-catalogue.ts)
 * are compared table by table: the tables; each column's declared type, NOT NULL and default as the
 * catalogue has them, and the columns' order; primary keys; foreign keys (columns, referenced
 * table and columns, ON DELETE); indexes (columns in order with their direction, uniqueness,
 * partial predicate, and the whole definition). A difference fails the test naming the table and
 * the column, key or index, with its value on each side. Not compared: CHECK constraints, triggers
 * and views (ehrsync has none), ON UPDATE of foreign keys.
 *
 * On SQLite and PostgreSQL (fresh schemas; those tests skip, saying why, when no server answers).
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { it, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import pg from 'pg';
import { PgClient } from '../../src/store/postgres/pg-client.js';
import { SqliteClient } from '../../src/store/sqlite/sqlite-client.js';
import { freshSchemaUrl, postgresUnavailable } from '../helpers/postgres.js';
import { readPostgres, readSqlite, type Column, type Index, type Schema } from '../helpers/schema-catalogue.js';
import { tempDir } from '../helpers/temp.js';

type Dialect = 'sqlite' | 'postgres';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');

/** The six migrations of ehrsync 0.1, in the order it applied them. */
const CHAIN = ['001_init.sql', '002_delivery.sql', '003_lease_index.sql', '004_fewer_delivery_indexes.sql', '005_due_heads_covering_index.sql', '006_key_check_index.sql'];

/** The SQL of the 0.1 chain of `dialect`, file by file; fails if the fixture directory holds other files. */
function chainSql(dialect: Dialect): string[] {
  const dir = join(ROOT, 'test/fixtures/migrations-0.1', dialect);
  assert.deepEqual(readdirSync(dir).sort(), CHAIN, `${dir} holds the six migrations of 0.1, no more`);
  return CHAIN.map((name) => readFileSync(join(dir, name), 'utf8'));
}

function squashSql(dialect: Dialect): string {
  return readFileSync(join(ROOT, 'src/store', dialect, 'migrations/001_schema.sql'), 'utf8');
}

// ---- a fresh database with some scripts applied, read back ----

/** The schema of a fresh SQLite file after running `scripts` in order. */
async function sqliteAfter(t: TestContext, scripts: readonly string[]): Promise<Schema> {
  const path = join(tempDir(t), 'schema.db');
  const raw = new Database(path);
  try {
    for (const sql of scripts) raw.exec(sql);
  } finally {
    raw.close();
  }
  const db = new SqliteClient(path);
  try {
    return await readSqlite(db);
  } finally {
    await db.close();
  }
}

/** The schema of a fresh PostgreSQL schema after running `scripts` in order (each as one simple query, as 0.1's runner did). */
async function postgresAfter(t: TestContext, scripts: readonly string[]): Promise<Schema> {
  const url = new URL(await freshSchemaUrl(t));
  const schema = url.searchParams.get('schema')!;
  url.searchParams.delete('schema');
  const raw = new pg.Client({ connectionString: url.toString() });
  await raw.connect();
  try {
    await raw.query(`CREATE SCHEMA ${schema}; SET search_path = ${schema}`);
    for (const sql of scripts) await raw.query(sql);
  } finally {
    await raw.end();
  }
  const db = new PgClient(url.toString(), { schema });
  try {
    return await readPostgres(db);
  } finally {
    await db.close();
  }
}

const after = (dialect: Dialect, t: TestContext, scripts: readonly string[]): Promise<Schema> => (dialect === 'sqlite' ? sqliteAfter(t, scripts) : postgresAfter(t, scripts));

// ---- comparing ----

const ABSENT = 'absent';

/** A column as its declaration reads: `INTEGER NOT NULL DEFAULT 0`; `(autoincrement)` for SQLite's AUTOINCREMENT key. */
function describeColumn(c: Column): string {
  const { type, notNull, default: dflt } = c.exact;
  const generated = c.default === 'generated' && !(dflt ?? '').startsWith('generated') ? ' (autoincrement)' : '';
  return `${type || '(no type)'}${notNull ? ' NOT NULL' : ''}${dflt === null ? '' : ` DEFAULT ${dflt}`}${generated}`;
}

function describeIndex(i: Index): string {
  return `${i.unique ? 'unique ' : ''}(${i.columns.join(', ')})${i.predicate === null ? '' : ` where ${i.predicate}`}`;
}

/** Every difference between the chain's schema and the squash's, one line each, naming the table and the column, key or index. */
function compare(chain: Schema, squash: Schema): string[] {
  const out: string[] = [];
  const diff = (at: string, a: string, b: string): void => {
    if (a !== b) out.push(`${at}: 0.1 chain ${a}; 001_schema.sql ${b}`);
  };
  const union = (a: Iterable<string>, b: Iterable<string>): string[] => [...new Set([...a, ...b])].sort();
  for (const name of union(chain.keys(), squash.keys())) {
    const a = chain.get(name);
    const b = squash.get(name);
    if (!a || !b) {
      diff(`table ${name}`, a ? 'present' : ABSENT, b ? 'present' : ABSENT);
      continue;
    }
    diff(`table ${name}: primary key`, a.primaryKey.join(', ') || 'none', b.primaryKey.join(', ') || 'none');
    for (const col of union(a.columns.keys(), b.columns.keys())) {
      const ac = a.columns.get(col);
      const bc = b.columns.get(col);
      diff(`table ${name}, column ${col}`, ac ? describeColumn(ac) : ABSENT, bc ? describeColumn(bc) : ABSENT);
    }
    // The order of the columns both have (one missing is reported above, not again here).
    const aOrder = [...a.columns.keys()].filter((c) => b.columns.has(c));
    const bOrder = [...b.columns.keys()].filter((c) => a.columns.has(c));
    diff(`table ${name}: column order`, aOrder.join(', '), bOrder.join(', '));
    for (const fk of union(a.foreignKeys, b.foreignKeys)) diff(`table ${name}, foreign key ${fk}`, a.foreignKeys.has(fk) ? 'present' : ABSENT, b.foreignKeys.has(fk) ? 'present' : ABSENT);
    for (const idx of union(a.indexes.keys(), b.indexes.keys())) {
      const ai = a.indexes.get(idx);
      const bi = b.indexes.get(idx);
      const found = out.length;
      diff(`table ${name}, index ${idx}`, ai ? describeIndex(ai) : ABSENT, bi ? describeIndex(bi) : ABSENT);
      // The whole definition (access method, operator classes, text as written) when nothing above already differs.
      if (ai && bi && out.length === found) diff(`table ${name}, index ${idx}: definition`, ai.definition ?? 'none', bi.definition ?? 'none');
    }
  }
  return out;
}

/** Asserts that the two schemas are the same, listing every difference otherwise. */
function assertSame(dialect: Dialect, chain: Schema, squash: Schema): void {
  // The chain really ran to its end: 002 added retry_from, 004 dropped deliveries_due.
  const deliveries = chain.get('deliveries');
  assert.ok(chain.size >= 12 && deliveries?.columns.has('retry_from') && !deliveries.indexes.has('deliveries_due'), `the 0.1 chain was applied and read (${[...chain.keys()].join(', ')})`);
  const found = compare(chain, squash);
  assert.deepEqual(found, [], `${dialect}: 001_schema.sql does not give the schema of 0.1's six migrations:\n  ${found.join('\n  ')}`);
}

// ---- the tests ----

it('SQLite: 001_schema.sql gives the schema of the six 0.1 migrations, column by column and index by index', async (t) => {
  assertSame('sqlite', await sqliteAfter(t, chainSql('sqlite')), await sqliteAfter(t, [squashSql('sqlite')]));
});

const unavailable = await postgresUnavailable();

it('PostgreSQL: 001_schema.sql gives the schema of the six 0.1 migrations, column by column and index by index', { skip: unavailable ?? false }, async (t) => {
  assertSame('postgres', await postgresAfter(t, chainSql('postgres')), await postgresAfter(t, [squashSql('postgres')]));
});

/** A change to the end of the chain that the comparison must report, on either dialect, and the lines it must report. */
const CHANGED: Record<Dialect, { sql: string; expected: string[] }> = {
  sqlite: {
    sql: `ALTER TABLE endpoints DROP COLUMN last_failure_at;
      ALTER TABLE endpoints DROP COLUMN disabled_at; ALTER TABLE endpoints ADD COLUMN disabled_at INTEGER;
      DROP INDEX deliveries_leased; CREATE INDEX deliveries_leased ON deliveries(endpoint_id, lease_until) WHERE status = 'pending';
      DROP INDEX events_job; CREATE INDEX events_job ON events(job_id) where job_id is not null;`,
    expected: [
      "table deliveries, index deliveries_leased: 0.1 chain (endpoint_id, lease_until) where status = 'pending'; 001_schema.sql (endpoint_id, lease_until) where status = 'pending' and lease_until is not null",
      'table endpoints, column last_failure_at: 0.1 chain absent; 001_schema.sql INTEGER',
      'table endpoints: column order: 0.1 chain id, account_id, url, secret, previous_secret, previous_secret_expires_at, signature_scheme, retry_policy, event_types, enabled, disabled_reason, failing_since, created_at, max_concurrency, consecutive_failures, last_success_at, disabled_at; 001_schema.sql id, account_id, url, secret, previous_secret, previous_secret_expires_at, signature_scheme, retry_policy, event_types, enabled, disabled_reason, failing_since, created_at, max_concurrency, disabled_at, consecutive_failures, last_success_at',
      'table events, index events_job: definition: 0.1 chain CREATE INDEX events_job ON events(job_id) where job_id is not null; 001_schema.sql CREATE INDEX events_job ON events(job_id) WHERE job_id IS NOT NULL',
    ],
  },
  postgres: {
    sql: `ALTER TABLE endpoints DROP COLUMN last_failure_at;
      ALTER TABLE endpoints DROP COLUMN disabled_at; ALTER TABLE endpoints ADD COLUMN disabled_at BIGINT;
      ALTER TABLE endpoints ALTER COLUMN retry_policy SET DEFAULT 'lenient';
      ALTER TABLE deliveries ALTER COLUMN attempts TYPE integer;
      ALTER TABLE attempts ALTER COLUMN id SET GENERATED ALWAYS;
      DROP INDEX events_job; CREATE INDEX events_job ON events USING hash (job_id) WHERE job_id IS NOT NULL;`,
    expected: [
      'table attempts, column id: 0.1 chain bigint NOT NULL DEFAULT generated always as identity; 001_schema.sql bigint NOT NULL DEFAULT generated by default as identity',
      'table deliveries, column attempts: 0.1 chain integer NOT NULL DEFAULT 0; 001_schema.sql bigint NOT NULL DEFAULT 0',
      'table endpoints, column last_failure_at: 0.1 chain absent; 001_schema.sql bigint',
      "table endpoints, column retry_policy: 0.1 chain text NOT NULL DEFAULT 'lenient'::text; 001_schema.sql text NOT NULL DEFAULT 'durable'::text",
      'table endpoints: column order: 0.1 chain id, account_id, url, secret, previous_secret, previous_secret_expires_at, signature_scheme, retry_policy, event_types, enabled, disabled_reason, failing_since, created_at, max_concurrency, consecutive_failures, last_success_at, disabled_at; 001_schema.sql id, account_id, url, secret, previous_secret, previous_secret_expires_at, signature_scheme, retry_policy, event_types, enabled, disabled_reason, failing_since, created_at, max_concurrency, disabled_at, consecutive_failures, last_success_at',
      'table events, index events_job: definition: 0.1 chain CREATE INDEX events_job ON events USING hash (job_id) WHERE (job_id IS NOT NULL); 001_schema.sql CREATE INDEX events_job ON events USING btree (job_id) WHERE (job_id IS NOT NULL)',
    ],
  },
};

for (const dialect of ['sqlite', 'postgres'] as const) {
  it(`${dialect === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: the comparison reports a change to the end of the chain, naming the table and the column or index`, { skip: dialect === 'postgres' ? (unavailable ?? false) : false }, async (t) => {
    const changed = await after(dialect, t, [...chainSql(dialect), CHANGED[dialect].sql]);
    const squash = await after(dialect, t, [squashSql(dialect)]);
    assert.deepEqual(compare(changed, squash), CHANGED[dialect].expected);
    assert.throws(() => assertSame(dialect, changed, squash), (err: Error) => err.message.includes('table endpoints, column last_failure_at'));
  });
}
