/**
 * @module store/postgres/pg-client — node-postgres behind the async SqlClient door, for the
 * multi-node mode (docs/design.md §8). A pool serves concurrent statements; a transaction holds one pooled
 * connection from BEGIN to COMMIT. int8 columns come back as numbers (ids and millisecond times fit
 * in 2^53), so both dialects return the same types.
 */
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import type { SqlClient, SqlRunner, SqlValue, TransactionOptions } from '../sql/client.js';
import { runMigrations, type MigrationSession } from '../sql/migrations.js';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
const INT8_OID = 20;
/** Any constant: the advisory lock that serializes migrations when several processes start at once. */
const MIGRATION_LOCK = 74_635_201;

/** Rewrites `?` placeholders to `$1, $2, ...`, leaving quoted literals and identifiers alone. */
export function toPgPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: string | null = null;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = null;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      out += `$${++n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

/** A statement as sent: `$n` placeholders, and a name when it is prepared once per connection. */
interface PgStatement {
  text: string;
  name: string | undefined;
}

const converted = new Map<string, PgStatement>();
/**
 * The statement for a SQL text. The store's statements are a fixed set of texts, so each is
 * prepared once per pooled connection and then only bound and executed: parsing and planning
 * cost more than executing most of them (~1–2 ms planning for a lease query vs ~0.1 ms to run).
 * Past the cache's bound (never, in practice) statements go unnamed.
 */
function pgStatement(sql: string): PgStatement {
  let s = converted.get(sql);
  if (s === undefined) {
    const text = toPgPlaceholders(sql);
    s = { text, name: undefined };
    if (converted.size < 5000) {
      s.name = `ehrsync_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
      converted.set(sql, s);
    }
  }
  return s;
}

/** Options of the PostgreSQL client. */
export interface PgClientOptions {
  /** Use this schema (created if missing) instead of `public`: one schema per test, or per tenant of a shared server. */
  schema?: string;
  /** Pool size. Default 10. */
  max?: number;
}

/** A PostgreSQL database as a SqlClient. */
export class PgClient implements SqlClient {
  readonly dialect = 'postgres' as const;
  readonly pool: pg.Pool;
  /** Connections with `synchronous_commit = off`, for single non-durable statements; opened on first use. */
  private relaxedPool: pg.Pool | undefined;
  private readonly schema: string | undefined;
  private readonly url: string;
  private readonly listeners = new Set<() => Promise<void>>();

  constructor(url: string, options: PgClientOptions = {}) {
    this.url = url;
    this.schema = options.schema;
    if (this.schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(this.schema)) throw new Error(`invalid schema name ${JSON.stringify(this.schema)}`);
    this.pool = this.newPool(options.max ?? 10, []);
  }

  private newPool(max: number, settings: string[]): pg.Pool {
    const pool = new pg.Pool({
      connectionString: this.url,
      max,
      options: [...(this.schema ? [`-c search_path=${this.schema}`] : []), ...settings].join(' ') || undefined,
      types: {
        getTypeParser: ((oid: number, format?: string) => (oid === INT8_OID ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text'))) as typeof pg.types.getTypeParser,
      },
    });
    // An idle client losing its connection (server restart) must not crash the process; the pool replaces it.
    pool.on('error', () => {});
    return pool;
  }

  async allNonDurable<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    // jit=off too: with table statistics, the lease statement's estimated cost passes PostgreSQL's
    // JIT threshold, and compiling it took 0.45–0.9 s per call (against 3–10 ms to run it) on each
    // connection's first five executions. These connections already need startup options; the main
    // pool sends none without a schema (poolers refuse options they do not track), and its
    // statements (by primary key, small joins) stay under the threshold.
    this.relaxedPool ??= this.newPool(2, ['-c synchronous_commit=off', '-c jit=off']);
    return this.runner(this.relaxedPool).all<T>(sql, params);
  }

  private runner(client: pg.Pool | pg.PoolClient): SqlRunner {
    return {
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => (await client.query({ ...pgStatement(sql), values: params as unknown[] })).rows as T[],
      run: async (sql: string, params: readonly SqlValue[] = []) => (await client.query({ ...pgStatement(sql), values: params as unknown[] })).rowCount ?? 0,
    };
  }

  async all<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.runner(this.pool).all<T>(sql, params);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.runner(this.pool).run(sql, params);
  }

  /**
   * A pooled connection that cannot crash the process. pg-pool listens for 'error' only on idle
   * clients, and a pg Client emits 'error' when its connection ends (server restart, failover),
   * even while a query is running (the query rejects as well): without a listener of ours, that
   * event is an uncaught exception. `release` gives the client back, or discards it once broken.
   */
  private async checkout(): Promise<{ client: pg.PoolClient; release: () => void }> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    return {
      client,
      release: () => {
        client.removeListener('error', onError);
        client.release(broken);
      },
    };
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    const { client, release } = await this.checkout();
    try {
      await client.query('BEGIN');
      // Not waiting for the WAL flush: atomic and consistent, possibly lost on a server crash.
      if (options.durable === false) await client.query('SET LOCAL synchronous_commit = off');
      const result = await fn(this.runner(client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      release();
    }
  }

  /** The one runner (store/sql/migrations.ts), in a transaction of `migrationTransaction`. */
  async migrate(): Promise<void> {
    await runMigrations({ dialect: this.dialect, exclusive: (fn) => this.migrationTransaction(fn) }, MIGRATIONS_DIR);
  }

  /**
   * Runs `fn` in one transaction on one pooled connection, under a session-level advisory lock
   * taken before the transaction begins and released after it ends: a second process starting at
   * once waits at the lock until the first has committed, then finds the migrations recorded. The
   * schema is created under the lock too, before the transaction, as the connection's search_path
   * already names it.
   */
  private async migrationTransaction<T>(fn: (session: MigrationSession) => Promise<T>): Promise<T> {
    const { client, release } = await this.checkout();
    try {
      await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
      try {
        if (this.schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${this.schema}`);
        await client.query('BEGIN');
        try {
          // Unnamed statements: each runs once, not worth a prepared statement on the connection.
          const result = await fn({
            all: async <R>(sql: string, params: readonly SqlValue[] = []) => (await client.query(toPgPlaceholders(sql), params as unknown[])).rows as R[],
            run: async (sql: string, params: readonly SqlValue[] = []) => (await client.query(toPgPlaceholders(sql), params as unknown[])).rowCount ?? 0,
            // Without parameters node-postgres uses the simple query protocol, which runs every statement of a script.
            script: async (sql: string) => void (await client.query(sql)),
          });
          await client.query('COMMIT');
          return result;
        } catch (err) {
          await client.query('ROLLBACK').catch(() => {});
          throw err;
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
      }
    } finally {
      release();
    }
  }

  /** The NOTIFY channel of `name` in this schema (schemas sharing a server must not wake each other). */
  private channel(name: string): string {
    // Identifiers stop at 63 bytes: a hash keeps any schema's channel short and distinct.
    return `${name}_${createHash('sha256').update(this.schema ?? 'public').digest('hex').slice(0, 16)}`;
  }

  async notify(name: string, payload: string): Promise<void> {
    await this.pool.query('SELECT pg_notify($1, $2)', [this.channel(name), payload]);
  }

  /**
   * Calls `onNotify` on every NOTIFY on `name` in this schema, over a dedicated connection
   * that reconnects with backoff after a server restart. It also calls `onNotify('')` after each
   * reconnect (not the first connect), because notifications sent while it was away are lost. Returns a stop function.
   */
  listen(name: string, onNotify: (payload: string) => void): () => Promise<void> {
    const channel = this.channel(name);
    let stopped = false;
    let client: pg.Client | null = null;
    let delay = 250;
    let reconnect = false;
    let timer: NodeJS.Timeout | null = null;
    const connect = async (): Promise<void> => {
      if (stopped) return;
      // keepAlive: a connection dropped without a reset (failover, NAT) is noticed and replaced.
      const c = new pg.Client({ connectionString: this.url, keepAlive: true });
      client = c;
      c.on('notification', (n) => onNotify(n.payload ?? ''));
      c.on('error', () => retry(c));
      c.on('end', () => retry(c));
      try {
        await c.connect();
        await c.query(`LISTEN ${channel}`);
        delay = 250;
        if (reconnect) onNotify('');
        reconnect = true;
      } catch {
        retry(c);
      }
    };
    const retry = (c: pg.Client): void => {
      if (stopped || client !== c) return;
      client = null;
      c.end().catch(() => {});
      timer = setTimeout(() => void connect(), delay);
      timer.unref();
      delay = Math.min(delay * 2, 5000);
    };
    void connect();
    const stop = async (): Promise<void> => {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      this.listeners.delete(stop);
      if (c) await c.end().catch(() => {});
    };
    this.listeners.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners].map((stop) => stop()));
    await Promise.all([this.pool.end(), this.relaxedPool?.end()]);
  }
}
