/**
 * The demo with `--connector hl7v2`, end to end: `ehrsync demo --connector hl7v2 --json` as a child
 * process; front-desk changes on the demo EHR's page and through its FHIR API reach ehrsync as HL7
 * v2 messages over MLLP and arrive as exactly the expected verified webhooks; a restart re-sends
 * nothing and new changes still flow. And the demo EHR's feed on its own, against a real MLLP
 * listener that drops, rejects and refuses messages: order, resends with the same MSH-10, and
 * messages that map (connectors/hl7v2/mapping.ts) to what the EHR holds.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { openMllpConnection } from '../../src/connectors/hl7v2/mllp-client.js';
import { buildAck } from '../../src/connectors/hl7v2/ack.js';
import type { AckCode } from '../../src/connectors/hl7v2/ack.js';
import type { MappedMessage } from '../../src/connectors/hl7v2/mapping.js';
import { mapMessage } from '../../src/connectors/hl7v2/mapping.js';
import { escapeValue, Hl7Message } from '../../src/connectors/hl7v2/message.js';
import { MllpServer } from '../../src/connectors/hl7v2/mllp-server.js';
import { connectionStatusMap } from '../../src/connectors/registry.js';
import type { Hl7Link } from '../../src/demo-ehr/hl7-feed.js';
import { DEMO_HL7_STATUS_MAP } from '../../src/demo-ehr/hl7-feed.js';
import type { DemoEhr } from '../../src/demo-ehr/server.js';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import { normalizeStatus } from '../../src/domain/status.js';
import type { Demo, Received } from '../helpers/demo-process.js';
import { startDemoProcess } from '../helpers/demo-process.js';
import { tempDir } from '../helpers/temp.js';
import { untilValue } from '../helpers/wait.js';

const ZONE = 'America/New_York';
const until = <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, limitMs = 60_000): Promise<T> => untilValue(what, fn, limitMs, 100);

// ---------------------------------------------------------------------------------------------
// The demo as a child process



function startDemo(dataDir: string): Promise<Demo> {
  return startDemoProcess(['--connector', 'hl7v2', '--data-dir', dataDir, '--api-port', '0', '--ehr-port', '0', '--receiver-port', '0', '--hl7-port', '0', '--no-simulator']);
}

const FHIR = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };

async function fhir(d: Demo, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${d.ready.ehr_fhir_url}/${path}`, { method, headers: FHIR, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.ok(res.ok, `${method} ${path} answered ${res.status}`);
  return res.status === 204 ? {} : ((await res.json()) as Record<string, unknown>);
}

/** A front-desk action on the demo EHR's web page (the forms the staff use; the simulator calls the same clinic actions). */
async function page(d: Demo, path: string, form: Record<string, string>): Promise<void> {
  const res = await fetch(`${d.ready.ehr_url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(), redirect: 'manual' });
  assert.ok(res.status >= 300 && res.status < 400, `POST ${path} answered ${res.status}`);
}

/** The clinic's calendar date and wall time of an instant. */
function local(iso: string): { date: string; time: string } {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { timeZone: ZONE, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(new Date(iso)).map((p) => [p.type, p.value]));
  return { date: `${parts.year}-${parts.month}-${parts.day}`, time: `${parts.hour}:${parts.minute}` };
}

/** ehrsync's id of the appointment an event is about (`appointment_id` in created, `id` in the others). */
const subject = (e: Received): unknown => e.event.data.appointment_id ?? e.event.data.id;

test('demo --connector hl7v2: staff changes arrive as exact verified webhooks over HL7 v2; a restart re-sends nothing', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  let demo = await startDemo(dir);
  t.after(() => demo.stop());
  assert.equal(demo.ready.connector, 'hl7v2');
  assert.match(demo.ready.hl7_address ?? '', /^127\.0\.0\.1:\d+$/);

  const patient = ((await fhir(demo, 'GET', 'Patient?_count=1')).entry as { resource: Record<string, unknown> }[])[0]!.resource;
  const dr = ((await fhir(demo, 'GET', 'Practitioner?_count=1')).entry as { resource: Record<string, unknown> }[])[0]!.resource;
  const mrn = (patient.identifier as { value: string }[])[0]!.value;
  // Three bookings three days ahead, before the seeded day starts (8:00 in the clinic).
  const day = Date.parse(`${new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10)}T12:00:00Z`);
  const book = async (minute: number): Promise<Record<string, unknown>> => {
    const start = new Date(day + minute * 60_000);
    return fhir(demo, 'POST', 'Appointment', {
      resourceType: 'Appointment',
      status: 'booked',
      start: start.toISOString(),
      end: new Date(start.getTime() + 20 * 60_000).toISOString(),
      minutesDuration: 20,
      appointmentType: { coding: [{ system: 'urn:demo-ehr:appointment-type', code: 'FOLLOW-UP' }], text: 'FOLLOW-UP' },
      participant: [
        { actor: { reference: `Patient/${patient.id as string}` }, status: 'accepted' },
        { actor: { reference: `Practitioner/${dr.id as string}` }, status: 'accepted' },
        { actor: { reference: 'Location/room-9', display: 'Room 9' }, status: 'accepted' },
      ],
    });
  };

  // A: booked (S12), checked in (S14), moved (S13). B: booked, no-show (S26). C: booked,
  // cancelled (S15), deleted (S17). Then the patient's phone (A08): it arrives only after the S17
  // was acknowledged, the feed being in order.
  const a = await book(5);
  const b = await book(25);
  const c = await book(45);
  await page(demo, `/ui/appointments/${a.id as string}/status`, { status: 'checked-in' });
  const moved = local(new Date(day + 95 * 60_000).toISOString());
  await page(demo, `/ui/appointments/${a.id as string}/move`, { new_date: moved.date, time: moved.time });
  await page(demo, `/ui/appointments/${b.id as string}/status`, { status: 'noshow' });
  await page(demo, `/ui/appointments/${c.id as string}/status`, { status: 'cancelled' });
  await fhir(demo, 'DELETE', `Appointment/${c.id as string}`);
  const phone = '555-010-7373';
  await page(demo, `/ui/patients/${patient.id as string}`, { phone });

  const ehrsyncId = async (ehrId: unknown): Promise<unknown> => subject(await until(`an event naming ${String(ehrId)}`, () => demo.events.find((e) => e.event.data.ehr_appointment_id === ehrId)));
  const [idA, idB, idC] = [await ehrsyncId(a.id), await ehrsyncId(b.id), await ehrsyncId(c.id)];
  const about = (id: unknown) => () => demo.events.filter((e) => subject(e) === id);
  const expectTypes = async (what: string, list: () => Received[], types: string[]): Promise<Received[]> => {
    const got = await until(what, () => (list().length >= types.length ? list() : undefined));
    assert.deepEqual(got.map((e) => e.event.type).sort(), [...types].sort(), what);
    return got;
  };
  const gotA = await expectTypes('A: created, checked in, moved', about(idA), ['appointment.created', 'appointment.updated', 'appointment.status_updated', 'appointment.updated']);
  const gotB = await expectTypes('B: created, no-show', about(idB), ['appointment.created', 'appointment.updated', 'appointment.status_updated']);
  const gotC = await expectTypes('C: created, cancelled', about(idC), ['appointment.created', 'appointment.updated', 'appointment.status_updated']);
  const gotP = await expectTypes('the patient edit', () => demo.events.filter((e) => e.event.type === 'patient.updated'), ['patient.updated']);

  for (const e of [...gotA, ...gotB, ...gotC, ...gotP]) {
    assert.equal(e.verified, true);
    assert.equal(e.headers['webhook-id'], e.event.id);
    assert.ok(e.headers['cobalt-verification']);
  }
  const created = gotA.find((e) => e.event.type === 'appointment.created')!.event.data;
  assert.equal(created.mrn, mrn);
  assert.equal(created.date_time, a.start);
  assert.equal(created.provider_name, [...((dr.name as { prefix?: string[] }[])[0]!.prefix ?? []), ...((dr.name as { given: string[] }[])[0]!.given), (dr.name as { family: string }[])[0]!.family].join(' '));
  const updates = gotA.filter((e) => e.event.type === 'appointment.updated').map((e) => e.event.data.updated_fields);
  const movedStart = (await fhir(demo, 'GET', `Appointment/${a.id as string}`)).start as string;
  assert.deepEqual(updates, [{ status: 'Arrived' }, { datetime: new Date(movedStart).toISOString() }]);
  const checkedIn = gotA.find((e) => e.event.type === 'appointment.status_updated')!.event.data;
  assert.deepEqual([checkedIn.previous_status, checkedIn.status], ['scheduled', 'checked-in']);
  const noShow = gotB.find((e) => e.event.type === 'appointment.status_updated')!.event.data;
  assert.deepEqual([noShow.previous_status, noShow.status], ['scheduled', 'no-show']);
  const cancelled = gotC.find((e) => e.event.type === 'appointment.status_updated')!.event.data;
  assert.deepEqual([cancelled.previous_status, cancelled.status], ['scheduled', 'cancelled']);
  assert.deepEqual(gotP[0]!.event.data.updated_fields, { phone });
  const before = demo.events.length;

  // Restart on the same directory: nothing is re-sent, later changes still flow.
  await demo.stop();
  demo = await startDemo(dir);
  const phone2 = '555-010-7474';
  await page(demo, `/ui/patients/${patient.id as string}`, { phone: phone2 });
  const again = await until('the second patient edit', () => demo.events.find((e) => e.event.type === 'patient.updated'));
  assert.equal(again.verified, true);
  assert.deepEqual(again.event.data.updated_fields, { phone: phone2 });
  assert.deepEqual(
    demo.events.map((e) => e.event.type),
    ['patient.updated'],
    `re-sent after restart (first run received ${before})`,
  );
  await demo.stop();

  // The directory's demo is an hl7v2 one: resuming it as the polled kind is refused, by name.
  const refused = spawn(process.execPath, ['bin/ehrsync.js', 'demo', '--data-dir', dir, '--api-port', '0', '--ehr-port', '0', '--receiver-port', '0', '--no-simulator'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  refused.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => refused.once('exit', (c) => resolve(c)));
  assert.notEqual(code, 0);
  assert.match(stderr, /--connector hl7v2/);
});

// ---------------------------------------------------------------------------------------------
// The feed on its own

interface Arrival {
  controlId: string;
  type: string;
  msg: Hl7Message;
}

/** A real MLLP listener whose answer to each arrival a script decides: an ACK code, `drop` (no ACK, connection closed), or a promise. */
async function scriptedListener(t: { after: (fn: () => Promise<void>) => void }, script: (a: Arrival, n: number) => AckCode | 'drop' | Promise<AckCode>) {
  const arrivals: Arrival[] = [];
  const server = new MllpServer({
    onMessage: async (payload) => {
      const msg = Hl7Message.parse(payload);
      const a = { controlId: msg.header.controlId, type: `${msg.header.messageType}^${msg.header.triggerEvent}`, msg };
      arrivals.push(a);
      const what = await script(a, arrivals.length);
      if (what === 'drop') throw new Error('dropped by the test');
      return Buffer.from(buildAck(msg, what, { now: Date.now(), controlId: `ACK${arrivals.length}`, error: what === 'AA' ? undefined : { code: '207', text: 'scripted' } }), 'utf8');
    },
  });
  const { port } = await server.listen();
  t.after(() => server.close());
  const connect = async (): Promise<Hl7Link> => {
    const c = await openMllpConnection('127.0.0.1', port, { timeoutMs: 10_000 });
    return {
      async send(message) {
        const msa = Hl7Message.parse(await c.send(message)).segment('MSA');
        return { code: msa?.get(1) ?? '', controlId: msa?.get(2) ?? '' };
      },
      close: () => c.close(),
    };
  };
  return { arrivals, connect };
}

async function feedEhr(dataDir: string): Promise<DemoEhr> {
  return startDemoEhr({ dataDir, port: 0, timezone: ZONE, clinicSize: { providers: 2, patients: 5, daysBack: 1, daysAhead: 1, perProviderDay: 2 }, hl7Feed: { sendingApplication: 'DEMOEHR', sendingFacility: 'DEMOCLINIC', escape: escapeValue } });
}

test('demo EHR HL7 feed: in order, resent with the same MSH-10 after a drop or an AR, AE set aside; messages map to the EHR\'s records', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  let ehr = await feedEhr(dir);
  t.after(() => ehr.close());
  // The 1st arrival is dropped, the 3rd answered AR, the 5th AE: each of the first two is resent.
  const l = await scriptedListener(t, (_a, n) => (n === 1 ? 'drop' : n === 3 ? 'AR' : n === 5 ? 'AE' : 'AA'));
  ehr.hl7Feed!.start({ connect: l.connect, maxRetryMs: 200 });

  const clinic = ehr.clinic;
  const p = clinic.all('Patient')[0]!;
  const dr = clinic.all('Practitioner')[0]!;
  const start = '2030-03-04T15:00:00.000Z';
  const appt = clinic.book({ patientId: p.id, practitionerId: dr.id, start, minutes: 40, type: 'NEW-PATIENT', location: 'Room 2', mode: 'office' }); // S12
  clinic.setStatus(appt.id, 'checked-in'); // S14
  clinic.editPatient(p.id, { phone: '555-444-1212', street: 'Unit 4 | Back ^ Side & Co' }); // A08 (AE'd)
  clinic.move(appt.id, '2030-03-04T16:30:00.000Z'); // S13
  clinic.setStatus(appt.id, 'noshow'); // S26
  const other = clinic.book({ patientId: p.id, practitionerId: dr.id, start, minutes: 20, type: 'TELEHEALTH', location: null, mode: 'telehealth' }); // S12
  clinic.setStatus(other.id, 'cancelled'); // S15
  clinic.store.delete('Appointment', other.id, new Date().toISOString()); // S17
  clinic.save({ resourceType: 'Patient', id: clinic.store.nextId('Patient'), identifier: [{ system: 'urn:demo-ehr:mrn', value: 'MRN999001' }], name: [{ use: 'official', given: ['Ada'], family: "O'Neil-Smith" }], birthDate: '1990-02-03', gender: 'other' }); // A28
  const expected = ['SIU^S12', 'SIU^S14', 'ADT^A08', 'SIU^S13', 'SIU^S26', 'SIU^S12', 'SIU^S15', 'SIU^S17', 'ADT^A28'];

  await until('every message acknowledged', () => (ehr.hl7Feed!.pending() === 0 && l.arrivals.length >= expected.length + 2 ? true : undefined));
  const ids = l.arrivals.map((a) => a.controlId);
  // Arrivals: m1 (dropped), m1, m2 (AR), m2, m3 (AE), m4 … m9.
  assert.equal(ids[0], ids[1], 'a dropped message is resent with its MSH-10');
  assert.equal(ids[2], ids[3], 'a rejected message is resent with its MSH-10');
  const unique = [...new Set(ids)];
  assert.equal(unique.length, expected.length, 'one MSH-10 per message');
  assert.deepEqual(unique.map((id) => l.arrivals.find((a) => a.controlId === id)!.type), expected, 'sent in the order of the changes');
  assert.deepEqual(ehr.hl7Feed!.counts, { sent: expected.length - 1, setAside: 1 });

  // What ehrsync reads from them (the connection's effective status map, as the listener builds it).
  const statusMap = connectionStatusMap({ connector: 'hl7v2', config: { statusMap: DEMO_HL7_STATUS_MAP }, statusMap: null });
  const mapped = unique.map((id) => mapMessage(l.arrivals.find((a) => a.controlId === id)!.msg, { timezone: ZONE, statusMap }));
  const appt0 = (m: MappedMessage) => (m.kind === 'appointment' ? m.appointment : assert.fail(`not an appointment: ${m.kind}`));
  const booked = appt0(mapped[0]!);
  assert.deepEqual(
    { ...booked },
    {
      ehr_appointment_id: appt.id,
      patient_ehr_id: p.id,
      patient_mrn: (p.identifier as { value: string }[])[0]!.value,
      patient_name: `${(p.name as { given: string[] }[])[0]!.given[0]} ${(p.name as { family: string }[])[0]!.family}`,
      datetime: start,
      timezone: ZONE,
      duration: 40,
      location: 'Room 2',
      status: 'Booked',
      provider_ehr_id: dr.id,
      provider_name: [...((dr.name as { prefix: string[] }[])[0]!.prefix), ...((dr.name as { given: string[] }[])[0]!.given), (dr.name as { family: string }[])[0]!.family].join(' '),
      secondary_provider_ehr_id: null,
      appointment_type: 'NEW-PATIENT',
      appointment_mode: null,
    },
  );
  const statuses = mapped.filter((m) => m.kind === 'appointment').map((m) => normalizeStatus(String(appt0(m).status), statusMap));
  // S12, S14 (checked in: `Arrived`), S13 (still checked in), S26, S12, S15, S17 (of the cancelled one).
  assert.deepEqual(statuses, ['scheduled', 'checked-in', 'checked-in', 'no-show', 'scheduled', 'cancelled', 'cancelled']);
  assert.equal(appt0(mapped[3]!).datetime, '2030-03-04T16:30:00.000Z');
  const deletion = mapped[7]!;
  assert.ok(deletion.kind === 'appointment' && deletion.deleted, 'S17 is a deletion');
  const edit = mapped[2]!;
  assert.ok(edit.kind === 'patient');
  assert.equal(edit.patient.phone, '555-444-1212');
  assert.equal(edit.patient.address_street, 'Unit 4 | Back ^ Side & Co', 'delimiters in values are escaped');
  const added = mapped[8]!;
  assert.ok(added.kind === 'patient' && added.trigger === 'A28');
  assert.deepEqual([added.patient.mrn, added.patient.first_name, added.patient.last_name, added.patient.dob, added.patient.sex], ['MRN999001', 'Ada', "O'Neil-Smith", '1990-02-03', 'other']);

  // A message unanswered when the EHR stops stays in its outbox and is resent, same MSH-10, by the
  // next start; a later change gets an MSH-10 of its own.
  let release: (c: AckCode) => void = () => {};
  const held = new Promise<AckCode>((resolve) => (release = resolve));
  const l2 = await scriptedListener(t, (_a, n) => (n === 1 ? held : 'AA'));
  await ehr.close();
  ehr = await feedEhr(dir);
  ehr.hl7Feed!.start({ connect: l2.connect, maxRetryMs: 200 });
  ehr.clinic.setStatus(appt.id, 'booked');
  const first = await until('the held message', () => l2.arrivals[0]);
  assert.equal(ehr.hl7Feed!.pending(), 1);
  await ehr.close();
  release('AA');
  ehr = await feedEhr(dir);
  ehr.hl7Feed!.start({ connect: l2.connect, maxRetryMs: 200 });
  ehr.clinic.editPatient(p.id, { phone: '555-444-3434' });
  await until('both delivered', () => (ehr.hl7Feed!.pending() === 0 && l2.arrivals.length >= 3 ? true : undefined));
  assert.deepEqual(l2.arrivals.map((a) => a.type), ['SIU^S14', 'SIU^S14', 'ADT^A08']);
  assert.equal(l2.arrivals[1]!.controlId, first.controlId, 'resent by the next start with its MSH-10');
  assert.equal(new Set([...ids, first.controlId, l2.arrivals[2]!.controlId]).size, unique.length + 2, 'MSH-10s never repeat across restarts');
});
