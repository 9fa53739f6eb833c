/** The developer receiver's verifier, checked against signatures made by independent code. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { describeEvent, verifyWebhook } from '../../src/cli/receiver.js';
import type { EventEnvelope } from '../../src/domain/events.js';

const body = JSON.stringify({ id: 'evt1', type: 'patient.updated', data: { mrn: '1' } });
const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

it('accepts Standard Webhooks signatures made by the standardwebhooks library, with any live secret', () => {
  const now = new Date('2026-11-02T15:00:00Z');
  const signature = new Webhook(secret).sign('evt1', now, body);
  const headers = { 'webhook-id': 'evt1', 'webhook-timestamp': String(now.getTime() / 1000), 'webhook-signature': signature };
  assert.deepEqual(verifyWebhook(body, headers, ['whsec_b2xk', secret], now.getTime() / 1000), { verified: true, scheme: 'standard' });
  assert.equal(verifyWebhook(body.replace('"1"', '"2"'), headers, [secret], now.getTime() / 1000).verified, false, 'a changed body fails');
  assert.equal(verifyWebhook(body, headers, [secret], now.getTime() / 1000 + 600).verified, false, 'an old timestamp fails');
});

it('accepts cobalt-verification computed as Cobalt\'s documented receiver does', () => {
  // Cobalt's docs: crypto.createHmac('sha256', secretKey).update(JSON.stringify(payload)).digest('hex')
  const expected = createHmac('sha256', secret).update(JSON.stringify(JSON.parse(body))).digest('hex');
  assert.deepEqual(verifyWebhook(body, { 'cobalt-verification': expected }, [secret], 0), { verified: true, scheme: 'cobalt' });
  assert.equal(verifyWebhook(body, { 'cobalt-verification': (expected[0] === '0' ? '1' : '0') + expected.slice(1) }, [secret], 0).verified, false);
  assert.equal(verifyWebhook(body, {}, [secret], 0).reason, 'no signature header');
});

it('prints one readable line per event: which id an appointment.created carries, what changed, attempt, verification', () => {
  const envelope = (type: string, data: Record<string, unknown>) => ({ id: 'evt1', access_token_reference_id: 'clinic_1', object: 'event', created: '2026-11-02T15:04:05.000Z', type, data }) as unknown as EventEnvelope;
  const ok = { verified: true, scheme: 'cobalt' } as const;
  const created = describeEvent(envelope('appointment.created', { appointment_id: 'c5c0e613', mrn: '44235', provider_name: 'Dr. Jose Gonzalez', date_time: '2026-11-03T16:00:00.000Z' }), '1', ok, false);
  assert.equal(created, '15:04:05  appointment.created         clinic_1     appointment c5c0e613 (ehrsync id) patient 44235 with Dr. Jose Gonzalez at 2026-11-03T16:00:00.000Z  attempt 1  ✓ verified');
  const moved = describeEvent(envelope('appointment.status_updated', { ehr_appointment_id: 'A1', patient_name: 'Ada', previous_status: '1', status: '2' }), '2', { verified: false, scheme: 'cobalt', reason: 'signature does not match' }, false);
  assert.match(moved, /A1 Ada: 1 → 2 {2}attempt 2 {2}✗ NOT verified \(signature does not match\)$/);
});
