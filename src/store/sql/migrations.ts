/**
 * @module store/sql/migrations — the one migration runner of both dialects. Each dialect keeps its
 * schema as numbered SQL files (SQL stays visible as SQL, one file per step) in
 * `store/<dialect>/migrations/`; the runner reads them, creates `schema_migrations`, and applies the
 * files a database has not recorded, all in one transaction, recording each. A client lends only
 * its primitives (MigrationHost): running a multi-statement script, and a transaction that holds
 * the migration lock, so that processes starting at once migrate one after the other.
 *
 * Squashes: the files of ehrsync 0.1 (001_init … 006_key_check_index) were replaced by one
 * 001_schema.sql per dialect giving the same final schema. A database that recorded all of them is
 * current: its records are rewritten as the one file's. One that recorded only some is refused
 * with the fix, since the squashed file cannot be applied over part of the old schema.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../domain/errors.js';
import type { SqlRunner } from './client.js';
import { DIALECTS } from './dialect.js';

/** One numbered migration file: `001_schema.sql` → `{version: 1, name: '001_schema.sql', sql}`. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Numbered migration files of a folder, in order. Two files with one number are a packaging error. */
export function readMigrations(dir: string): Migration[] {
  const migrations = readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .map((f) => ({ version: Number(f.slice(0, f.indexOf('_'))), name: f, sql: readFileSync(join(dir, f), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]!.version === migrations[i - 1]!.version) throw new Error(`${dir}: ${migrations[i - 1]!.name} and ${migrations[i]!.name} have the same number`);
  }
  return migrations;
}

/** What the runner may do inside the migration transaction: statements, and scripts of several. */
export interface MigrationSession extends SqlRunner {
  /** Runs a script of one or more statements without parameters (a migration file). */
  script(sql: string): Promise<void>;
}

/** The primitives a client lends the runner. */
export interface MigrationHost {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction, committed when it resolves and rolled back when it throws, while
   * holding the lock that makes concurrent migrations of the same database wait for each other
   * (PostgreSQL: an advisory lock; SQLite: the write lock that `BEGIN IMMEDIATE` takes).
   */
  exclusive<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T>;
}

/** A file that replaced a run of older migrations, with the names those were recorded under. */
interface Squash {
  file: string;
  replaced: readonly string[];
}

/**
 * Every squash so far. The replaced names are the same in both dialects (SQLite kept a `SELECT 1`
 * 006 so the numbering matched), and so is the squashed file's name.
 */
const SQUASHES: readonly Squash[] = [
  {
    file: '001_schema.sql',
    replaced: ['001_init.sql', '002_delivery.sql', '003_lease_index.sql', '004_fewer_delivery_indexes.sql', '005_due_heads_covering_index.sql', '006_key_check_index.sql'],
  },
];

/** Where an old ehrsync recorded a migration: the number its name starts with. */
function versionOf(name: string): number {
  return Number(name.slice(0, name.indexOf('_')));
}

interface Recorded {
  version: number;
  name: string;
  applied_at: number;
}

/**
 * Brings a database's schema up to date with the migration files in `dir`, through `host`; safe on
 * every start. Throws ConfigError, changing nothing, for a database it cannot bring up to date
 * safely: part of a squashed run applied, or a number recorded under another file's name.
 */
export async function runMigrations(host: MigrationHost, dir: string): Promise<void> {
  const migrations = readMigrations(dir);
  const time = DIALECTS[host.dialect].epochMsType;
  await host.exclusive(async (db) => {
    await db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at ${time} NOT NULL)`);
    let recorded = await db.all<Recorded>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
    for (const squash of SQUASHES) {
      const old = recorded.filter((r) => squash.replaced.includes(r.name) && r.version === versionOf(r.name));
      if (old.length === 0) continue;
      if (old.length < squash.replaced.length) throw partlyMigrated(squash, old);
      // Recorded as if the squashed file had been applied when the last replaced one was: from here
      // on the database looks like one the squashed file created, and the numbers the replaced
      // files held are free for the files that come after it.
      await db.run(`DELETE FROM schema_migrations WHERE version IN (${old.map(() => '?').join(', ')})`, old.map((r) => r.version));
      await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [versionOf(squash.file), squash.file, Math.max(...old.map((r) => r.applied_at))]);
      recorded = await db.all<Recorded>('SELECT version, name, applied_at FROM schema_migrations ORDER BY version');
    }
    const byVersion = new Map(recorded.map((r) => [r.version, r.name]));
    for (const m of migrations) {
      const name = byVersion.get(m.version);
      if (name === m.name) continue;
      if (name !== undefined) {
        throw new ConfigError(
          `database schema: schema_migrations records migration ${m.version} as ${name}, but this ehrsync's migration ${m.version} is ${m.name}: the database was migrated by another build of ehrsync. Use that build, or start from an empty database.`,
        );
      }
      await db.script(m.sql);
      await db.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, Date.now()]);
    }
    // Versions recorded that no file here knows (a database a newer ehrsync migrated) are left as
    // they are, as they always were.
  });
}

/** The error for a database that applied only some of the migrations a squash replaced. */
function partlyMigrated(squash: Squash, old: readonly Recorded[]): ConfigError {
  const have = new Set(old.map((r) => r.name));
  const missing = squash.replaced.filter((n) => !have.has(n));
  const last = old[old.length - 1]!.name;
  return new ConfigError(
    `database schema: this database was migrated by an earlier ehrsync up to ${last}, without ${missing.join(', ')}. ` +
      `This version replaced migrations ${squash.replaced[0]} … ${squash.replaced[squash.replaced.length - 1]} with one file, ${squash.file}, and only takes a database that applied all of them. ` +
      'Upgrade with the previous release first (start it, or run `npx ehrsync migrate` with it, against this database), then start this version; or start from an empty database. See CHANGELOG.md.',
  );
}
