/**
 * Issue 8, "Faults": PostgreSQL restarting while real worker processes deliver. The workers keep
 * running, reconnect, and finish: every delivery succeeds, none is lost, extra requests repeat the
 * `webhook-id`; and a change committed after the restart still reaches the receiver, with every
 * worker's LISTEN connection back.
 *
 * Why a proxy stands for the restart: the PostgreSQL server is shared by every other test (and
 * restarting it needs privileges a test should not have), so the workers reach it through a TCP
 * proxy on 127.0.0.1 instead. "Restart" = the proxy stops listening, cuts every connection (each
 * client sees its connection end, mid-query or idle, as on a server shutdown), refuses new
 * connections for 2 s (ECONNREFUSED, as while the server is down), then listens again on the same
 * port. Work that was in flight on the server is rolled back, exactly as a real restart does.
 *
 * EHRSYNC_RESTART_EVENTS=N changes the number of events (default 5,000, × 2 endpoints).
 * Nothing asserts a duration.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { emitEvents } from '../helpers/outbox.js';
import { POSTGRES_URL, postgresUnavailable } from '../helpers/postgres.js';
import { assertRunning, seedFaultWorld, startPgProxy, startWorker, stopWorker, until } from '../helpers/workers.js';

const unavailable = await postgresUnavailable();
const N = Number(process.env.EHRSYNC_RESTART_EVENTS ?? 5_000);
const ENDPOINTS = ['/a', '/b'];
const DOWN_MS = 2000;

test(`PostgreSQL restarts mid-run (a proxy drops every connection, refuses new ones for ${DOWN_MS / 1000} s): workers reconnect, deliver all ${N} × ${ENDPOINTS.length}, and later changes still arrive`, { skip: unavailable ?? false, timeout: 600_000 }, async (t) => {
  const { url, schema, key, rx, store, connectionId, eventIds } = await seedFaultWorld(t, { name: 'Restart', paths: ENDPOINTS, maxConcurrency: 32, events: N });
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  t.after(() => admin.end());
  // The sync role runs too (its scheduler polls the store every second, so it meets the outage),
  // with nothing to sync: the connection's connector is a test fixture.
  await admin.query(`UPDATE ${schema}.connections SET next_sync_at = $1`, [Date.now() + 86_400_000]);

  const target = new URL(POSTGRES_URL);
  const proxy = await startPgProxy(t, { host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(url);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  const database = viaProxy.toString();
  const workers = [
    startWorker(t, { database, key }),
    startWorker(t, { database, key }),
    startWorker(t, { database, key, roles: 'sync,delivery' }),
  ];
  await Promise.all(workers.map((w) => w.ready));

  const listenSql = `LISTEN ehrsync_deliveries_due_${createHash('sha256').update(schema).digest('hex').slice(0, 16)}`;
  const listeners = async (): Promise<number> => (await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = $1', [listenSql])).rows[0].n as number;
  await until('every worker listening', async () => (await listeners()) === workers.length);
  const succeeded = async (): Promise<number> => (await admin.query(`SELECT count(*)::int AS n FROM ${schema}.deliveries WHERE status = 'succeeded'`)).rows[0].n as number;

  const total = N * ENDPOINTS.length;
  const runStart = Date.now();
  await until(`${Math.round(total / 3)} requests before the restart`, () => rx.total() >= total / 3);
  const acceptedBefore = proxy.accepted();
  await proxy.restart(DOWN_MS);
  assert.ok((await succeeded()) < total, 'the restart landed before everything was delivered');

  await until(`all ${total} deliveries succeeded after the restart`, async () => {
    assertRunning(workers);
    return (await succeeded()) === total;
  });
  const runMs = Date.now() - runStart;
  assertRunning(workers);
  assert.ok(proxy.accepted() > acceptedBefore, 'the workers reconnected through the restarted server');
  await until('every worker listening again', async () => (await listeners()) === workers.length);

  // A change committed after the restart: its NOTIFY reaches the workers' new LISTEN connections.
  const [late] = await emitEvents(store, connectionId, ['late'], Date.now());
  eventIds.push(late as string);
  await until('the change committed after the restart to arrive', () => ENDPOINTS.every((p) => rx.byPair.has(`${p} ${late}`)));
  await until('its deliveries to be recorded', async () => (await succeeded()) === total + ENDPOINTS.length);

  const exits = await Promise.all(workers.map((w) => stopWorker(w)));
  for (const [i, e] of exits.entries()) assert.deepEqual(e, { code: 0, signal: null }, `worker ${workers[i]?.pid} stops cleanly on SIGTERM:\n${workers[i]?.output.join('\n')}`);

  const statuses = (await admin.query(`SELECT status, count(*)::int AS n FROM ${schema}.deliveries GROUP BY status`)).rows;
  assert.deepEqual(statuses, [{ status: 'succeeded', n: total + ENDPOINTS.length }], 'every delivery succeeded; none lost, failed or pending');
  assert.deepEqual(rx.bad.slice(0, 5), [], 'every request verifies with standardwebhooks and its webhook-id is the event id');
  let duplicates = 0;
  for (const path of ENDPOINTS) {
    for (const id of eventIds) {
      const ids = rx.byPair.get(`${path} ${id}`);
      assert.ok(ids && ids.length > 0, `${path} ${id} arrived`);
      for (const w of ids) assert.equal(w, ids[0], `every request of ${path} ${id} carries the same webhook-id`);
      duplicates += ids.length - 1;
    }
  }
  assert.equal(rx.byPair.size, eventIds.length * ENDPOINTS.length, 'no request for anything else');
  const logged = workers.flatMap((w) => w.output.filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg?: string }).msg ?? ''));
  const messages = [...new Set(logged)].map((m) => `${m} ×${logged.filter((x) => x === m).length}`).join('; ');
  const line = `events ${N}, deliveries ${total + ENDPOINTS.length}, requests ${rx.total()}, duplicates ${duplicates}, outage ${DOWN_MS / 1000} s, run ${(runMs / 1000).toFixed(1)} s; worker log lines: ${messages || 'none'}`;
  t.diagnostic(line);
});
