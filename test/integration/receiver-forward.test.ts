/**
 * `ehrsync listen --forward`: a webhook the app refuses is not marked as received, so ehrsync's
 * retry reaches the app instead of being answered "duplicate" (which would record the delivery as
 * succeeded and lose the event for the app); the app's answer is passed back; each line says what
 * the app answered. Real HTTP on 127.0.0.1, signatures made by the standardwebhooks library.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { startReceiver } from '../../src/cli/receiver.js';

const secret = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;

it('a webhook the app refused is forwarded again on the retry, and deduplicated only once accepted', async (t) => {
  const answers = [401, 200, 200];
  const received: string[] = [];
  const app = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['webhook-id']));
      res.writeHead(answers.shift() ?? 200).end();
    });
  });
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => app.close(() => resolve())));
  const lines: string[] = [];
  const rx = await startReceiver({ port: 0, secrets: () => [secret], json: false, color: false, forward: `http://127.0.0.1:${(app.address() as AddressInfo).port}/hook`, write: (l) => lines.push(l) });
  t.after(() => rx.close());

  const body = JSON.stringify({ id: 'evt1', object: 'event', type: 'patient.updated', created: '2026-12-06T10:00:00.000Z', data: { mrn: '1', patient_name: 'A B', updated_fields: { phone: 'x' } } });
  const send = async (attempt: number): Promise<number> => {
    const ts = new Date();
    const sig = new Webhook(secret).sign('msg_1', ts, body);
    const r = await fetch(rx.url, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(ts.getTime() / 1000)), 'webhook-signature': sig, 'webhook-attempt': String(attempt) },
    });
    await r.arrayBuffer();
    return r.status;
  };
  assert.equal(await send(1), 401, 'the app\'s refusal is ehrsync\'s answer: it retries');
  assert.equal(await send(2), 200, 'the retry reaches the app');
  assert.equal(await send(3), 200, 'a redelivery after acceptance is answered as a duplicate');
  assert.deepEqual(received, ['msg_1', 'msg_1'], 'the app got the event until it accepted it, and not after');
  assert.match(lines[0]!, /→ app 401 \(not accepted: ehrsync will retry\)/);
  assert.match(lines[1]!, /→ app 200$/);
  assert.match(lines[2]!, /duplicate: webhook-id seen before/);
});
