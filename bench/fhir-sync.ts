/**
 * FHIR sync benchmark (issue 4): one connection whose window holds 5,000 appointments in the demo
 * EHR; each round is a full-window sync over HTTP (fhir connector → detection → SQLite commit), plus
 * the connector's read alone. Reports min and median over rounds; the first round (the baseline,
 * which also warms up the JIT) is reported apart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createConnector } from '../src/connectors/registry.js';
import { syncWindow } from '../src/domain/clock.js';
import { SecretBox } from '../src/domain/secrets.js';
import { startDemoEhr } from '../src/demo-ehr/server.js';
import { openStore } from '../src/store/open.js';
import { syncConnection } from '../src/sync/sync-engine.js';
import { gc, median, min, round } from './stats.js';

const ROUNDS = 5;
const PAGE_SIZE = 500;

export default async function run(args: string[] = []): Promise<Record<string, unknown>> {
  const rounds = Number(args[0] ?? ROUNDS) || ROUNDS;
  const dir = mkdtempSync(join(tmpdir(), 'ehrsync-bench-fhir-'));
  // 10 providers × 100 appointments × 5 days (today and the next four) = 5,000 in the window.
  const ehr = await startDemoEhr({ dataDir: join(dir, 'ehr'), port: 0, clinicSize: { providers: 10, patients: 500, daysBack: 0, daysAhead: 4, perProviderDay: 100 } });
  const store = await openStore(join(dir, 'ehrsync.db'));
  try {
    const box = new SecretBox(SecretBox.generateKey());
    const clock = { now: () => Date.now() };
    const account = await store.createAccount({ name: 'Bench', clientId: 'ci_bench', clientSecretHash: 'h', now: clock.now() });
    const connection = await store.createConnection({ accountId: account.id, connector: 'demo', config: { baseUrl: ehr.url, pageSize: PAGE_SIZE, rateLimitPerSec: 1000 }, now: clock.now(), windowPastDays: 0, windowFutureDays: 5 });
    const connector = createConnector(connection, { secretBox: box });
    const deps = { store, clock, random: () => 0.5, connectorFor: () => connector };
    const window = syncWindow(clock.now(), 0, 5);
    const syncs: number[] = [];
    const reads: number[] = [];
    let baselineMs = 0;
    let count = 0;
    for (let r = 0; r <= rounds; r++) {
      gc();
      let t = performance.now();
      const read = await connector.readSchedule(window, { signal: new AbortController().signal });
      const readMs = performance.now() - t;
      count = read.appointments.length;
      gc();
      t = performance.now();
      const out = await syncConnection(deps, (await store.getConnection(connection.id))!);
      const syncMs = performance.now() - t;
      if (out.status !== 'succeeded') throw new Error(`sync failed: ${out.errorCode} ${out.errorMessage}`);
      if (r === 0) baselineMs = syncMs;
      else {
        syncs.push(syncMs);
        reads.push(readMs);
      }
    }
    if (count !== 5000) throw new Error(`expected 5000 appointments in the window, read ${count}`);
    const ms = min(syncs);
    const result = {
      bench: 'fhir-sync',
      appointments: count,
      page_size: PAGE_SIZE,
      rounds,
      baseline_sync_ms: round(baselineMs),
      sync_ms_min: round(ms),
      sync_ms_median: round(median(syncs)),
      read_ms_min: round(min(reads)),
      read_ms_median: round(median(reads)),
      records_per_s: Math.round((count / ms) * 1000),
      records_per_s_median: Math.round((count / median(syncs)) * 1000),
      ms: round(ms),
    };
    console.log(`fhir-sync: ${count} appointments over HTTP from the demo EHR (pages of ${PAGE_SIZE}); full-window sync min ${result.sync_ms_min} ms / median ${result.sync_ms_median} ms (${result.records_per_s} records/s at min); connector read alone min ${result.read_ms_min} ms; baseline sync ${result.baseline_sync_ms} ms`);
    return result;
  } finally {
    await store.close();
    await ehr.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
