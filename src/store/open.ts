/**
 * @module store/open — opens the store a database setting names: a file path (SQLite, the default)
 * or a `postgres://` URL.
 */
import { ConfigError } from '../domain/errors.js';
import { PgClient } from './postgres/pg-client.js';
import { PgStore } from './postgres/pg-store.js';
import { SqliteClient } from './sqlite/sqlite-client.js';
import { SqlStore } from './sql-store.js';
import type { Store } from './store.js';

/** True when the setting names a PostgreSQL database. */
export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//i.test(database);
}

/** Opens and migrates the store. */
export async function openStore(database: string): Promise<Store> {
  if (database.trim() === '') throw new ConfigError('database is empty: pass a SQLite file path (e.g. ./data/ehrsync.db) or a postgres:// URL.');
  let store: SqlStore;
  if (isPostgresUrl(database)) {
    // `?schema=name` selects a schema (created if missing); the rest of the URL goes to the driver as is.
    const url = new URL(database);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    store = new PgStore(new PgClient(url.toString(), { schema }));
  } else {
    store = new SqlStore(new SqliteClient(database));
  }
  await store.migrate();
  return store;
}
