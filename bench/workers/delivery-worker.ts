/**
 * A delivery worker process for the delivery benchmark's multi-process rounds: opens the store the
 * parent names, builds the same Dispatcher as the in-process round, says `ready`, delivers from
 * `go` until `stop`, then exits. Started with child_process.fork by bench/delivery.ts.
 */
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { openStore } from '../../src/store/open.js';
import { dispatcherOptions } from '../delivery.js';

const [database, concurrency] = process.argv.slice(2) as [string, string];
const store = await openStore(database);

const d = new Dispatcher(dispatcherOptions(store, Number(concurrency)));
process.on('message', (m) => {
  if (m === 'go') d.start();
  if (m === 'stop') {
    void d
      .stop()
      .then(() => store.close())
      .then(() => process.exit(0));
  }
});
process.send?.('ready');
