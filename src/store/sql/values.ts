/**
 * @module store/sql/values — turning domain values into statement parameters: bindable values,
 * `SET` clauses from patches, multi-row inserts, LIKE patterns. Pure.
 */
import type { SqlValue } from './client.js';
import type { Statement } from './statement.js';

/** Converts a domain value to a bindable SQL value (objects as JSON, booleans as 0/1, undefined as NULL). */
function toSql(v: unknown): SqlValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number' || typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * `SET a = :set_a, b = :set_b` from a patch and its field → column table (fields not in the table,
 * and undefined values, are left out), with the parameters; null when nothing is set.
 */
export function setClause<P extends object>(patch: P, columns: Record<keyof P, string>): { sql: string; params: Record<string, SqlValue> } | null {
  const parts: string[] = [];
  const params: Record<string, SqlValue> = {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue;
    const column = columns[key as keyof P];
    if (!column) continue;
    parts.push(`${column} = :set_${column}`);
    params[`set_${column}`] = toSql(value);
  }
  return parts.length === 0 ? null : { sql: parts.join(', '), params };
}

/** Rows per multi-row INSERT: few round trips on PostgreSQL, well under SQLite's parameter limit. */
const INSERT_CHUNK = 100;

/**
 * Multi-row `INSERT INTO table (columns) VALUES (...), (...) suffix` statements, in chunks of
 * INSERT_CHUNK rows, each row's values in the columns' order. `suffix` may add `ON CONFLICT ...` or
 * `RETURNING ...`. The placeholders are generated here, positionally (Statement.positional): naming
 * hundreds of values per statement cost twice the CPU of a sync commit's inserts, and nothing here
 * is counted by hand.
 */
export function insertRows(table: string, columns: readonly string[], rows: readonly (readonly SqlValue[])[], suffix = ''): Statement[] {
  const out: Statement[] = [];
  const tuple = `(${columns.map(() => '?').join(', ')})`;
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    out.push({ sql: `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')} ${suffix}`, params: {}, positional: chunk.flat() });
  }
  return out;
}

/** A case-insensitive substring pattern for LIKE: user input with LIKE's wildcards dropped (the statements use no escape character). */
export function containsPattern(v: string): string {
  return `%${v.toLowerCase().replace(/[%_]/g, '')}%`;
}
