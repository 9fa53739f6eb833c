/**
 * @module store/sql/dialect — every difference between the SQLite and PostgreSQL SQL that the store
 * writes, in one table. Everything else is the same SQL text for both, except two statements that
 * exist for PostgreSQL only, used by its delivery queue alone and named `pg…` (the one-statement
 * lease and outcome record, see store/queue/pg-queue.ts). Fragments that bind a value take the
 * name of their parameter (`:name`, see store/sql/statement.ts).
 */

/** The column list of a `jsonRecords` FROM item: name and type of each member read. */
export type JsonRecordColumns = readonly (readonly [name: string, type: 'bigint' | 'text'])[];

/** The SQL fragments that differ per dialect. */
export interface Dialect {
  /** A subquery yielding the elements of the JSON array bound to `:param` (text values). */
  jsonTextList(param: string): string;
  /** Same, for integer values. */
  jsonIntList(param: string): string;
  /**
   * A filter narrowing a join on `column` (an integer primary key) to the integers of the JSON array
   * bound to `:param`. PostgreSQL answers it by primary-key lookups whatever the table's statistics
   * say (joined to a JSON record set, a fresh table without statistics is otherwise hashed against
   * a scan of the whole table). SQLite already drives such a join from the record set and looks
   * each row up by primary key; the unary `+` keeps the list from becoming the outer loop there
   * (it would rescan the record set per row), so it is only checked on the rows found.
   */
  idIn(column: string, param: string): string;
  /**
   * The integer under key `key` (an SQL expression; ids without quotes or backslashes) of the JSON
   * object bound to `:param`, NULL when absent. The object is parsed once per statement; SQLite
   * then finds a key by walking the members, so keep the object small.
   */
  jsonObjectInt(key: string, param: string): string;
  /** Appended to a leasing SELECT so concurrent workers skip each other's rows. */
  skipLocked: string;
  /** Appended to a SELECT whose rows must not change until the transaction ends (SQLite's writer lock already ensures it). */
  forUpdate: string;
  /**
   * Appended to an EXISTS subquery to keep it a per-row lookup (PostgreSQL does not turn a subquery
   * with OFFSET into a join); nothing on SQLite, which never does.
   */
  subqueryFence: string;
  /** True when a text column contains the string bound to `:param` literally, case and all. */
  contains(column: string, param: string): string;
  /** The text of a top-level field of a JSON column, e.g. `jsonText('record', 'first_name')`. */
  jsonText(column: string, field: string): string;
  /**
   * A FROM item named `alias` whose rows are the objects of the JSON array bound to `:param`, with
   * the given typed columns: one statement updates many rows (one round trip on PostgreSQL).
   */
  jsonRecords(alias: string, columns: JsonRecordColumns, param: string): string;
  /** The column type of epoch-millisecond times (64-bit: SQLite's INTEGER is). */
  epochMsType: string;
}

/** The dialect table. */
export const DIALECTS: Record<'sqlite' | 'postgres', Dialect> = {
  sqlite: {
    jsonTextList: (p) => `(SELECT value FROM json_each(:${p}))`,
    jsonIntList: (p) => `(SELECT value FROM json_each(:${p}))`,
    idIn: (column, p) => `+${column} IN (SELECT value FROM json_each(:${p}))`,
    jsonObjectInt: (key, p) => `json_extract(:${p}, '$."' || ${key} || '"')`,
    // SQLite has one writer at a time; the lease runs inside BEGIN IMMEDIATE instead.
    skipLocked: '',
    forUpdate: '',
    subqueryFence: '',
    contains: (column, p) => `instr(${column}, :${p}) > 0`,
    jsonText: (column, field) => `json_extract(${column}, '$.${field}')`,
    jsonRecords: (alias, columns, p) => `(SELECT ${columns.map(([name]) => `json_extract(value, '$.${name}') AS ${name}`).join(', ')} FROM json_each(:${p})) AS ${alias}`,
    epochMsType: 'INTEGER',
  },
  postgres: {
    jsonTextList: (p) => `(SELECT jsonb_array_elements_text(:${p}::jsonb))`,
    jsonIntList: (p) => `(SELECT jsonb_array_elements_text(:${p}::jsonb)::bigint)`,
    idIn: (column, p) => `${column} = ANY(ARRAY(SELECT jsonb_array_elements_text(:${p}::jsonb)::bigint))`,
    jsonObjectInt: (key, p) => `(:${p}::jsonb ->> ${key})::bigint`,
    skipLocked: 'FOR UPDATE SKIP LOCKED',
    forUpdate: 'FOR UPDATE',
    subqueryFence: 'OFFSET 0',
    contains: (column, p) => `strpos(${column}, :${p}) > 0`,
    jsonText: (column, field) => `(${column}::jsonb ->> '${field}')`,
    jsonRecords: (alias, columns, p) => `jsonb_to_recordset(:${p}::jsonb) AS ${alias}(${columns.map(([name, type]) => `${name} ${type}`).join(', ')})`,
    epochMsType: 'BIGINT',
  },
};
