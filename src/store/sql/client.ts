/**
 * @module store/sql/client — the narrow door between the SQL store and a database driver. The
 * store's statements name their parameters (store/sql/statement.ts) and reach the client as one SQL
 * text with `?` placeholders; each client adapts it to its driver. Dialect differences that are not
 * just placeholders live in store/sql/dialect.ts, nowhere else.
 */

/** A value that can be bound to a placeholder. */
export type SqlValue = string | number | null;

/** Runs SQL. Inside a transaction, the callback's client runs on the transaction. */
export interface SqlRunner {
  /** Rows of a SELECT (or a statement with RETURNING). */
  all<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Statement without result rows; resolves with the number of rows changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
}

/** Options of one transaction. */
export interface TransactionOptions {
  /**
   * False: the commit need not survive a power loss (no fsync on SQLite, `synchronous_commit = off`
   * on PostgreSQL); it is still atomic and consistent. Only for writes that are hints, whose loss
   * is harmless (a delivery lease: lost, the delivery is simply leased again). Default true.
   */
  durable?: boolean;
}

/** A database connection (or pool) that can also run a transaction. */
export interface SqlClient extends SqlRunner {
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. SQLite
   * takes the write lock at BEGIN (`BEGIN IMMEDIATE`), so a read-then-write cannot deadlock.
   */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options?: TransactionOptions): Promise<T>;
  /**
   * Rows of one statement that commits on its own without waiting for durability (as
   * `durable: false`); absent where a transaction is as cheap (SQLite). For a hint written in one
   * statement, such as a PostgreSQL delivery lease.
   */
  allNonDurable?<T = Record<string, unknown>>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** Wakes every process listening on `name` (PostgreSQL NOTIFY); absent where one process owns the database. */
  notify?(name: string, payload: string): Promise<void>;
  /** Calls `onNotify` with the payload of each notification on `name` ('' after a reconnect) until the returned function is called. */
  listen?(name: string, onNotify: (payload: string) => void): () => Promise<void>;
  /**
   * Brings the schema up to date: applies the dialect's numbered migrations that the database has
   * not recorded, in one transaction (store/sql/migrations.ts runs them; the client lends its
   * script runner and its migration lock). Safe on every start, and from several processes at
   * once. Rejects with a ConfigError, changing nothing, a database it cannot bring up to date
   * safely, such as one that applied only part of the migrations a squash replaced.
   */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
