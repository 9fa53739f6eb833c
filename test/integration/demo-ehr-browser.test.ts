/** End to end in a real browser: headless Chromium books and cancels on the demo EHR's page; syncs then yield the matching events. Skips when Debian's chromium is not installed. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chromium } from 'playwright-core';
import { createConnector } from '../../src/connectors/registry.js';
import type { EventEnvelope } from '../../src/domain/events.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { startDemoEhr } from '../../src/demo-ehr/server.js';
import { openStore } from '../../src/store/open.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { tempDir } from '../helpers/temp.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (Debian: apt-get install -y chromium); the browser test is skipped`;

// The skip is on the test, not the suite: a skipped suite registers no test, and the run's
// summary would then count nothing as skipped.
describe('demo EHR in a browser', () => {
  it('a person books and then cancels on the page; the syncs emit appointment.created, then the cancellation', { skip }, async (t) => {
    const dir = tempDir(t);
    const ehr = await startDemoEhr({ dataDir: join(dir, 'ehr'), port: 0, clinicSize: { providers: 2, patients: 10, daysBack: 0, daysAhead: 1, perProviderDay: 2 } });
    t.after(() => ehr.close());
    const store = await openStore(join(dir, 'ehrsync.db'));
    t.after(() => store.close());
    const box = new SecretBox(SecretBox.generateKey());
    const clock = { now: () => Date.now() };
    const account = await store.createAccount({ name: 'Demo', clientId: 'ci_b', clientSecretHash: 'h', now: clock.now() });
    const connection = await store.createConnection({ accountId: account.id, connector: 'demo', config: { baseUrl: ehr.url }, referenceId: 'demo', now: clock.now(), windowPastDays: 1, windowFutureDays: 7 });
    await store.createEndpoint({ accountId: account.id, url: 'https://hooks.example/ehr', secret: 's', now: clock.now() });
    const deps = { store, clock, random: () => 0.5, connectorFor: (c: typeof connection) => createConnector(c, { secretBox: box }) };
    const sync = async () => syncConnection(deps, (await store.getConnection(connection.id))!);
    const events = async () => (await store.listEvents({ accountId: account.id, limit: 100 })).map((e) => JSON.parse(e.body) as EventEnvelope);
    assert.equal((await sync()).status, 'succeeded', 'baseline');

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
    t.after(() => browser.close());
    const page = await browser.newPage();
    const tomorrow = new Intl.DateTimeFormat('en-CA', { timeZone: 'America/New_York', year: 'numeric', month: '2-digit', day: '2-digit' }).format(Date.now() + 86_400_000);
    await page.goto(`${ehr.url}/?date=${tomorrow}`);
    const before = await page.locator('#schedule tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    const patientLabel = await page.locator('#book-patient option').nth(3).textContent();
    await page.selectOption('#book-patient', { index: 3 });
    await page.fill('#book-time', '16:40');
    await page.selectOption('#book-type', 'FOLLOW-UP');
    await Promise.all([page.waitForURL(/date=/), page.click('#book-submit')]);
    const after = await page.locator('#schedule tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    const booked = after.find((id) => !before.includes(id)) as string;
    assert.ok(booked, 'the new appointment shows in the schedule');

    const second = await sync();
    assert.equal(second.status, 'succeeded');
    const created = (await events()).filter((e) => e.type === 'appointment.created');
    assert.equal(created.length, 1);
    const data = created[0]!.data as unknown as Record<string, unknown>;
    assert.ok(patientLabel?.endsWith(`(${String(data.mrn)})`), `the booked patient's MRN (${String(data.mrn)} in ${String(patientLabel)})`);
    assert.equal(new Intl.DateTimeFormat('en-GB', { timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(Date.parse(String(data.date_time))), '16:40');

    await Promise.all([page.waitForURL(/date=/), page.locator(`tr[data-id="${booked}"] button`, { hasText: 'Cancel' }).click()]);
    assert.match((await page.locator(`tr[data-id="${booked}"] .status`).textContent()) ?? '', /Cancelled/);
    assert.equal((await sync()).status, 'succeeded');
    const later = (await events()).filter((e) => e.type !== 'appointment.created');
    assert.deepEqual(later.map((e) => [e.type, (e.data as unknown as Record<string, unknown>).ehr_appointment_id]).sort(), [['appointment.status_updated', booked], ['appointment.updated', booked]]);
    const status = later.find((e) => e.type === 'appointment.status_updated')!.data as unknown as Record<string, unknown>;
    assert.deepEqual([status.status, status.previous_status, status.id], ['cancelled', 'scheduled', data.appointment_id]);
  });
});
