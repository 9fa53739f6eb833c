/** The developer receiver's verifier, checked against signatures made by independent code. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { verifyWebhook } from '../../src/cli/receiver.js';

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
