/** @module store/sql/migrations — reads a dialect's numbered migration files (SQL stays visible as SQL, one file per step). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Numbered migration files of a folder, in order: `001_init.sql` → `{version: 1, name, sql}`. */
export function readMigrations(dir: string): { version: number; name: string; sql: string }[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
    .map((f) => ({ version: Number(f.slice(0, f.indexOf('_'))), name: f, sql: readFileSync(join(dir, f), 'utf8') }));
}
