/**
 * Exactly once across crashes: a child process syncs a scripted EHR history into a SQLite file and
 * is killed with SIGKILL mid-sync, again and again, then restarted. The events it ends up with must
 * equal, one for one, those of the same history synced without interruption.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { EventEnvelope } from '../../src/domain/events.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../helpers/temp.js';

const CHILD = fileURLToPath(new URL('../helpers/crash-child.ts', import.meta.url));
const LAST_VERSION = 8;
const SIZE = 1500;
const KILLS = 10;

/** Runs the child; with `killAfterMs`, SIGKILLs it that long after it starts a sync. */
function runChild(db: string, killAfterMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db, String(LAST_VERSION), String(SIZE)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let armed = killAfterMs !== undefined;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (armed && out.includes('sync ')) {
        armed = false;
        void sleep(killAfterMs as number).then(() => child.kill('SIGKILL'));
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (code !== 0 && signal === null) reject(new Error(`child failed (${code}): ${err}`));
      else resolve({ code, signal, out });
    });
  });
}

/** Events as comparable strings: type, the record's EHR key, and what changed (ids are random per run). */
async function canonicalEvents(db: string): Promise<{ canonical: string[]; ids: string[]; deliveries: number }> {
  const store = await openStore(db);
  try {
    const [account] = await store.listAccounts();
    const rows = await store.listEvents({ accountId: account!.id, limit: 1_000_000 });
    let deliveries = 0;
    for (const r of rows) deliveries += (await store.listDeliveries(r.id)).length;
    const canonical = rows.map((r) => {
      const e = JSON.parse(r.body) as EventEnvelope;
      const d = e.data as unknown as Record<string, unknown>;
      const key = d.ehr_appointment_id ?? d.mrn;
      const detail = { ...d, id: undefined, appointment_id: undefined, patient_id: undefined, provider_id: undefined };
      return `${e.type}|${String(key)}|${JSON.stringify(detail)}`;
    });
    return { canonical: canonical.sort(), ids: rows.map((r) => r.id), deliveries };
  } finally {
    await store.close();
  }
}

it('SIGKILL mid-sync, restarted repeatedly: every event exactly once', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  const golden = join(dir, 'golden.db');
  const crashed = join(dir, 'crashed.db');

  const clean = await runChild(golden);
  assert.match(clean.out, /done/);

  let landed = 0;
  for (let i = 0; i < KILLS; i++) {
    // Kill at a different point of a sync each time: right away, mid-read, mid-commit.
    const r = await runChild(crashed, Math.floor(Math.random() * 120));
    if (r.signal === 'SIGKILL') landed++;
    if (r.out.includes('done')) break;
  }
  const finish = await runChild(crashed);
  assert.match(finish.out, /done/);

  const expected = await canonicalEvents(golden);
  const actual = await canonicalEvents(crashed);
  t.diagnostic(`kills that landed: ${landed}; events: ${actual.canonical.length}`);
  assert.ok(landed >= KILLS / 2, `at least half the kills hit a running child (landed ${landed})`);
  assert.ok(expected.canonical.length > 500, `the history produces many events (${expected.canonical.length})`);
  assert.deepEqual(actual.canonical, expected.canonical, 'same events, none lost, none doubled');
  assert.equal(new Set(actual.ids).size, actual.ids.length, 'event ids are unique');
  assert.equal(actual.deliveries, actual.ids.length, 'one delivery per event for the one endpoint, never more');
});
