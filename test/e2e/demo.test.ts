/**
 * The main job end to end: `ehrsync demo --json` as a child process; changes made through the demo
 * EHR's FHIR API arrive as exactly the expected verified webhooks; a restart on the same data
 * directory re-sends nothing and new changes still flow.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Demo, Received } from '../helpers/demo-process.js';
import { startDemoProcess } from '../helpers/demo-process.js';
import { tempDir } from '../helpers/temp.js';
import { untilValue } from '../helpers/wait.js';



function startDemo(dataDir: string): Promise<Demo> {
  return startDemoProcess(['--data-dir', dataDir, '--api-port', '0', '--ehr-port', '0', '--receiver-port', '0', '--no-simulator', '--interval', '1']);
}

const until = <T>(what: string, fn: () => Promise<T | undefined> | T | undefined, limitMs = 60_000): Promise<T> => untilValue(what, fn, limitMs, 200);

async function succeededRuns(d: Demo): Promise<number> {
  const res = await fetch(`${d.ready.api_url}/v1/sync-runs?limit=100`, {
    headers: { client_id: d.ready.client_id!, client_secret: d.ready.client_secret!, access_token: d.ready.access_token! },
  });
  const body = (await res.json()) as { sync_runs: { status: string }[] };
  return body.sync_runs.filter((r) => r.status === 'succeeded').length;
}

const FHIR = { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' };

async function fhir(d: Demo, method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${d.ready.ehr_fhir_url}/${path}`, { method, headers: FHIR, body: body === undefined ? undefined : JSON.stringify(body) });
  assert.ok(res.ok, `${method} ${path} answered ${res.status}`);
  return (await res.json()) as Record<string, unknown>;
}

test('demo: FHIR changes arrive as exact verified webhooks; a restart re-sends nothing and keeps flowing', { timeout: 240_000 }, async (t) => {
  const dir = tempDir(t);
  let demo = await startDemo(dir);
  t.after(() => demo.stop());
  await until('the baseline sync', async () => ((await succeededRuns(demo)) > 0 ? true : undefined));

  // A booked appointment tomorrow or later, and its patient.
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  const bundle = await fhir(demo, 'GET', `Appointment?date=ge${tomorrow}&status=booked&_count=1`);
  const appt = ((bundle.entry as { resource: Record<string, unknown> }[])[0] as { resource: Record<string, unknown> }).resource;
  const apptId = appt.id as string;
  const patientRef = (appt.participant as { actor?: { reference?: string } }[]).map((p) => p.actor?.reference).find((r) => r?.startsWith('Patient/')) as string;
  const newStart = new Date(Date.parse(appt.start as string) + 3_600_000).toISOString();
  const newEnd = new Date(Date.parse(appt.end as string) + 3_600_000).toISOString();
  await fhir(demo, 'PUT', `Appointment/${apptId}`, { ...appt, status: 'arrived', start: newStart, end: newEnd });
  const patient = await fhir(demo, 'GET', patientRef);
  const phone = '555-010-4242';
  const telecom = ((patient.telecom as { system: string; use?: string }[] | undefined) ?? []).filter((x) => !(x.system === 'phone' && x.use !== 'mobile'));
  await fhir(demo, 'PUT', patientRef, { ...patient, telecom: [{ system: 'phone', use: 'home', value: phone }, ...telecom] });

  const about = (e: Received): boolean => JSON.stringify(e.event.data).includes(apptId) || (e.event.data.updated_fields as Record<string, unknown> | undefined)?.phone === phone;
  const got = await until('the three events', () => {
    const mine = demo.events.filter(about);
    return mine.length >= 3 ? mine : undefined;
  });
  assert.deepEqual(got.map((e) => e.event.type).sort(), ['appointment.status_updated', 'appointment.updated', 'patient.updated']);
  for (const e of got) {
    assert.equal(e.verified, true);
    assert.equal(e.headers['webhook-id'], e.event.id);
    assert.ok(e.headers['cobalt-verification']);
  }
  const updated = got.find((e) => e.event.type === 'appointment.updated')!;
  assert.deepEqual(updated.event.data.updated_fields, { status: 'arrived', datetime: new Date(newStart).toISOString() });
  const status = got.find((e) => e.event.type === 'appointment.status_updated')!;
  assert.equal(status.event.data.previous_status, 'scheduled');
  assert.equal(status.event.data.status, 'checked-in');
  const pat = got.find((e) => e.event.type === 'patient.updated')!;
  assert.deepEqual(pat.event.data.updated_fields, { phone });
  const before = demo.events.length;

  // Restart on the same directory: nothing is re-sent, later changes still flow.
  await demo.stop();
  demo = await startDemo(dir);
  const runs = await succeededRuns(demo);
  await until('two syncs after the restart', async () => ((await succeededRuns(demo)) >= runs + 2 ? true : undefined));
  assert.equal(demo.events.length, 0, `re-sent after restart: ${demo.events.map((e) => e.event.type).join(', ')} (first run received ${before})`);
  const current = await fhir(demo, 'GET', `Appointment/${apptId}`);
  await fhir(demo, 'PUT', `Appointment/${apptId}`, { ...current, status: 'fulfilled' });
  const done = await until('the completed status', () => demo.events.find((e) => e.event.type === 'appointment.status_updated' && JSON.stringify(e.event.data).includes(apptId)));
  assert.equal(done.verified, true);
  assert.equal(done.event.data.previous_status, 'checked-in');
  assert.equal(done.event.data.status, 'completed');
});
