/**
 * `ehrsync sync` and `ehrsync recover` as child processes on a real SQLite file: a demo EHR synced
 * (baseline, then a change), progress on stderr without colours off a terminal, exit codes (unknown
 * connection, a failing EHR, a leased connection, bad flags); failed deliveries to a real receiver
 * queued again, a `--wait` that times out with nothing delivering, and one that ends once a real
 * Dispatcher has delivered them.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { test } from 'node:test';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { openStore } from '../../src/store/open.js';
import { startReceiver } from '../helpers/receiver.js';
import { tempDir } from '../helpers/temp.js';
import { untilValue } from '../helpers/wait.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const ENV = { ...process.env, NO_COLOR: undefined, FORCE_COLOR: undefined };

/** Runs the CLI to its end; `onStderrLine` sees stderr as it comes. */
function cli(args: string[], onStderrLine?: (line: string) => void): Promise<Run> {
  const child = spawn(process.execPath, ['bin/ehrsync.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr += `${line}\n`;
    onStderrLine?.(line);
  });
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

function json(r: Run): Record<string, unknown> {
  assert.ok(r.stdout.trim(), `no stdout; stderr: ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const until = <T>(what: string, fn: () => Promise<T | undefined>, limitMs = 30_000): Promise<T> => untilValue(what, fn, limitMs, 100);

test('ehrsync sync and recover: results, progress, exit codes, a recovery watched until delivered', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const db = join(dir, 'ehrsync.db');
  const ehr = await startDemoEhr({ dataDir: join(dir, 'ehr'), port: 0, clinicSize: { providers: 2, patients: 12, daysBack: 1, daysAhead: 2, perProviderDay: 3 } });
  t.after(() => ehr.close());

  const account = json(await cli(['accounts', 'create', '--name', 'Acme', '--database', db, '--json']));
  const conn = json(await cli(['connections', 'create', '--client-id', String(account.client_id), '--connector', 'demo', '--base-url', ehr.url, '--database', db, '--json']));
  const connectionId = String(conn.connection_id);

  // The first sync is the baseline: everything read, no events.
  const first = await cli(['sync', '--connection', connectionId, '--database', db, '--json']);
  assert.equal(first.code, 0, first.stderr);
  const baseline = json(first);
  assert.deepEqual([baseline.status, baseline.baseline, baseline.events, baseline.counts, baseline.quarantined], ['succeeded', true, 0, {}, 0]);
  assert.match(String(baseline.run_id), /\S/);
  assert.equal(typeof baseline.duration_ms, 'number');
  assert.doesNotMatch(first.stderr, /\x1b\[/, 'no ANSI codes when stderr is not a terminal'); // eslint-disable-line no-control-regex
  const steps = first.stderr.trim().split('\n').map((l) => l.replace(/\s+\([^)]*\)$/, ''));
  assert.ok(steps.every((l) => l.startsWith(`sync ${connectionId}: `)), first.stderr);
  const scheduled = ehr.clinic.appointmentsBetween(Date.now() - 86_400_000, Date.now() + 3 * 86_400_000).length;
  assert.ok(steps.includes(`sync ${connectionId}: schedule read (${scheduled} appointments)`), first.stderr);
  assert.ok(steps.includes(`sync ${connectionId}: planned (0 events)`), first.stderr);
  assert.equal(steps.at(-1), `sync ${connectionId}: committed`);

  // An endpoint that answers 500 (cobalt policy: one retry, then failed), registered before the change.
  const receiver = await startReceiver(t);
  const store = await openStore(db);
  t.after(() => store.close());
  const endpoint = await store.createEndpoint({ accountId: String(account.account_id), url: receiver.url('/500'), secret: 'whsec', retryPolicy: 'cobalt', now: Date.now() });

  const since = new Date(Date.now() - 1000).toISOString();
  const appt = ehr.clinic.appointmentsBetween(Date.now() + 3_600_000, Date.now() + 3 * 86_400_000).find((a) => a.status === 'booked');
  assert.ok(appt, 'a booked appointment ahead');
  ehr.clinic.setStatus(appt.id, 'arrived');
  const second = await cli(['sync', '--connection', connectionId, '--database', db, '--json']);
  assert.equal(second.code, 0, second.stderr);
  const changed = json(second);
  assert.deepEqual([changed.baseline, changed.events, changed.counts], [false, 2, { 'appointment.updated': 1, 'appointment.status_updated': 1 }]);
  assert.match(second.stderr, /: planned \(2 events\)/);

  // Human output names the result; unknown connection → 2; a closed EHR port → 1 with the recorded error.
  const human = await cli(['sync', '--connection', connectionId, '--database', db]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^sync succeeded in .+\nevents: none\n$/);
  const unknown = await cli(['sync', '--connection', 'nope', '--database', db]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /--connection nope: no such connection.*npx ehrsync connections list/);
  const dead = json(await cli(['connections', 'create', '--client-id', String(account.client_id), '--connector', 'demo', '--base-url', `http://127.0.0.1:${await closedPort()}`, '--database', db, '--json']));
  const failed = await cli(['sync', '--connection', String(dead.connection_id), '--database', db, '--json']);
  assert.equal(failed.code, 1);
  const failure = json(failed);
  assert.deepEqual([failure.status, failure.error_code], ['failed', 'ehr_unavailable']);
  assert.ok(failed.stderr.includes(`ehrsync: sync of connection ${String(dead.connection_id)} failed (ehr_unavailable): ${String(failure.error_message)}`), failed.stderr);
  const [run] = await store.listSyncRuns(String(dead.connection_id), 1);
  assert.deepEqual([run?.status, run?.errorMessage], ['failed', failure.error_message], 'the message printed is the one recorded');

  // Leased by another process (as `serve` would): refused, nothing synced, the lease left alone.
  assert.ok(await store.claimConnection(connectionId, Date.now(), Date.now() + 60_000, 'serve-elsewhere'));
  const busy = await cli(['sync', '--connection', connectionId, '--database', db]);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /being synced by another process/);
  assert.equal(await store.claimConnection(connectionId, Date.now(), Date.now() + 60_000, 'third'), null, 'still held by its owner');
  await store.releaseConnection(connectionId, 'serve-elsewhere');

  // Both deliveries fail.
  const failing = new Dispatcher({ store, allowPrivateAddresses: true, pollIntervalMs: 50 });
  failing.start();
  await until('two failed deliveries', async () => ((await store.getEndpointHealth(endpoint.id, 0))?.failed === 2 ? true : undefined));
  await failing.stop();

  // Bad flags and unknown webhooks → 2.
  const badSince = await cli(['recover', '--webhook', endpoint.id, '--since', 'yesterday', '--database', db]);
  assert.equal(badSince.code, 2);
  assert.match(badSince.stderr, /--since must be an ISO 8601 time.*2026-11-02T15:00:00Z/);
  const future = await cli(['recover', '--webhook', endpoint.id, '--since', '2999-01-01T00:00:00Z', '--database', db]);
  assert.deepEqual([future.code, /--since .* is in the future/.test(future.stderr)], [2, true]);
  const timeoutAlone = await cli(['recover', '--webhook', endpoint.id, '--since', '2026-01-01', '--timeout', '5', '--database', db]);
  assert.deepEqual([timeoutAlone.code, /--timeout only applies with --wait/.test(timeoutAlone.stderr)], [2, true]);
  const noHook = await cli(['recover', '--webhook', 'nope', '--since', since, '--database', db]);
  assert.equal(noHook.code, 2);
  assert.match(noHook.stderr, /--webhook nope: no such webhook/);

  // Queued again; with nothing delivering, --wait gives up after its timeout and they stay queued.
  const queued = await cli(['recover', '--webhook', endpoint.id, '--since', since, '--database', db, '--json']);
  assert.equal(queued.code, 0, queued.stderr);
  assert.deepEqual(json(queued), { webhook_id: endpoint.id, since, queued: 2 });
  const timedOut = await cli(['recover', '--webhook', endpoint.id, '--since', since, '--wait', '--timeout', '1', '--database', db, '--json']);
  assert.equal(timedOut.code, 1);
  const waited = json(timedOut);
  assert.deepEqual([waited.queued, waited.pending, waited.delivered, waited.timed_out], [0, 2, 0, true]);
  assert.match(timedOut.stderr, /also watching 2 already pending \(due now, or held behind an earlier event/, 'says what it watches besides what it queued');
  assert.match(timedOut.stderr, /timed out after .* still pending; they stay queued\. Is `ehrsync serve` with the delivery role running/);
  assert.doesNotMatch(timedOut.stderr, /\x1b\[/); // eslint-disable-line no-control-regex

  // The receiver heals; --wait watches a real dispatcher (started once the command is watching) deliver them, and exits 0.
  receiver.heal('/500');
  const delivering = new Dispatcher({ store, allowPrivateAddresses: true, pollIntervalMs: 50 });
  t.after(() => delivering.stop());
  const done = await cli(['recover', '--webhook', endpoint.id, '--since', since, '--wait', '--database', db, '--json'], (line) => {
    if (line.includes('waiting for')) delivering.start();
  });
  assert.equal(done.code, 0, done.stderr);
  const result = json(done);
  assert.deepEqual([result.queued, result.delivered, result.failed, result.pending, result.timed_out], [0, 2, 0, 0, false]);
  assert.match(done.stderr, /: 2\/2 delivered, 0 pending/);
  const ok = new Set(receiver.received.filter((r) => r.status === 200).map((r) => r.headers['webhook-id']));
  const failedIds = new Set(receiver.received.filter((r) => r.status === 500).map((r) => r.headers['webhook-id']));
  assert.equal(ok.size, 2);
  assert.deepEqual(ok, failedIds, 'the same webhook-ids as the failed attempts');
});
