/**
 * Issue 8, "Faults": three real worker processes (`ehrsync serve --roles delivery`) on one
 * PostgreSQL schema deliver 20,000 events to two endpoints (40,000 deliveries); the worker holding
 * the most leases is killed with SIGKILL at ~1/4 and again (after the restart) at ~1/2 of the
 * deliveries, each time while its requests are in flight (the receiver holds its answers for a
 * moment). Every (event, endpoint) arrives at least once, every request verifies with the
 * standardwebhooks library, and every extra request repeats the first one's `webhook-id`. Extra
 * requests may only come from deliveries the killed worker held (leased, outcome not recorded) when
 * it died — at most its in-flight cap — so duplicates ≤ kills × that cap; the test prints them.
 *
 * EHRSYNC_FAULT_EVENTS=N changes the number of events (default 20,000, what CI runs). Nothing here
 * asserts a duration: the killed worker's leases are taken over when they expire (the dispatcher's
 * lease: its longest HTTP timeout + 30 s = 45 s), so a run lasts at least that long after a kill.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { POSTGRES_URL, postgresUnavailable } from '../helpers/postgres.js';
import { assertRunning, seedFaultWorld, sleep, startWorker, stopWorker, until } from '../helpers/workers.js';
import type { WorkerProcess } from '../helpers/workers.js';

const unavailable = await postgresUnavailable();
const N = Number(process.env.EHRSYNC_FAULT_EVENTS ?? 20_000);
/** Each worker's in-flight cap (EHRSYNC_DELIVERY_CONCURRENCY). */
const PER_WORKER = 16;
/**
 * Per-endpoint in-flight cap (endpoints.max_concurrency), counted over every worker's leases. Above
 * what three workers can hold at once, so that all three share the work: with a cap the first
 * worker can fill alone, it keeps every slot, and a dead worker's leases block the endpoint until
 * they expire.
 */
const CAP = 64;
const ENDPOINTS = ['/a', '/b'];
const KILLS = 2;

test(`three delivery workers, one SIGKILLed twice: ${N} events × ${ENDPOINTS.length} endpoints all arrive, duplicates repeat the webhook-id`, { skip: unavailable ?? false, timeout: 600_000 }, async (t) => {
  const { url, schema, key, rx, endpointPaths: endpointIds, eventIds, seedMs } = await seedFaultWorld(t, { name: 'Faults', paths: ENDPOINTS, maxConcurrency: CAP, events: N });
  const total = N * ENDPOINTS.length;

  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  t.after(() => admin.end());
  const succeeded = async (): Promise<number> => (await admin.query(`SELECT count(*)::int AS n FROM ${schema}.deliveries WHERE status = 'succeeded'`)).rows[0].n as number;
  /** Deliveries a (dead) worker still holds: leased by it, outcome not recorded. */
  const heldBy = async (pid: number): Promise<string[]> =>
    (
      await admin.query(
        `SELECT e.id AS event_id, d.endpoint_id FROM ${schema}.deliveries d JOIN ${schema}.events e ON e.seq = d.event_seq
         WHERE d.status = 'pending' AND d.lease_owner LIKE $1`,
        [`${pid}-%`],
      )
    ).rows.map((r: { event_id: string; endpoint_id: string }) => `${endpointIds.get(r.endpoint_id)} ${r.event_id}`);

  const runStart = Date.now();
  const start = (): WorkerProcess => startWorker(t, { database: url, key, env: { EHRSYNC_DELIVERY_CONCURRENCY: String(PER_WORKER) } });
  /** Deliveries leased and not yet recorded, per worker. */
  const leasesByWorker = async (): Promise<Map<number, number>> =>
    new Map(
      (
        await admin.query(`SELECT split_part(lease_owner, '-', 1)::int AS pid, count(*)::int AS n FROM ${schema}.deliveries WHERE status = 'pending' AND lease_owner IS NOT NULL GROUP BY 1`)
      ).rows.map((r: { pid: number; n: number }) => [r.pid, r.n]),
    );
  const workers = [start(), start(), start()];
  await Promise.all(workers.map((w) => w.ready));

  const held = new Set<string>();
  const heldCounts: number[] = [];
  /** Leases per worker just before each kill. */
  const spread: string[] = [];
  for (let kill = 1; kill <= KILLS; kill++) {
    const at = (total * kill) / (KILLS + 2);
    await until(`${at} requests before kill ${kill}`, () => {
      assertRunning(workers);
      return rx.total() >= at;
    });
    // The kill lands mid-request: the receiver stops answering, so every worker soon has its
    // in-flight requests (at most PER_WORKER) stuck there and, once earlier outcomes are recorded,
    // no other lease. The worker holding the most leases dies; then the receiver answers again.
    rx.pause();
    await sleep(1500); // longer than the 1 s polling backstop: every worker has looked for work
    let leases = new Map<number, number>();
    await until('a worker with requests in flight', async () => {
      leases = await leasesByWorker();
      return workers.some((w) => (leases.get(w.pid) ?? 0) > 0) && workers.every((w) => (leases.get(w.pid) ?? 0) <= PER_WORKER);
    });
    const slot = workers.reduce((best, w, i) => ((leases.get(w.pid) ?? 0) > (leases.get((workers[best] as WorkerProcess).pid) ?? 0) ? i : best), 0);
    const victim = workers[slot] as WorkerProcess;
    victim.child.kill('SIGKILL');
    const exit = await victim.exited;
    assert.equal(exit.signal, 'SIGKILL');
    await sleep(300); // let the server notice the dead backend
    const h = await heldBy(victim.pid);
    rx.resume();
    heldCounts.push(h.length);
    for (const pair of h) held.add(pair);
    spread.push(workers.map((w) => leases.get(w.pid) ?? 0).join('/'));
    workers[slot] = start();
    await (workers[slot] as WorkerProcess).ready;
  }
  assert.ok((await succeeded()) < total, 'the kills landed before everything was delivered');

  await until(`all ${total} deliveries succeeded`, async () => {
    assertRunning(workers);
    return (await succeeded()) === total;
  });
  const runMs = Date.now() - runStart;
  assertRunning(workers);
  const exits = await Promise.all(workers.map((w) => stopWorker(w)));
  for (const [i, e] of exits.entries()) assert.deepEqual(e, { code: 0, signal: null }, `worker ${workers[i]?.pid} stops cleanly on SIGTERM:\n${workers[i]?.output.join('\n')}`);

  const statuses = (await admin.query(`SELECT status, count(*)::int AS n FROM ${schema}.deliveries GROUP BY status`)).rows;
  assert.deepEqual(statuses, [{ status: 'succeeded', n: total }], 'every delivery is recorded as succeeded, none failed or pending');
  assert.deepEqual(rx.bad.slice(0, 5), [], 'every request verifies with standardwebhooks and its webhook-id is the event id');
  let duplicates = 0;
  const duplicatedPairs: string[] = [];
  for (const path of ENDPOINTS) {
    for (const id of eventIds) {
      const pair = `${path} ${id}`;
      const ids = rx.byPair.get(pair);
      assert.ok(ids && ids.length > 0, `${pair} arrived`);
      for (const w of ids) assert.equal(w, ids[0], `every request of ${pair} carries the first one's webhook-id`);
      if (ids.length > 1) {
        duplicates += ids.length - 1;
        duplicatedPairs.push(pair);
      }
    }
  }
  assert.equal(rx.byPair.size, total, 'no request for anything else');
  assert.equal(rx.total(), total + duplicates);
  for (const pair of duplicatedPairs) assert.ok(held.has(pair), `${pair} arrived twice, so a killed worker held it when it died`);
  assert.ok(duplicates <= heldCounts.reduce((a, b) => a + b, 0), 'duplicates ≤ deliveries the killed workers held');
  for (const n of heldCounts) assert.ok(n <= PER_WORKER, `a killed worker held ${n} ≤ its in-flight cap ${PER_WORKER}`);
  assert.ok(duplicates <= KILLS * PER_WORKER, `duplicates (${duplicates}) ≤ kills × in-flight cap per worker (${KILLS * PER_WORKER})`);
  const line = `events ${N}, deliveries ${total}, requests ${rx.total()}, duplicates ${duplicates} (held by the killed worker: ${heldCounts.join(' + ')}; leases per worker before each kill: ${spread.join(', ')}), seed ${(seedMs / 1000).toFixed(1)} s, delivery with ${KILLS} kills ${(runMs / 1000).toFixed(1)} s (${Math.round(total / (runMs / 1000))}/s)`;
  t.diagnostic(line);
});
