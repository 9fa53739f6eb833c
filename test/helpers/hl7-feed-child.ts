/**
 * The process the HL7 crash test kills: Hl7Feed and an MllpServer on 127.0.0.1:0 over a SQLite
 * file (creating the account, its endpoint and an hl7v2 connection for sender EPIC on first start),
 * printing `listening <port>` once it accepts. Args: <db file>.
 *
 * Test hooks, here and not in src/:
 * - HL7_CRASH_AFTER_HANDLED=N: SIGKILLs itself once its Nth message has been handled (its change,
 *   events and deliveries committed) and before that message's ACK is returned to the listener —
 *   the window between commit and acknowledgment.
 * - HL7_CRASH_BEFORE_COMMIT=N: holds its Nth group commit for a moment and SIGKILLs itself before
 *   it runs — messages received and planned, not committed, so none of them may have been ACKed.
 */
import { createConnection } from '../../src/app/services.js';
import { MllpServer } from '../../src/connectors/hl7v2/mllp-server.js';
import type { MllpMessageHandler } from '../../src/connectors/hl7v2/mllp-server.js';
import { systemClock } from '../../src/domain/clock.js';
import { EVENT_TYPES } from '../../src/domain/events.js';
import { SecretBox } from '../../src/domain/secrets.js';
import { openStore } from '../../src/store/open.js';
import { Hl7Feed } from '../../src/sync/hl7-feed.js';
import { PushIngest } from '../../src/sync/push-ingest.js';
import { sleep } from './wait.js';

const [dbFile] = process.argv.slice(2);
const crashAfter = Number(process.env.HL7_CRASH_AFTER_HANDLED ?? 0);
const crashBeforeCommit = Number(process.env.HL7_CRASH_BEFORE_COMMIT ?? 0);
const store = await openStore(String(dbFile));
if ((await store.listAccounts()).length === 0) {
  const now = systemClock.now();
  const account = await store.createAccount({ name: 'Crash Clinic', clientId: 'ci_hl7_crash', clientSecretHash: 'h', now });
  await store.createEndpoint({ accountId: account.id, url: 'https://hooks.example/all', secret: 's', eventTypes: [...EVENT_TYPES], now });
  await createConnection(store, new SecretBox(SecretBox.generateKey()), { accountId: account.id, connector: 'hl7v2', config: { sendingApplication: 'EPIC' }, timezone: 'America/Chicago', referenceId: 'clinic_crash' }, now);
}
const commitPushes = store.commitPushes.bind(store);
let commits = 0;
store.commitPushes = async (batch) => {
  if (crashBeforeCommit > 0 && ++commits === crashBeforeCommit) {
    // Long enough for an ACK sent too early (before its commit) to reach the sender first.
    await sleep(50);
    process.kill(process.pid, 'SIGKILL');
  }
  return commitPushes(batch);
};
const ingest = new PushIngest({ store, clock: systemClock });
const feed = new Hl7Feed({ store, ingest, clock: systemClock });
let handled = 0;
const onMessage: MllpMessageHandler = async (payload, ctx) => {
  const ack = await feed.handle(payload, ctx);
  if (crashAfter > 0 && ++handled === crashAfter) process.kill(process.pid, 'SIGKILL');
  return ack;
};
// Generous timeouts: the host may pause this VM; only the kill may end a connection here.
const server = new MllpServer({ onMessage, idleTimeoutMs: 120_000, frameTimeoutMs: 60_000, handlerTimeoutMs: 120_000 });
const { port } = await server.listen();
process.stdout.write(`listening ${port}\n`);
