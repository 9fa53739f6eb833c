/**
 * @module store/sql/statement — SQL with named parameters. Statement builders (src/store/statements)
 * return `{ sql, params }` whose text names its parameters (`:now`, `:endpoint_id`) instead of
 * counting `?`s; `all`/`run` bind them by name and hand the client positional `?` text, compiled
 * once per text. A parameter the text names but the builder did not give fails loudly.
 */
import type { SqlRunner, SqlValue } from './client.js';

/** Values by parameter name. */
export type Params = Readonly<Record<string, SqlValue>>;

/** One statement: SQL text with `:name` parameters, and their values. */
export interface Statement {
  sql: string;
  params: Params;
  /**
   * Set only by code that generates a statement's placeholders itself (multi-row inserts, see
   * sql/values.ts `insertRows`): then `sql` holds `?` placeholders, bound in order to these values
   * as they are. Never for hand-written SQL, whose parameters are named.
   */
  positional?: readonly SqlValue[];
}

/** A statement's text with `?` placeholders, and the parameter name of each, in order. */
interface Compiled {
  text: string;
  names: string[];
}

const compiled = new Map<string, Compiled>();

/**
 * Rewrites `:name` parameters to `?` (a name used twice binds twice), leaving quoted literals
 * (`'...'`, with `''` inside), quoted identifiers and PostgreSQL casts (`::jsonb`) alone. Cached:
 * builders produce a fixed set of texts. Refused, because they could hide or fake a parameter:
 * a positional `?`, SQL comments (`--`, `/*`: explain SQL in the builder's own comments),
 * dollar-quoted strings and array slices (`a[1:2]`); none is needed by the store's statements.
 */
export function compile(sql: string): Compiled {
  let c = compiled.get(sql);
  if (c !== undefined) return c;
  let text = '';
  const names: string[] = [];
  let quote: string | null = null;
  for (let i = 0; i < sql.length; i++) {
    const ch = sql[i] as string;
    if (quote) {
      if (ch === quote) quote = null;
      text += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      text += ch;
    } else if (ch === '?') {
      throw new Error('a statement uses a positional ? placeholder: name its parameters (:name)');
    } else if ((ch === '-' && sql[i + 1] === '-') || (ch === '/' && sql[i + 1] === '*') || ch === '$' || ch === '[') {
      throw new Error(`a statement contains ${JSON.stringify(sql.slice(i, i + 2))}: comments, dollar quotes and array slices are not supported in statement text`);
    } else if (ch === ':' && sql[i + 1] === ':') {
      text += '::';
      i++;
    } else if (ch === ':' && /[a-z_]/i.test(sql[i + 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && /[a-z0-9_]/i.test(sql[j] as string)) j++;
      names.push(sql.slice(i + 1, j));
      text += '?';
      i = j - 1;
    } else {
      text += ch;
    }
  }
  c = { text, names };
  if (compiled.size < 10_000) compiled.set(sql, c);
  return c;
}

/** The positional text and values of a statement. */
export function bind(st: Statement): { text: string; values: readonly SqlValue[] } {
  if (st.positional !== undefined) return { text: st.sql, values: st.positional };
  const { text, names } = compile(st.sql);
  const values = names.map((n) => {
    const v = st.params[n];
    if (v === undefined) throw new Error(`statement parameter :${n} has no value`);
    return v;
  });
  return { text, values };
}

/** Rows of a statement (a SELECT, or one with RETURNING). */
export function all<T = Record<string, unknown>>(db: SqlRunner, st: Statement): Promise<T[]> {
  const { text, values } = bind(st);
  return db.all<T>(text, values);
}

/** Runs a statement without result rows; resolves with the number of rows changed. */
export function run(db: SqlRunner, st: Statement): Promise<number> {
  const { text, values } = bind(st);
  return db.run(text, values);
}

/** The first row of a statement, or null. */
export async function one<T = Record<string, unknown>>(db: SqlRunner, st: Statement): Promise<T | null> {
  const [row] = await all<T>(db, st);
  return row ?? null;
}
