/**
 * The push ingest's group commit over a real SQLite store: messages queued while a commit runs
 * share one, and a message that cannot be committed fails alone, not the others of its
 * batch (they are committed one by one, in order).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { it } from 'node:test';
import { DEFAULT_STATUS_MAP } from '../../src/domain/status.js';
import { openStore } from '../../src/store/open.js';
import type { PushCommit } from '../../src/store/ports.js';
import type { PushRequest } from '../../src/sync/push-ingest.js';
import { PushIngest } from '../../src/sync/push-ingest.js';
import { FakeClock } from '../helpers/clock.js';
import { appointment, patient } from '../helpers/fixtures.js';
import { tempDir } from '../helpers/temp.js';

const T0 = Date.parse('2026-11-02T15:00:00.000Z');

it('group commit: a message the store refuses fails alone; the others of its batch are committed', async (t) => {
  const store = await openStore(join(tempDir(t), 'ehrsync.db'));
  t.after(() => store.close());
  const account = await store.createAccount({ name: 'Acme', clientId: 'ci_x', clientSecretHash: 'h', now: T0 });
  const connection = await store.createConnection({ accountId: account.id, connector: 'hl7v2', config: { sendingApplication: 'EPIC' }, now: T0 });
  const batches: string[][] = [];
  const commitPushes = store.commitPushes.bind(store);
  // The database refuses one message (as it would a row breaking a constraint), whatever it is batched with.
  store.commitPushes = async (batch: readonly PushCommit[]) => {
    batches.push(batch.map((c) => c.message.controlId));
    if (batch.some((c) => c.message.controlId === 'POISON')) throw new Error('refused');
    return commitPushes(batch);
  };
  const ingest = new PushIngest({ store, clock: new FakeClock(T0) });
  const request = (controlId: string, n: number): PushRequest => ({
    connection,
    statusMap: DEFAULT_STATUS_MAP,
    change: { kind: 'appointment', announces: 'created', appointment: appointment({ ehr_appointment_id: `A${n}`, patient_ehr_id: 'P1' }), patient: patient({ ehr_patient_id: 'P1' }) },
    quarantine: [],
    orderTimeMs: T0,
    message: { sender: 'EPIC|', controlId, messageType: 'SIU^S12', messageTimeMs: T0, receivedAt: T0 },
  });
  const results = await Promise.allSettled([ingest.apply(request('M0', 0)), ingest.apply(request('M1', 1)), ingest.apply(request('POISON', 2)), ingest.apply(request('M3', 3))]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
  );
  assert.deepEqual(batches[0], ['M0', 'M1', 'POISON', 'M3'], 'messages that arrived together shared one commit');
  assert.deepEqual(batches.slice(1), [['M0'], ['M1'], ['POISON'], ['M3']], 'after the failure, one by one in order');
  const created = await store.listEvents({ accountId: account.id, limit: 10, type: 'appointment.created' });
  assert.equal(created.length, 3, 'M0, M1 and M3 each committed their event, once');
  assert.equal(await store.findFeedMessage(connection.id, 'EPIC|', 'POISON'), null, 'the refused one left nothing: its sender resends it');
});
