/**
 * @module store/transient — whether a database error is worth retrying: the connection dropped or
 * was refused, the server is restarting or overloaded, a deadlock or serialization failure
 * aborted the transaction, SQLite was busy. Anything else (a constraint, a bug) fails the same way
 * on every try.
 */

/** PostgreSQL SQLSTATE prefixes and codes that a retry can outlive. */
const PG_TRANSIENT = [/^08/, /^40001$/, /^40P01$/, /^57P0[1-3]$/, /^53300$/];
const NODE_TRANSIENT = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'SQLITE_BUSY', 'SQLITE_LOCKED']);

/** True for an error a retry of the same statements can succeed after. */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (NODE_TRANSIENT.has(code) || PG_TRANSIENT.some((re) => re.test(code)))) return true;
  // node-postgres reports a connection lost mid-query without a code.
  const message = err instanceof Error ? err.message : '';
  return /Connection terminated|connection (?:was )?closed|Client has encountered a connection error/i.test(message);
}
