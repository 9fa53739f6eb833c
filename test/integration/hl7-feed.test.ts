/**
 * The HL7 v2 feed end to end on real sockets and a real SQLite file: messages sent over MLLP by
 * node-hl7-client (an independent sender) and by ehrsync's own client, routed by MSH-3/MSH-4,
 * applied through the push ingest, acknowledged only after commit; the events they produce are
 * read back from the store as the dispatcher would send them. On SQLite, and on PostgreSQL where
 * it runs (skipped with a message where it does not).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { Client, Message } from 'node-hl7-client';
import { createConnection } from '../../src/app/services.js';
import { mllpSend } from '../../src/connectors/hl7v2/mllp-client.js';
import { Hl7Message } from '../../src/connectors/hl7v2/message.js';
import { MllpServer } from '../../src/connectors/hl7v2/mllp-server.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/ports.js';
import { Hl7Feed } from '../../src/sync/hl7-feed.js';
import { PushIngest } from '../../src/sync/push-ingest.js';
import { FakeClock } from '../helpers/clock.js';
import { freshSchemaUrl, postgresUnavailable } from '../helpers/postgres.js';
import { tempDir } from '../helpers/temp.js';

// After every fixture's MSH-7: a message time ahead of ehrsync's clock does not count.
const T0 = Date.parse('2026-01-20T14:00:00.000Z');
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hl7');

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'latin1');
}

/** A fixture with another MSH-10 (and optionally another MSH-7). */
function withControlId(raw: string, id: string, time?: string): string {
  const lines = raw.split('\r');
  const f = (lines[0] as string).split('|');
  f[9] = id;
  if (time !== undefined) f[6] = time;
  lines[0] = f.join('|');
  return lines.join('\r');
}

interface World {
  store: Store;
  port: number;
  connectionId: string;
  accessClock: FakeClock;
  send(raw: string): Promise<{ code: string; text: string; ack: Hl7Message }>;
  events(): Promise<{ type: string; data: Record<string, unknown> }[]>;
}

const pgUnavailable = await postgresUnavailable();

/** Where the store lives: a SQLite file, or a fresh PostgreSQL schema. */
type Backend = 'sqlite' | 'postgres';
let backend: Backend = 'sqlite';

async function world(t: TestContext, config: Record<string, unknown> = { sendingApplication: 'EPIC', sendingFacility: 'NORTHCLINIC' }): Promise<World> {
  const store = await openStore(backend === 'postgres' ? await freshSchemaUrl(t) : join(tempDir(t), 'ehrsync.db'));
  const clock = new FakeClock(T0);
  const account = await store.createAccount({ name: 'Acme', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
  const { connection } = await createConnection(store, new SecretBox(SecretBox.generateKey()), { accountId: account.id, connector: 'hl7v2', config, timezone: 'America/Chicago', referenceId: 'clinic_1' }, T0);
  await store.createEndpoint({ accountId: account.id, url: 'https://example.com/hook', secret: 'whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0', now: T0 });
  const ingest = new PushIngest({ store, clock });
  const feed = new Hl7Feed({ store, ingest, clock });
  const server = new MllpServer({ onMessage: feed.handle });
  const { port } = await server.listen();
  t.after(async () => {
    await server.close();
    await ingest.idle();
    await store.close();
  });
  return {
    store,
    port,
    connectionId: connection.id,
    accessClock: clock,
    async send(raw) {
      const answer = await mllpSend('127.0.0.1', port, Buffer.from(raw, 'latin1'));
      const ack = Hl7Message.parse(answer);
      return { code: ack.segment('MSA')!.get(1), text: ack.segment('MSA')!.get(3), ack };
    },
    async events() {
      const rows = await store.listEvents({ accountId: account.id, limit: 1000, order: 'asc' });
      return rows.map((r) => {
        const body = JSON.parse(r.body) as { type: string; data: Record<string, unknown> };
        return { type: body.type, data: body.data };
      });
    },
  };
}

for (const b of ['sqlite', 'postgres'] as const) describe(`hl7 feed (${b})`, { skip: b === 'postgres' ? (pgUnavailable ?? false) : false }, () => {
  before(() => {
    backend = b;
  });

  it('a new booking (S12) creates the appointment; a re-sent S12 is acknowledged again and emits nothing', async (t) => {
    const w = await world(t);
    const s12 = fixture('map-siu-s12-epic.hl7');
    const first = await w.send(s12);
    assert.equal(first.code, 'AA');
    assert.equal(first.ack.segment('MSA')!.get(2), 'MSG00001');
    const after = await w.events();
    assert.deepEqual(
      after.map((e) => e.type),
      ['appointment.created'],
      'a scheduling message announces the booking, not the patient: the patient is learned silently',
    );
    assert.equal(after[0]!.data.mrn, '4455667');
    assert.equal(after[0]!.data.date_time, '2026-01-15T15:30:00.000Z', '09:30 in America/Chicago');
    const again = await w.send(s12);
    assert.equal(again.code, 'AA');
    assert.equal((await w.events()).length, 1, 'the re-send produced nothing new');
  });

  it('a cancellation (S15) of a known appointment emits updated (raw status) and status_updated (normalized)', async (t) => {
    const w = await world(t);
    assert.equal((await w.send(fixture('map-siu-s12-epic.hl7'))).code, 'AA');
    assert.equal((await w.send(fixture('map-siu-s15-cancel.hl7'))).code, 'AA');
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['appointment.created', 'appointment.updated', 'appointment.status_updated']);
    const updated = events[1]!.data as { updated_fields: Record<string, unknown> };
    assert.equal(updated.updated_fields.status, 'Cancelled');
    assert.equal(events[2]!.data.status, 'cancelled');
    assert.equal(events[2]!.data.previous_status, 'scheduled');
  });

  it('a message older than what is applied (MSH-7) does not roll the appointment back', async (t) => {
    const w = await world(t);
    await w.send(fixture('map-siu-s12-epic.hl7'));
    await w.send(fixture('map-siu-s15-cancel.hl7'));
    // The booking again, sent late by a replaying engine under a new MSH-10 but its old MSH-7.
    const late = await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), 'LATE-1'));
    assert.equal(late.code, 'AA');
    assert.equal((await w.events()).length, 3, 'nothing new: the appointment stays cancelled');
    const appt = await w.store.getAppointment(w.connectionId, '58001');
    assert.equal(appt?.record.status, 'Cancelled');
  });

  it('MSH-7 without seconds still orders messages; a re-sent AE gets the same error code', async (t) => {
    const w = await world(t);
    await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), 'MIN-1', '202601100830'));
    await w.send(withControlId(fixture('map-siu-s15-cancel.hl7'), 'MIN-2', '202601131100'));
    assert.equal((await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), 'MIN-3', '202601100830'))).code, 'AA');
    assert.equal((await w.events()).length, 3, 'the late booking (to the minute) changed nothing');
    const errCode = (r: { ack: Hl7Message }) => r.ack.segment('ERR')!.get(3);
    const bad = fixture('map-siu-no-id.hl7');
    const first = await w.send(bad);
    const again = await w.send(bad);
    assert.deepEqual([first.code, errCode(first)], ['AE', '101']);
    assert.deepEqual([again.code, errCode(again)], ['AE', '101'], 'the re-send is answered as the first time');
    assert.equal((await w.store.listQuarantine(w.connectionId, 10)).length, 1, 'and set aside once');
  });

  it('an MSH-10 reused on a different message is answered AE 205, not taken for a re-send', async (t) => {
    const w = await world(t);
    await w.send(fixture('map-siu-s12-epic.hl7'));
    // The cancellation under the booking's control id (a sender whose counter was reset).
    const reused = await w.send(withControlId(fixture('map-siu-s15-cancel.hl7'), 'MSG00001'));
    assert.equal(reused.code, 'AE');
    assert.equal(reused.ack.segment('ERR')!.get(3), '205');
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created'], 'nothing applied under a reused id');
  });

  it('an MSH-7 ahead of ehrsync\'s clock does not order messages (a wrong clock cannot freeze a record)', async (t) => {
    const w = await world(t);
    await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), 'F-1', '20270101000000'));
    assert.equal((await w.send(withControlId(fixture('map-siu-s15-cancel.hl7'), 'F-2', '20260113110000'))).code, 'AA');
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created', 'appointment.updated', 'appointment.status_updated'], 'the cancellation applies');
  });

  it('an MSH-10 with a control character or over 199 characters is refused (AR 102), never stored, never stuck', async (t) => {
    const w = await world(t);
    for (const id of ['X\\X00\\Y', 'A'.repeat(4000)]) {
      const r = await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), id));
      assert.equal(r.code, 'AR', id.slice(0, 12));
      assert.equal(r.ack.segment('ERR')!.get(3), '102');
    }
    assert.deepEqual(await w.events(), []);
    assert.equal((await w.send(fixture('map-siu-s12-epic.hl7'))).code, 'AA', 'the next message goes through');
  });

  it('a re-send is recognised by MSH-7 as written, even after the clock caught up with a future MSH-7', async (t) => {
    const w = await world(t);
    // 10 minutes ahead of the clock (America/Chicago wall time): too far to order by, as sent.
    const ahead = withControlId(fixture('map-siu-s12-epic.hl7'), 'AHEAD-1', '20260120081000');
    assert.equal((await w.send(ahead)).code, 'AA');
    // The re-send comes when the time is within the tolerance: it now orders, but is the same message.
    w.accessClock.advance(6 * 60_000);
    const again = await w.send(ahead);
    assert.equal(again.code, 'AA', 'the lost ACK\'s re-send is answered the same, not as a reused MSH-10');
    assert.equal((await w.events()).length, 1);
  });

  it('an id the databases cannot hold (a NUL in SCH-2, a 6,000-character SCH-2) is quarantined with AE, never stalls the feed', async (t) => {
    const w = await world(t);
    const s12 = fixture('map-siu-s12-epic.hl7');
    const nul = await w.send(withControlId(s12.replace('58001^EPIC', '58\\X00\\001^EPIC'), 'NUL-1'));
    assert.deepEqual([nul.code, nul.ack.segment('ERR')!.get(3)], ['AE', '102']);
    const long = await w.send(withControlId(s12.replace('58001^EPIC', `${'9'.repeat(6000)}^EPIC`), 'LONG-1'));
    assert.equal(long.code, 'AE');
    const reasons = (await w.store.listQuarantine(w.connectionId, 10)).map((q) => q.reason).join(' | ');
    assert.match(reasons, /ehr_appointment_id contains a NUL character \[SCH-2, else SCH-1\]/, 'the reason names the HL7 field too');
    assert.match(reasons, /ehr_appointment_id is longer than 255 characters/);
    assert.equal((await w.send(s12)).code, 'AA', 'the next message goes through');
  });

  it('a message the database refuses for good is answered AE 207 (the sender moves on); the next one applies', async (t) => {
    const w = await world(t);
    const commitPushes = w.store.commitPushes.bind(w.store);
    w.store.commitPushes = async (batch) => {
      if (batch.some((c) => c.message.controlId === 'REFUSED')) throw new Error('refused');
      return commitPushes(batch);
    };
    const r = await w.send(withControlId(fixture('map-siu-s12-epic.hl7'), 'REFUSED'));
    assert.deepEqual([r.code, r.ack.segment('ERR')!.get(3)], ['AE', '207']);
    assert.equal((await w.send(fixture('map-siu-s15-cancel.hl7'))).code, 'AA');
  });

  it('two accounts whose connections overlap on one sender (left by a race): their messages route nowhere', async (t) => {
    const w = await world(t, { sendingApplication: 'EPIC' });
    // Written around the creation check, as two simultaneous creations could.
    const other = await w.store.createAccount({ name: 'Other', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
    await w.store.createConnection({ accountId: other.id, connector: 'hl7v2', config: { sendingApplication: 'EPIC', sendingFacility: 'NORTHCLINIC' }, timezone: 'America/Chicago', now: T0 });
    const r = await w.send(fixture('map-siu-s12-epic.hl7'));
    assert.equal(r.code, 'AR');
    assert.deepEqual(await w.events(), [], 'neither account received the clinic\'s message');
  });

  it('the first message about an appointment never seen (S15) is an update, never a made-up created', async (t) => {
    const w = await world(t);
    assert.equal((await w.send(fixture('map-siu-s15-cancel.hl7'))).code, 'AA');
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['appointment.updated']);
    assert.deepEqual(Object.keys((events[0]!.data as { updated_fields: object }).updated_fields), ['status']);
  });

  it('S17 deletes a known appointment (appointment.deleted); for one never seen it emits nothing', async (t) => {
    const w = await world(t);
    assert.equal((await w.send(fixture('map-siu-s17-delete.hl7'))).code, 'AA');
    assert.deepEqual(await w.events(), []);
    // A booking of the appointment the S17 deleted (58002), stamped after it: one stamped before it
    // would be a late message about a deleted appointment, and stale.
    await w.send(withControlId(fixture('map-siu-s12-epic.hl7').replaceAll('58001', '58002'), 'BOOK-2', '20260113130000'));
    // The deletion again, as a new message (a re-send of the first would be answered from the log).
    assert.equal((await w.send(withControlId(fixture('map-siu-s17-delete.hl7'), 'DEL-2', '20260113140000'))).code, 'AA');
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created', 'appointment.deleted']);
    assert.equal(await w.store.getAppointment(w.connectionId, '58002'), null);
  });

  it('ADT A08 about a known patient emits patient.updated with only the changed fields', async (t) => {
    const w = await world(t);
    const a04 = fixture('map-adt-a04.hl7');
    assert.equal((await w.send(a04)).code, 'AA');
    assert.deepEqual((await w.events()).map((e) => e.type), ['patient.created'], 'a registration announces a new patient');
    const a08 = fixture('map-adt-a08.hl7');
    assert.equal((await w.send(a08)).code, 'AA');
    const events = await w.events();
    const last = events[events.length - 1]!;
    assert.equal(last.type, 'patient.updated');
    assert.ok(Object.keys((last.data as { updated_fields: object }).updated_fields).length > 0);
  });

  it('an SIU without SCH ids is quarantined with its reason and answered AE; an unsupported message AA', async (t) => {
    const w = await world(t);
    const bad = await w.send(fixture('map-siu-no-id.hl7'));
    assert.equal(bad.code, 'AE');
    assert.match(bad.ack.segment('ERR')!.raw(0) + bad.text, /SCH-1 and SCH-2/);
    const q = await w.store.listQuarantine(w.connectionId, 10);
    assert.equal(q.length, 1);
    assert.equal(q[0]!.kind, 'message');
    assert.ok(!q[0]!.raw.includes('Doe'), 'the quarantine keeps the message shape, no patient data');
    const oru = await w.send(fixture('map-oru-r01.hl7'));
    assert.equal(oru.code, 'AA');
    assert.deepEqual(await w.events(), []);
  });

  it('a sender no connection takes is rejected (AR) and nothing is stored', async (t) => {
    const w = await world(t, { sendingApplication: 'OTHER' });
    const r = await w.send(fixture('map-siu-s12-epic.hl7'));
    assert.equal(r.code, 'AR');
    assert.deepEqual(await w.events(), []);
  });

  it('a connection allow-listing other addresses gets AR for a message from 127.0.0.1', async (t) => {
    const w = await world(t, { sendingApplication: 'EPIC', allowFrom: ['10.0.0.0/8'] });
    assert.equal((await w.send(fixture('map-siu-s12-epic.hl7'))).code, 'AR');
    assert.deepEqual(await w.events(), []);
  });

  it('node-hl7-client (an independent sender) gets AA for an S12 it built, and the event exists', async (t) => {
    const w = await world(t, { sendingApplication: 'NODEHL7' });
    const acks: string[] = [];
    const client = new Client({ host: '127.0.0.1' });
    const conn = client.createConnection({ port: w.port, waitAck: true }, (res) => void acks.push(res.getMessage().get('MSA.1').toString()));
    t.after(async () => {
      await conn.close();
      client.closeAll();
    });
    await once(conn, 'connect');
    const m = new Message({ messageHeader: { msh_9_1: 'SIU', msh_9_2: 'S12', msh_10: 'NH-1', msh_11_1: 'P' } as never });
    m.set('MSH.3', 'NODEHL7');
    m.set('SCH.2', 'APPT-77');
    m.set('SCH.11.4', '20260120100000');
    m.set('SCH.9', '20');
    m.set('SCH.10', 'MIN');
    m.set('PID.3.1', 'MRN-77');
    m.set('PID.3.5', 'MR');
    m.set('PID.5.1', 'Roe');
    m.set('PID.5.2', 'Rita');
    m.set('PID.7', '19900101');
    m.set('PID.8', 'F');
    await conn.sendMessage(m);
    const deadline = Date.now() + 10_000;
    while (acks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(acks, ['AA']);
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['appointment.created']);
    assert.equal(events[0]!.data.mrn, 'MRN-77');
  });
});
