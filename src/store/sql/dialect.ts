/**
 * @module store/sql/dialect — every difference between the SQLite and PostgreSQL SQL that the store
 * writes, in one table. Everything else is the same SQL text for both.
 *
 * The fragments that bind a value come in two forms: the positional ones below (one `?`, for the
 * legacy SqlStore, pg-store.ts and outcome-sql.ts) and `named`, which take the parameter's name
 * (store/sql/named-dialect.ts) for the named-parameter statements of src/store/statements.
 */
import { NAMED_DIALECTS, type NamedFragments } from './named-dialect.js';

/** The SQL fragments that differ per dialect. */
export interface Dialect {
  /** A subquery yielding the elements of a JSON array bound to one `?` (text values). */
  jsonTextList: string;
  /** Same, for integer values. */
  jsonIntList: string;
  /**
   * A filter narrowing a join on `column` (an integer primary key) to the integers of a JSON array
   * bound to one `?`. PostgreSQL answers it by primary-key lookups whatever the table's statistics
   * say (joined to a JSON record set, a fresh table without statistics is otherwise hashed against
   * a scan of the whole table). SQLite already drives such a join from the record set and looks
   * each row up by primary key; the unary `+` keeps the list from becoming the outer loop there
   * (it would rescan the record set per row), so it is only checked on the rows found.
   */
  idIn(column: string): string;
  /**
   * The integer under key `key` (an SQL expression; ids without quotes or backslashes) of a JSON
   * object bound to one `?`, NULL when absent. The object is parsed once per statement; SQLite then
   * finds a key by walking the members, so keep the object small.
   */
  jsonObjectInt(key: string): string;
  /** Appended to a leasing SELECT so concurrent workers skip each other's rows. */
  skipLocked: string;
  /** Appended to a SELECT whose rows must not change until the transaction ends (SQLite's writer lock already ensures it). */
  forUpdate: string;
  /**
   * Appended to an EXISTS subquery to keep it a per-row lookup (PostgreSQL does not turn a subquery
   * with OFFSET into a join); nothing on SQLite, which never does.
   */
  subqueryFence: string;
  /** True when a text column contains the bound string (`?`) literally, case and all. */
  contains(column: string): string;
  /** The text of a top-level field of a JSON column, e.g. `jsonText('record', 'first_name')`. */
  jsonText(column: string, field: string): string;
  /**
   * A FROM item named `alias` whose rows are the objects of a JSON array bound to one `?`, with
   * the given typed columns: one statement updates many rows (one round trip on PostgreSQL).
   */
  jsonRecords(alias: string, columns: readonly (readonly [name: string, type: 'bigint' | 'text'])[]): string;
  /** The fragments above that bind a value, taking the name of their parameter (`:name`) instead of `?`. */
  named: NamedFragments;
}

/** The dialect table. */
export const DIALECTS: Record<'sqlite' | 'postgres', Dialect> = {
  sqlite: {
    jsonTextList: '(SELECT value FROM json_each(?))',
    jsonIntList: '(SELECT value FROM json_each(?))',
    idIn: (column) => `+${column} IN (SELECT value FROM json_each(?))`,
    jsonObjectInt: (key) => `json_extract(?, '$."' || ${key} || '"')`,
    // SQLite has one writer at a time; the lease runs inside BEGIN IMMEDIATE instead.
    skipLocked: '',
    forUpdate: '',
    subqueryFence: '',
    contains: (column) => `instr(${column}, ?) > 0`,
    jsonText: (column, field) => `json_extract(${column}, '$.${field}')`,
    jsonRecords: (alias, columns) => `(SELECT ${columns.map(([name]) => `json_extract(value, '$.${name}') AS ${name}`).join(', ')} FROM json_each(?)) AS ${alias}`,
    named: NAMED_DIALECTS.sqlite,
  },
  postgres: {
    jsonTextList: '(SELECT jsonb_array_elements_text(?::jsonb))',
    jsonIntList: '(SELECT jsonb_array_elements_text(?::jsonb)::bigint)',
    idIn: (column) => `${column} = ANY(ARRAY(SELECT jsonb_array_elements_text(?::jsonb)::bigint))`,
    jsonObjectInt: (key) => `(?::jsonb ->> ${key})::bigint`,
    skipLocked: 'FOR UPDATE SKIP LOCKED',
    forUpdate: 'FOR UPDATE',
    subqueryFence: 'OFFSET 0',
    contains: (column) => `strpos(${column}, ?) > 0`,
    jsonText: (column, field) => `(${column}::jsonb ->> '${field}')`,
    jsonRecords: (alias, columns) => `jsonb_to_recordset(?::jsonb) AS ${alias}(${columns.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    named: NAMED_DIALECTS.postgres,
  },
};
