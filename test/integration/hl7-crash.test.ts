/** Exactly once across SIGKILLs of the HL7 listener between receipt and ACK: a child process on a SQLite file is killed again and again while senders stream SIU feeds; after restarts and re-sends, the stored events equal those of an uninterrupted run. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openMllpConnection } from '../../src/connectors/hl7v2/mllp-client.js';
import { Hl7Message } from '../../src/connectors/hl7v2/message.js';
import { openStore } from '../../src/store/open.js';
import { tempDir } from '../helpers/temp.js';
import { sleep } from '../helpers/wait.js';

const CHILD = fileURLToPath(new URL('../helpers/hl7-feed-child.ts', import.meta.url));
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hl7');
const SENDERS = 3;
const APPOINTMENTS_PER_SENDER = 4;
/** Generous: the host may pause the VM; an answer that never comes fails the test instead of hanging it. */
const WAIT_MS = 60_000;

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'latin1');
}

/** A fixture about appointment `apptId` with MSH-4, MSH-7 and MSH-10 set. */
function message(name: string, apptId: string, facility: string, time: string, controlId: string): string {
  const lines = fixture(name).replaceAll('58001', apptId).split('\r');
  const f = (lines[0] as string).split('|');
  f[3] = facility;
  f[6] = time;
  f[9] = controlId;
  lines[0] = f.join('|');
  return lines.join('\r');
}

/** HL7 DTM of 2026-01-10 08:00 plus `minutes`. */
function dtm(minutes: number): string {
  const iso = new Date(Date.parse('2026-01-10T08:00:00Z') + minutes * 60_000).toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}`;
}

/**
 * One sender's feed: for each of its appointments a booking (S12), a reschedule (S13) and a
 * cancellation (S15), interleaved across appointments, MSH-7 rising. Each message changes
 * something, so each must produce its events exactly once.
 */
function feed(sender: number): { controlId: string; text: string }[] {
  const out: { controlId: string; text: string }[] = [];
  const kinds = ['map-siu-s12-epic.hl7', 'map-siu-s13-reschedule.hl7', 'map-siu-s15-cancel.hl7'];
  kinds.forEach((kind, k) => {
    for (let a = 0; a < APPOINTMENTS_PER_SENDER; a++) {
      const controlId = `F${sender}-A${a}-${k}`;
      out.push({ controlId, text: message(kind, `CR${sender}${a}`, `FAC${sender}`, dtm(out.length + 1), controlId) });
    }
  });
  return out;
}

/** A sender that remembers which of its messages were acknowledged AA, and resumes after a crash. */
class Sender {
  readonly messages: { controlId: string; text: string }[];
  /** Index of the first message without an AA (answers come in order, so every earlier one has one). */
  next = 0;
  /** Answers that were not AA for the message sent, and acked messages re-sent. */
  readonly problems: string[] = [];
  resentAcked = 0;

  constructor(readonly id: number) {
    this.messages = feed(id);
  }

  get done(): boolean {
    return this.next >= this.messages.length;
  }

  /**
   * Sends from the first unacknowledged message on (after a crash, from `replay` acknowledged ones
   * before it, to be thorough), up to `depth` in flight, until all are acknowledged or the
   * connection breaks. `onAck` runs after each AA.
   */
  async run(port: number, opts: { depth: number; replay: number; onAck?: () => void }): Promise<void> {
    let conn;
    try {
      conn = await openMllpConnection('127.0.0.1', port, { timeoutMs: WAIT_MS });
    } catch {
      return; // the listener is already gone
    }
    const from = Math.max(0, this.next - opts.replay);
    this.resentAcked += this.next - from;
    const inflight: Promise<void>[] = [];
    let i = from;
    try {
      while (i < this.messages.length || inflight.length > 0) {
        while (i < this.messages.length && inflight.length < opts.depth) {
          const idx = i++;
          const m = this.messages[idx]!;
          inflight.push(
            conn.send(Buffer.from(m.text, 'latin1')).then((answer) => {
              const msa = Hl7Message.parse(answer).segment('MSA');
              if (msa?.get(1) !== 'AA' || msa.get(2) !== m.controlId) this.problems.push(`${m.controlId}: ${msa?.get(1) ?? '?'} for ${msa?.get(2) ?? '?'}`);
              if (idx === this.next) this.next++;
              opts.onAck?.();
            }),
          );
        }
        await inflight.shift();
      }
    } catch {
      // The listener died: what is not acknowledged is re-sent to the next one.
      await Promise.allSettled(inflight);
    } finally {
      conn.close();
    }
  }
}

interface Listener {
  child: ChildProcess;
  port: number;
  exited: Promise<NodeJS.Signals | null>;
}

/** Where the child kills itself (test/helpers/hl7-feed-child.ts): after its Nth handled message, or before its Nth group commit. */
type Crash = { afterHandled: number } | { beforeCommit: number };

/** Starts the child on `db` (with a crash hook when `crash` is set) and waits for its port. */
async function startListener(t: TestContext, db: string, crash?: Crash): Promise<Listener> {
  const env = {
    ...process.env,
    HL7_CRASH_AFTER_HANDLED: String(crash && 'afterHandled' in crash ? crash.afterHandled : 0),
    HL7_CRASH_BEFORE_COMMIT: String(crash && 'beforeCommit' in crash ? crash.beforeCommit : 0),
  };
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, db], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  let err = '';
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the listener did not start: ${err.slice(0, 2000)}`)), WAIT_MS);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`the listener exited before listening: ${err.slice(0, 2000)}`));
    });
  });
  return { child, port, exited };
}

/** Stops a listener that was not killed (end of a clean run). */
async function stop(l: Listener): Promise<void> {
  if (l.child.exitCode === null && l.child.signalCode === null) l.child.kill('SIGKILL');
  await l.exited;
}

/** The events of a database as comparable strings (type, the appointment's EHR id, the data without ehrsync's random ids), sorted; plus counts. */
async function storedEvents(db: string): Promise<{ canonical: string[]; perAppointment: Map<string, Record<string, number>>; ids: string[]; deliveries: number }> {
  const store = await openStore(db);
  try {
    const [account] = await store.listAccounts();
    const [connection] = await store.listConnections(account!.id);
    const rows = await store.listEvents({ accountId: account!.id, limit: 100_000 });
    const canonical: string[] = [];
    const perAppointment = new Map<string, Record<string, number>>();
    let deliveries = 0;
    for (const r of rows) {
      deliveries += (await store.listDeliveries(r.id)).length;
      const e = JSON.parse(r.body) as { type: string; data: Record<string, unknown> };
      const own = String(e.data.appointment_id ?? e.data.id ?? '');
      const ehrId = String(e.data.ehr_appointment_id ?? (await store.getAppointment(connection!.id, own))?.record.ehr_appointment_id ?? `?${e.type}`);
      const counts = perAppointment.get(ehrId) ?? {};
      counts[e.type] = (counts[e.type] ?? 0) + 1;
      perAppointment.set(ehrId, counts);
      const detail = { ...e.data, id: undefined, appointment_id: undefined, provider_id: undefined, secondary_provider_id: undefined };
      canonical.push(`${e.type}|${ehrId}|${JSON.stringify(detail)}`);
    }
    return { canonical: canonical.sort(), perAppointment, ids: rows.map((r) => r.id), deliveries };
  } finally {
    await store.close();
  }
}

/** The same feeds into `db` without interruption: the reference. */
async function golden(t: TestContext, db: string): Promise<Awaited<ReturnType<typeof storedEvents>>> {
  const l = await startListener(t, db);
  const senders = Array.from({ length: SENDERS }, (_, i) => new Sender(i));
  await Promise.all(senders.map((s) => s.run(l.port, { depth: 1, replay: 0 })));
  // SIGKILLed right after the last AA, too: whatever was acknowledged must already be committed.
  await stop(l);
  assert.ok(senders.every((s) => s.done && s.problems.length === 0), 'the clean run got AA for every message');
  const g = await storedEvents(db);
  // What the feeds amount to, spelled out: per appointment, one booking, one reschedule, one cancellation.
  assert.equal(g.perAppointment.size, SENDERS * APPOINTMENTS_PER_SENDER);
  for (const [id, counts] of g.perAppointment) {
    assert.deepEqual(counts, { 'appointment.created': 1, 'appointment.updated': 2, 'appointment.status_updated': 1 }, `events of ${id}`);
  }
  return g;
}

function assertExactlyOnce(actual: Awaited<ReturnType<typeof storedEvents>>, expected: Awaited<ReturnType<typeof storedEvents>>): void {
  assert.deepEqual(Object.fromEntries(actual.perAppointment), Object.fromEntries(expected.perAppointment), 'per appointment and type: none lost, none doubled');
  assert.deepEqual(actual.canonical, expected.canonical, 'the same events, field for field');
  assert.equal(new Set(actual.ids).size, actual.ids.length, 'event ids are unique');
  assert.equal(actual.deliveries, actual.ids.length, 'one delivery per event for the one endpoint, never more');
}

describe('hl7 listener: SIGKILL between receipt and ACK', () => {
  it('killed right after committing its Nth message before that ACK, or just before a commit, round after round: every change once', { timeout: 300_000 }, async (t) => {
    const dir = tempDir(t);
    const expected = await golden(t, join(dir, 'golden.db'));
    const db = join(dir, 'crashed.db');
    const senders = Array.from({ length: SENDERS }, (_, i) => new Sender(i));
    let landed = 0;
    // Where each run dies. Each sender first re-sends its last acknowledged message (handled too, as
    // a duplicate, without a commit), so a kill after the 4th or later handled message follows a new
    // commit; a kill before the 2nd or later commit catches new messages received, not committed.
    const crashes: Crash[] = [{ afterHandled: 4 }, { beforeCommit: 2 }, { afterHandled: 7 }, { beforeCommit: 3 }, { afterHandled: 5 }, { beforeCommit: 4 }, { afterHandled: 6 }];
    for (const crash of crashes) {
      const l = await startListener(t, db, crash);
      await Promise.all(senders.map((s) => s.run(l.port, { depth: 1, replay: 1 })));
      // A sender stops early only when the listener died; when all finished, the hook never fired.
      if (senders.every((s) => s.done)) {
        await stop(l);
        break;
      }
      if ((await l.exited) === 'SIGKILL') landed++;
    }
    const last = await startListener(t, db);
    await Promise.all(senders.map((s) => s.run(last.port, { depth: 1, replay: 1 })));
    await stop(last);

    assert.ok(senders.every((s) => s.done), 'every message was acknowledged in the end');
    assert.deepEqual(senders.flatMap((s) => s.problems), [], 'every answer, re-sends included, was AA for the message sent');
    t.diagnostic(`kills that landed: ${landed} of ${crashes.length}`);
    assert.ok(landed >= crashes.length - 1, `the hooks killed the listener mid-feed (${landed} times)`);
    assert.ok(senders.reduce((n, s) => n + s.resentAcked, 0) > 0, 'acknowledged messages were re-sent too');
    assertExactlyOnce(await storedEvents(db), expected);
  });

  it('killed from outside at a random point while three senders pipeline: every change once', { timeout: 300_000 }, async (t) => {
    const dir = tempDir(t);
    const expected = await golden(t, join(dir, 'golden.db'));
    const db = join(dir, 'crashed.db');
    const senders = Array.from({ length: SENDERS }, (_, i) => new Sender(i));
    let landed = 0;
    for (let round = 0; round < 6 && !senders.every((s) => s.done); round++) {
      const l = await startListener(t, db);
      // Kill once a random number of ACKs (0–5) came back in this run, a random moment later.
      const killAt = Math.floor(Math.random() * 6);
      let acks = 0;
      let armed = true;
      const kill = (): void => {
        if (!armed) return;
        armed = false;
        void sleep(Math.floor(Math.random() * 20)).then(() => {
          if (senders.some((s) => !s.done)) landed++;
          l.child.kill('SIGKILL');
        });
      };
      if (killAt === 0) kill();
      await Promise.all(senders.map((s) => s.run(l.port, { depth: 3, replay: 2, onAck: () => void (++acks >= killAt && kill()) })));
      await stop(l);
    }
    const last = await startListener(t, db);
    await Promise.all(senders.map((s) => s.run(last.port, { depth: 3, replay: 2 })));
    await stop(last);

    assert.ok(senders.every((s) => s.done), 'every message was acknowledged in the end');
    assert.deepEqual(senders.flatMap((s) => s.problems), [], 'every answer, re-sends included, was AA for the message sent');
    t.diagnostic(`kills that landed while messages were in flight: ${landed}`);
    assert.ok(landed >= 3, `kills landed while messages were in flight (${landed})`);
    assertExactlyOnce(await storedEvents(db), expected);
  });
});
