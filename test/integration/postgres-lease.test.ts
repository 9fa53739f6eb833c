/**
 * The PostgreSQL delivery hot path under the conditions the contract suite does not create: a
 * worker leasing while another holds row locks on the oldest heads, and the plans of the lease and
 * outcome statements on a fresh table that has no statistics yet (what every new deployment, and
 * every benchmark round, starts with). Skips, saying why, when no server answers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { PgClient, toPgPlaceholders } from '../../src/store/postgres/pg-client.js';
import { openStore } from '../../src/store/open.js';
import type { SqlValue } from '../../src/store/sql/client.js';
import type { DeliveryOutcome, LeasedDelivery } from '../../src/domain/delivery.js';
import type { Store } from '../../src/store/ports.js';
import { emitEvents } from '../helpers/outbox.js';
import { freshSchemaUrl, POSTGRES_URL, postgresUnavailable } from '../helpers/postgres.js';

const unavailable = await postgresUnavailable();
type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };
const T0 = Date.parse('2026-11-02T15:00:00.000Z');

async function world(t: Parameters<typeof freshSchemaUrl>[0], keys: string[]): Promise<{ store: Store; schema: string; admin: pg.Client; endpointId: string }> {
  const url = await freshSchemaUrl(t);
  const store = await openStore(url);
  t.after(() => store.close());
  const account = await store.createAccount({ name: 'Lease', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_1', now: T0 });
  const endpoint = await store.createEndpoint({ accountId: account.id, url: 'https://a.example/hook', secret: 's', now: T0 });
  for (let i = 0; i < keys.length; i += 1000) await emitEvents(store, connection.id, keys.slice(i, i + 1000), T0);
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  t.after(() => admin.end());
  const schema = new URL(url).searchParams.get('schema') as string;
  await admin.query(`SET search_path = ${schema}`);
  // "A fresh table without statistics": autovacuum must not ANALYZE it while the test runs.
  await admin.query('ALTER TABLE deliveries SET (autovacuum_enabled = off)');
  return { store, schema, admin, endpointId: endpoint.id };
}

/**
 * Leases while another worker's lease is in progress: `lock` rows held with FOR UPDATE in an open
 * transaction. If the lease waits on them instead of skipping them, the transaction is rolled
 * back after a while (so nothing hangs) and the test fails.
 */
async function leaseWhileLocked(admin: pg.Client, lockSql: string, lease: () => Promise<LeasedDelivery[]>): Promise<{ leased: LeasedDelivery[]; locked: number[] }> {
  await admin.query('BEGIN');
  try {
    const locked = (await admin.query<{ id: number }>(lockSql)).rows.map((r) => Number(r.id));
    const leasing = lease();
    const first = await Promise.race([leasing, new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 10_000).unref())]);
    if (first === 'blocked') {
      await admin.query('ROLLBACK');
      await leasing;
      assert.fail("the lease waited for the other worker's locked rows instead of skipping them");
    }
    return { leased: first, locked };
  } finally {
    await admin.query('ROLLBACK');
  }
}

test('PostgreSQL lease: a worker leasing while another holds the oldest heads locked gets its full share of the rows after them', { skip: unavailable ?? false, timeout: 60_000 }, async (t) => {
  const { store, admin } = await world(t, Array.from({ length: 20 }, (_, i) => `k${i}`));
  const { leased, locked } = await leaseWhileLocked(admin, 'SELECT id FROM deliveries ORDER BY event_seq LIMIT 4 FOR UPDATE', () =>
    store.leaseDeliveries({ now: T0, limit: 6, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 10 }),
  );
  // Skipping the locked rows inside the LIMIT: the scan goes on past them instead of returning
  // fewer (or none) because the first six candidates included the locked four.
  assert.equal(leased.length, 6, 'the full share of six');
  assert.ok(leased.every((l) => !locked.includes(l.delivery.id)), 'none of the rows the other worker holds');
  assert.deepEqual(
    leased.map((l) => l.delivery.orderingKey),
    ['k4', 'k5', 'k6', 'k7', 'k8', 'k9'],
    'the next six heads, oldest first',
  );
});

test('PostgreSQL lease: a head another worker holds locked still holds back the later events of its key', { skip: unavailable ?? false, timeout: 60_000 }, async (t) => {
  const { store, admin } = await world(t, ['a', 'a', 'a', 'b', 'c', 'b']);
  // The heads of a and b are being leased by another worker (locked, not committed yet).
  const { leased } = await leaseWhileLocked(
    admin,
    "SELECT id FROM deliveries WHERE ordering_key IN ('a', 'b') AND event_seq IN (SELECT MIN(event_seq) FROM deliveries GROUP BY ordering_key) FOR UPDATE",
    () => store.leaseDeliveries({ now: T0, limit: 10, leaseUntil: T0 + 60_000, owner: 'w2', maxPerEndpoint: 10 }),
  );
  assert.deepEqual(
    leased.map((l) => l.delivery.orderingKey),
    ['c'],
    'only c: the second a and the second b wait for their heads, which are skipped but still pending',
  );
});

test('PostgreSQL lease and outcome statements read deliveries by index on a fresh table without statistics', { skip: unavailable ?? false }, async (t) => {
  const { store, admin } = await world(t, Array.from({ length: 3000 }, (_, i) => `k${i}`));
  // The statements as the store sends them, captured with their parameters.
  const sent: { sql: string; params: readonly SqlValue[] }[] = [];
  for (const method of ['run', 'allNonDurable'] as const) {
    const original = PgClient.prototype[method];
    t.mock.method(PgClient.prototype, method, function (this: PgClient, sql: string, params: readonly SqlValue[] = []) {
      sent.push({ sql, params });
      return (original as (this: PgClient, s: string, p: readonly SqlValue[]) => Promise<never>).call(this, sql, params);
    });
  }
  const leased = await store.leaseDeliveries({ now: T0, limit: 16, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 32, ownInFlight: new Map() });
  assert.equal(leased.length, 16);
  const outcomes: DeliveryOutcome[] = leased.map((l) => ({
    deliveryId: l.delivery.id,
    endpointId: l.endpoint.id,
    owner: 'w',
    attempt: l.delivery.attempts,
    startedAt: T0,
    durationMs: 5,
    statusCode: 200,
    errorClass: null,
    responseExcerpt: 'ok',
    result: 'succeeded',
    error: null,
  }));
  await store.recordDeliveryOutcomes(outcomes);
  t.mock.restoreAll();
  const [stats] = (await admin.query<{ analyzed: boolean }>("SELECT last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL AS analyzed FROM pg_stat_user_tables WHERE relid = 'deliveries'::regclass")).rows;
  assert.equal(stats?.analyzed, false, 'the table has no statistics, as in a fresh deployment');
  const lease = sent.find((s) => s.sql.includes('UPDATE deliveries SET lease_until'));
  const record = sent.find((s) => s.sql.includes('INSERT INTO attempts'));
  assert.ok(lease && record, 'both statements were sent');
  for (const [name, s] of [['lease', lease], ['record', record]] as const) {
    const [explained] = (await admin.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (FORMAT JSON) ${toPgPlaceholders(s.sql)}`, s.params as unknown[])).rows;
    const scans: string[] = [];
    // A bitmap heap scan names its index on the bitmap index scans below it.
    const indexes = (node: PlanNode): string[] => [...(node['Index Name'] ? [String(node['Index Name'])] : []), ...(node.Plans ?? []).flatMap(indexes)];
    const walk = (node: PlanNode): void => {
      if (node['Relation Name'] === 'deliveries') scans.push(`${String(node['Node Type'])} using ${indexes(node).join(', ') || 'no index'}`);
      for (const child of node.Plans ?? []) walk(child);
    };
    walk(explained!['QUERY PLAN'][0]!.Plan);
    assert.ok(scans.length > 0, `${name}: the plan reads deliveries`);
    // A scan of the whole table (or of every pending row, for a few) makes each call cost the backlog.
    assert.deepEqual(scans.filter((s) => s.startsWith('Seq Scan')), [], `${name}: no sequential scan of deliveries (${scans.join('; ')})`);
    assert.deepEqual(scans.filter((s) => s.startsWith('Bitmap Heap Scan') && !s.includes('pkey')), [], `${name}: no bitmap scan of a secondary index (${scans.join('; ')})`);
  }
  const [counts] = (await admin.query<{ succeeded: string }>("SELECT COUNT(*) FILTER (WHERE status = 'succeeded') AS succeeded FROM deliveries")).rows;
  assert.equal(Number(counts?.succeeded), 16, 'the outcomes were recorded');
});

test('PostgreSQL per-key check reads the key\'s own deliveries, not the endpoint\'s earlier backlog, on a fresh table', { skip: unavailable ?? false, timeout: 120_000 }, async (t) => {
  // A failing endpoint: 4,000 deliveries, four per key; each key's head waits for its retry, so
  // the other 3,000 are blocked behind it. Every lease scans them and checks each one's key.
  const { store, admin } = await world(t, Array.from({ length: 4000 }, (_, i) => `k${i % 1000}`));
  await admin.query('UPDATE deliveries d SET next_attempt_at = $1 WHERE event_seq IN (SELECT MIN(event_seq) FROM deliveries GROUP BY ordering_key)', [T0 + 3_600_000]);
  // The lease statement as the store sends it, captured with its parameters.
  const sent: { sql: string; params: readonly SqlValue[] }[] = [];
  const original = PgClient.prototype.allNonDurable;
  t.mock.method(PgClient.prototype, 'allNonDurable', function (this: PgClient, sql: string, params: readonly SqlValue[] = []) {
    sent.push({ sql, params });
    return (original as (this: PgClient, s: string, p: readonly SqlValue[]) => Promise<never>).call(this, sql, params);
  });
  assert.deepEqual(await store.leaseDeliveries({ now: T0, limit: 16, leaseUntil: T0 + 60_000, owner: 'w', maxPerEndpoint: 32, ownInFlight: new Map() }), [], 'nothing is leasable: heads wait, the rest is blocked');
  t.mock.restoreAll();
  const lease = sent.find((x) => x.sql.includes('UPDATE deliveries SET lease_until'));
  assert.ok(lease, 'the lease statement was sent (the endpoint has due deliveries, so it gets a share)');
  // EXPLAIN ANALYZE runs the statement: inside a transaction that is rolled back.
  await admin.query('BEGIN');
  const [explained] = (await admin.query<{ 'QUERY PLAN': { Plan: PlanNode }[] }>(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${toPgPlaceholders(lease.sql)}`, lease.params as unknown[])).rows;
  await admin.query('ROLLBACK');
  const checks: PlanNode[] = [];
  const walk = (node: PlanNode): void => {
    if (node['Relation Name'] === 'deliveries' && node['Parent Relationship'] === 'SubPlan') checks.push(node);
    for (const child of node.Plans ?? []) walk(child);
  };
  walk(explained!['QUERY PLAN'][0]!.Plan);
  assert.equal(checks.length, 1, 'one per-key check in the plan');
  const check = checks[0] as PlanNode;
  const loops = Number(check['Actual Loops']);
  const perCheck = (Number(check['Shared Hit Blocks']) + Number(check['Shared Read Blocks'])) / loops;
  assert.equal(loops, 3000, 'each blocked delivery was checked once');
  // Through deliveries_pending_order a check reads a few index pages and a heap page or two; through
  // deliveries_pending_seq it walked the endpoint's earlier pending rows (~15–20 pages per check
  // here, growing with the backlog: 0.06 ms each at 8,000).
  assert.equal(check['Index Name'], 'deliveries_pending_order', 'the check looks the key up in the index keyed by endpoint and key');
  assert.ok(perCheck <= 8, `pages read per check: ${perCheck.toFixed(1)} (must not grow with the backlog)`);
});

test('PostgreSQL lease connections run without JIT (it cost 0.45–0.9 s per lease once the table had statistics)', { skip: unavailable ?? false }, async (t) => {
  const url = await freshSchemaUrl(t);
  const schema = new URL(url).searchParams.get('schema') as string;
  const client = new PgClient(POSTGRES_URL, { schema });
  t.after(() => client.close());
  assert.deepEqual(await client.allNonDurable('SHOW jit'), [{ jit: 'off' }], 'the connections the lease statement runs on');
  assert.deepEqual(await client.allNonDurable('SHOW synchronous_commit'), [{ synchronous_commit: 'off' }], 'with their other setting kept');
});
