/**
 * A dispatcher killed with SIGKILL mid-delivery and restarted delivers every event at least once,
 * always with the event id as `webhook-id` (receivers deduplicate on it).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { it } from 'node:test';
import { newSigningSecret } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import { emitEvents } from '../helpers/outbox.js';
import { startReceiver } from '../helpers/receiver.js';
import { tempDir } from '../helpers/temp.js';

const CHILD = fileURLToPath(new URL('../helpers/dispatch-child.ts', import.meta.url));
const T0 = Date.parse('2026-11-02T15:00:00.000Z');
const N = 120;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startChild(db: string, offsetMs: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CHILD, db, String(offsetMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
}

it('SIGKILL mid-delivery, restart: every event arrives at least once with the same webhook-id', async (t) => {
  const db = join(tempDir(t), 'ehrsync.db');
  const rx = await startReceiver(t);
  const store = await openStore(db);
  t.after(() => store.close());
  const account = await store.createAccount({ name: 'Acme', clientId: 'ci_crash', clientSecretHash: 'h', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'memory', now: T0 });
  await store.createEndpoint({ accountId: account.id, url: rx.url('/slowok'), secret: newSigningSecret(), now: T0 });
  const ids = await emitEvents(store, connection.id, Array.from({ length: N }, (_, i) => `k${i}`), T0);

  const first = startChild(db, 0);
  t.after(() => first.kill('SIGKILL'));
  for (let i = 0; i < 3000 && rx.received.length < N / 4; i++) await sleep(10);
  first.kill('SIGKILL');
  await exited(first);
  const beforeRestart = new Set(rx.received.filter((r) => r.status === 200).map((r) => String(r.headers['webhook-id'])));
  assert.ok(beforeRestart.size < N, 'the kill landed before everything was delivered');

  const second = startChild(db, 120_000);
  t.after(() => second.kill('SIGKILL'));
  const delivered = async () => (await store.listEventDeliveries({ accountId: account.id, deliveryStatus: 'succeeded', order: 'asc', limit: 1, offset: 0 })).total;
  for (let i = 0; i < 600 && (await delivered()) < N; i++) await sleep(50);
  second.kill('SIGTERM');
  await exited(second);

  assert.equal(await delivered(), N, 'every delivery is recorded as succeeded');
  const ok = rx.received.filter((r) => r.status === 200);
  for (const r of rx.received) assert.equal(r.headers['webhook-id'], (JSON.parse(r.body) as { id: string }).id, 'webhook-id is the event id on every attempt');
  assert.deepEqual([...new Set(ok.map((r) => String(r.headers['webhook-id'])))].sort(), [...ids].sort(), 'every event arrived');
  t.diagnostic(`requests: ${rx.received.length} for ${N} events (duplicates from the kill: ${rx.received.length - N})`);
});
