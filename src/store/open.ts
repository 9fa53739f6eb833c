/**
 * @module store/open — opens the store a database setting names: a file path (SQLite, the default)
 * or a `postgres://` URL.
 */
import { ConfigError } from '../domain/errors.js';
import { PgClient } from './postgres/pg-client.js';
import { SqliteClient } from './sqlite/sqlite-client.js';
import type { Store } from './ports.js';
import { createStore } from './store.js';

/** True when the setting names a PostgreSQL database. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/** The database named without credentials, for messages. */
export function describeDatabase(database: string): string {
  try {
    const u = new URL(database);
    if (u.protocol === 'postgres:' || u.protocol === 'postgresql:') {
      const schema = u.searchParams.get('schema');
      return `postgres://${u.host}${u.pathname}${schema ? `?schema=${schema}` : ''}`;
    }
  } catch {
    // a file path
  }
  return database;
}

/** Opens and migrates the store. */
export async function openStore(database: string): Promise<Store> {
  if (database.trim() === '') throw new ConfigError('database is empty: pass a SQLite file path (e.g. ./data/ehrsync.db) or a postgres:// URL.');
  let store: Store;
  if (isPostgresUrl(database)) {
    // `?schema=name` selects a schema (created if missing); the rest of the URL goes to the driver as is.
    const url = new URL(database);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    store = createStore(new PgClient(url.toString(), { schema }));
  } else {
    store = createStore(new SqliteClient(database));
  }
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw isPostgresUrl(database) ? unreachable(database, err) : err;
  }
  return store;
}

/** A PostgreSQL server that cannot be reached or refuses us is a configuration error: it names the URL (without credentials) and the fix. */
function unreachable(database: string, err: unknown): unknown {
  const code = String((err as { code?: unknown } | null)?.code ?? '');
  const why: Record<string, string> = {
    ECONNREFUSED: 'nothing accepts connections there: is PostgreSQL running, on that host and port?',
    ENOTFOUND: 'that host name does not resolve',
    ETIMEDOUT: 'the connection timed out',
    '28P01': 'the password was refused',
    '28000': 'the server refused this user',
    '3D000': 'that database does not exist: create it (createdb) or name another',
  };
  const reason = why[code];
  if (reason === undefined) return err;
  return new ConfigError(`database ${describeDatabase(database)}: ${reason} (${code}). Fix the URL given with --database or EHRSYNC_DATABASE_URL.`);
}
