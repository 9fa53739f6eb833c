/** The HL7 feed against bad and vendor-shaped input, through the real MLLP listener with Hl7Feed on a SQLite file: each fault gets its documented answer, nothing crashes, the next good message on a new connection is still AA, and no log line carries message content. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { createConnection } from '../../src/app/services.js';
import { mllpSend } from '../../src/connectors/hl7v2/mllp-client.js';
import { encodeMllpFrame, MllpError, MllpFramer } from '../../src/connectors/hl7v2/mllp-framer.js';
import { Hl7Message } from '../../src/connectors/hl7v2/message.js';
import { MllpServer } from '../../src/connectors/hl7v2/mllp-server.js';
import type { Logger } from '../../src/domain/logger.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/ports.js';
import { Hl7Feed } from '../../src/sync/hl7-feed.js';
import { PushIngest } from '../../src/sync/push-ingest.js';
import { FakeClock } from '../helpers/clock.js';
import { tempDir } from '../helpers/temp.js';
import { sleep, untilTrue } from '../helpers/wait.js';

const T0 = Date.parse('2026-01-20T14:00:00.000Z');
const WAIT_MS = 15_000;
/** Small, so unfinished frames are closed quickly; a whole message arrives in one write, far within it. */
const FRAME_TIMEOUT_MS = 1_000;
const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'hl7');
const SENDER = 'EPIC|NORTHCLINIC';
/** Values from the fixtures that must never reach a log line. */
const PHI = ['Doe', 'Jane', 'Roe', 'Rita', 'Müller', 'Zoë', 'Zürich', '4455667', 'MSH|', 'PID|'];

const MLLP_SEND = '/usr/bin/mllp_send';
const noMllpSend = existsSync(MLLP_SEND) ? undefined : `${MLLP_SEND} is not installed (Debian: apt-get install -y python3-hl7); the mllp_send test is skipped`;

function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'latin1');
}

/** A message with MSH field `n` (MSH-1 is the separator, so MSH-n is index n-1 of the split) set to `value`. */
function withMsh(raw: string, n: number, value: string): string {
  const lines = raw.split('\r');
  const f = (lines[0] as string).split('|');
  f[n - 1] = value;
  lines[0] = f.join('|');
  return lines.join('\r');
}

interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  message: string;
}

interface Answer {
  code: string;
  ack: Hl7Message;
  /** ERR-3.1, the HL7 table 0357 code, '' for an AA. */
  errorCode: string;
}

interface World {
  store: Store;
  port: number;
  connectionId: string;
  lines: LogLine[];
  send(raw: string | Buffer): Promise<Answer>;
  events(): Promise<{ type: string; data: Record<string, unknown> }[]>;
  /** Resolves with the first log line carrying `code` (a listener close code). */
  logged(code: string): Promise<LogLine>;
  /** A fresh booking on a new connection: answered AA, and its appointment.created is stored. */
  stillAccepts(): Promise<void>;
}

let goodSeq = 0;

async function world(t: TestContext, config: Record<string, unknown> = { sendingApplication: 'EPIC', sendingFacility: 'NORTHCLINIC' }): Promise<World> {
  const lines: LogLine[] = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, fields, message });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const store = await openStore(join(tempDir(t), 'ehrsync.db'));
  const clock = new FakeClock(T0);
  const account = await store.createAccount({ name: 'Acme', clientId: `ci_${Math.random()}`, clientSecretHash: 'h', now: T0 });
  const { connection } = await createConnection(store, new SecretBox(SecretBox.generateKey()), { accountId: account.id, connector: 'hl7v2', config, timezone: 'America/Chicago', referenceId: 'clinic_1' }, T0);
  await store.createEndpoint({ accountId: account.id, url: 'https://example.com/hook', secret: 'whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0', now: T0 });
  const ingest = new PushIngest({ store, clock, logger });
  const feed = new Hl7Feed({ store, ingest, clock, logger });
  const server = new MllpServer({ onMessage: feed.handle, logger, frameTimeoutMs: FRAME_TIMEOUT_MS, idleTimeoutMs: 30_000 });
  const { port } = await server.listen();
  t.after(async () => {
    await server.close();
    await ingest.idle();
    await store.close();
    const text = JSON.stringify(lines);
    for (const value of PHI) assert.ok(!text.includes(value), `no log line carries message content (found ${JSON.stringify(value.slice(0, 3))}…)`);
  });
  const w: World = {
    store,
    port,
    connectionId: connection.id,
    lines,
    async send(raw) {
      const answer = await mllpSend('127.0.0.1', port, typeof raw === 'string' ? Buffer.from(raw, 'latin1') : raw, { timeoutMs: WAIT_MS });
      const ack = Hl7Message.parse(answer);
      return { code: ack.segment('MSA')!.get(1), ack, errorCode: ack.segment('ERR')?.get(3) ?? '' };
    },
    async events() {
      const rows = await store.listEvents({ accountId: account.id, limit: 1000, order: 'asc' });
      return rows.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
    },
    async logged(code) {
      let found: LogLine | undefined;
      await untilTrue(`a log line with code ${code}`, () => (found = lines.find((l) => l.fields.code === code)) !== undefined, WAIT_MS, 10);
      return found!;
    },
    async stillAccepts() {
      const n = ++goodSeq;
      const good = withMsh(fixture('map-siu-s12-epic.hl7').replaceAll('58001', `GOOD${n}`), 10, `GOOD-${n}`);
      const r = await w.send(good);
      assert.equal(r.code, 'AA', 'a good message afterwards, on a new connection, is accepted');
      const created = (await w.events()).filter((e) => e.type === 'appointment.created');
      const appt = await store.getAppointment(connection.id, `GOOD${n}`);
      assert.ok(appt, 'the good message was applied');
      assert.ok(created.some((e) => e.data.appointment_id === appt.id), 'and its appointment.created is stored');
    },
  };
  return w;
}

/** A raw TCP sender collecting framed answers; `closed` resolves when the listener closes the connection. */
async function rawClient(t: TestContext, port: number): Promise<{ socket: Socket; answers: Buffer[]; closed: Promise<void>; isClosed: () => boolean; write(b: Buffer): Promise<void> }> {
  const socket = connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  socket.on('error', () => {}); // the listener closing on us mid-write is what these rows provoke
  let isClosed = false;
  const closed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timed out waiting for the listener to close the connection')), WAIT_MS);
    socket.once('close', () => {
      isClosed = true;
      clearTimeout(timer);
      resolve();
    });
  });
  closed.catch(() => {});
  t.after(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const framer = new MllpFramer();
  const answers: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => answers.push(...framer.push(chunk).frames));
  return {
    socket,
    answers,
    closed,
    isClosed: () => isClosed,
    write: (b) => new Promise<void>((resolve) => socket.write(b, () => resolve())),
  };
}

/** Random bytes without MLLP control bytes or line breaks, whose first byte cannot start a frame. */
function garbage(n: number): Buffer {
  const out = randomBytes(n).map((b) => ([0x0b, 0x1c, 0x0d, 0x0a].includes(b) ? 0xff : b));
  out[0] = 0xfe;
  return Buffer.from(out);
}

describe('hl7 feed: bad input, row by row (each answered as documented, then a good message is still AA)', () => {
  it('no MSH segment: AR, nothing stored', async (t) => {
    const w = await world(t);
    const noMsh = fixture('map-siu-s12-epic.hl7').split('\r').slice(1).join('\r');
    const r = await w.send(noMsh);
    assert.equal(r.code, 'AR');
    assert.deepEqual(await w.events(), []);
    assert.deepEqual(await w.store.listQuarantine(w.connectionId, 10), [], 'no sender to file it under');
    await w.stillAccepts();
  });

  it('an unsupported version (MSH-12 3.0): AR with ERR-3 203, set aside by shape, no event', async (t) => {
    const w = await world(t);
    const r = await w.send(withMsh(fixture('map-siu-s12-epic.hl7'), 12, '3.0'));
    assert.equal(r.code, 'AR');
    assert.equal(r.errorCode, '203', 'table 0357: unsupported version id');
    assert.equal(r.ack.segment('MSA')!.get(2), 'MSG00001', 'the rejection names the message (MSA-2), so the sender can match it');
    assert.deepEqual(await w.events(), []);
    const q = await w.store.listQuarantine(w.connectionId, 10);
    assert.equal(q.length, 1, 'the sender is known: the unreadable message is listed under its connection');
    assert.equal(q[0]!.kind, 'message');
    assert.ok(!q[0]!.raw.includes('Doe') && !q[0]!.reason.includes('Doe'), 'by size and reason only, no patient data');
    await w.stillAccepts();
  });

  for (const [label, raw, controlId] of [
    ['SIU^S99', fixture('map-siu-s99.hl7'), 'MSG00203'],
    ['ADT^A99', withMsh(fixture('map-adt-a08.hl7'), 9, 'ADT^A99^ADT_A01'), 'MSG00101'],
  ] as const) {
    it(`an unknown trigger (${label}): AA, nothing stored (not even a log entry: a type ehrsync does not use costs no write)`, async (t) => {
      const w = await world(t);
      const r = await w.send(raw);
      assert.equal(r.code, 'AA', 'acknowledged: resending it would not help');
      assert.deepEqual(await w.events(), []);
      assert.deepEqual(await w.store.listQuarantine(w.connectionId, 10), []);
      assert.equal(await w.store.getAppointment(w.connectionId, '58004'), null);
      assert.equal(await w.store.getPatient(w.connectionId, 'E9988'), null);
      assert.equal(await w.store.getPatient(w.connectionId, '4455667'), null);
      assert.equal(await w.store.findFeedMessage(w.connectionId, SENDER, controlId), null);
      assert.equal((await w.send(raw)).code, 'AA', 'a re-send is answered the same');
      await w.stillAccepts();
    });
  }

  it('a 5 MB message: the listener closes the connection (frame_too_large, limit 1 MiB), no ACK, nothing stored', async (t) => {
    const w = await world(t);
    const huge = `${fixture('map-siu-s12-epic.hl7')}NTE|1||${'x'.repeat(5 * 1024 * 1024)}\r`;
    await assert.rejects(w.send(huge), (err: unknown) => err instanceof MllpError && err.code === 'connection_closed');
    assert.equal((await w.logged('frame_too_large')).level, 'warn');
    assert.deepEqual(await w.events(), []);
    await w.stillAccepts();
  });

  it('a frame with no end block: closed by the frame timeout, no ACK, nothing stored', async (t) => {
    const w = await world(t);
    const c = await rawClient(t, w.port);
    const frame = encodeMllpFrame(Buffer.from(fixture('map-siu-s12-epic.hl7'), 'latin1'));
    await c.write(frame.subarray(0, frame.length - 2));
    await c.closed;
    assert.deepEqual(c.answers, []);
    await w.logged('frame_timeout');
    assert.deepEqual(await w.events(), []);
    await w.stillAccepts();
  });

  it('binary garbage outside a frame: closed at once (malformed_framing, data_outside_frame)', async (t) => {
    const w = await world(t);
    const c = await rawClient(t, w.port);
    await c.write(garbage(4096));
    await c.closed;
    assert.deepEqual(c.answers, []);
    assert.equal((await w.logged('malformed_framing')).fields.reason, 'data_outside_frame');
    await w.stillAccepts();
  });

  it('binary garbage inside a frame: AR (unreadable), and the connection stays usable', async (t) => {
    const w = await world(t);
    const c = await rawClient(t, w.port);
    await c.write(encodeMllpFrame(garbage(4096)));
    await untilTrue('an answer to the garbage frame', () => c.answers.length === 1, WAIT_MS, 10);
    assert.equal(Hl7Message.parse(c.answers[0]!).segment('MSA')!.get(1), 'AR');
    // The same connection then carries a good message.
    await c.write(encodeMllpFrame(Buffer.from(withMsh(fixture('map-siu-s12-epic.hl7'), 10, 'AFTER-GARBAGE'), 'latin1')));
    await untilTrue('an answer to the good message', () => c.answers.length === 2, WAIT_MS, 10);
    assert.equal(Hl7Message.parse(c.answers[1]!).segment('MSA')!.get(1), 'AA');
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created']);
    await w.stillAccepts();
  });

  it('a slowloris sender (one byte at a time): closed by the frame timeout before its frame ends', async (t) => {
    const w = await world(t);
    const c = await rawClient(t, w.port);
    const frame = encodeMllpFrame(Buffer.from(fixture('map-siu-s12-epic.hl7'), 'latin1'));
    let sent = 0;
    while (!c.isClosed() && sent < frame.length) {
      await c.write(frame.subarray(sent, sent + 1));
      sent++;
      await sleep(50);
    }
    await c.closed;
    assert.ok(sent < frame.length, 'the connection was closed before the frame could finish');
    assert.deepEqual(c.answers, []);
    await w.logged('frame_timeout');
    assert.deepEqual(await w.events(), []);
    await w.stillAccepts();
  });

  it('an empty MSH-10: AE with ERR-3 101 at MSH-10, nothing stored (a re-send could not be recognised)', async (t) => {
    const w = await world(t);
    const r = await w.send(withMsh(fixture('map-siu-s12-epic.hl7'), 10, ''));
    assert.equal(r.code, 'AE');
    assert.equal(r.errorCode, '101', 'table 0357: required field missing');
    assert.deepEqual(await w.events(), []);
    assert.equal(await w.store.getAppointment(w.connectionId, '58001'), null);
    assert.equal(await w.store.findFeedMessage(w.connectionId, SENDER, ''), null);
    await w.stillAccepts();
  });
});

describe('hl7 feed: a sender the connection refuses writes nothing, readable or not', () => {
  // A refused sender must not fill a connection's quarantine and message log, or make its feed
  // look fresh, by sending unreadable messages.
  const unreadable = (): string => withMsh(fixture('map-siu-s12-epic.hl7'), 12, '3.0');

  it('from an address the connection does not allow: AR, no quarantine row, no log entry, feed not marked fresh', async (t) => {
    const w = await world(t, { sendingApplication: 'EPIC', sendingFacility: 'NORTHCLINIC', allowFrom: ['10.0.0.0/8'] });
    assert.equal((await w.send(unreadable())).code, 'AR');
    assert.equal((await w.send(fixture('map-siu-s12-epic.hl7'))).code, 'AR');
    assert.deepEqual(await w.store.listQuarantine(w.connectionId, 10), []);
    assert.deepEqual(await w.events(), []);
    assert.equal((await w.store.getConnection(w.connectionId))?.lastSyncAt, null);
  });

  it('to a disabled connection: AR, no quarantine row, no log entry, feed not marked fresh', async (t) => {
    const w = await world(t);
    await w.store.updateConnection(w.connectionId, { enabled: false });
    assert.equal((await w.send(unreadable())).code, 'AR');
    assert.equal((await w.send(fixture('map-siu-s12-epic.hl7'))).code, 'AR');
    assert.deepEqual(await w.store.listQuarantine(w.connectionId, 10), []);
    assert.deepEqual(await w.events(), []);
    assert.equal((await w.store.getConnection(w.connectionId))?.lastSyncAt, null);
  });
});

describe('hl7 feed: vendor-shaped messages end to end', () => {
  it('an Epic-style SIU with AIL/AIP, Z-segments, \\T\\ escapes and repeated fields: appointment.created with the right values', async (t) => {
    const w = await world(t);
    const r = await w.send(fixture('feed-siu-s12-vendor.hl7'));
    assert.equal(r.code, 'AA');
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['appointment.created'], 'the patient is learned silently');
    const created = events[0]!.data;
    assert.equal(created.mrn, '7788990', 'the MR identifier of the repeated PID-3, not the PI or SS');
    assert.equal(created.date_time, '2026-01-16T20:00:00.000Z', '14:00 in America/Chicago');
    assert.equal(created.provider_name, 'Dr. Tina Best', 'the first AIP');
    assert.ok(created.secondary_provider_id !== null, 'the second AIP');
    const appt = await w.store.getAppointment(w.connectionId, '59001');
    assert.equal(appt?.record.location, 'PEDS & FAMILY', 'AIL-3.1, \\T\\ unescaped');
    assert.equal(appt?.record.appointment_type, 'NEW PATIENT & LABS', 'AIS-3.2, \\T\\ unescaped');
    assert.equal(appt?.record.duration, 45);
    assert.equal(appt?.record.patient_name, 'Rita Roe', 'the first repetition of PID-5');
    const patient = await w.store.getPatient(w.connectionId, 'E5511');
    assert.equal(patient?.record.email, 'rita.roe@example.com', 'from a later repetition of PID-13');
    assert.equal(patient?.record.address_street, '1 Oak Ave', 'the home address among the PID-11 repetitions');
  });

  it('an SIU without the optional AIL: created all the same, with no location', async (t) => {
    const w = await world(t);
    const r = await w.send(fixture('feed-siu-s12-no-ail.hl7'));
    assert.equal(r.code, 'AA');
    assert.deepEqual((await w.events()).map((e) => e.type), ['appointment.created']);
    const appt = await w.store.getAppointment(w.connectionId, '59002');
    assert.equal(appt?.record.location, null);
    assert.equal(appt?.record.provider_name, 'Dr. Tina Best');
  });

  it('ISO-8859-1 bytes with an empty MSH-18 on a connection with defaultCharset 8859/1: the accented name arrives intact', async (t) => {
    const bytes = readFileSync(join(FIXTURES, 'feed-adt-a08-latin1.hl7'));
    assert.ok(bytes.includes(Buffer.from([0xfc])), 'the fixture is Latin-1 bytes (ü is 0xFC)');
    const w = await world(t, { sendingApplication: 'EPIC', sendingFacility: 'NORTHCLINIC', defaultCharset: '8859/1' });
    const r = await w.send(bytes);
    assert.equal(r.code, 'AA');
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['patient.updated'], 'an A08 about a patient never seen is an update with what it says');
    const data = events[0]!.data as { patient_name: string; updated_fields: Record<string, unknown> };
    assert.equal(data.patient_name, 'Zoë Müller');
    assert.equal(data.updated_fields.last_name, 'Müller');
    assert.equal(data.updated_fields.address_street, 'Königstraße 5');
    assert.equal(data.updated_fields.address_city, 'Zürich');
    await w.stillAccepts();
  });

  it('the same Latin-1 bytes on a connection without defaultCharset: AR (not valid UTF-8), nothing stored', async (t) => {
    const w = await world(t);
    const r = await w.send(readFileSync(join(FIXTURES, 'feed-adt-a08-latin1.hl7')));
    assert.equal(r.code, 'AR');
    assert.equal(r.errorCode, '102');
    assert.deepEqual(await w.events(), []);
    await w.stillAccepts();
  });

  it('Debian mllp_send (a non-JS sender) sends two SIU messages: AA for both, their events stored', { skip: noMllpSend ?? false }, async (t) => {
    const w = await world(t);
    const file = join(tempDir(t, 'ehrsync-feed-mllp-send-'), 'messages.hl7');
    const first = fixture('feed-siu-s12-vendor.hl7');
    const second = fixture('map-siu-s12-epic.hl7');
    // mllp_send splits its input on the end block and frames each message itself.
    writeFileSync(file, Buffer.concat([encodeMllpFrame(Buffer.from(first, 'latin1')), encodeMllpFrame(Buffer.from(second, 'latin1'))]));
    // Asynchronously: the listener runs in this process and must keep answering meanwhile.
    const stdout = await new Promise<Buffer>((resolve, reject) =>
      execFile(MLLP_SEND, ['--port', String(w.port), '--file', file, '127.0.0.1'], { encoding: 'buffer', timeout: WAIT_MS }, (err, out) => (err ? reject(err) : resolve(out))),
    );
    const { frames, error } = new MllpFramer().push(stdout);
    assert.equal(error, null);
    const acks = frames.map((f) => Hl7Message.parse(f).segment('MSA')!);
    assert.deepEqual(acks.map((m) => [m.get(1), m.get(2)]), [['AA', 'FEED-V1'], ['AA', 'MSG00001']]);
    const events = await w.events();
    assert.deepEqual(events.map((e) => e.type), ['appointment.created', 'appointment.created']);
    assert.ok(await w.store.getAppointment(w.connectionId, '59001'));
    assert.ok(await w.store.getAppointment(w.connectionId, '58001'));
  });
});
