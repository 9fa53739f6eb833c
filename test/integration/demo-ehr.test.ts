/** The demo EHR's FHIR API checked with an independent client (fhir-kit-client), its persistence across restarts, native statuses, the simulator and the page. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Client } from 'fhir-kit-client';
import { DEMO_NATIVE_STATUS_EXTENSION } from '../../src/domain/demo-ehr-profile.js';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import { officeHoursSlot } from '../../src/demo-ehr/simulator.js';
import { tempDir } from '../helpers/temp.js';

type R = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const small = { providers: 3, patients: 20, daysBack: 1, daysAhead: 1, perProviderDay: 4 };

describe('demo EHR', () => {
  it('serves FHIR R4 that fhir-kit-client reads, pages, creates (conditionally), updates with If-Match and deletes', async (t) => {
    const ehr = await startDemoEhr({ dataDir: tempDir(t), port: 0, clinicSize: small });
    t.after(() => ehr.close());
    const client = new Client({ baseUrl: ehr.fhirUrl });
    const cap = (await client.capabilityStatement()) as R;
    assert.deepEqual(cap.rest[0].resource.map((r: R) => r.type), ['Appointment', 'Patient', 'Practitioner']);

    const from = new Date(Date.now() - 3 * 86_400_000).toISOString();
    const to = new Date(Date.now() + 3 * 86_400_000).toISOString();
    let page = (await client.search({ resourceType: 'Appointment', searchParams: { date: [`ge${from}`, `lt${to}`], _count: 5 } })) as R;
    const total = page.total as number;
    assert.ok(total > 5, 'more than one page');
    const ids: string[] = [];
    for (;;) {
      ids.push(...(page.entry ?? []).map((e: R) => e.resource.id));
      const next = client.nextPage({ bundle: page as never });
      if (!next) break;
      page = (await next) as R;
    }
    assert.equal(new Set(ids).size, total, 'every appointment exactly once across the pages');

    const patient = (await client.read({ resourceType: 'Patient', id: (await client.search({ resourceType: 'Patient', searchParams: { _count: 1 } }) as R).entry[0].resource.id })) as R;
    const v1 = patient.meta.versionId as string;
    const updated = (await client.update({ resourceType: 'Patient', id: patient.id, body: { ...patient, resourceType: "Patient", telecom: [{ system: "phone", value: "555-0111" }] }, options: { headers: { 'If-Match': `W/"${v1}"` } } })) as R;
    assert.equal(updated.meta.versionId, String(Number(v1) + 1));
    await assert.rejects(client.update({ resourceType: 'Patient', id: patient.id, body: patient as never, options: { headers: { 'If-Match': `W/"${v1}"` } } }), (e: R) => e.response?.status === 412);
    const changed = (await client.search({ resourceType: 'Patient', searchParams: { _lastUpdated: `ge${updated.meta.lastUpdated}` } })) as R;
    assert.ok(changed.entry.some((e: R) => e.resource.id === patient.id), '_lastUpdated finds the edit');

    const body = { resourceType: 'Patient', identifier: [{ system: 'urn:ehrsync:job', value: 'job-1' }], name: [{ given: ['New'], family: 'Person' }] };
    const headers = { 'If-None-Exist': 'identifier=urn:ehrsync:job|job-1' };
    const c1 = (await client.create({ resourceType: 'Patient', body, options: { headers } })) as R;
    const c2 = (await client.create({ resourceType: 'Patient', body, options: { headers } })) as R;
    assert.equal(c2.id, c1.id, 'a conditional create with the same identifier returns the first');
    assert.equal(((await client.search({ resourceType: 'Patient', searchParams: { identifier: 'urn:ehrsync:job|job-1' } })) as R).total, 1);

    const appt = ids[0] as string;
    await client.delete({ resourceType: 'Appointment', id: appt });
    await assert.rejects(client.read({ resourceType: 'Appointment', id: appt }), (e: R) => e.response?.status === 410);
    await assert.rejects(client.read({ resourceType: 'Appointment', id: 'nope' }), (e: R) => e.response?.status === 404);
    await assert.rejects(client.create({ resourceType: 'Appointment', body: { resourceType: 'Appointment', status: 'booked', start: from, participant: [{ actor: { reference: 'Patient/none' } }] } }), (e: R) => e.response?.status === 422);
  });

  it('keeps its clinic across restarts and seeds only once; the same seed gives the same clinic', async (t) => {
    const dir = tempDir(t);
    const first = await startDemoEhr({ dataDir: dir, port: 0, clinicSize: small, seed: 7 });
    assert.equal(first.seeded, true);
    const a = first.clinic.all('Patient')[0]!;
    first.clinic.editPatient(a.id, { phone: '555-0123' });
    const names = first.clinic.all('Patient').map((p) => JSON.stringify(p.name));
    await first.close();
    const again = await startDemoEhr({ dataDir: dir, port: 0, clinicSize: small, seed: 7 });
    t.after(() => again.close());
    assert.equal(again.seeded, false);
    const p = again.clinic.store.get('Patient', a.id);
    assert.ok(p && p !== 'gone');
    assert.equal((p.resource.telecom as R[]).find((x) => x.system === 'phone' && x.use !== 'mobile')?.value, '555-0123');
    const other = await startDemoEhr({ dataDir: tempDir(t), port: 0, clinicSize: small, seed: 7 });
    t.after(() => other.close());
    assert.deepEqual(other.clinic.all('Patient').map((x) => JSON.stringify(x.name)), names, 'deterministic with the seed');
  });

  it('native statuses: every appointment carries an athena-style code in step with its FHIR status; the simulator changes things', async (t) => {
    const ehr = await startDemoEhr({ dataDir: tempDir(t), port: 0, clinicSize: small, nativeStatuses: true, seed: 3 });
    t.after(() => ehr.close());
    const now = Date.now();
    const all = ehr.clinic.appointmentsBetween(now - 5 * 86_400_000, now + 5 * 86_400_000);
    const code = (r: R) => (r.extension as R[]).find((e) => e.url === DEMO_NATIVE_STATUS_EXTENSION)?.valueCode;
    const expected: Record<string, string> = { booked: 'f', 'checked-in': '2', fulfilled: '3', cancelled: 'x', noshow: 'n' };
    for (const a of all) assert.equal(code(a), expected[String(a.status)], `status ${String(a.status)}`);
    const changes = Array.from({ length: 20 }, () => ehr.simulator.step()).filter((c) => c !== null);
    assert.ok(changes.length > 0);
    assert.ok(new Set(changes.map((c) => c.action)).size > 2, 'several kinds of front-desk change');
  });

  it('the simulated front desk books in office hours, in the clinic\'s time zone, ahead of now', () => {
    const zone = 'America/New_York';
    const clock = new Intl.DateTimeFormat('en-US', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    const now = Date.parse('2026-11-02T23:30:00.000Z'); // 18:30 in New York: today's hours are over
    for (const draws of [[0, 0], [0.99, 0.99], [0.5, 0.2], [0.1, 0.7]]) {
      let i = 0;
      const start = officeHoursSlot(now, zone, () => draws[i++ % draws.length] as number);
      const [h, m] = clock.format(start).split(':').map(Number) as [number, number];
      assert.ok(h * 60 + m >= 8 * 60 && h * 60 + m <= 16 * 60 + 30, `${new Date(start).toISOString()} is ${h}:${m} in New York`);
      assert.ok(start >= now + 3_600_000, 'ahead of now');
    }
  });

  it('serves its web page with the day\'s schedule and a patient form', async (t) => {
    const ehr = await startDemoEhr({ dataDir: tempDir(t), port: 0, clinicSize: small });
    t.after(() => ehr.close());
    const res = await fetch(`${ehr.url}/`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/html/);
    const html = await res.text();
    assert.match(html, /<form id="book"/);
    const p = ehr.clinic.all('Patient')[0]!;
    const form = await fetch(`${ehr.url}/ui/patients/${p.id}`, { method: 'POST', body: new URLSearchParams({ phone: '555-0999', email: 'x@example.com' }), redirect: 'manual' });
    assert.equal(form.status, 303);
    assert.match(await (await fetch(`${ehr.url}/patients/${p.id}`)).text(), /555-0999/);
  });
});
