/**
 * A delivery worker process for the delivery benchmark's multi-process rounds. It lives across
 * rounds (so its JIT is as warm as the in-process dispatcher's): per round it opens the store the
 * parent names and builds the same Dispatcher as the in-process round (`open`, answers `ready`),
 * delivers from `go` until `stop` (answers `stopped`); `exit` ends it. Forked by bench/delivery.ts.
 */
import { Dispatcher } from '../../src/delivery/dispatcher.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/ports.js';
import { dispatcherOptions } from '../delivery.js';

type Message = { open: string; concurrency: number } | 'go' | 'stop' | 'exit';

let round: { store: Store; dispatcher: Dispatcher } | null = null;

process.on('message', (m: Message) => {
  void (async () => {
    if (typeof m === 'object') {
      const store = await openStore(m.open);
      round = { store, dispatcher: new Dispatcher(dispatcherOptions(store, m.concurrency)) };
      process.send?.('ready');
    } else if (m === 'go') {
      round?.dispatcher.start();
    } else if (m === 'stop') {
      await round?.dispatcher.stop();
      await round?.store.close();
      round = null;
      process.send?.('stopped');
    } else if (m === 'exit') {
      process.exit(0);
    }
  })();
});
process.send?.('started');
