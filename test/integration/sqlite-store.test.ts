/** The Store contract on SQLite: a real database file per test. */
import { join } from 'node:path';
import { openStore } from '../../src/store/open.js';
import { storeContract } from '../contract/store-contract.js';
import { tempDir } from '../helpers/temp.js';

storeContract('SQLite', async (t) => {
  const store = await openStore(join(tempDir(t), 'ehrsync.db'));
  t.after(() => store.close());
  return store;
});
