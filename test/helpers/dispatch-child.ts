/**
 * The process the delivery crash test kills: a dispatcher delivering from a SQLite file until
 * killed. Args: <db file> <clock offset ms> (a restarted child runs "later", so the dead one's
 * leases have expired, as they would have after a real restart delay).
 */
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { openStore } from '../../src/store/open.js';

const [dbFile, offsetArg] = process.argv.slice(2);
const offset = Number(offsetArg ?? 0);
const store = await openStore(String(dbFile));
const dispatcher = new Dispatcher({ store, clock: { now: () => Date.now() + offset }, allowPrivateAddresses: true, httpTimeoutMs: 2000, pollIntervalMs: 50, batchSize: 10, maxPerEndpoint: 4 });
dispatcher.start();
process.stdout.write('ready\n');
process.on('SIGTERM', () => {
  void dispatcher.stop().then(() => store.close()).then(() => process.exit(0));
});
