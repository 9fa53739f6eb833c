/**
 * @module store/sqlite/sqlite-client — better-sqlite3 behind the async SqlClient door.
 *
 * Durability: WAL with synchronous=FULL, so a committed sync survives power loss (docs/design.md §8).
 * Concurrency: one connection serves the whole process. better-sqlite3 is synchronous, but a
 * transaction callback is async, so other tasks could slip their statements into an open
 * transaction between two awaits. A single-writer gate prevents that: while a transaction is open,
 * every other statement waits for it to finish.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { runMigrations } from '../sql/migrations.js';
import type { SqlClient, SqlRunner, SqlValue, TransactionOptions } from '../sql/client.js';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');

/** Opens (creating if needed) a SQLite database file; `:memory:` for a throwaway one. */
export class SqliteClient implements SqlClient {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  /** Resolves when the open transaction ends; null when none is open. */
  private active: Promise<void> | null = null;
  private readonly runner: SqlRunner;
  /** Transaction control, prepared once (`exec` compiles its text on every call). Not the synchronous pragmas: SQLite applies those when compiling them. */
  private readonly control: Record<'begin' | 'commit' | 'rollback', Database.Statement>;
  /** The connection is at synchronous=NORMAL (inside a relaxed transaction, or a restore failed). */
  private relaxedNow = false;

  constructor(path: string) {
    if (path !== ':memory:') {
      // The database holds PHI: a new one (and its directory, if new) is the owner's alone. SQLite
      // gives its -wal and -shm files the database file's mode. An existing file keeps its mode.
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      try {
        closeSync(openSync(path, 'wx', 0o600));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 10000');
    this.db.pragma('foreign_keys = ON');
    this.control = {
      begin: this.db.prepare('BEGIN IMMEDIATE'),
      commit: this.db.prepare('COMMIT'),
      rollback: this.db.prepare('ROLLBACK'),
    };
    this.runner = {
      all: async <T>(sql: string, params: readonly SqlValue[] = []) => this.allNow<T>(sql, params),
      run: async (sql: string, params: readonly SqlValue[] = []) => this.runNow(sql, params),
    };
  }

  private statement(sql: string): Database.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  private allNow<T>(sql: string, params: readonly SqlValue[]): T[] {
    const s = this.statement(sql);
    if (s.reader) return s.all(...params) as T[];
    s.run(...params);
    return [];
  }

  private runNow(sql: string, params: readonly SqlValue[]): number {
    return this.statement(sql).run(...params).changes;
  }

  // The wait loop is written out in each method on purpose: the statement (or the claim of the
  // gate) must run in the same microtask as the check that the gate is free. Awaiting a helper
  // would resolve a tick later, when another waiter may already have claimed the gate.

  async all<T = Record<string, unknown>>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    while (this.active) await this.active;
    if (this.relaxedNow) this.restoreFull();
    return this.allNow<T>(sql, params);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    while (this.active) await this.active;
    if (this.relaxedNow) this.restoreFull();
    return this.runNow(sql, params);
  }

  async transaction<T>(fn: (tx: SqlRunner) => Promise<T>, options: TransactionOptions = {}): Promise<T> {
    while (this.active) await this.active;
    let release!: () => void;
    this.active = new Promise<void>((resolve) => (release = resolve));
    // In WAL mode, synchronous=NORMAL commits without an fsync: atomic and consistent, but the
    // last commits may be lost on power loss. Set for this one transaction, under the gate.
    const relaxed = options.durable === false;
    try {
      if (relaxed) {
        this.db.exec('PRAGMA synchronous = NORMAL');
        this.relaxedNow = true;
      } else if (this.relaxedNow) this.restoreFull();
      try {
        // IMMEDIATE takes the write lock now, so another process cannot make us fail mid-transaction.
        this.control.begin.run();
        try {
          const result = await fn(this.runner);
          this.control.commit.run();
          return result;
        } catch (err) {
          if (this.db.inTransaction) this.control.rollback.run();
          throw err;
        }
      } finally {
        if (relaxed) {
          try {
            this.restoreFull();
          } catch {
            // This transaction's outcome stands; the connection stays marked relaxed and the next
            // durable transaction or statement restores FULL first.
          }
        }
      }
    } finally {
      // Released on every path, even when a pragma failed.
      this.active = null;
      release();
    }
  }

  /**
   * Back to synchronous=FULL after a relaxed transaction. If that fails, the connection stays
   * marked relaxed and the next durable transaction or statement restores it first (or fails):
   * nothing durable ever commits at NORMAL.
   */
  private restoreFull(): void {
    this.db.exec('PRAGMA synchronous = FULL');
    this.relaxedNow = false;
  }

  /**
   * The one runner (store/sql/migrations.ts) in one `BEGIN IMMEDIATE` transaction under the gate:
   * the write lock serializes processes sharing the file, the gate this process's other tasks.
   */
  async migrate(): Promise<void> {
    await runMigrations(
      {
        dialect: this.dialect,
        // `exec` runs every statement of a script; a prepared statement holds one.
        exclusive: (fn) => this.transaction((tx) => fn({ ...tx, script: async (sql) => void this.db.exec(sql) })),
      },
      MIGRATIONS_DIR,
    );
    // Statements prepared before or during the migration are not kept: they were compiled against
    // an older schema, and the migration's own are not needed again.
    this.statements.clear();
  }

  async close(): Promise<void> {
    while (this.active) await this.active;
    this.statements.clear();
    if (this.db.open) this.db.close();
  }
}
