/**
 * PostgreSQL for tests: a fresh schema per test on the server at EHRSYNC_TEST_POSTGRES_URL (default
 * postgres://postgres@127.0.0.1:5432/test), dropped afterwards unless the test failed (kept for
 * inspection). When no server answers, tests skip with a message saying how to run them.
 */
import { randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';

export const POSTGRES_URL = process.env.EHRSYNC_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

let reachable: Promise<string | null> | undefined;

/** Null when PostgreSQL answers; otherwise why not (the skip message). */
export function postgresUnavailable(): Promise<string | null> {
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return null;
    } catch (e) {
      return `PostgreSQL is not reachable at ${POSTGRES_URL} (${(e as Error).message}); start one or set EHRSYNC_TEST_POSTGRES_URL to run these tests (CI runs them).`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

/** A `postgres://…?schema=…` URL of a fresh schema, dropped after the test when it passed. */
export async function freshSchemaUrl(t: TestContext): Promise<string> {
  const schema = `t_${randomBytes(6).toString('hex')}`;
  t.after(async () => {
    // A failed test keeps its schema for inspection, as pg-boss does.
    const failed = (t as unknown as { passed?: boolean }).passed === false;
    if (failed) return;
    const client = new pg.Client({ connectionString: POSTGRES_URL });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  return url.toString();
}
