/**
 * The process the crash test kills: it syncs the scripted EHR version after version into a SQLite
 * file, deriving the next version from the store itself (the number of successful runs), so a
 * restarted child resumes exactly where the committed state is. Args: <db file> <last version> <size>.
 */
import { MemoryConnector } from '../../src/connectors/memory.js';
import { EVENT_TYPES } from '../../src/domain/events.js';
import { openStore } from '../../src/store/open.js';
import { syncConnection } from '../../src/sync/sync-engine.js';
import { FakeClock } from './clock.js';
import { ehrState, SCRIPT_NOW } from './scripted-ehr.js';

const [dbFile, lastArg, sizeArg] = process.argv.slice(2);
const last = Number(lastArg);
const size = Number(sizeArg);
const store = await openStore(String(dbFile));
let [account] = await store.listAccounts();
if (!account) {
  account = await store.createAccount({ name: 'Crash Clinic', clientId: 'ci_crash', clientSecretHash: 'h', now: SCRIPT_NOW });
  await store.createEndpoint({ accountId: account.id, url: 'https://hooks.example/all', secret: 's', eventTypes: [...EVENT_TYPES], now: SCRIPT_NOW });
  await store.createConnection({ accountId: account.id, connector: 'memory', referenceId: 'clinic_crash', now: SCRIPT_NOW });
}
const [connection] = await store.listConnections(account.id);
const clock = new FakeClock(SCRIPT_NOW);
for (;;) {
  const done = (await store.listSyncRuns(connection!.id, 10_000)).filter((r) => r.status === 'succeeded').length;
  if (done > last) break;
  const ehr = new MemoryConnector({ patientsChangedSince: false });
  const state = ehrState(done, size);
  for (const a of state.appointments.values()) ehr.putAppointment(a);
  for (const p of state.patients.values()) ehr.putPatient(p);
  process.stdout.write(`sync ${done}\n`);
  const out = await syncConnection({ store, clock, connectorFor: () => ehr }, (await store.getConnection(connection!.id))!);
  if (out.status !== 'succeeded') throw new Error(`sync ${done} failed: ${out.errorCode}`);
}
await store.close();
process.stdout.write('done\n');
